"""Builders of the other formats' test files: Excel workbooks, Portfolio Manager exports, zips."""

import io
import zipfile
from datetime import datetime

from openpyxl import Workbook

# The columns of a Portfolio Manager "Meter Entries" export, in its order.
PM_HEADER = ["Property Name", "Portfolio Manager ID", "Meter Name", "Portfolio Manager Meter ID", "Meter Type",
             "Meter Consumption ID", "Start Date", "End Date", "Delivery Date", "Usage/Quantity", "Usage Units",
             "Cost ($)", "Estimation", "Last Modified Date", "Last Modified By"]  # fmt: skip


def xlsx(sheets: dict[str, list[list]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def pm_row(meter_id: int, meter_type: str, start, end, usage, units: str, cost, estimated: bool, n: int) -> list:
    return ["Brooklyn Depot", 5550001, f"{meter_type} Meter", meter_id, meter_type, 90000000 + n,
            start, end, "Not Available", usage, units, cost, "Yes" if estimated else "No",
            datetime(2024, 7, 2, 14, 5), "facilities@example.com"]  # fmt: skip


def portfolio_manager_export() -> bytes:
    """Six months of electricity (kWh) and gas (therms) for one property, as Portfolio Manager exports them:
    a first sheet of property information, then the "Meter Entries" sheet."""
    months = [(datetime(2024, m, 1), datetime(2024, m + 1, 1)) for m in range(1, 7)]
    rows = [PM_HEADER]
    n = 0
    for i, (start, nxt) in enumerate(months):
        end = datetime.fromordinal(nxt.toordinal() - 1)  # Portfolio Manager's end date is the last day
        n += 1
        rows.append(pm_row(7700101, "Electric - Grid", start, end, 12000 + 100 * i, "kWh (thousand Watt-hours)",
                           1800.5 + i, False, n))  # fmt: skip
        n += 1
        rows.append(pm_row(7700102, "Natural Gas", start, end, 900 - 50 * i, "therms", 950.0, i == 2, n))
    info = [["Property Name", "Portfolio Manager ID", "Address 1", "City", "State/Province", "Postal Code"],
            ["Brooklyn Depot", 5550001, "1 Depot Rd", "Brooklyn", "NY", "11201"]]  # fmt: skip
    return xlsx({"Properties": info, "Meter Entries": rows})


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 7, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()
