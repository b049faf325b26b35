"""The CalTRACK baseline preflight of meter-based devices."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sites.selectors import device_preflight
from tests import factories

LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def site(org):
    return factories.make_site(org, timezone="America/Los_Angeles")


def daily(meter, first_day: date, days: int, skip=()):
    """One reading a day at local noon (hourly readings would give the same verdict, slower)."""
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=LA) + timedelta(hours=12)
    factories.make_readings(meter, start, days, 1440, skip=skip)


def test_it_passes_a_full_year_before_the_intervention_date(site):
    meter = factories.make_meter(site)
    device = factories.make_device(
        site, kind="energy_efficiency_eemetered", fields={"interventionDate": "2024-03-01"}, meters=[meter]
    )
    daily(meter, date(2023, 3, 2), 365)
    preflight = device_preflight(device=device)
    assert preflight.ok and preflight.end == date(2024, 3, 1) and preflight.start == date(2023, 3, 2)
    assert preflight.meters[0].days_present == 365 and preflight.meters[0].missing_ranges == []


def test_it_fails_below_329_days_and_lists_the_missing_ranges(site):
    meter = factories.make_meter(site)
    device = factories.make_device(
        site, kind="energy_efficiency_eemetered", fields={"interventionDate": "2024-03-01"}, meters=[meter]
    )
    # 37 days missing: 10 in April, 27 at the end.
    daily(meter, date(2023, 3, 2), 338, skip=range(30, 40))
    result = device_preflight(device=device).meters[0]
    assert result.days_present == 328 and not result.ok
    assert result.missing_ranges == [
        (date(2023, 4, 1), date(2023, 4, 10)),
        (date(2024, 2, 3), date(2024, 2, 29)),
    ]


def test_it_passes_at_exactly_329_days(site):
    meter = factories.make_meter(site)
    device = factories.make_device(site, kind="tracking_building", fields={"buildingType": "office"}, meters=[meter])
    # No intervention date: the baseline ends at the commenced operation date (2022-08-01).
    daily(meter, date(2021, 8, 1), 329)
    preflight = device_preflight(device=device)
    assert preflight.end == date(2022, 8, 1) and preflight.end_source == "commenced operation date"
    assert preflight.ok and preflight.meters[0].days_present == 329


def test_it_judges_each_meter_in_one_query(site):
    good, short = factories.make_meter(site), factories.make_meter(site)
    device = factories.make_device(
        site, kind="energy_efficiency_eemetered", fields={"interventionDate": "2024-03-01"}, meters=[good, short]
    )
    daily(good, date(2023, 3, 2), 365)
    daily(short, date(2023, 3, 2), 100)
    with CaptureQueriesContext(connection) as queries:
        preflight = device_preflight(device=device)
    assert len(queries) == 3  # the meters, one aggregate over readings by day, the bills in the baseline
    assert not preflight.ok
    assert [m.ok for m in preflight.meters] == [m.meter == good for m in preflight.meters]


def test_it_ignores_kinds_that_are_not_meter_based(site):
    assert device_preflight(device=factories.make_device(site)) is None


def test_it_shows_the_verdict_on_the_device_page(owner_client, site):
    meter = factories.make_meter(site, name="Main meter")
    device = factories.make_device(
        site, kind="energy_efficiency_eemetered", fields={"interventionDate": "2024-03-01"}, meters=[meter]
    )
    daily(meter, date(2023, 3, 2), 200)
    html = owner_client.get(reverse("sites:device_detail", args=[device.pk])).content.decode()
    assert "Not enough data" in html and "200 / 365" in html and "2023-09-18 – 2024-02-29" in html


def _bill(meter, start: date, end: date, kwh: float = 500.0):
    from uploads.models import Bill

    return Bill.objects.create(meter=meter, start_date=start, end_date=end, energy_kwh=kwh)


def test_it_counts_the_days_inside_stored_bill_periods(site):
    from tests.uploads.bill_files import read_days

    meter = factories.make_meter(site, meter_type="gas", reading_kind="billing")
    device = factories.make_device(
        site, kind="energy_efficiency_eemetered", fields={"interventionDate": "2024-01-01"}, meters=[meter]
    )
    days = read_days(date(2022, 12, 20))  # monthly reads from before the baseline to after it
    for first, last in zip(days, days[1:], strict=False):
        _bill(meter, first, last)
    result = device_preflight(device=device)
    assert result.ok and result.meters[0].days_present == 365 and result.meters[0].missing_ranges == []
    assert result.meters[0].bills == 13


def test_it_says_which_bill_periods_are_missing(site, client, owner):
    meter = factories.make_meter(site, meter_type="gas", reading_kind="billing")
    device = factories.make_device(
        site, kind="energy_efficiency_eemetered", fields={"interventionDate": "2024-01-01"}, meters=[meter]
    )
    # The baseline is 2023-01-01 .. 2023-12-31; the bill of 2023-05-03 .. 2023-06-02 is missing.
    periods = [(date(2022, 12, 2), date(2023, 1, 3)), (date(2023, 1, 3), date(2023, 5, 3)),
               (date(2023, 6, 2), date(2024, 1, 2))]  # fmt: skip
    for first, last in periods:
        _bill(meter, first, last)
    result = device_preflight(device=device).meters[0]
    assert result.missing_ranges == [(date(2023, 5, 3), date(2023, 6, 1))]
    assert result.days_present == 365 - 30 and result.ok
    client.force_login(owner)
    page = client.get(reverse("sites:device_detail", args=[device.pk])).content.decode()
    assert "2023-05-03 – 2023-06-01" in page and "incl. 3 bills" in page
