"""WattCarbon deliveries by calling the task function directly, against the simulator."""

from datetime import UTC, date, datetime, timedelta

import pytest

from accounts.selectors import wattcarbon_account
from tests import factories
from uploads.models import Bill, DeliveryStatus
from uploads.services.deliveries import deliveries_create_for_upload, deliveries_requeue_stale
from uploads.tasks import delivery_push_task
from vendors.http import ExchangeLog
from vendors.wattcarbon import WattCarbonClient, intervals_csv

pytestmark = pytest.mark.django_db
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def wc_meter(org, vendor_credentials):
    client = WattCarbonClient(
        wattcarbon_account(credentials=vendor_credentials), ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    )
    remote = client.create_meter({"apiProvider": "manual", "meterType": "electricity", "name": "Main",
                                  "location": {"latitude": 37.78, "longitude": -122.41}})  # fmt: skip
    return factories.make_meter(factories.make_site(org), wattcarbon_id=str(remote))


def _deliver(upload):
    (delivery,) = deliveries_create_for_upload(upload=upload)
    delivery_push_task(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_the_csv_is_in_utc_with_offset():
    body = intervals_csv([(datetime(2024, 1, 1, tzinfo=UTC), 1.25)], 1.0).decode()
    assert body == "start_datetime,energy_kwh\n2024-01-01T00:00:00+00:00,1.25\n"


def test_it_uploads_intervals_in_chunks(wc_meter, wattcarbon_sim, settings):
    settings.WATTCARBON_INTERVAL_CHUNK_ROWS = 100
    delivery = _deliver(factories.make_stored_upload(wc_meter, T0, 350, targets=["wattcarbon_intervals"]))
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert (delivery.sent, delivery.acknowledged, delivery.cursor_ts) == (350, 350, T0 + timedelta(minutes=15 * 349))
    assert len(wattcarbon_sim.intervals(int(wc_meter.wattcarbon_id))) == 350
    assert delivery.exchanges.filter(url__endswith="/intervals").count() == 4


def test_a_rejected_chunk_is_recorded_with_the_vendors_message(wc_meter, wattcarbon_sim, settings, monkeypatch):
    import uploads.services.push_wattcarbon as push

    settings.WATTCARBON_INTERVAL_CHUNK_ROWS = 10
    real = push.intervals_csv

    def one_bad_chunk(rows, factor):
        body = real(rows, factor)
        return body.replace(b"2024-01-01T03:00:00+00:00", b"not-a-date") if rows[0][0].hour == 2 else body

    monkeypatch.setattr(push, "intervals_csv", one_bad_chunk)
    delivery = _deliver(factories.make_stored_upload(wc_meter, T0, 30, targets=["wattcarbon_intervals"]))
    assert delivery.status == DeliveryStatus.PARTIALLY_FAILED
    assert (delivery.acknowledged, delivery.rejected) == (20, 10)
    assert "rejected by WattCarbon" in delivery.last_error and "start_datetime" in delivery.last_error


def test_wrong_wattcarbon_credentials_fail_the_delivery(org, wc_meter, wattcarbon_sim):
    from django.core.cache import cache

    from accounts.services import credentials_update

    creds = credentials_update(organization=org, wattcarbon_api_key="wrong-key")
    # Forget the token the fixture obtained with the right key (only ours: Redis is shared).
    cache.delete(
        WattCarbonClient(
            wattcarbon_account(credentials=creds), ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
        )._token_key
    )
    delivery = _deliver(factories.make_stored_upload(wc_meter, T0, 5, targets=["wattcarbon_intervals"]))
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("WattCarbon credentials rejected")


def test_it_uploads_bills(wc_meter, wattcarbon_sim):
    upload = factories.make_upload(wc_meter.organization, meter=wc_meter, targets=["wattcarbon_bills"])
    for month in (1, 2, 3):
        Bill.objects.create(meter=wc_meter, upload=upload, start_date=date(2024, month, 1),
                            end_date=date(2024, month + 1, 1), energy_kwh=100.0 * month)  # fmt: skip
    delivery = _deliver(upload)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert (delivery.total, delivery.acknowledged) == (3, 3)
    bills = wattcarbon_sim.bills(int(wc_meter.wattcarbon_id))
    assert [b["energy_kwh"] for b in bills] == [100.0, 200.0, 300.0]


def test_the_sweep_takes_up_dead_and_lost_deliveries_only(wc_meter):
    from uploads.models import Delivery

    dead, lost, fresh = (_make(wc_meter, n) for n in range(3))
    old = datetime.now(UTC) - timedelta(hours=1)
    Delivery.objects.filter(pk=dead.pk).update(status=DeliveryStatus.PUSHING, heartbeat_at=old)
    Delivery.objects.filter(pk=lost.pk).update(updated_at=old)
    assert deliveries_requeue_stale() == sorted([dead.pk, lost.pk])
    dead.refresh_from_db()
    assert dead.status == DeliveryStatus.QUEUED
    assert deliveries_requeue_stale() == []  # once per period, not at every sweep
    fresh.refresh_from_db()
    assert fresh.status == DeliveryStatus.QUEUED


def _make(meter, n):
    upload = factories.make_stored_upload(meter, T0 + timedelta(days=10 * n), 3, targets=["wattcarbon_intervals"])
    return deliveries_create_for_upload(upload=upload)[0]


def _reupload(meter, *, value=None):
    from uploads.models import Reading

    upload = factories.make_upload(meter.organization, meter=meter, targets=["wattcarbon_intervals"])
    rows = Reading.objects.filter(meter=meter)
    rows.update(upload=upload)
    if value is not None:
        rows.update(value=value)
    return upload


def test_an_identical_reupload_is_already_at_vendor_and_up_to_date(wc_meter, wattcarbon_sim):
    first = _deliver(factories.make_stored_upload(wc_meter, T0, 60, targets=["wattcarbon_intervals"]))
    again = _deliver(_reupload(wc_meter))
    assert first.status == again.status == DeliveryStatus.DELIVERED
    assert (again.sent, again.acknowledged, again.already_at_vendor, again.rejected) == (0, 0, 60, 0)
    assert "Up to date: all 60 rows were already at the vendor" in again.note
    assert not again.exchanges.exists()
    assert len(wattcarbon_sim.intervals(int(wc_meter.wattcarbon_id))) == 60


def test_a_reupload_with_changed_values_is_sent_again(wc_meter, wattcarbon_sim):
    _deliver(factories.make_stored_upload(wc_meter, T0, 30, targets=["wattcarbon_intervals"]))
    again = _deliver(_reupload(wc_meter, value=7.5))
    assert again.status == DeliveryStatus.DELIVERED
    assert (again.sent, again.acknowledged, again.already_at_vendor) == (30, 30, 0)
    intervals = wattcarbon_sim.intervals(int(wc_meter.wattcarbon_id))
    assert len(intervals) == 30 and {float(i["energy_kwh"]) for i in intervals} == {7.5}


def test_a_repush_sends_everything_again(wc_meter, wattcarbon_sim):
    from uploads.services.deliveries import delivery_repush

    delivery = _deliver(factories.make_stored_upload(wc_meter, T0, 20, targets=["wattcarbon_intervals"]))
    delivery_repush(delivery=delivery)
    delivery_push_task(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert (delivery.sent, delivery.acknowledged, delivery.already_at_vendor) == (20, 20, 0)
    assert delivery.exchanges.filter(url__endswith="/intervals").count() == 2
