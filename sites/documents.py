"""Asset documents for WattCarbon (e.g. a demand-response asset's events): their CSV
formats, as data, and the check a file passes before it is stored and uploaded.

Demand-response events (WattCarbon's `demand_response_events` document): columns
`Event Start Time`, `Event End Time`, each a local time with its UTC offset, as in
`2021-01-01 17:00:00-05:00`. An offset is required: a naive time is ambiguous at a
DST change, and WattCarbon's example always carries one.
"""

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime

from sites.methodologies import DOCUMENT_DR_EVENTS

MAX_DOCUMENT_BYTES = 1024 * 1024  # events are a few rows a day at most
MAX_ROW_ERRORS = 10
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)$")


@dataclass(frozen=True)
class DocumentFormat:
    document_type: str  # WattCarbon's document type
    label: str
    columns: tuple[str, str]  # start, end
    example: str


DOCUMENT_FORMATS: dict[str, DocumentFormat] = {
    f.document_type: f
    for f in (
        DocumentFormat(
            DOCUMENT_DR_EVENTS,
            "Demand-response events",
            ("Event Start Time", "Event End Time"),
            "Event Start Time,Event End Time\n2021-01-01 17:00:00-05:00,2021-01-01 19:00:00-05:00",
        ),
    )
}


class DocumentInvalid(ValueError):
    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


def _local_time(raw: str) -> datetime | None:
    if not _LOCAL_TIME.match(raw):
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def check_document(document_type: str, raw: bytes) -> tuple[str, int]:
    """The file as WattCarbon will get it (its header spelled as documented) and its row
    count; raises DocumentInvalid with every problem found (up to MAX_ROW_ERRORS rows)."""
    fmt = DOCUMENT_FORMATS[document_type]
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentInvalid([f"The file is larger than {MAX_DOCUMENT_BYTES // 1024} KB."])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DocumentInvalid(["The file is not UTF-8 text."]) from None
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if any(cell.strip() for cell in row)]
    if not rows:
        raise DocumentInvalid(["The file is empty."])
    header = [cell.strip().lower() for cell in rows[0]]
    expected = [c.lower() for c in fmt.columns]
    if header != expected:
        raise DocumentInvalid([f"The header must be {','.join(fmt.columns)} (got {','.join(rows[0])})."])
    errors: list[str] = []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fmt.columns)
    for number, row in enumerate(rows[1:], start=1):
        cells = [cell.strip() for cell in row]
        if len(cells) != 2:
            errors.append(f"Row {number}: expected 2 columns, got {len(cells)}.")
        else:
            start, end = _local_time(cells[0]), _local_time(cells[1])
            if start is None or end is None:
                errors.append(
                    f"Row {number}: times must be local times with their offset, e.g. 2021-01-01 17:00:00-05:00."
                )
            elif end <= start:
                errors.append(f"Row {number}: the event ends ({cells[1]}) before it starts ({cells[0]}).")
            else:
                writer.writerow(cells)
        if len(errors) >= MAX_ROW_ERRORS:
            errors.append("Further rows were not checked.")
            break
    if errors:
        raise DocumentInvalid(errors)
    if len(rows) == 1:
        raise DocumentInvalid(["The file has no events."])
    return out.getvalue(), len(rows) - 1
