"""Reading an uploaded file as CSV records, one at a time.

The file is never loaded whole: bytes are read line by line (each line capped),
gzip is decompressed as a stream (the total capped, so a gzip bomb is refused),
and every line is decoded on its own so an undecodable byte is reported with
its line number.
"""

import codecs
import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from typing import BinaryIO

# A real CSV line is short; a longer one is a binary file or a missing newline.
MAX_LINE_BYTES = 64 * 1024
# Large enough for any real field, small enough that an unclosed quote cannot
# swallow the rest of a big file into memory.
csv.field_size_limit(MAX_LINE_BYTES)

# A header of 32,000 commas must not become a 32,000-field mapping page.
DEFAULT_MAX_COLUMNS = 200

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def _default_max_columns() -> int:
    """UPLOAD_MAX_COLUMNS when Django is configured (this module imports nothing of the portal)."""
    try:
        from django.conf import settings

        return int(getattr(settings, "UPLOAD_MAX_COLUMNS", DEFAULT_MAX_COLUMNS))
    except Exception:  # noqa: BLE001 - no Django settings: the parser used on its own
        return DEFAULT_MAX_COLUMNS


class FileProblem(Exception):
    """The file as a whole cannot be read. The message is a sentence for the user."""


def check_width(cells: list[str], max_columns: int | None = None) -> None:
    """Refuse a header wider than UPLOAD_MAX_COLUMNS, in words the user can act on."""
    cap = max_columns if max_columns is not None else _default_max_columns()
    if len(cells) > cap:
        raise FileProblem(
            f"The header has {len(cells):,} columns; at most {cap:,} are accepted. "
            "Keep the timestamp, value and meter columns and try again."
        )


def name_columns(names: list[str]) -> list[str]:
    """An empty column name is named by its position, as in a file without a header, so
    the mapping step can still offer it (two empty names would be one mapping key)."""
    return [name or f"column_{i + 1}" for i, name in enumerate(names)]


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


class _CappedReader(io.RawIOBase):
    """Counts decompressed bytes and refuses to go past the cap."""

    def __init__(self, inner: BinaryIO, cap: int):
        self.inner, self.cap, self.total = inner, cap, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.inner.read(len(buffer))
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
            raise FileProblem(f"The gzip file is corrupt or truncated ({exc}).") from exc
        self.total += len(data)
        if self.total > self.cap:
            raise FileProblem(
                f"The gzip file decompresses to more than {_mb(self.cap)}; it was refused. Split it into smaller files."
            )
        buffer[: len(data)] = data
        return len(data)


def _sniff_encoding_problem(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "The file is encoded as UTF-16; save it as CSV UTF-8 and upload it again."
    if head.startswith(b"PK\x03\x04"):
        return "This is a ZIP or Excel (.xlsx) file, not a CSV; export the sheet as CSV and upload that."
    if head.startswith(b"%PDF"):
        return "This is a PDF, not a CSV file."
    return None


_DATA_CELL = re.compile(r"^\s*(\d{4}[-/]\d{2}[-/]\d{2}([ T].*)?|[-+]?\d+([.,]\d+)?)\s*$")


def _looks_like_data(cells: list[str]) -> bool:
    """A first line whose every non-empty cell is a date or a number is data, not a header."""
    filled = [cell for cell in cells if cell.strip()]
    return bool(filled) and all(_DATA_CELL.match(cell) for cell in filled)


class CsvSource:
    """The records of a CSV file: header first, then `(line number, cells)` for each data row.

    Detects gzip (magic bytes), a UTF-8 BOM and the delimiter (from the header line).
    Raises FileProblem for whatever makes the file as a whole unreadable.
    """

    def __init__(self, raw: BinaryIO, *, max_decompressed_bytes: int, max_columns: int | None = None):
        head = raw.read(4)
        raw.seek(0)
        self.compression = ""
        stream: BinaryIO = raw
        if head.startswith(b"\x1f\x8b"):
            self.compression = "gzip"
            capped = _CappedReader(gzip.GzipFile(fileobj=raw, mode="rb"), max_decompressed_bytes)
            stream = io.BufferedReader(capped, buffer_size=64 * 1024)
            head = stream.peek(4)[:4]
        problem = _sniff_encoding_problem(head)
        if problem:
            raise FileProblem(problem)
        self._stream = stream
        self.encoding = "utf-8"
        self.line_no = 0
        first = self._next_line()
        while first is not None and not first.strip():
            first = self._next_line()
        if first is None:
            raise FileProblem("The file is empty.")
        if first.startswith("\ufeff"):
            self.encoding = "utf-8-sig"
            first = first[1:]
        counts = {d: first.count(d) for d in DELIMITERS}
        self.delimiter = max(DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
        try:
            cells = next(csv.reader([first], delimiter=self.delimiter))
        except csv.Error as exc:
            raise FileProblem(f"The header (line {self.line_no}) is not valid CSV: {exc}.") from exc
        check_width(cells, max_columns)
        names = [cell.strip() for cell in cells]
        self.header = name_columns(names)
        # A file without a header starts with data: its columns are named by position
        # (the mapping step asks what they hold) and its first line stays a data row.
        self._first_row: tuple[int, list[str]] | None = None
        if _looks_like_data(names):
            self._first_row = (self.line_no, cells)
            self.header = [f"column_{i + 1}" for i in range(len(cells))]
        self._reader = csv.reader(self._lines(), delimiter=self.delimiter, strict=True)

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES[self.delimiter]

    def _next_line(self) -> str | None:
        data = self._stream.readline(MAX_LINE_BYTES + 1)
        if not data:
            return None
        self.line_no += 1
        if len(data) > MAX_LINE_BYTES:
            raise FileProblem(
                f"Line {self.line_no} is longer than {MAX_LINE_BYTES // 1024} KB: "
                "this is not a CSV file of readings (or its lines are not separated by newlines)."
            )
        if b"\x00" in data:
            raise FileProblem(
                f"Line {self.line_no} contains binary data (a NUL byte): this is not a text CSV file "
                "(if it is UTF-16, save it as CSV UTF-8)."
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = data[exc.start : exc.start + 1].hex()
            raise FileProblem(
                f"Line {self.line_no} is not valid UTF-8 (byte 0x{byte} at position {exc.start + 1}). "
                "Save the file as CSV UTF-8 and upload it again."
            ) from exc

    def _lines(self) -> Iterator[str]:
        while (line := self._next_line()) is not None:
            yield line

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Data rows with the line number where each ends; blank rows are skipped."""
        if self._first_row is not None:
            yield self._first_row
        while True:
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileProblem(f"Line {self.line_no} is not valid CSV ({exc}); look for an unclosed quote.") from exc
            if any(cell.strip() for cell in cells):
                yield self.line_no, cells
