"""Green Button (NAESB ESPI) feeds built the way a utility's "Download My Data" export is laid out.

The structure follows the published ESPI schema (namespace http://naesb.org/espi) inside an
Atom feed: per UsagePoint a LocalTimeParameters entry, MeterReading entries linked to their
ReadingType, one IntervalBlock per day, and an ElectricPowerUsageSummary the portal ignores.
Hrefs use a data custodian's resource paths (…/espi/1_1/resource/Subscription/…/UsagePoint/…).
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

BASE = "https://utility.example.com/DataCustodian/espi/1_1/resource"
# ESPI codes: uom 72 Wh, 169 therm, 42 m³; flowDirection 1 forward, 19 reverse; commodity 1 electricity, 7 gas.
WH, THERM, M3 = 72, 169, 42
FORWARD, REVERSE = 1, 19


@dataclass
class Reading:
    start: datetime
    value: int  # raw value, before powerOfTenMultiplier
    quality: int | None = None
    cost: int | None = None


@dataclass
class Channel:
    """One MeterReading with its ReadingType."""

    uom: int = WH
    multiplier: int = 0
    flow: int = FORWARD
    commodity: int = 1
    interval: int = 3600
    kind: int = 12  # energy
    readings: list[Reading] = field(default_factory=list)


@dataclass
class Point:
    title: str
    service_kind: int = 0  # 0 electricity, 1 gas
    channels: list[Channel] = field(default_factory=list)


def _uid(*parts) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, '/'.join(map(str, parts)))}"


def _entry(uid: str, links: list[tuple[str, str]], title: str, content: str, when: str) -> str:
    link_xml = "".join(f'    <link href="{escape(h)}" rel="{r}"/>\n' for r, h in links)
    return (
        f"  <entry>\n    <id>{uid}</id>\n{link_xml}    <title>{escape(title)}</title>\n"
        f'    <content type="xml">\n{content}    </content>\n'
        f"    <published>{when}</published>\n    <updated>{when}</updated>\n  </entry>\n"
    )


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def feed(points: list[Point], *, subscription: int = 5, published: datetime | None = None) -> bytes:
    when = (published or datetime(2024, 12, 1, tzinfo=UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sub = f"{BASE}/Subscription/{subscription}"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<?xml-stylesheet type="text/xsl" href="GreenButtonDataStyleSheet.xslt"?>\n',
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://naesb.org/espi espiDerived.xsd">\n',
        f"  <id>{_uid(sub)}</id>\n  <title>Green Button Usage Feed</title>\n  <updated>{when}</updated>\n",
        f'  <link href="{sub}/UsagePoint" rel="self"/>\n',
    ]
    rt_number = 0
    for p_index, point in enumerate(points, start=1):
        up = f"{sub}/UsagePoint/{p_index}"
        ltp = f"{BASE}/LocalTimeParameters/{p_index}"
        out.append(
            _entry(
                _uid(up),
                [
                    ("self", up),
                    ("up", f"{sub}/UsagePoint"),
                    ("related", f"{up}/MeterReading"),
                    ("related", f"{up}/ElectricPowerUsageSummary"),
                    ("related", ltp),
                ],
                point.title,
                f'      <UsagePoint xmlns="http://naesb.org/espi">\n        <ServiceCategory>\n'
                f"          <kind>{point.service_kind}</kind>\n        </ServiceCategory>\n"
                f"        <status>1</status>\n      </UsagePoint>\n",
                when,
            )  # fmt: skip
        )
        out.append(
            _entry(
                _uid(ltp),
                [("self", ltp), ("up", f"{BASE}/LocalTimeParameters")],
                "DST For North America",
                '      <LocalTimeParameters xmlns="http://naesb.org/espi">\n'
                "        <dstEndRule>B40E2000</dstEndRule>\n        <dstOffset>3600</dstOffset>\n"
                "        <dstStartRule>360E2000</dstStartRule>\n        <tzOffset>-18000</tzOffset>\n"
                "      </LocalTimeParameters>\n",
                when,
            )
        )
        for c_index, ch in enumerate(point.channels, start=1):
            rt_number += 1
            mr = f"{up}/MeterReading/{c_index}"
            rt = f"{BASE}/ReadingType/{rt_number}"
            out.append(
                _entry(
                    _uid(mr),
                    [("self", mr), ("up", f"{up}/MeterReading"), ("related", f"{mr}/IntervalBlock"), ("related", rt)],
                    "Hourly Usage" if ch.interval == 3600 else "Daily Usage",
                    '      <MeterReading xmlns="http://naesb.org/espi"/>\n',
                    when,
                )
            )
            out.append(
                _entry(
                    _uid(rt),
                    [("self", rt), ("up", f"{BASE}/ReadingType")],
                    "Type of Meter Reading Data",
                    '      <ReadingType xmlns="http://naesb.org/espi">\n'
                    f"        <accumulationBehaviour>4</accumulationBehaviour>\n"
                    f"        <commodity>{ch.commodity}</commodity>\n        <currency>840</currency>\n"
                    f"        <dataQualifier>12</dataQualifier>\n        <flowDirection>{ch.flow}</flowDirection>\n"
                    f"        <intervalLength>{ch.interval}</intervalLength>\n        <kind>{ch.kind}</kind>\n"
                    f"        <phase>769</phase>\n"
                    f"        <powerOfTenMultiplier>{ch.multiplier}</powerOfTenMultiplier>\n"
                    f"        <timeAttribute>0</timeAttribute>\n        <uom>{ch.uom}</uom>\n      </ReadingType>\n",
                    when,
                )
            )
            # One IntervalBlock per UTC day, as utilities export them.
            days: dict = {}
            for r in ch.readings:
                days.setdefault(r.start.astimezone(UTC).date(), []).append(r)
            for b_index, (_day, readings) in enumerate(sorted(days.items()), start=1):
                block = f"{mr}/IntervalBlock/{b_index}"
                first = readings[0].start
                span = _epoch(readings[-1].start) + ch.interval - _epoch(first)
                body = [
                    '      <IntervalBlock xmlns="http://naesb.org/espi">\n',
                    f"        <interval>\n          <duration>{span}</duration>\n"
                    f"          <start>{_epoch(first)}</start>\n        </interval>\n",
                ]
                for r in readings:
                    body.append("        <IntervalReading>\n")
                    if r.cost is not None:
                        body.append(f"          <cost>{r.cost}</cost>\n")
                    if r.quality is not None:
                        body.append(f"          <ReadingQuality>\n            <quality>{r.quality}</quality>\n"
                                    "          </ReadingQuality>\n")  # fmt: skip
                    body.append(
                        f"          <timePeriod>\n            <duration>{ch.interval}</duration>\n"
                        f"            <start>{_epoch(r.start)}</start>\n          </timePeriod>\n"
                        f"          <value>{r.value}</value>\n        </IntervalReading>\n"
                    )
                body.append("      </IntervalBlock>\n")
                out.append(
                    _entry(_uid(block), [("self", block), ("up", f"{mr}/IntervalBlock")], "", "".join(body), when)
                )
        summary = f"{up}/ElectricPowerUsageSummary/1"
        out.append(
            _entry(
                _uid(summary),
                [("self", summary), ("up", f"{up}/ElectricPowerUsageSummary")],
                "Usage Summary",
                '      <ElectricPowerUsageSummary xmlns="http://naesb.org/espi">\n'
                "        <billingPeriod>\n          <duration>2592000</duration>\n"
                "          <start>1727740800</start>\n        </billingPeriod>\n"
                "        <billLastPeriod>9876000</billLastPeriod>\n        <currency>840</currency>\n"
                "        <overallConsumptionLastPeriod>\n          <powerOfTenMultiplier>0</powerOfTenMultiplier>\n"
                "          <uom>72</uom>\n          <value>512000</value>\n        </overallConsumptionLastPeriod>\n"
                "        <qualityOfReading>14</qualityOfReading>\n"
                "        <statusTimeStamp>1730419200</statusTimeStamp>\n"
                "      </ElectricPowerUsageSummary>\n",
                when,
            )
        )
    out.append("</feed>\n")
    return "".join(out).encode()


def hourly(start: datetime, hours: int, value=lambda i: 400 + (i % 24) * 25, **kw) -> list[Reading]:
    start = start.astimezone(UTC)  # real hours: 25 of them on the day clocks go back
    return [Reading(start + timedelta(hours=i), value(i), **kw) for i in range(hours)]


def daily(start: datetime, days: int, value=lambda i: 120 + i * 3) -> list[Reading]:
    start = start.astimezone(UTC)
    return [Reading(start + timedelta(days=i), value(i)) for i in range(days)]
