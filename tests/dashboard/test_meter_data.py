from datetime import UTC, datetime, timedelta

import pytest

from dashboard import selectors as dash
from tests import factories
from tests.dashboard.fixtures import T0


def test_it_charts_the_last_30_days_of_the_meters_data_by_default(owner_client, meter):
    # 40 days of 15-minute data: the default range is the last 30 days, 2,880 readings,
    # which do not fit 2,000 points: two intervals per bucket.
    factories.make_readings(meter, T0, 40 * 96)
    response = owner_client.get(f"/meters/{meter.pk}/data/")
    assert response.status_code == 200
    series = response.context["series"]
    assert series.readings == 30 * 96
    assert series.bucket_seconds == 30 * 60
    assert len(series.labels) == 30 * 48 <= dash.MAX_POINTS
    assert series.labels[-1] == (T0 + timedelta(days=40) - timedelta(minutes=30)).isoformat()
    html = response.content.decode()
    assert 'data-chart="meter-chart-data-' in html and 'type="application/json"' in html


def test_it_never_sends_more_than_2000_points(meter):
    factories.make_readings(meter, T0, 5000, interval_minutes=1)
    series = dash.meter_series(meter=meter, start=T0, end=T0 + timedelta(minutes=5000))
    assert len(series.labels) <= dash.MAX_POINTS
    assert series.readings == 5000
    # Buckets average the readings they hold; min and max frame them.
    assert all(lo <= a <= hi for lo, a, hi in zip(series.low, series.avg, series.high, strict=True))


def test_it_keeps_one_point_per_reading_when_they_fit(meter):
    factories.make_readings(meter, T0, 96, value=float)
    series = dash.meter_series(meter=meter, start=T0, end=T0 + timedelta(days=1))
    assert series.bucket_seconds == 15 * 60
    assert series.avg == [float(i) for i in range(96)]
    assert series.labels[0] == T0.isoformat()


def test_it_charts_a_chosen_range_of_whole_days(owner_client, meter):
    factories.make_readings(meter, T0, 10 * 96)
    response = owner_client.get(f"/meters/{meter.pk}/data/?from=2025-03-03&to=2025-03-04")
    assert response.context["series"].readings == 2 * 96
    assert response.context["start"] == datetime(2025, 3, 3, tzinfo=UTC)
    assert 'value="2025-03-04"' in response.content.decode()


def test_it_answers_htmx_with_the_partial_alone(owner_client, meter):
    factories.make_readings(meter, T0, 10)
    html = owner_client.get(f"/meters/{meter.pk}/data/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and f'id="meter-data-{meter.pk}"' in html


def test_it_finds_the_holes_with_their_missing_intervals(owner_client, meter):
    # Holes: 3 intervals missing after #9 (10..12), 1 after #49 (50), 10 after #79 (80..89).
    skip = [*range(10, 13), 50, *range(80, 90)]
    factories.make_readings(meter, T0, 200, skip=skip)
    gaps = dash.meter_gaps(meter=meter, start=T0, end=T0 + timedelta(days=3))
    assert gaps.count == 3
    assert gaps.missing_intervals == 14
    assert [g.missing for g in gaps.largest] == [10, 3, 1]
    assert gaps.largest[0].after == T0 + timedelta(minutes=15 * 79)
    assert gaps.largest[0].before == T0 + timedelta(minutes=15 * 90)
    html = owner_client.get(f"/meters/{meter.pk}/data/").content.decode()
    assert "3 holes" in html and "<strong>14</strong> missing intervals" in html


def test_it_lists_only_the_20_largest_holes_but_counts_them_all(meter):
    skip = list(range(5, 250, 5))  # 49 one-interval holes
    factories.make_readings(meter, T0, 250, skip=skip)
    gaps = dash.meter_gaps(meter=meter, start=T0, end=T0 + timedelta(days=5))
    assert len(gaps.largest) == 20
    assert gaps.count == 49 and gaps.missing_intervals == 49


def test_it_reports_no_holes_in_regular_data(meter):
    factories.make_readings(meter, T0, 100)
    assert dash.meter_gaps(meter=meter, start=T0, end=T0 + timedelta(days=2)).count == 0


def test_it_shows_the_last_packet_each_vendor_acknowledged(owner_client, org, owner, meter):
    first = factories.make_upload(org, owner, meter=meter)
    second = factories.make_upload(org, owner, meter=meter)
    done = datetime(2025, 4, 2, 8, 0, tzinfo=UTC)
    factories.make_delivery(first, meter, status="delivered", cursor_ts=T0 + timedelta(days=1), finished_at=done)
    factories.make_delivery(
        second, meter, status="delivered", cursor_ts=T0 + timedelta(days=9), finished_at=done + timedelta(hours=1)
    )
    # A failed push that went further does not count: the vendor did not acknowledge it all.
    factories.make_delivery(
        second, meter, target="wattcarbon_intervals", status="failed", cursor_ts=T0 + timedelta(days=20)
    )
    acknowledged = {a.target: a for a in dash.meter_last_acknowledged(meter=meter)}
    assert acknowledged["wattics"].cursor_ts == T0 + timedelta(days=9)
    assert acknowledged["wattics"].upload_id == second.pk
    assert acknowledged["wattcarbon_intervals"].cursor_ts is None
    html = owner_client.get(f"/meters/{meter.pk}/data/").content.decode()
    assert "2025-03-10 00:00 UTC" in html and "never" in html


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_shows_meter_data_to_every_member(client, request, who, meter):
    factories.make_readings(meter, T0, 10)
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/meters/{meter.pk}/data/")
    assert response.status_code == 200 and response.context["series"].readings == 10


def test_it_hides_other_organizations_meters(outsider_client, meter):
    assert outsider_client.get(f"/meters/{meter.pk}/data/").status_code == 404


def test_it_shows_an_empty_state_for_a_meter_without_readings(owner_client, meter):
    html = owner_client.get(f"/meters/{meter.pk}/data/").content.decode()
    assert "No readings stored in this range" in html


def test_the_meter_page_partial_lazy_loads_the_panel(meter, rf):
    from django.template.loader import render_to_string

    html = render_to_string("sites/_meter_data.html", {"meter": meter})
    assert f'hx-get="/meters/{meter.pk}/data/"' in html and 'hx-trigger="load"' in html


def test_the_meter_page_partial_renders_no_comment_text(meter):
    from django.template.loader import render_to_string

    assert "{#" not in render_to_string("sites/_meter_data.html", {"meter": meter})
