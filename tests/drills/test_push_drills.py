"""Reliability drills: a real worker, the simulators misbehaving over real HTTP."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.selectors import wattcarbon_account
from tests import factories
from tests.drills.support import wait_done, wait_for
from uploads.models import Delivery, DeliveryStatus, Reading
from uploads.services.deliveries import deliveries_create_for_upload, deliveries_requeue_stale
from vendors.http import ExchangeLog
from vendors.models import HttpExchange
from vendors.wattcarbon import WattCarbonClient

pytestmark = pytest.mark.worker
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def meter(org, vendor_credentials):
    return factories.make_meter(factories.make_site(org, timezone="Europe/Dublin"), wattics_stream_id="demo-elec-1")


def _assert_complete(sim, meter):
    packets = sim.packets(meter.wattics_stream_id)
    # One packet per reading, after the opening packet of the stream's register.
    expected = Reading.objects.filter(meter=meter).count() + 1
    stamps = [p["tsISO8601"] for p in packets["accepted"]]
    assert len(stamps) == expected, "lost packets"
    assert len(set(stamps)) == expected, "duplicated packets"
    assert packets["discarded_count"] == 0
    return packets


def test_a_503_storm_delays_but_loses_nothing(drill_worker, meter, wattics_sim):
    # The storm's 503s say "Retry-After: 0" (a longer Retry-After is honoured: test_push_wattics.py).
    wattics_sim.faults(fail_503=0.3, retry_after=0)
    (delivery,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 1000))
    (delivery,) = wait_done(delivery, timeout=180, worker=drill_worker)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    _assert_complete(wattics_sim, meter)
    assert HttpExchange.objects.filter(delivery=delivery, status_code=503).count() > 200


def test_a_maintenance_window_longer_than_the_first_retries(drill_worker, meter, wattics_sim):
    wattics_sim.faults(maintenance_seconds=4)
    (delivery,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 200))
    (delivery,) = wait_done(delivery, timeout=120, worker=drill_worker)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    _assert_complete(wattics_sim, meter)
    # Not hammering: the 503 says when the window ends (Retry-After: the seconds left) and
    # the delivery waits that long.
    assert 1 <= HttpExchange.objects.filter(delivery=delivery, status_code=503).count() <= 3


def test_a_worker_killed_mid_push_loses_and_duplicates_nothing(drill_worker, meter, wattics_sim):
    wattics_sim.faults(latency_ms=3)
    (delivery,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 2000))
    wait_for(lambda: Delivery.objects.get(pk=delivery.pk).sent >= 300, timeout=60, what="the push to start")
    drill_worker.kill()
    killed = Delivery.objects.get(pk=delivery.pk)
    assert killed.status == DeliveryStatus.PUSHING and killed.sent < 2000
    accepted_at_kill = len(wattics_sim.packets("demo-elec-1")["accepted"])
    assert accepted_at_kill >= killed.sent  # the vendor is ahead of our last checkpoint
    drill_worker.start()
    # The broker may not give the message back (the filesystem transport deletes it on
    # delivery; Redis only after its visibility timeout): the periodic sweep takes it up
    # once the heartbeat is stale. Time is moved on rather than waited for.
    Delivery.objects.filter(pk=delivery.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert deliveries_requeue_stale() == [delivery.pk]
    (delivery,) = wait_done(delivery, timeout=120, worker=drill_worker)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert (delivery.acknowledged, delivery.rejected) == (2000, 0)
    assert delivery.attempts == 2
    packets = _assert_complete(wattics_sim, meter)
    total, expected = 0.0, [0.0]  # the register opens at 0 (a new meter)
    for value in Reading.objects.filter(meter=meter).order_by("ts").values_list("value", flat=True):
        total += value * 1000
        expected.append(total)
    assert [p["pC_1"] for p in packets["accepted"]] == pytest.approx(expected, abs=0.01)


def test_a_lost_message_is_enqueued_again_by_the_sweep(drill_worker, meter, wattics_sim):
    from portal.celery import app

    drill_worker.stop()  # nobody consumes: the message waits in the broker
    (delivery,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 50))
    assert app.control.purge() >= 1  # the broker lost it (restart without persistence)
    drill_worker.start()
    # Fresh: not yet considered lost.
    assert deliveries_requeue_stale() == []
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert deliveries_requeue_stale() == [delivery.pk]
    (delivery,) = wait_done(delivery, timeout=60, worker=drill_worker)
    assert delivery.status == DeliveryStatus.DELIVERED
    _assert_complete(wattics_sim, meter)


def test_cancel_stops_a_running_push(drill_worker, meter, wattics_sim):
    from uploads.services.deliveries import delivery_cancel

    wattics_sim.faults(latency_ms=5)
    (delivery,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 2000))
    wait_for(lambda: Delivery.objects.get(pk=delivery.pk).sent >= 100, timeout=60, what="the push to start")
    delivery_cancel(delivery=delivery)
    wait_for(lambda: not Delivery.objects.filter(pk=delivery.pk, heartbeat_at__gt=timezone.now() - timedelta(seconds=2))
             .exists(), timeout=10, what="the run to stop")  # fmt: skip
    count = len(wattics_sim.packets("demo-elec-1")["accepted"])
    assert count < 2000
    # Watched for two seconds (hundreds of packets at this rate, several checkpoints): nothing more arrives.
    watch_until = time.monotonic() + 2
    while time.monotonic() < watch_until:
        assert len(wattics_sim.packets("demo-elec-1")["accepted"]) == count
        time.sleep(0.2)
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.CANCELLED


# ----- WattCarbon ---------------------------------------------------------------------------


@pytest.fixture
def wc_meter(org, vendor_credentials):
    site = factories.make_site(org)
    client = WattCarbonClient(
        wattcarbon_account(credentials=vendor_credentials), ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    )
    remote = client.create_meter({"apiProvider": "manual", "meterType": "electricity", "name": "Main",
                                  "location": {"latitude": 37.78, "longitude": -122.41}})  # fmt: skip
    return factories.make_meter(site, wattcarbon_id=str(remote))


def test_intervals_arrive_complete_in_chunks_across_token_expiry(drill_worker, org, wc_meter, wattcarbon_sim):
    from django.core.cache import cache

    wattcarbon_sim.faults(token_ttl=0.3, latency_ms=150)
    # Tokens from now on expire quickly; forget the long-lived one the fixture obtained.
    cache.delete(
        WattCarbonClient(
            wattcarbon_account(credentials=org.credentials), ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
        )._token_key
    )
    upload = factories.make_stored_upload(wc_meter, T0, 2200, targets=["wattcarbon_intervals"])
    (delivery,) = deliveries_create_for_upload(upload=upload)
    (delivery,) = wait_done(delivery, timeout=120, worker=drill_worker)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert (delivery.sent, delivery.acknowledged) == (2200, 2200)
    intervals = wattcarbon_sim.intervals(int(wc_meter.wattcarbon_id))
    rows = list(Reading.objects.filter(meter=wc_meter).order_by("ts").values_list("ts", "value"))
    assert len(intervals) == 2200
    assert intervals[0]["start_datetime"].startswith("2024-01-01T00:00:00")
    assert [i["energy_kwh"] for i in intervals] == pytest.approx([v for _, v in rows])
    uploads = HttpExchange.objects.filter(delivery=delivery, url__endswith="/intervals", status_code=200)
    assert uploads.count() == 5  # chunks of 500 rows (WATTCARBON_INTERVAL_CHUNK_ROWS in the drill worker)
    assert HttpExchange.objects.filter(delivery=delivery, status_code=401).exists()  # the token expired meanwhile


def test_intervals_survive_a_503_storm(drill_worker, wc_meter, wattcarbon_sim):
    wattcarbon_sim.faults(fail_503=0.3)
    upload = factories.make_stored_upload(wc_meter, T0, 1500, targets=["wattcarbon_intervals"])
    (delivery,) = wait_done(*deliveries_create_for_upload(upload=upload), timeout=120, worker=drill_worker)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert len(wattcarbon_sim.intervals(int(wc_meter.wattcarbon_id))) == 1500
