"""Storing staged readings (uploads.services.staging): no second parse, binary COPY, exact roll-ups.

The staged rows are taken a chunk of meters at a time (about CHUNK_ROWS rows, so memory
stays bounded whatever the file's size; a meter with more rows is cut into time windows),
de-duplicated per (meter, ts) with the last row in file order winning, and sorted by
(meter, ts). Then, on PostgreSQL, per part of a chunk (a meter, or a window of one):

  - no stored reading in the part's [first, last] instants (new data, the common case):
    the rows are COPYed (binary) straight into the readings table, one transaction for the
    chunk's such parts. Their roll-ups are computed from the rows in hand for the whole
    days inside the span (no other reading can be there) and recomputed in SQL for the
    first and last day (which may hold readings before or after the span).
    A unique violation (a retried run whose first try committed, or another upload of the
    same rows storing at the same time) rolls the transaction back and the parts go the
    second way;
  - otherwise: COPY (binary) into a temporary table, then INSERT … ON CONFLICT DO UPDATE,
    and the touched days' roll-ups recomputed in SQL, in batches of UPSERT_ROWS rows.

Every write locks the meters it writes for (FOR KEY SHARE) and drops the rows of a meter
that no longer exists: the readings table has no foreign key (uploads.models.Reading), so
the store keeps its own meter check. SQLite (`make run`) upserts with bulk_create in
batches, as the re-parse path does.
"""

import json
import logging
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg
from django.db import IntegrityError, connection, transaction

from sites.models import Meter
from uploads.models import Reading, ReadingRollup, RollupGranularity
from uploads.parsing.checks import from_us
from uploads.services import rollups
from uploads.services.staging import staged_batches

logger = logging.getLogger(__name__)

# Rows gathered and sorted at once: their arrays, sort keys and COPY buffers stay under about
# 30 MB (the store of 1M rows grew by 59 MB with 500,000).
CHUNK_ROWS = 250_000
# Rows per upsert transaction (and per SQLite batch: bulk_create's statements are smaller).
UPSERT_ROWS = 100_000
SQLITE_ROWS = 5000
# Rows encoded per COPY write: about 5 MB of binary.
COPY_WRITE_ROWS = 100_000

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
# PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
PG_EPOCH_US = 946_684_800_000_000
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)

# One reading in COPY BINARY: meter_id, ts, value, extra (null), upload_id.
_READING = np.dtype(
    [("n", ">i2"), ("lm", ">i4"), ("m", ">i8"), ("lt", ">i4"), ("t", ">i8"), ("lv", ">i4"), ("v", ">f8"),
     ("lx", ">i4"), ("lu", ">i4"), ("u", ">i8")]
)  # fmt: skip


def _rollup_dtype(granularity: str) -> np.dtype:
    """One roll-up in COPY BINARY: meter_id, granularity, bucket, count, total, low, high."""
    return np.dtype(
        [("n", ">i2"), ("lm", ">i4"), ("m", ">i8"), ("lg", ">i4"), ("g", f"S{len(granularity)}"), ("lb", ">i4"),
         ("b", ">i8"), ("lc", ">i4"), ("c", ">i4"), ("lt", ">i4"), ("t", ">f8"), ("ll", ">i4"), ("l", ">f8"),
         ("lh", ">i4"), ("h", ">f8")]
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Part:
    """Rows of one meter between two instants (microseconds since the Unix epoch, inclusive)."""

    meter_id: int
    lo: int
    hi: int


@dataclass
class Rows:
    """Readings sorted by (meter, ts), one per key."""

    meter_id: np.ndarray
    ts_us: np.ndarray
    value: np.ndarray
    extra: np.ndarray | None

    def __len__(self) -> int:
        return len(self.meter_id)

    def take(self, index: np.ndarray | slice) -> "Rows":
        extra = None if self.extra is None else self.extra[index]
        return Rows(self.meter_id[index], self.ts_us[index], self.value[index], extra)


def last_per_key(meter_id: np.ndarray, ts_us: np.ndarray) -> np.ndarray:
    """Indices of the rows to keep, sorted by (meter, ts): of rows with the same key, the last
    in file order (the order of the arrays) wins."""
    n = len(meter_id)
    order = np.lexsort((np.arange(n), ts_us, meter_id))
    m, t = meter_id[order], ts_us[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = (m[1:] != m[:-1]) | (t[1:] != t[:-1])
    return order[last]


def _meter_spans(path: Path) -> dict[int, tuple[int, int, int]]:
    """meter id -> (rows, first µs, last µs) of the staged file."""
    spans: dict[int, tuple[int, int, int]] = {}
    for batch in staged_batches(path):
        order = np.argsort(batch.meter_id, kind="stable")
        meters, ts = batch.meter_id[order], batch.ts_us[order]
        starts = np.flatnonzero(np.r_[True, meters[1:] != meters[:-1]])
        counts = np.diff(np.r_[starts, len(meters)])
        first, last = np.minimum.reduceat(ts, starts), np.maximum.reduceat(ts, starts)
        for m, c, lo, hi in zip(meters[starts].tolist(), counts.tolist(), first.tolist(), last.tolist(), strict=True):
            had = spans.get(m)
            spans[m] = (c, lo, hi) if had is None else (had[0] + c, min(had[1], lo), max(had[2], hi))
    return spans


def _chunks(spans: dict[int, tuple[int, int, int]]) -> list[list[Part]]:
    """Parts grouped into chunks of about CHUNK_ROWS rows; a bigger meter is cut into windows."""
    chunks: list[list[Part]] = []
    current: list[Part] = []
    size = 0
    for meter_id in sorted(spans):
        count, lo, hi = spans[meter_id]
        if count > CHUNK_ROWS:
            pieces = math.ceil(count / CHUNK_ROWS)
            bounds = [lo + (hi - lo) * i // pieces for i in range(pieces)] + [hi + 1]
            chunks += [[Part(meter_id, a, b - 1)] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
            continue
        if current and size + count > CHUNK_ROWS:
            chunks.append(current)
            current, size = [], 0
        current.append(Part(meter_id, lo, hi))
        size += count
    if current:
        chunks.append(current)
    return chunks


def _gather(path: Path, chunk: list[Part]) -> Rows:
    """The chunk's staged rows, de-duplicated (last in file order wins) and sorted by (meter, ts)."""
    meters = np.array([p.meter_id for p in chunk], dtype=np.int64)
    window = chunk[0] if len(chunk) == 1 else None
    pieces: list[tuple] = []
    for batch in staged_batches(path):
        mask = np.isin(batch.meter_id, meters)
        if window is not None:
            mask &= (batch.ts_us >= window.lo) & (batch.ts_us <= window.hi)
        if mask.any():
            extra = None if batch.extra is None else batch.extra[mask]
            pieces.append((batch.meter_id[mask], batch.ts_us[mask], batch.value[mask], extra))
    if not pieces:
        return Rows(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64), None)
    extra = None
    if any(p[3] is not None for p in pieces):
        extra = np.concatenate([p[3] if p[3] is not None else np.full(len(p[0]), None, dtype=object) for p in pieces])
    rows = Rows(
        np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]),
        np.concatenate([p[2] for p in pieces]), extra,
    )  # fmt: skip
    del pieces
    return rows.take(last_per_key(rows.meter_id, rows.ts_us))


def _meter_slices(rows: Rows) -> Iterator[tuple[int, slice]]:
    """(meter id, slice of its rows) of rows sorted by meter."""
    if not len(rows):
        return
    starts = np.flatnonzero(np.r_[True, rows.meter_id[1:] != rows.meter_id[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        yield int(rows.meter_id[s]), slice(s, e)


def readings_store_staged(
    *, path: Path, upload_id: int, organization_id: int, progress: Callable[[int], None] | None = None
) -> int:
    """Store the staged readings of an upload; returns how many were written (one per key)."""
    spans = _meter_spans(path)
    ours = set(Meter.objects.filter(organization_id=organization_id, pk__in=list(spans)).values_list("pk", flat=True))
    if len(ours) < len(spans):
        # Validation resolved every meter in the organization: one deleted since is not written to.
        logger.warning("upload %s: rows of %d deleted meter(s) not stored", upload_id, len(spans) - len(ours))
    written = 0
    for chunk in _chunks({m: span for m, span in spans.items() if m in ours}):
        rows = _gather(path, chunk)
        if connection.vendor == "postgresql":
            written += _store_chunk_pg(rows, upload_id, progress, written)
        else:
            written += _store_chunk_sqlite(rows, upload_id, progress, written)
    return written


# --- PostgreSQL ------------------------------------------------------------------------


def _lock_meters(cursor, rows: Rows) -> Rows:
    """Lock the meters of the rows against deletion until commit; drop rows of meters gone."""
    wanted = np.unique(rows.meter_id).tolist()
    cursor.execute(f"SELECT id FROM {Meter._meta.db_table} WHERE id = ANY(%s) FOR KEY SHARE", [wanted])  # noqa: S608
    present = [r[0] for r in cursor.fetchall()]
    if len(present) == len(wanted):
        return rows
    return rows.take(np.isin(rows.meter_id, np.array(present, dtype=np.int64)))


def _stored_in_span(rows: Rows) -> set[int]:
    """Meters of the rows (sorted by meter) with a stored reading between their first and last instant."""
    meters, los, his = [], [], []
    for meter_id, part in _meter_slices(rows):
        meters.append(meter_id)
        los.append(from_us(rows.ts_us[part.start]))
        his.append(from_us(rows.ts_us[part.stop - 1]))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.m FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS t(m, lo, hi) "  # noqa: S608
            f"WHERE EXISTS (SELECT 1 FROM {Reading._meta.db_table} r WHERE r.meter_id = t.m "
            "AND r.ts >= t.lo AND r.ts <= t.hi)",
            [meters, los, his],
        )
        return {r[0] for r in cursor.fetchall()}


def _store_chunk_pg(rows: Rows, upload_id: int, progress, before: int) -> int:
    if not len(rows):
        return 0
    overlapping = _stored_in_span(rows)
    direct = ~np.isin(rows.meter_id, np.array(sorted(overlapping), dtype=np.int64))
    written = 0
    if direct.any():
        new = rows if direct.all() else rows.take(direct)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                new = _lock_meters(cursor, new)
                _copy_readings(cursor, Reading._meta.db_table, new, upload_id)
                _rollups_of_new(cursor, new)
            written += len(new)
        except (IntegrityError, psycopg.errors.UniqueViolation):  # COPY goes round Django's error wrapper
            # Rows appeared in the span since the check (a retried run's first try, or another
            # upload of the same rows): these parts are upserted like any overlap.
            logger.info("upload %s: stored readings found while copying, upserting instead", upload_id)
            direct[:] = False
        if progress and written:
            progress(before + written)
    rest = rows if not direct.any() else rows.take(~direct)
    for lo in range(0, len(rest), UPSERT_ROWS):
        batch = rest.take(slice(lo, lo + UPSERT_ROWS))
        with transaction.atomic(), connection.cursor() as cursor:
            batch = _lock_meters(cursor, batch)
            _upsert(cursor, batch, upload_id)
            # In the batch's transaction: the roll-ups never disagree with committed readings.
            rollups.rollups_refresh(ranges=_touched_days(batch))
        written += len(batch)
        if progress:
            progress(before + written)
    return written


def _touched_days(rows: Rows) -> list[tuple[int, datetime, datetime]]:
    return rollups.day_ranges(
        spans=[(m, from_us(rows.ts_us[s.start]), from_us(rows.ts_us[s.stop - 1])) for m, s in _meter_slices(rows)]
    )


def _upsert(cursor, rows: Rows, upload_id: int) -> None:
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS ingest_staged (meter_id bigint, ts timestamptz, value double precision, "
        "extra jsonb, upload_id bigint) ON COMMIT DELETE ROWS"
    )
    # Empty it here too: inside an outer transaction (a test, a caller's atomic) there was no commit.
    cursor.execute("TRUNCATE ingest_staged")
    _copy_readings(cursor, "ingest_staged", rows, upload_id)
    table = Reading._meta.db_table
    cursor.execute(
        f"INSERT INTO {table} (meter_id, ts, value, extra, upload_id) "  # noqa: S608 - table name is ours
        "SELECT meter_id, ts, value, extra, upload_id FROM ingest_staged ORDER BY meter_id, ts "
        "ON CONFLICT (meter_id, ts) DO UPDATE SET value = EXCLUDED.value, extra = EXCLUDED.extra, "
        "upload_id = EXCLUDED.upload_id"
    )


def _copy_readings(cursor, table: str, rows: Rows, upload_id: int) -> None:
    """COPY the rows (binary) into table (meter_id, ts, value, extra, upload_id)."""
    sql = f"COPY {table} (meter_id, ts, value, extra, upload_id) FROM STDIN WITH (FORMAT BINARY)"
    with cursor.cursor.copy(sql) as copy:
        copy.write(COPY_HEADER)
        for lo in range(0, len(rows), COPY_WRITE_ROWS):
            part = rows.take(slice(lo, lo + COPY_WRITE_ROWS))
            plain = np.ones(len(part), dtype=bool) if part.extra is None else np.equal(part.extra, None)
            copy.write(_plain_records(part.take(plain) if not plain.all() else part, upload_id))
            if not plain.all():
                copy.write(_extra_records(part.take(~plain), upload_id))
        copy.write(COPY_TRAILER)


def _plain_records(rows: Rows, upload_id: int) -> bytes:
    rec = np.empty(len(rows), dtype=_READING)
    rec["n"], rec["lm"], rec["lt"], rec["lv"], rec["lx"], rec["lu"] = 5, 8, 8, 8, -1, 8
    rec["m"], rec["t"], rec["v"], rec["u"] = rows.meter_id, rows.ts_us - PG_EPOCH_US, rows.value, upload_id
    return rec.tobytes()


def _extra_records(rows: Rows, upload_id: int) -> bytes:
    """Rows with Wattics measurements (jsonb: a version byte, then the text), one by one: rare."""
    assert rows.extra is not None
    out = []
    for m, t, v, x in zip(rows.meter_id.tolist(), rows.ts_us.tolist(), rows.value.tolist(), rows.extra, strict=True):
        text = x.encode()
        out.append(struct.pack(">hiqiqid", 5, 8, m, 8, t - PG_EPOCH_US, 8, v))
        out.append(struct.pack(">ib", len(text) + 1, 1) + text + struct.pack(">iq", 8, upload_id))
    return b"".join(out)


def _rollups_of_new(cursor, rows: Rows) -> None:
    """Roll-ups of readings just copied into spans that held none: the whole days strictly inside
    a meter's span hold only these rows, so they are computed here; the first and last day may
    hold older readings too, so they are recomputed from the table."""
    table = ReadingRollup._meta.db_table
    edges: list[tuple[int, datetime, datetime]] = []
    inner: list[tuple[int, datetime, datetime]] = []
    records: list[bytes] = []
    for meter_id, part in _meter_slices(rows):
        ts, value = rows.ts_us[part], rows.value[part]
        first_day, last_day = ts[0] // DAY_US, ts[-1] // DAY_US
        edges += [(meter_id, from_us(d * DAY_US), from_us((d + 1) * DAY_US)) for d in sorted({first_day, last_day})]
        inside = (ts >= (first_day + 1) * DAY_US) & (ts < last_day * DAY_US)
        if not inside.any():
            continue
        inner.append((meter_id, from_us((first_day + 1) * DAY_US), from_us(last_day * DAY_US)))
        ts, value = ts[inside], value[inside]
        for granularity, width in ((RollupGranularity.HOUR, HOUR_US), (RollupGranularity.DAY, DAY_US)):
            records.append(_bucket_records(meter_id, granularity, ts, value, width))
    if inner:
        # Buckets there should not exist (no readings did); any stale one is replaced.
        meters, los, his = (list(column) for column in zip(*inner, strict=True))
        cursor.execute(
            f"DELETE FROM {table} r USING unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) "  # noqa: S608
            "AS t(m, lo, hi) WHERE r.meter_id = t.m AND r.bucket >= t.lo AND r.bucket < t.hi",
            [meters, los, his],
        )
        columns = "meter_id, granularity, bucket, count, total, low, high"
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.write(COPY_HEADER)
            for data in records:
                copy.write(data)
            copy.write(COPY_TRAILER)
    rollups.rollups_refresh(ranges=edges)


def _bucket_records(meter_id: int, granularity: str, ts: np.ndarray, value: np.ndarray, width: int) -> bytes:
    """Count, sum, min and max per bucket of sorted instants, as COPY BINARY roll-up rows."""
    key = ts // width
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    rec = np.empty(len(starts), dtype=_rollup_dtype(granularity))
    rec["n"], rec["lg"], rec["lc"] = 7, len(granularity), 4
    rec["lm"] = rec["lb"] = rec["lt"] = rec["ll"] = rec["lh"] = 8
    rec["m"], rec["g"] = meter_id, granularity.encode()
    rec["b"] = key[starts] * width - PG_EPOCH_US
    rec["c"] = np.diff(np.r_[starts, len(ts)])
    rec["t"] = np.add.reduceat(value, starts)
    rec["l"] = np.minimum.reduceat(value, starts)
    rec["h"] = np.maximum.reduceat(value, starts)
    return rec.tobytes()


# --- SQLite ----------------------------------------------------------------------------


def _store_chunk_sqlite(rows: Rows, upload_id: int, progress, before: int) -> int:
    written = 0
    ours = set(Meter.objects.filter(pk__in=np.unique(rows.meter_id).tolist()).values_list("pk", flat=True))
    for lo in range(0, len(rows), SQLITE_ROWS):
        batch = rows.take(slice(lo, lo + SQLITE_ROWS))
        extras = [None] * len(batch) if batch.extra is None else batch.extra.tolist()
        columns = zip(batch.meter_id.tolist(), batch.ts_us.tolist(), batch.value.tolist(), extras, strict=True)
        readings = [
            Reading(meter_id=m, ts=from_us(t), value=v, extra=None if x is None else json.loads(x), upload_id=upload_id)
            for m, t, v, x in columns
            if m in ours
        ]
        with transaction.atomic():
            Reading.objects.bulk_create(
                readings,
                update_conflicts=True,
                unique_fields=["meter", "ts"],
                update_fields=["value", "extra", "upload"],
            )
            rollups.rollups_refresh(ranges=_touched_days(batch))
        written += len(readings)
        if progress:
            progress(before + written)
    return written
