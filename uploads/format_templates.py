"""The downloadable template of each accepted layout (the "accepted formats" page).

Generated, not stored: each is a small file with the exact headers the reader
recognises and a few rows of plausible data.
"""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Template:
    name: str  # file name offered
    title: str
    content_type: str
    build: Callable[[], bytes]


def _csv(rows: list[list]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _xlsx(sheet: str, rows: list[list]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


READINGS = [["timestamp", "energy_kwh"]] + [[f"2024-03-01T{h:02d}:00:00+00:00", v] for h, v in ((0, 1.25), (1, 1.5))]
METER_COLUMN = [["timestamp", "meter", "energy_kwh"], ["2024-03-01 00:00", "Main incomer", 1.25],
                ["2024-03-01 00:00", "Roof PV", 0.0]]  # fmt: skip
WITH_UNITS = [["date", "usage", "unit", "estimated"], ["2024-03-01", 42.5, "therm", "no"],
              ["2024-03-02", 40.1, "therm", "yes"]]  # fmt: skip
BILLS = [["start_date", "end_date", "energy_kwh"], ["2024-01-01", "2024-01-31", 12500],
         ["2024-02-01", "2024-02-29", 11800]]  # fmt: skip
ELECTRICAL = [["timestamp", "aP_1", "aP_2", "aP_3", "v_1", "c_1", "pC_1"],
              ["2024-03-01T00:00:00+00:00", 1000, 1000, 2000, 230.1, 4.2, 123456]]  # fmt: skip
PM_HEADER = ["Property Name", "Portfolio Manager ID", "Meter Name", "Portfolio Manager Meter ID", "Meter Type",
             "Start Date", "End Date", "Delivery Date", "Usage/Quantity", "Usage Units", "Cost ($)",
             "Estimation"]  # fmt: skip
PM_ROWS = [
    ["Main Street Office", 1234567, "Electric Grid Meter", 7654321, "Electric - Grid", datetime(2024, 1, 1),
     datetime(2024, 1, 31), "Not Available", 12500, "kWh (thousand Watt-hours)", 1875.0, "No"],
    ["Main Street Office", 1234567, "Gas Meter", 7654322, "Natural Gas", datetime(2024, 1, 1),
     datetime(2024, 1, 31), "Not Available", 950, "therms", 1045.0, "Yes"],
]  # fmt: skip

GREEN_BUTTON = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>urn:uuid:00000000-0000-4000-8000-000000000000</id>
  <title>Green Button Usage Feed</title>
  <updated>2024-03-02T00:00:00Z</updated>
  <entry>
    <link href="/espi/1_1/resource/Subscription/1/UsagePoint/1" rel="self"/>
    <title>Main incomer</title>
    <content><UsagePoint xmlns="http://naesb.org/espi"><ServiceCategory><kind>0</kind></ServiceCategory></UsagePoint></content>
  </entry>
  <entry>
    <link href="/espi/1_1/resource/Subscription/1/UsagePoint/1/MeterReading/1" rel="self"/>
    <link href="/espi/1_1/resource/ReadingType/1" rel="related"/>
    <content><MeterReading xmlns="http://naesb.org/espi"/></content>
  </entry>
  <entry>
    <link href="/espi/1_1/resource/ReadingType/1" rel="self"/>
    <content><ReadingType xmlns="http://naesb.org/espi">
      <accumulationBehaviour>4</accumulationBehaviour><commodity>1</commodity><flowDirection>1</flowDirection>
      <intervalLength>3600</intervalLength><kind>12</kind><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>72</uom>
    </ReadingType></content>
  </entry>
  <entry>
    <link href="/espi/1_1/resource/Subscription/1/UsagePoint/1/MeterReading/1/IntervalBlock/1" rel="self"/>
    <content><IntervalBlock xmlns="http://naesb.org/espi">
      <interval><duration>7200</duration><start>1709251200</start></interval>
      <IntervalReading><timePeriod><duration>3600</duration><start>1709251200</start></timePeriod><value>1250</value></IntervalReading>
      <IntervalReading><timePeriod><duration>3600</duration><start>1709254800</start></timePeriod><value>1500</value></IntervalReading>
    </IntervalBlock></content>
  </entry>
</feed>
"""

TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("readings.csv", "Readings, one meter", "text/csv", lambda: _csv(READINGS)),
        Template("readings-meter-column.csv", "Readings, a meter column", "text/csv", lambda: _csv(METER_COLUMN)),
        Template("readings-with-units.csv", "Daily readings with a unit column", "text/csv", lambda: _csv(WITH_UNITS)),
        Template("bills.csv", "Bills", "text/csv", lambda: _csv(BILLS)),
        Template("wattics-electrical.csv", "Wattics electrical columns", "text/csv", lambda: _csv(ELECTRICAL)),
        Template(
            "readings.xlsx",
            "Readings in Excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            lambda: _xlsx("Readings", READINGS),
        ),
        Template(
            "portfolio-manager-meter-entries.xlsx",
            "Portfolio Manager meter entries",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            lambda: _xlsx("Meter Entries", [PM_HEADER] + PM_ROWS),
        ),
        Template("green-button.xml", "Green Button (ESPI) XML", "application/atom+xml", lambda: GREEN_BUTTON),
    )
}

__all__ = ["TEMPLATES", "Template"]
