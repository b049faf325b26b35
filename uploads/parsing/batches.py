"""A CSV of readings checked in blocks of lines, with arrays instead of one object per row.

`read(parsed)` gives what iterating a ParsedFile gives, in the same order, except that each
run of valid readings comes as one ReadingBatch. The results are the row-by-row code's,
whatever the file:

- The bytes after the header are taken in blocks of whole lines (BLOCK_BYTES). A block is
  parsed with pyarrow's CSV reader only when nothing in it can read differently with the
  csv module: no quote, NUL byte, lone CR, byte-order mark, invalid UTF-8 or over-long
  line, every row as wide as the header. Any other block goes to CsvSource's own reader,
  line by line (it raises the same FileProblem at the same line).
- In a parsed block, a row is taken by the arrays only when they are certain of it: a meter
  that resolves, a value in plain decimal notation, a timestamp in one of the ISO shapes
  below, an hour of local time with one UTC offset (no clock change in it), a plausible
  time. Any other row (an error, a DST fold or gap, a cell with spaces …) goes through
  ParsedFile.record with the same state (fold memory, series checks, unit counts), so
  its errors, and the line numbers in them, are the row-by-row code's. A block with many
  such rows is read row by row as a whole.
- Series checks take a run of rows up to the first that repeats or goes back in time for its
  meter; that row goes through SeriesChecks.check itself.

Only CSV readings with a timestamp column and a value column, no unit, estimate or
Wattics electrical column, and no unit chosen for the file take this path; bills, Excel,
Green Button, and those files are read row by row.
"""

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from uploads.parsing import columns as c
from uploads.parsing.checks import from_us, to_us
from uploads.parsing.rows import BillRow, MeterInfo, ReadingRow, RowError
from uploads.parsing.source import MAX_LINE_BYTES, CsvSource, FileProblem
from uploads.parsing.values import EARLIEST, FUTURE_TOLERANCE

if TYPE_CHECKING:
    from uploads.parsing import ParsedFile

# About 45,000 rows of `meter,timestamp,value`: large enough that the per-block work is
# small beside the rows, small enough that a block read row by row costs little.
BLOCK_BYTES = 2 * 1024 * 1024
# What is read from the stream at a time: the buffer size of the gzip reader under
# CsvSource, so a gzip error surfaces after the same lines as when reading line by line.
PIECE_BYTES = 64 * 1024
# A block where more rows than this share need the row-by-row code is read row by row.
MAX_ROW_BY_ROW_SHARE = 0.1
# A run with more repeated or earlier instants than this checks its remaining rows one by one.
MAX_SPLITS = 32

_PLAIN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"  # values.parse_number's _NUMBER, ASCII, no spaces
_DECIMAL_COMMA = r"^[+-]?([0-9]+[.,]?[0-9]*|[.,][0-9]+)([eE][+-]?[0-9]+)?$"  # one separator, a point or a comma
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR
_NAIVE_EPOCH = datetime(1970, 1, 1)
_LAST_US_OF_HOUR = timedelta(hours=1) - timedelta(microseconds=1)
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class ReadingBatch:
    """Valid readings in file order: line, meter id, instant (µs since the Unix epoch, UTC), value."""

    line: np.ndarray  # int64
    meter_id: np.ndarray  # int64
    ts_us: np.ndarray  # int64
    value: np.ndarray  # float64
    meters: dict[int, MeterInfo]

    def __len__(self) -> int:
        return len(self.line)

    def row(self, i: int) -> ReadingRow:
        meter = self.meters[int(self.meter_id[i])]
        return ReadingRow(int(self.line[i]), meter, from_us(int(self.ts_us[i])), float(self.value[i]), None)


Item = ReadingBatch | ReadingRow | BillRow | RowError


def eligible(parsed: "ParsedFile") -> bool:
    post, layout = parsed.post, parsed.layout
    return (
        isinstance(parsed.source, CsvSource)
        and layout.kind == c.READINGS
        and not layout.electrical
        and layout.index(c.TS) is not None
        and layout.index(c.VALUE) is not None
        and post.unit_index is None
        and post.estimated_index is None
        and post.flow_index is None
        and not post.converter.default_unit
    )


def read(parsed: "ParsedFile") -> Iterator[Item]:
    if not eligible(parsed):
        yield from parsed
        return
    source = parsed.source
    feed = _Feed(source._stream)
    # CsvSource reads its lines from the feed: blocks and single lines come from one stream.
    source._stream = feed
    records = source.rows()
    if source._first_row is not None:  # a file without a header: its first line was read already
        line, cells = next(records)
        yield from parsed.record(line, cells)
    blocks = _Blocks(parsed)
    while block := feed.peek_block(BLOCK_BYTES):
        parsed_block = _parse(block, width=len(parsed.header), delimiter=source.delimiter)
        rows = None if parsed_block is None else blocks.check(parsed_block, source.line_no + 1)
        if parsed_block is None or rows is None:
            # Row by row, through CsvSource, to the end of the block (or of the record that spans it).
            end = feed.offset + len(block)
            for line, cells in records:
                yield from parsed.record(line, cells)
                if feed.offset >= end:
                    break
            continue
        feed.consume(len(block))
        source.line_no += parsed_block.line_count
        yield from rows
    # What is left: a last partial line before a read error (CsvSource raises it), or nothing.
    for line, cells in records:
        yield from parsed.record(line, cells)
    yield from parsed.unclosed_bills()


class _Feed:
    """The bytes after the header: peeked in blocks of whole lines, or read line by line (readline)."""

    def __init__(self, stream):
        self._read = getattr(stream, "read1", stream.read)
        self.buf = b""
        self.pos = 0
        self.offset = 0  # bytes consumed since the header
        self.eof = False
        self.error: FileProblem | None = None

    def _more(self) -> bytes:
        if self.eof:
            return b""
        try:
            piece = self._read(PIECE_BYTES)
        except FileProblem as exc:
            # Kept for the line that needs the bytes it stopped: the lines before it are read first.
            self.error, self.eof = exc, True
            return b""
        if not piece:
            self.eof = True
        return piece

    def readline(self, limit: int) -> bytes:
        while True:
            end = self.buf.find(b"\n", self.pos, self.pos + limit)
            if end >= 0:
                line = self.buf[self.pos : end + 1]
                break
            if len(self.buf) - self.pos >= limit:
                line = self.buf[self.pos : self.pos + limit]
                break
            piece = self._more()
            if not piece:
                if self.error is not None:
                    raise self.error
                line = self.buf[self.pos :]
                break
            self.buf, self.pos = self.buf[self.pos :] + piece, 0
        self.pos += len(line)
        self.offset += len(line)
        return line

    def peek_block(self, size: int) -> bytes:
        """The next whole lines, about `size` bytes (not consumed); b"" at the end."""
        pieces = [self.buf[self.pos :]]
        total = len(pieces[0])
        while total < size and (piece := self._more()):
            pieces.append(piece)
            total += len(piece)
        # On to the end of the line the block stops in (or past the longest line allowed).
        while b"\n" not in pieces[-1] and _tail(pieces) <= MAX_LINE_BYTES and (piece := self._more()):
            pieces.append(piece)
        self.buf, self.pos = b"".join(pieces), 0
        cut = self.buf.find(b"\n", size - 1) + 1 or self.buf.rfind(b"\n") + 1
        if self.eof and self.error is None and self.buf.find(b"\n", cut) < 0:
            cut = len(self.buf)  # the last line has no newline
        elif cut == 0 and not self.eof:
            cut = len(self.buf)  # a line too long: CsvSource reports it
        return self.buf[:cut]

    def consume(self, n: int) -> None:
        self.pos += n
        self.offset += n


def _tail(pieces: list[bytes]) -> int:
    """Bytes after the last newline."""
    n = 0
    for piece in reversed(pieces):
        i = piece.rfind(b"\n")
        if i >= 0:
            return n + len(piece) - i - 1
        n += len(piece)
    return n


@dataclass
class _Block:
    """A block parsed by pyarrow: its rows as strings, where each row's line is (index in the
    block), the rows of another width (pyarrow skips them: line index and cells, for the row
    reader), and how many lines the block has."""

    table: pa.Table
    line_index: np.ndarray
    odd: list[tuple[int, list[str]]]
    line_count: int


def _parse(block: bytes, *, width: int, delimiter: str) -> _Block | None:
    """The block parsed, or None when the csv module could read it differently from pyarrow."""
    if b"\x00" in block or block.startswith(codecs.BOM_UTF8):
        return None
    crs = block.count(b"\r")
    if crs and crs != block.count(b"\r\n"):
        return None  # pyarrow ends a line at a lone CR, CsvSource does not
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return None
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    newline = np.ones(len(ends), dtype=bool)
    if block[-1:] != b"\n":
        ends, newline = np.append(ends, len(block)), np.append(newline, False)
    starts = np.concatenate(([0], ends[:-1] + 1))
    if int((ends - starts + newline).max()) > MAX_LINE_BYTES:
        return None
    has_cr = np.zeros(len(ends), dtype=bool)
    filled = ends > starts
    has_cr[filled] = data[ends[filled] - 1] == 13
    ends = ends - has_cr
    line_index = np.flatnonzero(ends > starts)  # pyarrow skips empty lines, CsvSource blank rows
    quoted = b'"' in block
    if quoted and not _whole_fields_quoted(data, starts, ends, ord(delimiter)):
        return None
    skipped: list[int] = []

    def other_width(row) -> str:
        if row.number is None:
            return "error"
        skipped.append(row.number - 1)  # numbered among the non-empty lines, from 1
        return "skip"

    names = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char='"' if quoted else False,
                newlines_in_values=False,
                invalid_row_handler=other_width,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid:
        return None
    if table.num_rows + len(skipped) != len(line_index):
        return None
    odd = []
    for i in skipped:
        at = int(line_index[i])
        text = block[starts[at] : ends[at]].decode("utf-8")
        odd.append((at, next(csv.reader([text], delimiter=delimiter, strict=True))))
    kept = np.delete(line_index, skipped) if skipped else line_index
    return _Block(table, kept.astype(np.int64), odd, len(starts))


def _whole_fields_quoted(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, delimiter: int) -> bool:
    """Whether every quote opens or closes a whole field on one line ("a","b,c",d): read so,
    the csv module and pyarrow give the same cells. Any other quote (a doubled one, one inside
    a field, a field spanning lines) leaves the block to CsvSource."""
    at = np.flatnonzero(data == 34)
    if at.size % 2:
        return False
    line = np.searchsorted(starts, at, side="right") - 1
    opens, closes = at[0::2], at[1::2]
    if (line[0::2] != line[1::2]).any() or (closes >= ends[line[1::2]]).any():
        return False
    field_starts = (opens == starts[line[0::2]]) | (data[opens - 1] == delimiter)
    after = closes + 1
    field_ends = (after == ends[line[1::2]]) | (data[np.minimum(after, len(data) - 1)] == delimiter)
    return bool(field_starts.all() and field_ends.all())


class _Blocks:
    """Checks parsed blocks with arrays, keeping what stays the same from block to block."""

    def __init__(self, parsed: "ParsedFile"):
        self.parsed = parsed
        reader = parsed.reader
        self.ts_index = parsed.layout.index(c.TS)
        self.value_index = parsed.layout.index(c.VALUE)
        self.meter_index = parsed.layout.index(c.METER)
        self.earliest_us = to_us(EARLIEST)
        self.latest_us = to_us(reader.now + FUTURE_TOLERANCE)
        self._offsets: dict[tuple[ZoneInfo, int], int | None] = {}

    def check(self, block: _Block, first_line: int) -> Iterator[Item] | None:
        """The block's items, or None when it is better read row by row (nothing changed yet)."""
        table, n = block.table, block.table.num_rows
        cols = [table.column(i).combine_chunks() for i in range(table.num_columns)]
        meters, meter = self._meters(cols)
        ok = meter >= 0
        meter[~ok] = 0
        value, value_ok = self._values(cols[self.value_index])
        ok &= value_ok
        naive_us, offset_us, aware, ts_ok = _timestamps(cols[self.ts_index])
        ok &= ts_ok
        ts_us = self._utc(naive_us, offset_us, aware, ok, meter, meters)
        ok &= (ts_us >= self.earliest_us) & (ts_us <= self.latest_us)
        if (n - int(ok.sum()) + len(block.odd)) > MAX_ROW_BY_ROW_SHARE * (n + len(block.odd)):
            return None
        lines = first_line + block.line_index
        odd = [(first_line + at, cells) for at, cells in block.odd]
        return self._items(cols, lines, odd, ok, meters, meter, ts_us, value)

    def _meters(self, cols) -> tuple[list[MeterInfo], np.ndarray]:
        """The block's meters, and each row's index among them (-1: the row reader says why not)."""
        reader = self.parsed.reader
        n = len(cols[0])
        if reader.fixed_meter is not None:
            return [reader.fixed_meter], np.zeros(n, dtype=np.int64)
        encoded = cols[self.meter_index].dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        meters: list[MeterInfo] = []
        position: dict[int, int] = {}
        of_code = np.full(len(encoded.dictionary) + 1, -1, dtype=np.int64)
        for j, text in enumerate(encoded.dictionary.to_pylist()):
            key = text.strip()
            found = reader.resolve_meter(key) if key else None
            if isinstance(found, MeterInfo):
                if found.id not in position:
                    position[found.id] = len(meters)
                    meters.append(found)
                of_code[j] = position[found.id]
        return meters, of_code[codes]

    def _values(self, col) -> tuple[np.ndarray, np.ndarray]:
        """Each row's value, and whether it is one parse_number reads (plain decimal notation, finite)."""
        encoded = col.dictionary_encode()
        if len(encoded.dictionary) * 2 < len(col):  # many repeats: each distinct text read once
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            value, ok = self._distinct_values(encoded.dictionary)
            return value[codes], ok[codes]
        return self._distinct_values(col)

    def _distinct_values(self, col) -> tuple[np.ndarray, np.ndarray]:
        decimal_comma = self.parsed.reader.decimal_comma
        matched = pc.match_substring_regex(col, _DECIMAL_COMMA if decimal_comma else _PLAIN)
        text = pc.replace_substring(col, ",", ".") if decimal_comma else col
        value = pc.cast(pc.if_else(matched, text, "0"), pa.float64()).to_numpy(zero_copy_only=False)
        ok = matched.to_numpy(zero_copy_only=False) & np.isfinite(value)
        return value, ok

    def _utc(self, naive_us, offset_us, aware, ok, meter, meters: list[MeterInfo]) -> np.ndarray:
        """Instants in UTC: an offset written in the cell, UTC for naive times if the upload says so,
        else the meter's local time, only in hours with one UTC offset (no clock change in them)."""
        ts_us = naive_us - offset_us
        local = ok & ~aware
        if self.parsed.reader.naive_utc or not local.any():
            return ts_us
        # Far outside the plausible years: left to the row reader (and kept out of datetime's range).
        local &= (naive_us > self.earliest_us - 2 * _US_PER_DAY) & (naive_us < self.latest_us + 2 * _US_PER_DAY)
        ok &= aware | local
        zones = np.array([id(m.tz) for m in meters], dtype=np.int64)
        for tz in {id(m.tz): m.tz for m in meters}.values():
            rows = np.flatnonzero(local & (zones[meter] == id(tz)))
            if not rows.size:
                continue
            hours, where = np.unique(naive_us[rows] // _US_PER_HOUR, return_inverse=True)
            offsets = np.array([self._hour_offset(tz, int(h)) for h in hours], dtype=object)
            known = np.array([o is not None for o in offsets], dtype=bool)
            offset = np.array([o or 0 for o in offsets], dtype=np.int64)
            ts_us[rows] = naive_us[rows] - offset[where]
            ok[rows[~known[where]]] = False
        return ts_us

    def _hour_offset(self, tz: ZoneInfo, hour: int) -> int | None:
        """The UTC offset (µs) of every wall-clock time of this hour in tz, or None if the clocks
        change in it (a gap or a repeated time: the row reader handles those, and its fold memory).
        One offset at both ends of the hour, for either fold, means none: no zone changes its
        offset twice within an hour."""
        key = (tz, hour)
        if key not in self._offsets:
            if len(self._offsets) > 100_000:
                self._offsets.clear()
            start = _NAIVE_EPOCH + timedelta(hours=hour)
            found = {
                t.replace(tzinfo=tz, fold=f).utcoffset() for t in (start, start + _LAST_US_OF_HOUR) for f in (0, 1)
            }
            only = found.pop() if len(found) == 1 else None
            self._offsets[key] = None if only is None else only // _US
        return self._offsets[key]

    def _items(self, cols, lines, odd, ok, meters, meter, ts_us, value) -> Iterator[Item]:
        parsed = self.parsed
        for m in np.flatnonzero(np.bincount(meter[ok], minlength=len(meters))).tolist():
            # What ParsedFile.record notes for each valid reading (read when the warnings are written).
            parsed.intervals[meters[m].id] = meters[m].interval_minutes
        n = len(lines)
        ids = np.array([m.id for m in meters], dtype=np.int64)
        # The rows for the row reader, in file order: the table's it is not sure of (at their
        # index), and the rows of another width pyarrow skipped (before the table's next row).
        stops = [(int(np.searchsorted(lines, line)), 0, line, cells) for line, cells in odd]
        stops += [(i, 1, int(lines[i]), None) for i in np.flatnonzero(~ok).tolist()]
        stops.sort(key=lambda stop: (stop[0], stop[1]))
        start = 0
        for at, in_table, line, cells in [*stops, (n, 0, 0, None)]:
            if at > start:
                yield from self._run(start, at, lines, meters, ids, meter, ts_us, value)
                start = at
            if at == n and cells is None:
                break
            if in_table:
                cells = [col[at].as_py() for col in cols]
                start = at + 1
            if any(cell.strip() for cell in cells):  # CsvSource skips a blank row
                yield from parsed.record(line, cells)

    def _run(self, a, b, lines, meters, ids, meter, ts_us, value) -> Iterator[Item]:
        """Rows a..b-1, all valid readings: batches, split where an instant repeats or goes back."""
        checks = self.parsed.checks
        splits = 0
        while a < b:
            if splits < MAX_SPLITS:
                taken = checks.readings_run(
                    meters=meters, meter=meter[a:b], ts_us=ts_us[a:b], value=value[a:b], line=lines[a:b]
                )
            else:
                taken = 0
            if taken:
                yield ReadingBatch(
                    line=lines[a : a + taken],
                    meter_id=ids[meter[a : a + taken]],
                    ts_us=ts_us[a : a + taken],
                    value=value[a : a + taken],
                    meters={m.id: m for m in meters},
                )
                a += taken
            if a < b:
                row = ReadingRow(int(lines[a]), meters[meter[a]], from_us(int(ts_us[a])), float(value[a]), None)
                yield checks.check(row) or row
                a += 1
                splits += 1


# ISO 8601 shapes datetime.fromisoformat reads (what values.parse_naive_or_aware takes):
# D a digit, "?" the date-time separator (T or a space), "±" an offset's sign.
_SHAPES = [
    date + time + zone
    for date in ("DDDD-DD-DD",)
    for time in ("", "?DD:DD", "?DD:DD:DD")
    for zone in (("",) if not time else ("", "Z", "±DD:DD", "±DDDD"))
]


def _timestamps(col) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the wall-clock time (µs since the epoch, as if UTC), the offset written (µs),
    whether one was written, and whether the cell has one of the shapes above with valid fields.
    Each distinct text is read once (a file of many meters repeats each instant)."""
    encoded = col.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return tuple(x[codes] for x in _distinct_timestamps(encoded.dictionary))  # type: ignore[return-value]


def _distinct_timestamps(col) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(col)
    naive = np.zeros(n, dtype=np.int64)
    offset = np.zeros(n, dtype=np.int64)
    aware = np.zeros(n, dtype=bool)
    ok = np.zeros(n, dtype=bool)
    data_buffer = col.buffers()[2]
    if not n or data_buffer is None:
        return naive, offset, aware, ok
    bounds = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset : col.offset + n + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    lengths = np.diff(bounds)
    for shape, digit_at, literal_at, literal, choices in _SHAPE_PARTS:
        rows = np.flatnonzero(lengths == len(shape))
        if not rows.size:
            continue
        cells = data[bounds[rows][:, None] + np.arange(len(shape))]
        digits = cells[:, digit_at] - np.uint8(48)  # a byte below "0" wraps past 9
        good = (digits <= 9).all(axis=1) & (cells[:, literal_at] == literal).all(axis=1)
        for at, allowed in choices:
            good &= (cells[:, at] == allowed[0]) | (cells[:, at] == allowed[1])
        digits = digits.astype(np.int64)

        def number(first: int, width: int, digits=digits) -> np.ndarray:
            return digits[:, first : first + width] @ (10 ** np.arange(width - 1, -1, -1, dtype=np.int64))

        zero = np.zeros(rows.size, dtype=np.int64)
        year, month, day = number(0, 4), number(4, 2), number(6, 2)
        hour, minute = (number(8, 2), number(10, 2)) if len(digit_at) > 8 else (zero, zero)
        second = number(12, 2) if "?DD:DD:DD" in shape else zero
        good &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23) & (minute <= 59)
        good &= second <= 59
        month = np.clip(month, 1, 12)
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        good &= day <= _DAYS_IN_MONTH[month] + (leap & (month == 2))
        days = _days_from_civil(year, month, day)
        naive[rows] = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000
        if shape.endswith("Z"):
            aware[rows] = True
        elif "±" in shape:
            sign = np.where(cells[:, shape.index("±")] == ord("-"), -1, 1)
            zone_hours, zone_minutes = number(len(digit_at) - 4, 2), number(len(digit_at) - 2, 2)
            good &= (zone_hours <= 23) & (zone_minutes <= 59)
            offset[rows] = sign * (zone_hours * 60 + zone_minutes) * 60_000_000
            aware[rows] = True
        ok[rows] = good
    return naive, offset, aware, ok


def _shape_parts(shape: str):
    digit_at = [i for i, ch in enumerate(shape) if ch == "D"]
    literal_at = [i for i, ch in enumerate(shape) if ch not in "D?±"]
    literal = np.frombuffer("".join(shape[i] for i in literal_at).encode(), dtype=np.uint8)
    choices = [(i, {"?": b"T ", "±": b"+-"}[ch]) for i, ch in enumerate(shape) if ch in "?±"]
    return shape, digit_at, literal_at, literal, choices


_SHAPE_PARTS = [_shape_parts(shape) for shape in _SHAPES]
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
