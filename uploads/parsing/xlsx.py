"""Excel workbooks (.xlsx) read as the same records as a CSV file: header, then rows of text cells.

openpyxl's read-only mode streams the sheet's XML row by row. Before it opens
anything, the archive's directory is checked: an .xlsx is a zip, so a workbook
can be a zip bomb, and the shared-strings table (which openpyxl keeps in memory)
is capped on its own. Cells become the text a CSV export would hold: dates and
times in ISO 8601, numbers in plain decimal notation.
"""

import math
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import BinaryIO

from uploads.parsing.source import FileProblem, _looks_like_data, _mb, check_width, name_columns

# openpyxl keeps the shared strings of a workbook in memory: their XML is capped.
MAX_SHARED_STRINGS_BYTES = 32 * 1024 * 1024
# A deflated XML sheet compresses about 10-30 times; far beyond that is a bomb.
MAX_RATIO = 200
MAX_COLUMNS = 200


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")  # naive: read in the site's time zone, like a CSV
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, int):
        return str(value)
    return str(value)


def check_archive(raw: BinaryIO, *, max_decompressed_bytes: int) -> zipfile.ZipFile:
    """The archive, once its directory shows nothing that expands beyond the caps."""
    try:
        archive = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FileProblem(f"This Excel (.xlsx) file is damaged: it is not a readable zip archive ({exc}).") from exc
    names = set(archive.namelist())
    if "xl/workbook.xml" not in names:
        raise FileProblem(
            "This is a ZIP archive, not an Excel (.xlsx) workbook or a CSV file; "
            "upload the zip through the upload form, which unpacks it into one upload per file."
        )
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1024 * 1024:
            raise FileProblem(
                f"This Excel file expands more than {MAX_RATIO} times ({info.filename}): it was refused as a zip bomb."
            )
        if info.filename == "xl/sharedStrings.xml" and info.file_size > MAX_SHARED_STRINGS_BYTES:
            raise FileProblem(
                f"This Excel file's text table is larger than {_mb(MAX_SHARED_STRINGS_BYTES)}; "
                "save the sheet as CSV and upload that."
            )
    if total > max_decompressed_bytes:
        raise FileProblem(
            f"This Excel file decompresses to more than {_mb(max_decompressed_bytes)}; it was refused. "
            "Split it into smaller files."
        )
    return archive


def _row_parser_class():
    from openpyxl.worksheet._reader import ROW_TAG, SHEET_MAIN_NS, WorkSheetParser
    from openpyxl.xml.functions import iterparse  # defusedxml's when installed

    sheet_data = f"{{{SHEET_MAIN_NS}}}sheetData"

    class RowParser(WorkSheetParser):
        """openpyxl's sheet parser, rows only, each row dropped from the tree once read.

        openpyxl clears a parsed row but leaves the empty element in the tree (about 80 bytes a
        row, so a million-row sheet would hold 80 MB); this parser removes it. Relies on openpyxl's
        parse_row (pinned version)."""

        def parse(self):
            parent = None
            for event, element in iterparse(self.source, events=("start", "end")):
                if event == "start":
                    if element.tag == sheet_data:
                        parent = element
                    continue
                if element.tag == ROW_TAG:
                    row = self.parse_row(element)
                    element.clear()
                    if parent is not None:
                        parent.remove(element)
                    yield row

    return RowParser


def _RowParser(*args, **kwargs):  # noqa: N802 - a class, built on first use (openpyxl is imported lazily)
    return _row_parser_class()(*args, **kwargs)


class XlsxSource:
    """The records of one sheet of a workbook: header first, then `(row number, cells)` for each data row."""

    format = "xlsx"
    decimal_comma = False

    def __init__(self, raw: BinaryIO, *, max_decompressed_bytes: int, sheet: str = ""):
        import openpyxl  # imported here: only workbooks pay for it

        check_archive(raw, max_decompressed_bytes=max_decompressed_bytes)
        raw.seek(0)
        try:
            self.book = openpyxl.load_workbook(raw, read_only=True, data_only=True, keep_links=False)
        except Exception as exc:  # openpyxl raises many kinds for a broken workbook
            raise FileProblem(f"This Excel (.xlsx) file cannot be read ({type(exc).__name__}: {exc}).") from exc
        self.sheets = list(self.book.sheetnames)
        if not self.sheets:
            raise FileProblem("This Excel file has no sheets.")
        if sheet and sheet not in self.sheets:
            raise FileProblem(f"This Excel file has no sheet named {sheet!r} (its sheets: {', '.join(self.sheets)}).")
        # A Portfolio Manager export puts its meter entries on a sheet of that name, after others.
        default = next((s for s in self.sheets if s.strip().lower() == "meter entries"), self.sheets[0])
        self.sheet = sheet or default
        self._rows = self._iter_rows()
        first = None
        for number, cells in self._rows:
            if any(cell.strip() for cell in cells):
                first = (number, cells)
                break
        if first is None:
            raise FileProblem(f"The sheet {self.sheet!r} of this Excel file is empty.")
        number, cells = first
        while cells and not cells[-1].strip():
            cells = cells[:-1]
        check_width(cells)
        names = [cell.strip() for cell in cells]
        self.header = name_columns(names)
        self._first_row: tuple[int, list[str]] | None = None
        if _looks_like_data(names):
            self._first_row = (number, cells)
            self.header = [f"column_{i + 1}" for i in range(len(cells))]

    def _iter_rows(self) -> Iterator[tuple[int, list[str]]]:
        ws = self.book[self.sheet]
        try:
            with ws._get_source() as src:
                parser = _RowParser(
                    src,
                    ws._shared_strings,
                    data_only=True,
                    epoch=self.book.epoch,
                    date_formats=self.book._date_formats,
                    timedelta_formats=self.book._timedelta_formats,
                )
                for number, cells in parser.parse():
                    values = {c["column"]: c["value"] for c in cells if c["column"] <= MAX_COLUMNS}
                    width = max(values, default=0)
                    yield number, [_cell_text(values.get(col)) for col in range(1, width + 1)]
        except FileProblem:
            raise
        except Exception as exc:
            raise FileProblem(
                f"The sheet {self.sheet!r} of this Excel file is damaged ({type(exc).__name__}: {exc})."
            ) from exc

    @property
    def options(self) -> dict:
        return {"format": "xlsx", "sheet": self.sheet, "sheets": self.sheets[:20]}

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        if self._first_row is not None:
            yield self._first_row
        width = len(self.header)
        for number, cells in self._rows:
            # Sheets are padded to their widest row: empty trailing cells are not fields.
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]
            if any(cell.strip() for cell in cells):
                yield number, cells

    def close(self) -> None:
        self.book.close()
