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
from uploads.parsing.rows import BillRow, MeterInfo, MeterResolver, ReadingRow, RowError, RowReader
from uploads.parsing.source import CsvSource, FileProblem

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
    ):
        self.source = CsvSource(raw, max_decompressed_bytes=max_decompressed_bytes)
        self.header = self.source.header
        problem = duplicate_header_problem(self.header)
        if problem:
            raise FileProblem(problem)
        self.mapping = dict(column_mapping) if column_mapping else detect(self.header)
        # layout() raises MappingNeeded; the header is known by then, for the mapping page.
        self.layout: Layout = layout(self.header, self.mapping, needs_meter=fixed_meter is None)
        # A decimal comma only makes sense when the comma does not separate fields.
        self.decimal_comma = self.source.delimiter == ";"
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
        return {
            "delimiter": self.source.delimiter_name,
            "encoding": self.source.encoding,
            "compression": self.source.compression,
            "decimal_comma": self.decimal_comma,
            "kind": self.layout.kind,
        }

    def __iter__(self) -> Iterator[ReadingRow | BillRow | RowError]:
        for line, cells in self.source.rows():
            result = self.reader.read(line, cells)
            if isinstance(result, list):
                yield from result
                continue
            self.intervals[result.meter.id] = result.meter.interval_minutes
            yield self.checks.check(result) or result

    def warnings(self) -> list[dict]:
        found = self.checks.warnings(interval_of=self.intervals)
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


def sample_rows(raw: BinaryIO, *, max_decompressed_bytes: int, count: int = 5) -> tuple[list[str], list[list[str]]]:
    """The header and first rows as text, for the mapping page."""
    source = CsvSource(raw, max_decompressed_bytes=max_decompressed_bytes)
    rows = []
    for _, cells in source.rows():
        rows.append([cell[:100] for cell in cells])
        if len(rows) >= count:
            break
    return source.header, rows
