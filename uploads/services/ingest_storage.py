"""Writing parsed rows: upserts in batches, constant memory whatever the file size.

Bills are always stored from here. Readings are stored from the staging file validation
wrote (uploads.services.readings_store); this re-parse path stores the readings of an
upload that has none (validated before staging existed).

Readings are unique per (meter, ts) and bills per (meter, start_date), so a
re-upload, a retried task or two concurrent uploads of one file update rows in
place instead of doubling them. Within a batch the last row for a key wins (one
statement may not touch a row twice), and keys are sorted so concurrent writers
lock rows in the same order and cannot deadlock.

Two ways to upsert readings on PostgreSQL:
  - bulk_create(update_conflicts=True) in batches of 5,000: INSERT … ON CONFLICT;
  - COPY into a temporary table, then INSERT … SELECT … ON CONFLICT.
COPY was the faster, for new rows and more so for a re-upload (every row a conflict), so
it is used on PostgreSQL; other databases (SQLite) use bulk_create. bench/ingest_storage.py
measures both on this machine.
"""

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice

from django.db import connection, transaction

from uploads.models import Bill, Reading
from uploads.parsing import BillRow, ReadingRow
from uploads.services import rollups

BATCH_ROWS = 5000
COPY_BATCH_ROWS = 50_000


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _last_per_key(rows: list, key: Callable) -> list:
    return [row for _, row in sorted({key(r): r for r in rows}.items())]


def _use_copy() -> bool:
    return connection.vendor == "postgresql"


def readings_upsert(
    *, rows: Iterable[ReadingRow], upload_id: int, progress: Callable[[int], None] | None = None
) -> int:
    """Store readings; returns how many rows were written (after de-duplication per batch)."""
    written = 0
    copy = _use_copy()
    for batch in _batches(rows, COPY_BATCH_ROWS if copy else BATCH_ROWS):
        batch = _last_per_key(batch, lambda r: (r.meter.id, r.ts))
        with transaction.atomic():
            if copy:
                _readings_copy(batch, upload_id)
            else:
                _readings_bulk_create(batch, upload_id)
            # In the batch's transaction: the roll-ups never disagree with committed readings.
            rollups.rollups_refresh(ranges=_touched_days(batch))
        written += len(batch)
        if progress:
            progress(written)
    return written


def _touched_days(batch: list[ReadingRow]) -> list[tuple[int, datetime, datetime]]:
    """Per meter of a batch sorted by (meter, ts): its whole UTC days from first to last reading."""
    spans: dict[int, list] = {}
    for r in batch:
        span = spans.setdefault(r.meter.id, [r.ts, r.ts])
        span[1] = r.ts
    return rollups.day_ranges(spans=[(m, first, last) for m, (first, last) in spans.items()])


def _readings_bulk_create(batch: list[ReadingRow], upload_id: int) -> None:
    Reading.objects.bulk_create(
        [Reading(meter_id=r.meter.id, ts=r.ts, value=r.value, extra=r.extra, upload_id=upload_id) for r in batch],
        update_conflicts=True,
        unique_fields=["meter", "ts"],
        update_fields=["value", "extra", "upload"],
    )


def _readings_copy(batch: list[ReadingRow], upload_id: int) -> None:
    table = Reading._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS ingest_reading "
            "(meter_id bigint, ts timestamptz, value double precision, extra jsonb) ON COMMIT DELETE ROWS"
        )
        # Empty it here too: inside an outer transaction (a test, a caller's atomic) there was no commit.
        cursor.execute("TRUNCATE ingest_reading")
        with cursor.cursor.copy("COPY ingest_reading (meter_id, ts, value, extra) FROM STDIN") as copy:
            for r in batch:
                copy.write_row((r.meter.id, r.ts, r.value, json.dumps(r.extra) if r.extra is not None else None))
        cursor.execute(
            f"INSERT INTO {table} (meter_id, ts, value, extra, upload_id) "  # noqa: S608 - table name is ours
            "SELECT meter_id, ts, value, extra, %s FROM ingest_reading ORDER BY meter_id, ts "
            "ON CONFLICT (meter_id, ts) DO UPDATE SET value = EXCLUDED.value, extra = EXCLUDED.extra, "
            "upload_id = EXCLUDED.upload_id",
            [upload_id],
        )


def bills_upsert(*, rows: Iterable[BillRow], upload_id: int) -> int:
    """Store bills (a file of bills is small: bulk_create is enough everywhere)."""
    written = 0
    for batch in _batches(rows, BATCH_ROWS):
        batch = _last_per_key(batch, lambda r: (r.meter.id, r.start_date))
        with transaction.atomic():
            Bill.objects.bulk_create(
                [
                    Bill(
                        meter_id=r.meter.id,
                        start_date=r.start_date,
                        end_date=r.end_date,
                        energy_kwh=r.energy_kwh,
                        upload_id=upload_id,
                    )
                    for r in batch
                ],
                update_conflicts=True,
                unique_fields=["meter", "start_date"],
                update_fields=["end_date", "energy_kwh", "upload"],
            )
        written += len(batch)
    return written
