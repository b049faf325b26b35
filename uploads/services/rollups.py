"""Hourly and daily roll-ups of readings (ReadingRollup), kept exact by recomputation.

After readings are stored or deleted, the touched UTC hours and days of each meter are
recomputed from the Reading table in one set-based statement per granularity
(INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE). Recomputing rather than adding
increments keeps a re-upload, an overlap or a retried batch exact: a bucket always holds
the aggregate of the readings stored in it, whatever the history of writes.

The touched range of a meter is widened to whole UTC days, so the daily buckets and every
hourly bucket inside them are recomputed together; the statements read the readings of
that range through the (meter, ts) unique index.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Max, Min

from uploads.models import Reading, ReadingRollup, RollupGranularity

ROLLUP_SECONDS = {RollupGranularity.HOUR: 3600, RollupGranularity.DAY: 86400}


def _bucket_sql(granularity: str, column: str) -> str:
    """The start of the UTC hour or day of a timestamp column, per database."""
    if connection.vendor == "postgresql":
        # AT TIME ZONE twice: truncate in UTC whatever the session's time zone.
        return f"(date_trunc('{granularity}', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    # SQLite stores UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]', which sorts and compares as time.
    pattern = "%%Y-%%m-%%d %%H:00:00" if granularity == RollupGranularity.HOUR else "%%Y-%%m-%%d 00:00:00"
    return f"strftime('{pattern}', {column})"


def _day_floor(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def day_ranges(*, spans: Iterable[tuple[int, datetime, datetime]]) -> list[tuple[int, datetime, datetime]]:
    """(meter_id, first ts, last ts) spans widened to half-open whole UTC days, one per meter."""
    per_meter: dict[int, tuple[datetime, datetime]] = {}
    for meter_id, first, last in spans:
        lo, hi = _day_floor(first), _day_floor(last) + timedelta(days=1)
        if meter_id in per_meter:
            lo, hi = min(lo, per_meter[meter_id][0]), max(hi, per_meter[meter_id][1])
        per_meter[meter_id] = (lo, hi)
    return [(m, lo, hi) for m, (lo, hi) in sorted(per_meter.items())]


def rollups_refresh(*, ranges: Iterable[tuple[int, datetime, datetime]], prune: bool = False) -> None:
    """Recompute the roll-ups of each (meter_id, start, end) range from the stored readings.

    start and end must be on UTC day boundaries (see day_ranges). Every bucket holding a reading
    is inserted or updated in place; with prune (after a deletion), buckets of the ranges that
    no longer hold one are deleted. Storing readings never empties a bucket: no prune needed."""
    ranges = list(ranges)
    if not ranges:
        return
    readings, rollups = Reading._meta.db_table, ReadingRollup._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    params: list = []
    for meter_id, start, end in ranges:
        params += [meter_id, adapt(start), adapt(end)]
    if connection.vendor == "postgresql":
        values = ", ".join(["(%s::bigint, %s::timestamptz, %s::timestamptz)"] * len(ranges))
    else:
        values = ", ".join(["(%s, %s, %s)"] * len(ranges))
    touched = f"touched (meter_id, lo, hi) AS (VALUES {values})"
    with connection.cursor() as cursor:
        # Buckets left empty (readings deleted): removed first, so the upsert below is all that remains.
        if prune:
            cursor.execute(
                f"WITH {touched} DELETE FROM {rollups} WHERE EXISTS (SELECT 1 FROM touched t "  # noqa: S608 - our tables
                f"WHERE t.meter_id = {rollups}.meter_id AND {rollups}.bucket >= t.lo AND {rollups}.bucket < t.hi) "
                f"AND NOT EXISTS (SELECT 1 FROM {readings} r WHERE r.meter_id = {rollups}.meter_id "
                f"AND r.ts >= {rollups}.bucket AND r.ts < {_bucket_end_sql(rollups)})",
                params,
            )
        for granularity in (RollupGranularity.HOUR, RollupGranularity.DAY):
            bucket = _bucket_sql(granularity, "r.ts")
            cursor.execute(
                f"WITH {touched} "  # noqa: S608 - only our table names and fixed expressions
                f"INSERT INTO {rollups} (meter_id, granularity, bucket, count, total, low, high) "
                f"SELECT r.meter_id, '{granularity}', {bucket}, COUNT(*), SUM(r.value), MIN(r.value), MAX(r.value) "
                f"FROM touched t JOIN {readings} r ON r.meter_id = t.meter_id AND r.ts >= t.lo AND r.ts < t.hi "
                f"WHERE 1 = 1 GROUP BY r.meter_id, {bucket} ORDER BY r.meter_id, {bucket} "
                "ON CONFLICT (meter_id, granularity, bucket) DO UPDATE SET count = EXCLUDED.count, "
                "total = EXCLUDED.total, low = EXCLUDED.low, high = EXCLUDED.high",
                params,
            )


def _bucket_end_sql(table: str) -> str:
    """The end of a roll-up row's bucket (an hour or a day after its start)."""
    if connection.vendor == "postgresql":
        return f"{table}.bucket + CASE {table}.granularity WHEN 'hour' THEN interval '1 hour' ELSE interval '1 day' END"
    return (
        f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', {table}.bucket, "
        f"CASE {table}.granularity WHEN 'hour' THEN '+1 hour' ELSE '+1 day' END)"
    )


def rollups_rebuild(*, meter_id: int | None = None) -> None:
    """Recompute every roll-up (of one meter, or of all): the backfill, and a repair tool."""
    qs = Reading.objects.all() if meter_id is None else Reading.objects.filter(meter_id=meter_id)
    spans = [
        (row["meter_id"], row["first"], row["last"])
        for row in qs.values("meter_id").annotate(first=Min("ts"), last=Max("ts"))
    ]
    rollups_refresh(ranges=day_ranges(spans=spans))


def readings_delete(*, meter_id: int, start: datetime | None = None, end: datetime | None = None) -> int:
    """Delete a meter's readings of [start, end) (all of them by default) in one statement,
    and bring its roll-ups of that range back in line. Returns how many readings went."""
    qs = Reading.objects.filter(meter_id=meter_id)
    if start is not None:
        qs = qs.filter(ts__gte=start)
    if end is not None:
        qs = qs.filter(ts__lt=end)
    span = qs.aggregate(first=Min("ts"), last=Max("ts"))
    deleted, _ = qs.delete()
    if span["first"] is not None:
        rollups_refresh(ranges=day_ranges(spans=[(meter_id, span["first"], span["last"])]), prune=True)
    return deleted
