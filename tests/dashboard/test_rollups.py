"""Hourly and daily roll-ups: equal to the aggregates of the stored readings after uploads,
overlapping re-uploads and deletions; the meter chart reads them for long ranges."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dashboard import selectors as dash
from tests import factories
from tests.dashboard.fixtures import T0
from tests.dashboard.test_query_counts import MAX_QUERIES
from uploads.models import Reading, ReadingRollup
from uploads.parsing.rows import MeterInfo, ReadingRow
from uploads.services import ingest_storage, rollups


def expected_rollups(meter) -> dict:
    """Per (granularity, bucket): count, sum, min, max computed in Python from the readings."""
    groups = defaultdict(list)
    for ts, value in Reading.objects.filter(meter=meter).values_list("ts", "value"):
        ts = ts.astimezone(UTC)
        groups["hour", ts.replace(minute=0, second=0, microsecond=0)].append(value)
        groups["day", ts.replace(hour=0, minute=0, second=0, microsecond=0)].append(value)
    return {key: (len(v), round(sum(v), 6), min(v), max(v)) for key, v in groups.items()}


def stored_rollups(meter) -> dict:
    return {
        (r.granularity, r.bucket.astimezone(UTC)): (r.count, round(r.total, 6), r.low, r.high)
        for r in ReadingRollup.objects.filter(meter=meter)
    }


def store(meter, start, count, value, *, minutes=15, upload_id=None) -> None:
    info = MeterInfo(id=meter.pk, label=meter.name, tz=ZoneInfo("UTC"), interval_minutes=minutes, production=False)
    rows = (
        ReadingRow(line=i + 2, meter=info, ts=start + timedelta(minutes=minutes * i), value=value(i), extra=None)
        for i in range(count)
    )
    ingest_storage.readings_upsert(rows=rows, upload_id=upload_id)


def test_it_rolls_up_stored_readings_by_hour_and_day(meter, other_meter):
    # 3 days and a bit, starting mid-hour, so the first and last hours and days are partial.
    store(meter, T0 + timedelta(minutes=45), 300, lambda i: float(i % 11))
    store(other_meter, T0, 10, lambda i: 100.0)
    got = stored_rollups(meter)
    assert got == expected_rollups(meter)
    assert sum(1 for g, _ in got if g == "day") == 4
    assert got["hour", T0] == (1, 0.0, 0.0, 0.0)  # 00:45 only
    assert got["day", T0][0] == 96 - 3
    # Another meter's rows stay apart.
    other = stored_rollups(other_meter)
    assert other == expected_rollups(other_meter)
    assert other["day", T0] == (10, 1000.0, 100.0, 100.0) and other["hour", T0 + timedelta(hours=2)][0] == 2


def test_it_keeps_rollups_exact_after_an_overlapping_re_upload(meter):
    store(meter, T0, 96 * 3, lambda i: 1.0)
    # A second file overlapping the last day and a half, with other values: updated, not added.
    store(meter, T0 + timedelta(days=1, hours=12), 96 * 2, lambda i: 2.5)
    got = stored_rollups(meter)
    assert got == expected_rollups(meter)
    assert got["day", T0 + timedelta(days=1)] == (96, 48 * 1.0 + 48 * 2.5, 1.0, 2.5)
    assert got["day", T0 + timedelta(days=3)] == (48, 48 * 2.5, 2.5, 2.5)
    # The same file again changes nothing.
    store(meter, T0 + timedelta(days=1, hours=12), 96 * 2, lambda i: 2.5)
    assert stored_rollups(meter) == got


def test_it_recomputes_rollups_when_readings_are_deleted(meter):
    store(meter, T0, 96 * 4, lambda i: float(i))
    deleted = rollups.readings_delete(
        meter_id=meter.pk, start=T0 + timedelta(days=1, hours=6), end=T0 + timedelta(days=3)
    )
    assert deleted == 96 + 72
    got = stored_rollups(meter)
    assert got == expected_rollups(meter)
    assert ("day", T0 + timedelta(days=2)) not in got  # emptied buckets are removed
    assert ("hour", T0 + timedelta(days=1, hours=6)) not in got
    assert got["day", T0 + timedelta(days=1)][0] == 24
    rollups.readings_delete(meter_id=meter.pk)
    assert not ReadingRollup.objects.filter(meter=meter).exists()


def test_it_rebuilds_rollups_from_the_readings(meter):
    store(meter, T0, 500, lambda i: float(i % 7))
    expected = stored_rollups(meter)
    ReadingRollup.objects.all().delete()
    rollups.rollups_rebuild()
    assert stored_rollups(meter) == expected == expected_rollups(meter)


@pytest.mark.parametrize(
    ("days", "minutes", "source"),
    [(30, 15, "raw"), (120, 15, "hour"), (30, 1, "hour"), (2 * 365, 15, "day")],
)
def test_it_chooses_the_source_of_the_chart_by_range(days, minutes, source):
    end = T0 + timedelta(days=days)
    assert dash.series_source(start=T0, end=end, interval_minutes=minutes) == source
    # Whatever the source, it holds at most about SOURCE_ROWS_MAX rows for the range.
    per_row = {"raw": minutes * 60, "hour": 3600, "day": 86400}[source]
    assert (end - T0).total_seconds() / per_row <= dash.SOURCE_ROWS_MAX


def raw_series(meter, start, end, bucket_seconds) -> tuple[list, list, list, int]:
    """The chart's buckets computed in Python from the raw readings."""
    groups = defaultdict(list)
    for ts, value in Reading.objects.filter(meter=meter, ts__gte=start, ts__lt=end).values_list("ts", "value"):
        groups[int((ts - start).total_seconds() // bucket_seconds)].append(value)
    keys = sorted(groups)
    return (
        [round(sum(groups[k]) / len(groups[k]), 4) for k in keys],
        [round(min(groups[k]), 4) for k in keys],
        [round(max(groups[k]), 4) for k in keys],
        sum(len(v) for v in groups.values()),
    )


def test_the_meter_page_reads_hourly_rollups_for_a_quarter_and_they_match_the_readings(owner_client, meter):
    store(meter, T0, 96 * 120, lambda i: round(2 + (i % 37) / 10, 3))
    response = owner_client.get(f"/meters/{meter.pk}/data/?from=2025-03-01&to=2025-06-28")
    series = response.context["series"]
    assert series.source == "hour"
    assert len(series.labels) <= dash.MAX_POINTS and series.bucket_seconds % 3600 == 0
    start = datetime(2025, 3, 1, tzinfo=UTC)
    avg, low, high, count = raw_series(meter, start, start + timedelta(days=120), series.bucket_seconds)
    assert (series.avg, series.low, series.high, series.readings) == (avg, low, high, count)
    assert series.labels[1] == (start + timedelta(seconds=series.bucket_seconds)).isoformat()


def test_the_meter_page_reads_daily_rollups_for_years(owner_client, meter):
    hourly = factories.make_meter(meter.site, name="Hourly", interval_minutes=60)
    store(hourly, T0, 24 * 365 * 2, lambda i: float(i % 24), minutes=60)
    response = owner_client.get(f"/meters/{hourly.pk}/data/?from=2025-03-01&to=2027-02-28")
    series = response.context["series"]
    assert series.source == "day"
    assert series.bucket_seconds == 86400 and len(series.labels) == 730
    assert series.readings == 24 * 730
    assert set(series.avg) == {11.5} and set(series.low) == {0.0} and set(series.high) == {23.0}
    # A short range of the same meter reads the readings themselves.
    response = owner_client.get(f"/meters/{hourly.pk}/data/?from=2025-03-01&to=2025-03-02")
    assert response.context["series"].source == "raw"
    assert response.context["series"].avg == [float(h) for h in range(24)] * 2


def test_the_meter_page_query_count_does_not_grow_with_the_range(owner_client, meter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    store(meter, T0, 96 * 400, lambda i: 1.0)
    counts, sources = [], []
    for to in ("2025-03-02", "2025-07-01", "2026-06-01"):
        with CaptureQueriesContext(connection) as ctx:
            response = owner_client.get(f"/meters/{meter.pk}/data/?from=2025-03-01&to={to}")
        counts.append(len(ctx))
        sources.append(response.context["series"].source)
    assert sources == ["raw", "hour", "day"]
    assert counts[0] == counts[1] == counts[2] <= MAX_QUERIES


def test_the_migration_backfills_rollups_of_existing_readings(meter, other_meter):
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("uploads.migrations.0009_rollups_reading_rollup")
    store(meter, T0 + timedelta(minutes=30), 400, lambda i: float(i % 13))
    store(other_meter, T0, 50, lambda i: 3.0)
    ReadingRollup.objects.all().delete()  # as before the migration: readings without roll-ups
    # The backfill needs only the editor's connection (SQLite refuses a schema editor inside a test's transaction).
    migration.backfill_rollups(apps, SimpleNamespace(connection=connection))
    assert stored_rollups(meter) == expected_rollups(meter)
    assert stored_rollups(other_meter) == expected_rollups(other_meter)
    assert ReadingRollup.objects.filter(meter=meter, granularity="day").count() == 5
