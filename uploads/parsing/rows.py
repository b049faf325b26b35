"""One CSV record -> one parsed row, or the errors that make it unusable."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from uploads.parsing import columns as c
from uploads.parsing.values import (
    CellError,
    check_plausible,
    in_dst_gap,
    is_ambiguous,
    is_missing,
    parse_date,
    parse_naive_or_aware,
    parse_number,
)

# Report cells are cut to this length: the report is for people, not a copy of the file.
MAX_CELL_CHARS = 200


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """What parsing needs to know of a meter."""

    id: int
    label: str
    tz: ZoneInfo
    interval_minutes: int
    production: bool
    unit: str = "kWh"  # what the meter's readings are in; a file in another unit is converted to it


@dataclass(frozen=True, slots=True)
class ReadingRow:
    line: int
    meter: MeterInfo
    ts: datetime  # aware, UTC
    value: float
    extra: dict[str, float] | None


@dataclass(frozen=True, slots=True)
class BillRow:
    line: int
    meter: MeterInfo
    start_date: date
    end_date: date
    energy_kwh: float


@dataclass(frozen=True, slots=True)
class BillStart:
    """A row of the `start,value` bill layout: its period ends at the next row's start, so
    ParsedFile pairs it with that row. No energy: the row only ends the period before it."""

    line: int
    meter: MeterInfo
    start_date: date
    energy_kwh: float | None


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    value: str
    problem: str


MeterResolver = Callable[[str], "MeterInfo | str"]


class RowReader:
    """Turns records into rows. Keeps only what DST disambiguation needs between rows:
    the ambiguous wall-clock times seen so far (at most a few per year and meter)."""

    def __init__(
        self,
        header: list[str],
        layout: c.Layout,
        *,
        fixed_meter: MeterInfo | None,
        resolve_meter: MeterResolver,
        decimal_comma: bool,
        now: datetime | None = None,
        naive_utc: bool = False,
    ):
        self.header, self.layout = header, layout
        self.fixed_meter, self.resolve_meter = fixed_meter, resolve_meter
        self.decimal_comma = decimal_comma
        # Timestamps without an offset are UTC (the upload said so), not the site's local time.
        self.naive_utc = naive_utc
        self.now = now or datetime.now(UTC)
        self.idx = {role: layout.index(role) for role in c.ROLES}
        self._ambiguous: dict[tuple[int, datetime], int] = {}
        self.folds_resolved = 0
        self.first_fold: str = ""

    def _error(self, line: int, index: int | None, cells: list[str], problem: str) -> RowError:
        column = self.header[index] if index is not None and index < len(self.header) else ""
        value = cells[index] if index is not None and index < len(cells) else ""
        value = value[:MAX_CELL_CHARS]
        return RowError(line, column, value, f"{column or 'row'} {problem}" if column else problem)

    def _cell(self, cells: list[str], role: str) -> tuple[int | None, str]:
        i = self.idx.get(role)
        return i, (cells[i] if i is not None and i < len(cells) else "")

    def read(self, line: int, cells: list[str]) -> ReadingRow | BillRow | BillStart | list[RowError]:
        width = len(self.header)
        if len(cells) > width and any(x.strip() for x in cells[width:]):
            return [self._error(line, None, cells, f"Row has {len(cells)} fields; the header has {width}.")]
        if len(cells) < width and any(i >= len(cells) for i in self.layout.columns):
            return [self._error(line, None, cells, f"Row has {len(cells)} fields; the header has {width}.")]
        errors: list[RowError] = []
        meter = self._meter(line, cells, errors)
        if self.layout.kind == c.BILLS:
            return self._bill(line, cells, meter, errors)
        return self._reading(line, cells, meter, errors)

    def _meter(self, line: int, cells: list[str], errors: list[RowError]) -> MeterInfo | None:
        if self.fixed_meter is not None:
            return self.fixed_meter
        i, text = self._cell(cells, c.METER)
        if not text.strip():
            errors.append(self._error(line, i, cells, "is empty: which meter is this row for?"))
            return None
        found = self.resolve_meter(text.strip())
        if isinstance(found, str):
            errors.append(self._error(line, i, cells, found))
            return None
        return found

    def _number(self, line: int, cells: list[str], role: str, errors: list[RowError]) -> float | None:
        i, text = self._cell(cells, role)
        try:
            return parse_number(text, decimal_comma=self.decimal_comma)
        except CellError as exc:
            errors.append(self._error(line, i, cells, str(exc)))
            return None

    def _reading(self, line: int, cells: list[str], meter: MeterInfo | None, errors: list[RowError]):
        extra: dict[str, float] = {}
        for i, name in self.layout.electrical:
            if i < len(cells) and cells[i].strip():
                number = self._number(line, cells, name, errors)
                if number is not None:
                    extra[name] = number
        value = self._number(line, cells, c.VALUE, errors) if self.idx[c.VALUE] is not None else None
        if self.idx[c.VALUE] is None and not errors:
            power = [extra[k] for k in ("aP_1", "aP_2", "aP_3") if k in extra]
            if not power:
                errors.append(self._error(line, None, cells, "Row has no value and no aP_1..aP_3 power."))
            elif meter is not None:
                # No energy column: the energy of the interval from the active power (W -> kWh).
                value = sum(power) * meter.interval_minutes / 60 / 1000
        ts = self._timestamp(line, cells, meter, errors)
        if errors or meter is None or ts is None or value is None:
            return errors
        return ReadingRow(line, meter, ts, value, extra or None)

    def _timestamp(self, line: int, cells: list[str], meter: MeterInfo | None, errors: list[RowError]):
        if self.idx[c.TS] is not None:
            i, text = self._cell(cells, c.TS)
        else:
            i, day = self._cell(cells, c.DATE)
            _, clock = self._cell(cells, c.TIME)
            text = f"{day.strip()} {clock.strip()}".strip()
        try:
            parsed = parse_naive_or_aware(text)
            if parsed.tzinfo is None and self.naive_utc:
                parsed = parsed.replace(tzinfo=UTC)
            elif parsed.tzinfo is None:
                if meter is None:
                    return None
                parsed = self._localise(parsed, meter)
            ts = parsed.astimezone(UTC)
            check_plausible(ts, now=self.now)
        except CellError as exc:
            errors.append(self._error(line, i, cells, str(exc)))
            return None
        return ts

    def _localise(self, naive: datetime, meter: MeterInfo) -> datetime:
        tz = meter.tz
        if in_dst_gap(naive, tz):
            raise CellError(f"{naive:%Y-%m-%d %H:%M} does not exist in {tz.key} (DST gap)")
        fold = 0
        if is_ambiguous(naive, tz):
            key = (meter.id, naive)
            seen = self._ambiguous.get(key, 0)
            self._ambiguous[key] = seen + 1
            if seen:
                # The second occurrence of a repeated wall-clock time is the later one.
                fold = 1
                self.folds_resolved += 1
                self.first_fold = self.first_fold or f"{naive:%Y-%m-%d %H:%M} ({tz.key})"
        return naive.replace(tzinfo=tz, fold=fold)

    def _bill_start(self, line: int, cells: list[str], meter: MeterInfo | None, errors: list[RowError]):
        i, text = self._cell(cells, c.START_DATE)
        try:
            start = parse_date(text)
            check_plausible(datetime.combine(start, datetime.min.time(), UTC), now=self.now)
        except CellError as exc:
            errors.append(self._error(line, i, cells, str(exc)))
            start = None
        _, value = self._cell(cells, c.VALUE)
        # An empty or nan value ends the period before it and opens none: the end marker.
        energy = None if is_missing(value) else self._number(line, cells, c.VALUE, errors)
        if errors or meter is None or start is None:
            return errors
        return BillStart(line, meter, start, energy)

    def _bill(self, line: int, cells: list[str], meter: MeterInfo | None, errors: list[RowError]):
        if self.layout.end_from_next:
            return self._bill_start(line, cells, meter, errors)
        dates = {}
        for role in (c.START_DATE, c.END_DATE):
            i, text = self._cell(cells, role)
            try:
                dates[role] = parse_date(text)
            except CellError as exc:
                errors.append(self._error(line, i, cells, str(exc)))
        energy = self._number(line, cells, c.VALUE, errors)
        if len(dates) == 2 and dates[c.END_DATE] <= dates[c.START_DATE]:
            i = self.idx[c.END_DATE]
            errors.append(self._error(line, i, cells, "is not after the start date"))
        if len(dates) == 2 and not errors:
            try:
                start = datetime.combine(dates[c.START_DATE], datetime.min.time(), UTC)
                check_plausible(start, now=self.now)
            except CellError as exc:
                errors.append(self._error(line, self.idx[c.START_DATE], cells, str(exc)))
        if errors or meter is None or energy is None:
            return errors
        return BillRow(line, meter, dates[c.START_DATE], dates[c.END_DATE], energy)
