"""Cell values: numbers and timestamps. Each parser returns a value or raises CellError."""

import math
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
# Readings a little ahead of the server clock are tolerated (meters' clocks drift).
FUTURE_TOLERANCE = timedelta(days=1)

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NOT_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
# Only with a decimal comma after them: a lone 1.234 stays one point two three four.
_GROUPED_DECIMAL_COMMA = re.compile(r"[+-]?\d{1,3}(\.\d{3})+,\d+")
_SLASHED_ISO = re.compile(r"(\d{4})/(\d{2})/(\d{2})")
# 31.01.2024: dotted dates with a four-digit year are day-first wherever they are written
# (European meter and billing exports, the ones with semicolons and decimal commas).
_DOTTED_DMY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?=$|[ T])")


def _iso_date_prefix(s: str) -> str:
    """2024/01/31 and 31.01.2024 (with or without a time after them) rewritten as 2024-01-31."""
    if "/" in s:  # the regexes only rewrite a leading date; skip them for the common case
        return _SLASHED_ISO.sub(r"\1-\2-\3", s, count=1)
    if "." in s[:10]:
        m = _DOTTED_DMY.match(s)
        if m:
            return f"{m[3]}-{int(m[2]):02d}-{int(m[1]):02d}{s[m.end() :]}"
    return s


class CellError(ValueError):
    """A cell that cannot be used; the message says why, for the error report."""


def parse_number(text: str, *, decimal_comma: bool = False) -> float:
    """A finite float. Only plain decimal notation: no NaN, inf, '1_000', formulas."""
    s = text.strip()
    if not s:
        raise CellError("is empty")
    if s.lower() in _NOT_FINITE:
        raise CellError("is not a finite number")
    if decimal_comma:
        if _GROUPED_DECIMAL_COMMA.fullmatch(s):  # 1.234,5: dots group the thousands, the comma is the point
            s = s.replace(".", "")
        s = s.replace(",", ".")
    if not _NUMBER.fullmatch(s):
        raise CellError("is not a number")
    value = float(s)
    if not math.isfinite(value):
        raise CellError("is not a finite number")
    return value


def is_missing(text: str) -> bool:
    """An empty cell or a NaN: how analytics exports write 'no value here'."""
    s = text.strip().lower()
    return not s or s in ("nan", "+nan", "-nan", "na", "n/a", "null", "none")


def parse_naive_or_aware(text: str) -> datetime:
    """ISO 8601 with or without offset, 'T' or a space, seconds optional; a plain date is midnight."""
    s = text.strip()
    if not s:
        raise CellError("is empty")
    try:
        return datetime.fromisoformat(_iso_date_prefix(s))
    except ValueError:
        raise CellError(
            "is not a date and time (expected ISO 8601, e.g. 2024-01-31T13:45:00+00:00, or 31.01.2024 13:45)"
        ) from None


def parse_date(text: str) -> date:
    s = text.strip()
    if not s:
        raise CellError("is empty")
    try:
        return date.fromisoformat(_iso_date_prefix(s))
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(_iso_date_prefix(s)).date()
    except ValueError:
        raise CellError("is not a date (expected YYYY-MM-DD or DD.MM.YYYY)") from None


def _wall(dt: datetime) -> datetime:
    return dt.replace(tzinfo=None, fold=0)


def in_dst_gap(naive: datetime, tz: ZoneInfo) -> bool:
    """True if this wall-clock time never happened in tz (clocks jumped over it)."""
    local = naive.replace(tzinfo=tz)
    return _wall(local.astimezone(UTC).astimezone(tz)) != _wall(naive)


def is_ambiguous(naive: datetime, tz: ZoneInfo) -> bool:
    """True if this wall-clock time happened twice in tz (clocks went back over it)."""
    return naive.replace(tzinfo=tz, fold=0).utcoffset() != naive.replace(tzinfo=tz, fold=1).utcoffset()


def check_plausible(ts: datetime, *, now: datetime) -> None:
    if ts < EARLIEST:
        raise CellError(f"is before {EARLIEST.year}: not a plausible reading time")
    if ts > now + FUTURE_TOLERANCE:
        raise CellError("is more than a day in the future")
