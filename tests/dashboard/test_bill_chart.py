"""Bills on the meter page: one bar per billing period, from its start to its end date."""

from datetime import date

import pytest

from dashboard.selectors import meter_bills
from tests import factories
from uploads.models import Bill

pytestmark = pytest.mark.django_db


@pytest.fixture
def gas(org):
    return factories.make_meter(factories.make_site(org), name="Gas", reading_kind="billing")


def test_bars_span_their_periods_and_their_height_is_use_per_day(gas):
    periods = [(date(2023, 12, 1), date(2024, 1, 1), 310.0), (date(2024, 1, 1), date(2024, 1, 21), 400.0),
               (date(2024, 1, 21), date(2024, 3, 1), 400.0)]  # fmt: skip
    for start, end, kwh in periods:
        Bill.objects.create(meter=gas, start_date=start, end_date=end, energy_kwh=kwh)
    chart = meter_bills(meter=gas)
    assert (chart.first, chart.last, chart.total) == (date(2023, 12, 1), date(2024, 3, 1), 3)
    a, b, c = chart.bars
    span = (date(2024, 3, 1) - date(2023, 12, 1)).days  # 91 days over 1000 units
    assert a.x == 0 and b.x == pytest.approx(1000 * 31 / span, abs=0.01)
    assert c.x + c.width == pytest.approx(1000 - 1, abs=0.01)  # a 1-unit gap ends each bar
    assert a.width == pytest.approx(1000 * 31 / span - 1, abs=0.01)
    # 10, 20 and 10 kWh per day: the 20-day bill is the tallest, twice the others.
    assert [bar.per_day for bar in chart.bars] == [10.0, 20.0, 10.0]
    assert b.height == pytest.approx(2 * a.height) and a.height == pytest.approx(c.height)
    assert chart.ticks == ((pytest.approx(1000 * 31 / span, abs=0.01), "2024"),)


def test_only_the_latest_bills_are_drawn(gas):
    for month in range(1, 13):
        Bill.objects.create(meter=gas, start_date=date(2023, month, 1),
                            end_date=date(2023 + month // 12, month % 12 + 1, 1), energy_kwh=100)  # fmt: skip
    chart = meter_bills(meter=gas, limit=4)
    assert chart.total == 12 and [b.start_date.month for b in chart.bars] == [9, 10, 11, 12]


def test_a_meter_without_bills_draws_nothing(gas):
    assert meter_bills(meter=gas).bars == []
