"""ENERGY STAR Portfolio Manager "Meter Entries" exports, read as bills.

An export names each meter twice: "Meter Name" (chosen by whoever set the property up,
often "Electric Grid Meter" on every property) and "Portfolio Manager Meter ID" (a
number unique in Portfolio Manager). The id is the one to map, once, to a meter of
the portal. Columns: Start Date, End Date, Usage/Quantity, Usage Units, and
optionally Cost ($), Estimation ("Yes"/"No"), Delivery Date (delivered fuels).
"""

from uploads.parsing.columns import METER, normalise

PM_METER_ID = "portfolio_manager_meter_id"


def is_portfolio_manager(header: list[str]) -> bool:
    names = {normalise(h) for h in header}
    return PM_METER_ID in names and "usage_quantity" in names


def adjust(header: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """A detected mapping with the meter role on the Portfolio Manager Meter ID column."""
    if not is_portfolio_manager(header):
        return mapping
    column = next(h for h in header if normalise(h) == PM_METER_ID)
    adjusted = {name: role for name, role in mapping.items() if role != METER}
    adjusted[column] = METER
    return adjusted
