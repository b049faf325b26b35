"""Holes found through the roll-ups equal the holes of the full scan of the readings.

Each case stores a generated series (holes of various lengths, on hour and day edges, over
days, at the range's edges, DST days, 5/15/30/60-minute and daily intervals, a grid offset from
the hour), rebuilds its roll-ups, and compares meter_gaps_from_rollups with meter_gaps_scan over
several ranges, every hole listed."""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dashboard import selectors as dash
from tests.dashboard.fixtures import T0
from uploads.models import Reading
from uploads.services import rollups

ALL = 100_000  # list every hole, so that the whole lists compare


def store(meter, instants) -> None:
    Reading.objects.bulk_create([Reading(meter=meter, ts=ts, value=1.0) for ts in sorted(set(instants))])
    rollups.rollups_rebuild(meter_id=meter.pk)


def series(start: datetime, count: int, minutes: int, *, skip=()) -> list[datetime]:
    skip = set(skip)
    return [start + timedelta(minutes=minutes * i) for i in range(count) if i not in skip]


def ranges_of(instants: list[datetime], minutes: int) -> list[tuple[datetime, datetime]]:
    """The whole data, and ranges cut at awkward places: mid-hour, mid-day, inside holes."""
    first, last = min(instants), max(instants)
    step = timedelta(minutes=minutes)
    return [
        (first, last + step),
        (first - timedelta(days=2), last + timedelta(days=2)),
        (first + timedelta(hours=5, minutes=7), last - timedelta(hours=7, minutes=31)),
        (first + timedelta(days=1, hours=13), first + timedelta(days=9, minutes=1)),
        (first + timedelta(days=3), last + step),
    ]


def assert_same_gaps(meter, instants, *, limit=ALL) -> int:
    """Both ways agree over every range; returns the holes of the whole range (so a case can
    check it holds some)."""
    for start, end in ranges_of(instants, meter.interval_minutes):
        scanned = dash.meter_gaps_scan(meter=meter, start=start, end=end, limit=limit)
        rolled = dash.meter_gaps_from_rollups(meter=meter, start=start, end=end, limit=limit)
        assert rolled == scanned, (start, end)
    first, last = min(instants), max(instants)
    return dash.meter_gaps_scan(meter=meter, start=first, end=last + timedelta(days=1)).count


def narrowed_by_hours(meter, instants) -> bool:
    """Whether few enough days of the data are incomplete for the query to narrow them to hours
    (rather than read the range whole): the cases below must try that path."""
    per_day = 1440 // meter.interval_minutes
    days = defaultdict(int)
    for ts in instants:
        days[ts.date()] += 1
    first, last = min(days), max(days)
    incomplete = sum(1 for n in days.values() if n != per_day)
    return incomplete <= ((last - first).days + 1) * dash.INCOMPLETE_DAYS_MAX


def holes_case(minutes: int) -> list[datetime]:
    """About 30 days of readings with holes of 1 to 40 intervals, some at day and hour edges,
    one over two whole days, and the range's first and last hours incomplete."""
    per_hour, per_day = 60 // minutes if minutes <= 60 else 1, 1440 // minutes
    count = per_day * 30
    skip = {1, 2}  # near the start
    skip |= {per_day - 1, per_day}  # across the first midnight
    skip |= set(range(per_day * 2 - 3, per_day * 2))  # the last intervals of a day
    skip |= set(range(per_day * 3, per_day * 3 + per_hour))  # a whole first hour of a day
    skip |= {per_day * 4 + per_hour * 5 - 1}  # the last interval of an hour
    skip |= set(range(per_day * 5 + 7, per_day * 7 + 11))  # over two whole days
    skip |= set(range(per_day * 8, per_day * 8 + 40))
    skip |= {count - 2}  # near the end
    return series(T0 + timedelta(minutes=minutes * 3), count, minutes, skip=skip)


@pytest.mark.parametrize("minutes", [5, 15, 30, 60])
def test_it_finds_the_same_holes_from_rollups_as_the_scan(meter, minutes):
    meter.interval_minutes = minutes
    meter.save()
    instants = holes_case(minutes)
    store(meter, instants)
    assert narrowed_by_hours(meter, instants)
    assert assert_same_gaps(meter, instants) >= 6


@pytest.mark.parametrize("minutes", [5, 15, 60])
def test_it_finds_the_same_random_holes_from_rollups_as_the_scan(meter, minutes):
    meter.interval_minutes = minutes
    meter.save()
    rng = random.Random(minutes)
    per_day = 1440 // minutes
    count = per_day * 90
    skip: set[int] = set()
    for _ in range(30):
        at = rng.randrange(count)
        skip |= set(range(at, at + rng.choice([1, 1, 1, 2, 3, 5, 12, per_day // 2])))
    instants = series(T0, count, minutes, skip=skip)
    store(meter, instants)
    assert narrowed_by_hours(meter, instants)
    assert assert_same_gaps(meter, instants) > 20
    # The page's list of the 20 largest, ties ordered the same way.
    assert assert_same_gaps(meter, instants, limit=dash.GAP_LIMIT) > 20


def test_it_finds_the_same_holes_in_daily_readings(meter):
    meter.interval_minutes = 1440
    meter.save()
    instants = series(T0, 400, 1440, skip={0, 1, 40, 41, 42, 100, 399})
    store(meter, instants)
    assert assert_same_gaps(meter, instants) == 2


def test_it_finds_the_same_holes_on_a_grid_offset_from_the_hour(meter):
    # 15-minute readings at :07, :22, :37 and :52.
    instants = series(T0 + timedelta(minutes=7), 96 * 10, 15, skip={3, 4, 95, 96, 97, *range(300, 420)})
    store(meter, instants)
    assert narrowed_by_hours(meter, instants)
    assert assert_same_gaps(meter, instants) == 3


def test_it_finds_the_same_holes_over_dst_days(meter):
    # A local series of Dublin wall-clock quarter hours over both 2025 changes, stored in UTC:
    # the spring hour that does not exist doubles up (dropped: unique instants), the autumn
    # hour that repeats is there once (a hole of an hour), plus a hole on each change day.
    dublin = ZoneInfo("Europe/Dublin")
    instants = []
    for start in (datetime(2025, 3, 25), datetime(2025, 10, 21)):
        for i in range(96 * 10):
            if i in {96 * 5 + 40, 96 * 5 + 41}:
                continue
            instants.append((start + timedelta(minutes=15 * i)).replace(tzinfo=dublin).astimezone(UTC))
    store(meter, instants)
    assert narrowed_by_hours(meter, instants)
    assert assert_same_gaps(meter, instants) >= 3


def test_it_finds_no_holes_in_complete_data_from_rollups(meter):
    instants = series(T0, 96 * 40, 15)
    store(meter, instants)
    assert assert_same_gaps(meter, instants) == 0


def test_it_scans_readings_when_rollups_are_missing(meter):
    # Readings stored without their roll-ups (before the backfill, say): the range is read whole.
    Reading.objects.bulk_create([Reading(meter=meter, ts=ts, value=1.0) for ts in series(T0, 960, 15, skip={9, 500})])
    gaps = dash.meter_gaps_from_rollups(meter=meter, start=T0, end=T0 + timedelta(days=20))
    assert gaps.count == 2 and gaps.missing_intervals == 2


def test_the_meter_page_reads_holes_through_rollups_for_long_ranges(meter, monkeypatch):
    instants = series(T0, 96 * 150, 15, skip={5, *range(9000, 9100)})
    store(meter, instants)
    calls = []
    monkeypatch.setattr(dash, "meter_gaps_from_rollups", lambda **kw: calls.append(kw) or dash.Gaps([], 0, 0))
    dash.meter_gaps(meter=meter, start=T0, end=T0 + timedelta(days=10))
    assert calls == []  # a short range is scanned
    dash.meter_gaps(meter=meter, start=T0, end=T0 + timedelta(days=150))
    assert len(calls) == 1
    monkeypatch.undo()
    gaps = dash.meter_gaps(meter=meter, start=T0, end=T0 + timedelta(days=150))
    assert gaps.count == 2 and gaps.missing_intervals == 101
    assert gaps.largest[0].after == T0 + timedelta(minutes=15 * 8999)


def test_holes_hidden_in_a_complete_hour_of_readings_off_the_grid_need_the_scan(meter):
    # The documented limit: twelve readings bunched in the first quarter of an hour count as
    # a complete hour of 5-minute readings, so the 48-minute hole after them is not looked
    # for in that hour. Short ranges (the page's default) are scanned, and see it.
    meter.interval_minutes = 5
    meter.save()
    instants = series(T0, 12 * 24 * 3, 5)
    hour = T0 + timedelta(days=1, hours=5)
    instants = [ts for ts in instants if not hour <= ts < hour + timedelta(hours=1)]
    instants += [hour + timedelta(minutes=i) for i in range(12)]
    store(meter, instants)
    end = T0 + timedelta(days=3)
    assert dash.meter_gaps_scan(meter=meter, start=T0, end=end).count == 1
    assert dash.meter_gaps_from_rollups(meter=meter, start=T0, end=end).count == 0
    assert dash.meter_gaps(meter=meter, start=T0, end=end).count == 1


def test_it_finds_the_same_holes_when_most_days_hold_one(meter):
    # A hole every day, or every other hour: more than INCOMPLETE_DAYS_MAX of the days are
    # incomplete, and the query reads the range whole, as the scan does.
    every_day = series(T0, 96 * 30, 15, skip=set(range(7, 96 * 30, 96)))
    store(meter, every_day)
    assert not narrowed_by_hours(meter, every_day)
    assert assert_same_gaps(meter, every_day) == 30
    rollups.readings_delete(meter_id=meter.pk)
    every_other_hour = series(T0, 96 * 30, 15, skip=set(range(3, 96 * 30, 8)))
    store(meter, every_other_hour)
    assert assert_same_gaps(meter, every_other_hour) == 96 * 30 // 8
