"""Streaming parser of operators' CSV exports: readings, Wattics electrical columns, bills.

    parsed = ParsedFile(fileobj, column_mapping=None, fixed_meter=info, resolve_meter=lookup)
    for row in parsed:        # ReadingRow | BillRow | RowError, one at a time
        ...
    parsed.warnings()         # findings that are not row errors

Opening raises FileProblem (the file as a whole is unusable) or MappingNeeded
(the columns are not recognised); both carry a sentence for the user.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from uploads.parsing import formats_rows, portfolio
from uploads.parsing.checks import SeriesChecks
from uploads.parsing.columns import (
    BILLS,
    ELECTRICAL,
    READINGS,
    ROLES,
    Layout,
    MappingNeeded,
    detect,
    duplicate_header_problem,
    layout,
)
from uploads.parsing.formats import open_source
from uploads.parsing.rows import BillRow, MeterInfo, MeterResolver, ReadingRow, RowError, RowReader
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
        )
        self.checks = SeriesChecks()
        self.intervals: dict[int, int] = {}

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
            result = self.reader.read(line, cells)
            if isinstance(result, list):
                yield from result
                continue
            result = self.post.adjust(result, line, cells)
            if isinstance(result, RowError):
                yield result
                continue
            self.intervals[result.meter.id] = result.meter.interval_minutes
            yield self.checks.check(result) or result

    def warnings(self) -> list[dict]:
        found = self.checks.warnings(interval_of=self.intervals) + self.post.warnings()
        if self.reader.folds_resolved:
            n = self.reader.folds_resolved
            found.append(
                {
                    "code": "dst_fold",
                    "count": n,
                    "message": f"{n} rows fall in the repeated hour when clocks go back; the second occurrence "
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
