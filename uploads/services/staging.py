"""The valid readings of an upload, kept by validation for the store: the file is parsed once.

Validation writes each valid reading (meter id, UTC instant, value, extra) here in file
order; once the user confirms, the store reads them back instead of parsing the file
again. The staging file is an Arrow IPC stream written in record batches, so memory stays
bounded whatever the file's size, and it is read back as numpy arrays without per-row
Python. It lives in the media storage (shared by the web and worker processes, never
served), outside any organization's quota, and is deleted once the rows are stored, and
when the upload is cancelled, purged or validated again.

Rows keep their file order: the store de-duplicates per (meter, ts) with the last row in
file order winning, as the re-parse did. A file is written under a temporary name and
renamed when complete, so a staging file that exists is whole; an upload without one
(validated before staging existed, or whose validation stopped) is stored by parsing it.
"""

import contextlib
import json
import os
import pathlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
from django.conf import settings

from uploads.parsing import ReadingRow

SCHEMA = pa.schema(
    [
        ("meter_id", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("value", pa.float64()),
        # Wattics electrical measurements as JSON text, null when the row had none.
        ("extra", pa.string()),
    ]
)
# Rows per record batch: about 2 MB of columns, small next to the 100 MB a store may grow by.
BATCH_ROWS = 65_536


def staging_path(upload) -> pathlib.Path:
    """Where the staged readings of an upload live (in the media storage, never served)."""
    return pathlib.Path(settings.MEDIA_ROOT) / "staging" / f"upload-{upload.pk}.arrows"


def staging_delete(upload) -> None:
    """Remove an upload's staged readings, if any (stored, cancelled, purged, validated again)."""
    staging_path(upload).unlink(missing_ok=True)


class StagingWriter:
    """Valid readings in file order, to `path` (complete once `close()` returns)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        # A name of its own: a run the stale sweep replaced may still be writing its part.
        self.part = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.part")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sink = pa.OSFile(str(self.part), "wb")
        self.writer = pa.ipc.new_stream(self.sink, SCHEMA)
        self.rows = 0
        self._meter: list[int] = []
        self._ts: list[datetime] = []
        self._value: list[float] = []
        self._extra: list[str | None] = []

    def add(self, row: ReadingRow) -> None:
        """One valid reading (its meter resolved in the upload's organization)."""
        self._meter.append(row.meter.id)
        self._ts.append(row.ts)
        self._value.append(row.value)
        self._extra.append(None if row.extra is None else json.dumps(row.extra))
        if len(self._meter) >= BATCH_ROWS:
            self._flush()

    def add_arrays(self, *, meter_id, ts_us, value, extra=None) -> None:
        """Many valid readings at once, in file order: numpy int64 meter ids, int64 microseconds
        since the Unix epoch (UTC), float64 values; `extra` a list of JSON text or None per row."""
        self._flush()  # rows added one by one came first in the file
        n = len(meter_id)
        if not (len(ts_us) == len(value) == n and (extra is None or len(extra) == n)):
            raise ValueError("add_arrays: the columns differ in length")
        for lo in range(0, n, BATCH_ROWS):
            hi = min(n, lo + BATCH_ROWS)
            self._write(
                pa.array(np.asarray(meter_id[lo:hi], dtype=np.int64)),
                pa.array(np.asarray(ts_us[lo:hi], dtype=np.int64)).view(SCHEMA.field("ts").type),
                pa.array(np.asarray(value[lo:hi], dtype=np.float64)),
                pa.nulls(hi - lo, pa.string()) if extra is None else pa.array(extra[lo:hi], pa.string()),
            )

    def _flush(self) -> None:
        if not self._meter:
            return
        self._write(
            pa.array(self._meter, pa.int64()),
            pa.array(self._ts, SCHEMA.field("ts").type),
            pa.array(self._value, pa.float64()),
            pa.array(self._extra, pa.string()),
        )
        self._meter, self._ts, self._value, self._extra = [], [], [], []

    def _write(self, *columns: pa.Array) -> None:
        self.writer.write_batch(pa.record_batch(list(columns), schema=SCHEMA))
        self.rows += len(columns[0])

    def close(self) -> None:
        """Write what is pending and make the file complete (renamed into place)."""
        self._flush()
        self.writer.close()
        self.sink.close()
        os.replace(self.part, self.path)

    def discard(self) -> None:
        """Drop the partial file (validation failed, was stopped or handed over)."""
        with contextlib.suppress(OSError, pa.ArrowException):
            self.writer.close()
        self.sink.close()
        self.part.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """Staged readings in file order: int64 meter ids, int64 microseconds since the Unix epoch
    (UTC), float64 values, and the JSON text of extra per row (None when no row has any)."""

    meter_id: np.ndarray
    ts_us: np.ndarray
    value: np.ndarray
    extra: np.ndarray | None

    def __len__(self) -> int:
        return len(self.meter_id)


def staged_batches(path: pathlib.Path) -> Iterator[StagedBatch]:
    """The staged readings of a file, batch by batch in file order (read, not memory-mapped:
    a batch costs its own columns only, and the file's pages do not stay resident)."""
    with pa.OSFile(str(path), "rb") as source:
        reader = pa.ipc.open_stream(source)
        for batch in reader:
            extra = batch.column(3)
            yield StagedBatch(
                # Copies: numpy arrays of their own, whatever becomes of the batch's buffers.
                meter_id=batch.column(0).to_numpy().copy(),
                ts_us=batch.column(1).view(pa.int64()).to_numpy().copy(),
                value=batch.column(2).to_numpy().copy(),
                extra=None if extra.null_count == len(extra) else extra.to_numpy(zero_copy_only=False),
            )
