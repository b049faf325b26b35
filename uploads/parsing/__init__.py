"""Streaming parser of operators' CSV exports: readings, Wattics electrical columns, bills.

    parsed = ParsedFile(fileobj, column_mapping=None, fixed_meter=info, resolve_meter=lookup)
    for row in parsed:        # ReadingRow | BillRow | RowError, one at a time
        ...
    parsed.warnings()         # findings that are not row errors

Opening raises FileProblem (the file as a whole is unusable) or MappingNeeded
(the columns are not recognised); both carry a sentence for the user.
"""

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from uploads.parsing import batches, formats_rows, portfolio
from uploads.parsing.batches import ReadingBatch
from uploads.parsing.checks import SeriesChecks
from uploads.parsing.columns import (
    BILLS,
    ELECTRICAL,
    READINGS,
    ROLES,
    Layout,
    MappingNeeded,
    as_bills,
    detect,
    duplicate_header_problem,
    layout,
)
from uploads.parsing.formats import open_source
from uploads.parsing.rows import BillRow, BillStart, MeterInfo, MeterResolver, ReadingRow, RowError, RowReader
from uploads.parsing.source import FileProblem

__all__ = [
    "BILLS",
    "ELECTRICAL",
    "READINGS",
    "ROLES",
    "BillRow",
    "FileProblem",
    "Layout",
    "MappingNeeded",
    "MeterInfo",
    "ParsedFile",
    "ReadingBatch",
    "ReadingRow",
    "RowError",
]


class ParsedFile:
    def __init__(
        self,
        raw: BinaryIO,
        *,
        column_mapping: dict[str, str] | None,
        fixed_meter: MeterInfo | None,
        resolve_meter: MeterResolver,
        max_decompressed_bytes: int,
        now: datetime | None = None,
        sheet: str = "",
        unit: str = "",
        naive_utc: bool = False,
        expect_bills: bool = False,
    ):
        # CSV (maybe gzip), an Excel sheet or Green Button XML: the same records either way.
        self.source = open_source(raw, max_decompressed_bytes=max_decompressed_bytes, sheet=sheet)
        self.header = self.source.header
        problem = duplicate_header_problem(self.header)
        if problem:
            raise FileProblem(problem)
        self.mapping = dict(column_mapping) if column_mapping else portfolio.adjust(self.header, detect(self.header))
        self.post = formats_rows.RowAdjuster(self.source, self.header, unit=unit)
        fixed_meter = self.post.check_fixed_meter(fixed_meter)
        if expect_bills and not column_mapping:
            # A billing meter's `start,value` file is bills ending at the next row, not readings.
            self.mapping = as_bills(self.mapping)
        # layout() raises MappingNeeded; the header is known by then, for the mapping page.
        self.layout: Layout = layout(self.header, self.mapping, needs_meter=fixed_meter is None)
        self.post.set_layout(self.layout)
        # A decimal comma only makes sense when the comma does not separate fields.
        self.decimal_comma = getattr(self.source, "delimiter", ",") == ";"
        self.reader = RowReader(
            self.header,
            self.layout,
            fixed_meter=fixed_meter,
            resolve_meter=resolve_meter,
            decimal_comma=self.decimal_comma,
            now=now,
            naive_utc=naive_utc,
        )
        self.checks = SeriesChecks()
        self.intervals: dict[int, int] = {}
        # `start,value` bills: per meter, the row whose period the next row's start ends.
        self._open_bills: dict[int, BillStart] = {}

    @property
    def options(self) -> dict:
        if getattr(self.source, "format", "csv") != "csv":
            return self.source.options | {"kind": self.layout.kind, "decimal_comma": False}
        return {
            "delimiter": self.source.delimiter_name,
            "encoding": self.source.encoding,
            "compression": self.source.compression,
            "decimal_comma": self.decimal_comma,
            "kind": self.layout.kind,
            "bill_end": "next_start" if self.layout.end_from_next else "",
        }

    @property
    def foreign_meter_ids(self) -> bool:
        """The meter column holds another system's ids (Green Button, Portfolio Manager): mapped once, remembered."""
        return getattr(self.source, "format", "csv") == "greenbutton" or portfolio.is_portfolio_manager(self.header)

    def conversions(self) -> list[dict]:
        """The unit conversions made: meter, from, to, factor, assumption, rows."""
        return self.post.converter.summary()

    def __iter__(self) -> Iterator[ReadingRow | BillRow | RowError]:
        for line, cells in self.source.rows():
            yield from self.record(line, cells)
        yield from self.unclosed_bills()

    def batches(self) -> Iterator[ReadingBatch | ReadingRow | BillRow | RowError]:
        """What iterating gives, in the same order, with runs of valid readings of a CSV as arrays."""
        yield from batches.read(self)

    def record(self, line: int, cells: list[str]) -> Iterator[ReadingRow | BillRow | RowError]:
        """One CSV record through the reader, the unit adjustments and the series checks."""
        result = self.reader.read(line, cells)
        if isinstance(result, list):
            yield from result
            return
        if isinstance(result, BillStart) and result.energy_kwh is None:
            # An end marker: it closes the period before it and holds no energy to convert.
            yield from self._close_bill(result)
            return
        adjusted = self.post.adjust(result, line, cells)
        if isinstance(adjusted, RowError):
            if isinstance(result, BillStart):
                # Its date still ends the period before it; its own energy is unusable.
                yield from self._close_bill(dataclasses.replace(result, energy_kwh=None))
            yield adjusted
            return
        result = adjusted
        if isinstance(result, BillStart):
            yield from self._close_bill(result)
            return
        self.intervals[result.meter.id] = result.meter.interval_minutes
        yield self.checks.check(result) or result

    def unclosed_bills(self) -> Iterator[RowError]:
        for start in self._open_bills.values():
            yield RowError(
                start.line,
                "",
                start.start_date.isoformat(),
                "This period has no end: with “end = next row's start”, the file ends with a row holding "
                "the last end date and an empty (or nan) value.",
            )

    def _close_bill(self, row: BillStart) -> Iterator[BillRow | RowError]:
        """The row's start ends the meter's open period; the row opens the next one (if it has a value)."""
        before = self._open_bills.pop(row.meter.id, None)
        if before is not None:
            if row.start_date <= before.start_date:
                yield RowError(
                    before.line,
                    "",
                    before.start_date.isoformat(),
                    f"This period ends where line {row.line} starts ({row.start_date}), which is not after its start.",
                )
            else:
                bill = BillRow(before.line, before.meter, before.start_date, row.start_date, before.energy_kwh)
                self.intervals[bill.meter.id] = bill.meter.interval_minutes
                yield self.checks.check(bill) or bill
        if row.energy_kwh is not None:
            self._open_bills[row.meter.id] = row

    def warnings(self) -> list[dict]:
        found = self.checks.warnings(interval_of=self.intervals) + self.post.warnings()
        if self.reader.folds_resolved:
            n = self.reader.folds_resolved
            found.append(
                {
                    "code": "dst_fold",
                    "count": n,
                    "message": f"{n:,} rows fall in the repeated hour when clocks go back; the second occurrence "
                    f"of each time was taken as the later one (first: {self.reader.first_fold}).",
                    "meter": "",
                }
            )
        return found


def sample_rows(
    raw: BinaryIO, *, max_decompressed_bytes: int, count: int = 5, sheet: str = ""
) -> tuple[list[str], list[list[str]]]:
    """The header and first rows as text, for the mapping page."""
    source = open_source(raw, max_decompressed_bytes=max_decompressed_bytes, sheet=sheet)
    rows = []
    for _, cells in source.rows():
        rows.append([cell[:100] for cell in cells])
        if len(rows) >= count:
            break
    return source.header, rows
