"""Reads for the dashboard and a meter's data panel.

A meter may hold millions of readings. Everything here works on one time range of
one meter, through the (meter, ts) unique index, and aggregates in SQL: the chart
gets at most MAX_POINTS buckets and the holes list at most GAP_LIMIT rows, so the
page costs the same whatever the table holds.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Max, Min
from django.utils import timezone

from sites.models import Meter
from uploads.models import Delivery, DeliveryStatus, Reading, ReadingRollup, RollupGranularity, Target

MAX_POINTS = 2000
# The chart reads raw readings while a range holds at most this many meter intervals, then
# hourly roll-ups while it holds at most this many hours, then daily ones: a range of any
# length reads at most about this many rows (3 years of daily roll-ups are ~1,100).
SOURCE_ROWS_MAX = 10_000
RAW = "raw"
GAP_LIMIT = 20
DEFAULT_RANGE_DAYS = 30
# A chart range longer than this is cut: the aggregation stays bounded.
MAX_RANGE_DAYS = 3 * 366
HOUR_SECONDS = 3600
# Holes are narrowed to hours through the roll-ups while at most this share of the range's days
# are incomplete (hold a hole); beyond it, narrowing costs more than reading the range whole,
# which is then what the same query does.
INCOMPLETE_DAYS_MAX = 0.5
DAY_SECONDS = 86400


@dataclass(frozen=True)
class Span:
    first: datetime | None
    last: datetime | None


def meter_reading_span(*, meter: Meter) -> Span:
    """First and last stored reading instants (MIN/MAX read off the index ends)."""
    agg = Reading.objects.filter(meter=meter).aggregate(first=Min("ts"), last=Max("ts"))
    return Span(first=agg["first"], last=agg["last"])


def default_range(*, span: Span, interval_minutes: int) -> tuple[datetime, datetime]:
    """The last DEFAULT_RANGE_DAYS of the meter's data (or of now, if it has none)."""
    # Half-open range: end one interval after the last reading, so it is included and
    # bucket boundaries stay on the meter's interval grid.
    end = (span.last or timezone.now()) + timedelta(minutes=interval_minutes)
    start = end - timedelta(days=DEFAULT_RANGE_DAYS)
    if span.first and span.first > start:
        start = span.first
    return start, end


def clamp_range(*, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    if end <= start:
        end = start + timedelta(days=1)
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        start = end - timedelta(days=MAX_RANGE_DAYS)
    return start, end


def bucket_seconds_for(*, start: datetime, end: datetime, interval_minutes: int, max_points: int = MAX_POINTS) -> int:
    """The smallest whole number of meter intervals that fits the range in max_points buckets."""
    interval = max(interval_minutes, 1) * 60
    span = max((end - start).total_seconds(), interval)
    intervals_per_bucket = max(1, math.ceil(span / interval / max_points))
    return intervals_per_bucket * interval


def _epoch_sql(column: str) -> str:
    # Seconds since the epoch, per database; the only vendor-specific SQL here.
    if connection.vendor == "postgresql":
        # date_part gives float8; EXTRACT gives numeric, several times slower to aggregate.
        return f"date_part('epoch', {column})"
    # Whole seconds: julianday() arithmetic drifts by microseconds and would move
    # readings on a bucket edge into the previous bucket.
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def _from_epoch_sql(expression: str) -> str:
    """The timestamp of a number of seconds since the epoch, comparable with a stored one."""
    if connection.vendor == "postgresql":
        return f"to_timestamp({expression})"
    return f"datetime({expression}, 'unixepoch')"


def _param(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


@dataclass(frozen=True)
class Series:
    bucket_seconds: int
    labels: list[str]  # ISO 8601 bucket starts, UTC
    avg: list[float]
    low: list[float]
    high: list[float]
    readings: int
    source: str = RAW  # what was read: RAW readings, or RollupGranularity.HOUR/DAY roll-ups


def series_source(*, start: datetime, end: datetime, interval_minutes: int) -> str:
    """RAW readings for short ranges, hourly roll-ups for longer ones, daily beyond."""
    seconds = (end - start).total_seconds()
    if seconds / (max(interval_minutes, 1) * 60) <= SOURCE_ROWS_MAX:
        return RAW
    if seconds / 3600 <= SOURCE_ROWS_MAX:
        return RollupGranularity.HOUR
    return RollupGranularity.DAY


def _floor_to(value: datetime, granularity: str) -> datetime:
    value = value.astimezone(UTC)
    if granularity == RollupGranularity.HOUR:
        return value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def meter_series(*, meter: Meter, start: datetime, end: datetime, max_points: int = MAX_POINTS) -> Series:
    """Readings of [start, end) averaged into at most max_points buckets, with min and max.

    One query, on raw readings or on roll-ups (series_source) so that it reads at most about
    SOURCE_ROWS_MAX rows. From roll-ups the range is widened to whole hours or days, and
    buckets are whole multiples of the roll-up's granularity."""
    source = series_source(start=start, end=end, interval_minutes=meter.interval_minutes)
    if source == RAW:
        bucket = bucket_seconds_for(
            start=start, end=end, interval_minutes=meter.interval_minutes, max_points=max_points
        )
        table, column = Reading._meta.db_table, "ts"
        columns = "AVG(value), MIN(value), MAX(value), COUNT(*)"
        where = "meter_id = %s AND ts >= %s AND ts < %s"
        extra = []
    else:
        start = _floor_to(start, source)
        minutes = 60 if source == RollupGranularity.HOUR else 1440
        bucket = bucket_seconds_for(start=start, end=end, interval_minutes=minutes, max_points=max_points)
        table, column = ReadingRollup._meta.db_table, "bucket"
        columns = "SUM(total) / SUM(count), MIN(low), MAX(high), SUM(count)"
        where = "meter_id = %s AND bucket >= %s AND bucket < %s AND granularity = %s"
        extra = [str(source)]
    origin = start.timestamp()
    sql = f"""
        SELECT FLOOR(({_epoch_sql(column)} - %s) / %s) AS b, {columns}
        FROM {table}
        WHERE {where}
        GROUP BY b ORDER BY b
    """  # noqa: S608 - only our table names and fixed expressions are interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, [origin, bucket, meter.pk, _param(start), _param(end), *extra])
        rows = cursor.fetchall()
    labels, avg, low, high = [], [], [], []
    count = 0
    for b, a, lo, hi, n in rows:
        moment = datetime.fromtimestamp(origin + int(b) * bucket, tz=UTC)
        labels.append(moment.isoformat())
        avg.append(round(float(a), 4))
        low.append(round(float(lo), 4))
        high.append(round(float(hi), 4))
        count += n
    return Series(bucket_seconds=bucket, labels=labels, avg=avg, low=low, high=high, readings=count, source=str(source))


@dataclass(frozen=True)
class Gap:
    after: datetime  # last reading before the hole
    before: datetime  # first reading after it
    missing: int  # intervals missing

    @property
    def duration(self) -> timedelta:
        return self.before - self.after


@dataclass(frozen=True)
class Gaps:
    largest: list[Gap]
    count: int
    missing_intervals: int


def _to_datetime(value) -> datetime:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
    # SQLite returns text from a window function.
    parsed = datetime.fromisoformat(str(value))
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


# The holes found among the readings of `paired` (ts, prev_ts, and counted for pairs that count):
# the pairs further apart than an interval and a half, largest first, with the count of all of
# them and the sum of their missing intervals as window totals, in the same query.
_HOLES_SQL = """
    holes AS (
        SELECT prev_ts, ts, ROUND({ts} - {prev_ts}) AS seconds
        FROM paired WHERE prev_ts IS NOT NULL AND counted = 1
    )
    SELECT prev_ts, ts, seconds, COUNT(*) OVER (), SUM(seconds / %(interval)s - 1) OVER ()
    FROM holes WHERE seconds > %(threshold)s
    ORDER BY seconds DESC, prev_ts
    LIMIT %(limit)s
"""


def _holes(sql: str, params: dict, *, interval: int, limit: int) -> Gaps:
    params = params | {"interval": interval, "threshold": interval * 1.5, "limit": limit}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return Gaps(largest=[], count=0, missing_intervals=0)
    largest = [
        Gap(after=_to_datetime(prev), before=_to_datetime(ts), missing=max(int(round(float(sec) / interval)) - 1, 1))
        for prev, ts, sec, _, _ in rows
    ]
    return Gaps(largest=largest, count=int(rows[0][3]), missing_intervals=int(round(float(rows[0][4]))))


def meter_gaps(*, meter: Meter, start: datetime, end: datetime, limit: int = GAP_LIMIT) -> Gaps:
    """Holes between consecutive readings of [start, end) longer than the meter's interval.

    A range that the chart reads from raw readings is scanned whole (meter_gaps_scan); a longer
    one is narrowed by the roll-ups first (meter_gaps_from_rollups), so the page reads only the
    readings around the holes."""
    if (
        series_source(start=start, end=end, interval_minutes=meter.interval_minutes) == RAW
        or DAY_SECONDS % (meter.interval_minutes * 60) != 0
    ):
        return meter_gaps_scan(meter=meter, start=start, end=end, limit=limit)
    return meter_gaps_from_rollups(meter=meter, start=start, end=end, limit=limit)


def meter_gaps_scan(*, meter: Meter, start: datetime, end: datetime, limit: int = GAP_LIMIT) -> Gaps:
    """The holes of [start, end) from every reading of the range: LAG(ts) pairs each reading
    with the one before. Exact whatever the readings; reads them all."""
    interval = meter.interval_minutes * 60
    table = Reading._meta.db_table
    sql = f"""
        WITH paired AS (
            SELECT ts, LAG(ts) OVER (ORDER BY ts) AS prev_ts, 1 AS counted
            FROM {table}
            WHERE meter_id = %(meter)s AND ts >= %(start)s AND ts < %(end)s
        ), {_HOLES_SQL.format(ts=_epoch_sql("ts"), prev_ts=_epoch_sql("prev_ts"))}
    """  # noqa: S608 - only our table name and fixed expressions are interpolated
    params = {"meter": meter.pk, "start": _param(start), "end": _param(end)}
    return _holes(sql, params, interval=interval, limit=limit)


def _complete_hours_sql(rollups: str) -> str:
    """The join of a day d to its complete hours h (rows of `rollups`)."""
    if connection.vendor == "postgresql":
        # LIMIT 24 changes nothing (a day has 24 hours) but tells the planner so: from a range on
        # d.bucket alone it expects thousands of hours a day, and JIT-compiles the query (0.9 s)
        # that reads a few hundred rows. A UTC day is 24 hours ('1 day' follows the session's zone).
        return f"""CROSS JOIN LATERAL (
                SELECT bucket FROM {rollups} WHERE meter_id = %(meter)s AND granularity = 'hour'
                    AND bucket >= d.bucket AND bucket < d.bucket + interval '24 hours' AND count = %(per_hour)s
                LIMIT 24
            ) h"""  # noqa: S608 - only our table name is interpolated
    return f"""JOIN {rollups} h ON h.meter_id = %(meter)s AND h.granularity = 'hour'
                AND h.bucket >= d.bucket AND h.bucket < strftime('%%Y-%%m-%%d %%H:%%M:%%S', d.bucket, '+1 day')
                AND h.count = %(per_hour)s"""  # noqa: S608 - only our table name is interpolated


def _stretch_pairs_sql(readings: str) -> str:
    """Each reading of each stretch with the one before it in the stretch, and whether the pair
    counts (its later reading lies in the stretch itself, not in the widening)."""
    if connection.vendor == "postgresql":
        # LAG inside a LATERAL subquery runs over the index scan of one stretch in ts order: no
        # sort of all the stretches' readings (a sort that made a range read whole cost twice a scan).
        return f"""
            SELECT p.ts, p.prev_ts, CASE WHEN p.ts >= s.lo THEN 1 ELSE 0 END AS counted
            FROM stretches s CROSS JOIN LATERAL (
                SELECT ts, LAG(ts) OVER (ORDER BY ts) AS prev_ts FROM {readings}
                WHERE meter_id = %(meter)s AND ts >= s.read_lo AND ts < s.read_hi
            ) p"""  # noqa: S608 - only our table name is interpolated
    return f"""
            SELECT r.ts, LAG(r.ts) OVER (PARTITION BY s.lo ORDER BY r.ts) AS prev_ts,
                CASE WHEN r.ts >= s.lo THEN 1 ELSE 0 END AS counted
            FROM stretches s JOIN {readings} r ON r.meter_id = %(meter)s
                AND r.ts >= s.read_lo AND r.ts < s.read_hi"""  # noqa: S608 - only our table name is interpolated


def meter_gaps_from_rollups(*, meter: Meter, start: datetime, end: datetime, limit: int = GAP_LIMIT) -> Gaps:
    """The holes of [start, end), reading only the readings around them. One query.

    A UTC day (or hour) whose roll-up counts exactly the intervals it holds (86,400 s / interval)
    is complete: readings on the meter's interval grid fill every one of its slots, so no hole
    lies inside it. The rest of the range (the stretches between complete days and hours, which
    is everything the roll-ups do not cover) is read from the readings, each stretch widened by
    one hour (or day) on either side so that it holds the readings that open and close its holes,
    and LAG pairs the readings of each stretch. A pair counts in the stretch where its later
    reading lies, so a pair seen by two widened stretches counts once.

    The days that are not complete are narrowed to their complete hours, while they are at most
    INCOMPLETE_DAYS_MAX of the range; beyond, the range is read whole (one stretch), as the scan.

    The result equals meter_gaps_scan for readings on a grid of the meter's interval (whatever
    its offset, and with holes of any length, DST changes, re-uploads), and for a range without
    roll-ups (read whole). It may differ only for readings off such a grid, bunched so that a day
    or hour counts the right number of readings and yet holds a hole (say twelve 5-minute
    readings in the first 12 minutes of an hour): short ranges are read with meter_gaps_scan,
    which is exact for any readings. The interval must divide a day; when it divides an hour, the
    incomplete days are narrowed to hours, otherwise read whole."""
    interval = meter.interval_minutes * 60
    by_hour = HOUR_SECONDS % interval == 0
    pad = HOUR_SECONDS if by_hour else DAY_SECONDS
    rollups, readings = ReadingRollup._meta.db_table, Reading._meta.db_table
    epoch = _epoch_sql
    hours = ""
    if by_hour:
        hours = f"""
            UNION ALL
            SELECT {epoch("h.bucket")}, {epoch("h.bucket")} + {HOUR_SECONDS}
            FROM days d {_complete_hours_sql(rollups)}
            WHERE d.complete = 0 AND (SELECT narrows FROM worth)
        """  # noqa: S608 - only our table name and fixed expressions are interpolated
    # A stretch [until, lo) is read over [until - pad, lo + pad), within [start, end).
    read_lo = f"CASE WHEN until - {pad} < %(start_epoch)s THEN %(start_epoch)s ELSE until - {pad} END"
    read_hi = f"CASE WHEN lo + {pad} > %(end_epoch)s THEN %(end_epoch)s ELSE lo + {pad} END"
    # complete: the complete days and hours as [lo, hi) in epoch seconds, with two empty ones at
    # start and end; covered: each with the furthest end of those before it, so that a gap
    # between them is a stretch. The days' test is an equality (complete = 0 or 1), which the
    # planner expects to hold for few rows: with count <> n it expects nearly every day to be
    # incomplete, thousands of stretches, and JIT-compiles a query of a few milliseconds (0.9 s).
    sql = f"""
        WITH days AS (
            SELECT bucket, CASE WHEN count = %(per_day)s THEN 1 ELSE 0 END AS complete FROM {rollups}
            WHERE meter_id = %(meter)s AND granularity = 'day' AND bucket >= %(day0)s AND bucket < %(day1)s
        ), worth AS (
            SELECT COUNT(*) <= %(most_incomplete)s AS narrows FROM days WHERE complete = 0
        ), complete AS (
            SELECT {epoch("bucket")} AS lo, {epoch("bucket")} + {DAY_SECONDS} AS hi
            FROM days WHERE complete = 1 AND (SELECT narrows FROM worth)
            {hours}
            UNION ALL SELECT %(start_epoch)s, %(start_epoch)s
            UNION ALL SELECT %(end_epoch)s, %(end_epoch)s
        ), covered AS (
            SELECT lo, MAX(hi) OVER (ORDER BY lo ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS until
            FROM complete
        ), stretches AS (
            SELECT {_from_epoch_sql("until")} AS lo, {_from_epoch_sql(read_lo)} AS read_lo,
                {_from_epoch_sql(read_hi)} AS read_hi
            FROM covered WHERE lo > until AND lo > %(start_epoch)s AND until < %(end_epoch)s
        ), paired AS ({_stretch_pairs_sql(readings)}
        ), {_HOLES_SQL.format(ts=epoch("ts"), prev_ts=epoch("prev_ts"))}
    """  # noqa: S608 - only our table names and fixed expressions are interpolated
    params = {
        "meter": meter.pk,
        "start_epoch": start.timestamp(),
        "end_epoch": end.timestamp(),
        "day0": _param(_floor_to(start, RollupGranularity.DAY)),
        "day1": _param(end),
        "per_day": DAY_SECONDS // interval,
        "per_hour": HOUR_SECONDS // interval,
        "most_incomplete": math.ceil((end - start).total_seconds() / DAY_SECONDS * INCOMPLETE_DAYS_MAX),
    }
    return _holes(sql, params, interval=interval, limit=limit)


@dataclass(frozen=True)
class Acknowledged:
    target: str
    label: str
    cursor_ts: datetime | None
    finished_at: datetime | None
    upload_id: int | None


def meter_last_acknowledged(*, meter: Meter) -> list[Acknowledged]:
    """Per target, the last instant the vendor acknowledged from a delivered push of this
    meter, and when that push finished. One small query per target (three in all): a
    single query with correlated subqueries grew with the square of the meter's pushes."""
    result = []
    for value, label in Target.choices:
        row = (
            Delivery.objects.filter(meter=meter, target=value, status=DeliveryStatus.DELIVERED, cursor_ts__isnull=False)
            .order_by("-cursor_ts", "-finished_at", "-id")
            .values("cursor_ts", "finished_at", "upload_id")
            .first()
        )
        result.append(
            Acknowledged(
                target=value,
                label=label,
                cursor_ts=row["cursor_ts"] if row else None,
                finished_at=row["finished_at"] if row else None,
                upload_id=row["upload_id"] if row else None,
            )
        )
    return result


# --- Bills: periods, drawn as bars from start to end ------------------------------------

BILLS_SHOWN = 36
BILL_CHART = {"width": 1000, "height": 220, "top": 10, "bottom": 24}


@dataclass(frozen=True)
class BillBar:
    start_date: object
    end_date: object
    energy_kwh: float
    days: int
    per_day: float
    # SVG geometry in the chart's own units (viewBox 0 0 width height).
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BillChart:
    bars: list[BillBar]
    total: int  # bills stored for the meter
    first: object = None
    last: object = None
    max_per_day: float = 0.0
    ticks: tuple = ()


def meter_bills(*, meter: Meter, limit: int = BILLS_SHOWN) -> BillChart:
    """The meter's latest bills as bars spanning start to end, sized by energy per day so that
    periods of different lengths compare (a bill's height is its average daily use)."""
    from uploads.models import Bill

    qs = Bill.objects.filter(meter=meter)
    total = qs.count()
    rows = list(qs.order_by("-start_date").values_list("start_date", "end_date", "energy_kwh")[:limit])[::-1]
    if not rows:
        return BillChart(bars=[], total=total)
    first, last = rows[0][0], max(r[1] for r in rows)
    span_days = max((last - first).days, 1)
    per_day = [kwh / max((end - start).days, 1) for start, end, kwh in rows]
    top = max(max(per_day), 0.0) or 1.0
    w, h = BILL_CHART["width"], BILL_CHART["height"]
    plot = h - BILL_CHART["top"] - BILL_CHART["bottom"]
    base = BILL_CHART["top"] + plot
    bars = []
    for (start, end, kwh), daily in zip(rows, per_day, strict=True):
        x = w * (start - first).days / span_days
        width = w * (end - start).days / span_days
        height = plot * max(daily, 0.0) / top
        # A 1-unit gap between adjacent bars keeps each period visible.
        bars.append(
            BillBar(start, end, kwh, (end - start).days, daily, round(x, 2), round(base - height, 2),
                    round(max(width - 1, 0.5), 2), round(height, 2))
        )  # fmt: skip
    years = sorted({r[0].year for r in rows} | {last.year})
    ticks = tuple(
        (round(w * (d - first).days / span_days, 2), str(d.year))
        for d in (first.replace(year=y, month=1, day=1) for y in years)
        if first <= d <= last
    )
    return BillChart(bars=bars, total=total, first=first, last=last, max_per_day=top, ticks=ticks)
