"""Bill files as operators export them, for the bill tests."""

from datetime import date, timedelta

# Meter read days of a gas utility: about monthly, never exactly (27 to 34 days apart).
READ_GAPS = [31, 29, 33, 30, 28, 32, 31, 30, 34, 29, 31, 30, 32, 29, 31, 30, 33, 28, 31, 30, 32, 29, 31, 30, 27]


def read_days(first: date = date(2022, 1, 6)) -> list[date]:
    days = [first]
    for gap in READ_GAPS:
        days.append(days[-1] + timedelta(days=gap))
    return days


def therms_to_kwh(therms: float) -> float:
    return round(therms * 29.3071, 3)


def gas_billing_export() -> tuple[str, list[tuple[date, date, float]]]:
    """A monthly gas billing export in the analytics layout `start,value`: one row per meter
    read (UTC timestamps as pandas writes them), each period ending at the next read, and a
    last row whose value is `nan`: the end of the last period. 26 rows, 25 bills.

    Returns the CSV text and the bills it holds as (start, end, kWh)."""
    days = read_days()
    # Winter peaks, summer lows, like a gas-heated house.
    therms = [112.4, 98.7, 80.2, 55.9, 31.3, 18.6, 14.2, 13.8, 17.5, 38.9, 71.4, 104.6, 118.0,
              101.2, 77.6, 51.0, 29.8, 17.1, 13.4, 14.9, 19.2, 41.7, 76.3, 109.9, 121.5]  # fmt: skip
    lines = ["start,value"]
    bills = []
    for i, day in enumerate(days[:-1]):
        kwh = therms_to_kwh(therms[i])
        lines.append(f"{day.isoformat()} 06:00:00+00:00,{kwh}")
        bills.append((day, days[i + 1], kwh))
    lines.append(f"{days[-1].isoformat()} 06:00:00+00:00,nan")
    return "\n".join(lines) + "\n", bills
