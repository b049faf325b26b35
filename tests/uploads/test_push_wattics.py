"""The Wattics push, by calling the task function directly (the worker pipeline is in
test_push_pipeline.py), against the simulator over real HTTP."""

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from tests import factories
from uploads.models import Delivery, DeliveryStatus, Reading
from uploads.services.deliveries import deliveries_create_for_upload, delivery_claim
from uploads.services.push_wattics import wattics_stream
from uploads.tasks import delivery_push_task
from vendors.models import HttpExchange
from vendors.wattics import PacketBuilder

T0 = datetime(2024, 1, 1, tzinfo=UTC)
pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_retries(settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = 0.01
    settings.DELIVERY_RETRY_MAX_SECONDS = 0.05
    return settings


@pytest.fixture
def meter(org, vendor_credentials):
    site = factories.make_site(org, timezone="Europe/Dublin")
    return factories.make_meter(site, wattics_stream_id="demo-elec-1", unit="kWh")


def _deliver(upload) -> Delivery:
    (delivery,) = deliveries_create_for_upload(upload=upload)
    delivery_push_task(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def _expected_wh(meter):
    """The register after each reading (what the packet stamped at the interval's end carries)."""
    total, out = 0.0, []
    for value in Reading.objects.filter(meter=meter).order_by("ts").values_list("value", flat=True):
        total += value * 1000
        out.append(total)
    return out


def test_it_creates_one_delivery_per_meter_and_target_once(org, meter, django_capture_on_commit_callbacks):
    upload = factories.make_stored_upload(meter, T0, 10, targets=["wattics", "wattcarbon_intervals"])
    with django_capture_on_commit_callbacks() as callbacks:
        deliveries = deliveries_create_for_upload(upload=upload)
    again = deliveries_create_for_upload(upload=upload)
    assert [d.pk for d in deliveries] == [d.pk for d in again]
    by_target = {d.target: d for d in deliveries}
    assert by_target["wattics"].status == DeliveryStatus.QUEUED
    assert by_target["wattics"].total == 10
    assert (by_target["wattics"].first_ts, by_target["wattics"].last_ts) == (T0, T0 + timedelta(minutes=135))
    # No WattCarbon id on the meter: failed at once, with the fix in the message.
    assert by_target["wattcarbon_intervals"].status == DeliveryStatus.FAILED
    assert "has no WattCarbon meter id" in by_target["wattcarbon_intervals"].last_error
    assert len(callbacks) == 1


def test_it_fails_a_meter_without_a_stream_id_at_once(org, vendor_credentials):
    meter = factories.make_meter(factories.make_site(org))
    (delivery,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 3))
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith(f"Meter {meter} has no Wattics data stream id: set it on the meter page")


def test_it_pushes_every_reading_in_order_with_cumulative_wh(meter, wattics_sim):
    # Inserted in a shuffled order: the push follows time, not insertion.
    upload = factories.make_upload(meter.organization, meter=meter, targets=["wattics"], rows_total=500,
                                   rows_valid=500, rows_stored=500)  # fmt: skip
    rows = [Reading(meter=meter, ts=T0 + timedelta(minutes=15 * i), value=round(random.uniform(0, 3), 3), upload=upload)
            for i in range(500)]  # fmt: skip
    random.shuffle(rows)
    # Readings are keyed by (meter, ts) (no insertion-ordered id): the insertion order is the list's.
    inserted = [r.ts for r in rows]
    assert inserted != sorted(inserted)
    Reading.objects.bulk_create(rows)
    delivery = _deliver(upload)
    assert delivery.status == DeliveryStatus.DELIVERED
    assert (delivery.total, delivery.sent, delivery.acknowledged, delivery.rejected) == (500, 500, 500, 0)
    assert delivery.cursor_ts == T0 + timedelta(minutes=15 * 499)
    packets = wattics_sim.packets("demo-elec-1")
    assert packets["discarded_count"] == 0
    accepted = packets["accepted"]
    # pC_1 is a register: the stream opens at the first interval's start with 0 (a new meter),
    # then each reading of [t, t+15 min) is the total at t+15 min.
    assert [p["tsISO8601"] for p in accepted][:3] == [
        "2024-01-01T00:00:00.000+00:00",
        "2024-01-01T00:15:00.000+00:00",
        "2024-01-01T00:30:00.000+00:00",
    ]
    assert accepted[-1]["tsISO8601"] == "2024-01-06T05:00:00.000+00:00"  # the end of the last interval
    assert [p["pC_1"] for p in accepted] == pytest.approx([0.0, *_expected_wh(meter)], abs=0.01)
    assert HttpExchange.objects.filter(delivery=delivery).count() == 502  # the GET latest, the opening, 500 POSTs


def test_a_second_upload_continues_the_count(meter, wattics_sim):
    first = _deliver(factories.make_stored_upload(meter, T0, 100))
    second = _deliver(factories.make_stored_upload(meter, T0 + timedelta(days=2), 100))
    assert first.status == second.status == DeliveryStatus.DELIVERED
    accepted = wattics_sim.packets("demo-elec-1")["accepted"]
    assert len(accepted) == 201  # one opening packet, for the stream's first packet ever
    assert [p["pC_1"] for p in accepted] == pytest.approx([0.0, *_expected_wh(meter)], abs=0.01)
    # The second upload goes on from the first's register, with no second opening.
    assert accepted[101]["tsISO8601"] == "2024-01-03T00:15:00.000+00:00"


def test_it_pushes_local_time_across_a_dst_change(org, vendor_credentials, wattics_sim):
    site = factories.make_site(org, timezone="America/Los_Angeles")
    meter = factories.make_meter(site, wattics_stream_id="demo-gas-1", meter_type="gas", unit="therm",
                                 wattics_format="single_value")  # fmt: skip
    # 2024-11-03 08:00 UTC is 01:00 PDT; an hour later it is 01:00 PST.
    delivery = _deliver(factories.make_stored_upload(meter, datetime(2024, 11, 3, 7, 30, tzinfo=UTC), 8))
    assert delivery.status == DeliveryStatus.DELIVERED
    stamps = [p["tsISO8601"] for p in wattics_sim.packets("demo-gas-1")["accepted"]]
    assert stamps[2:7] == [
        "2024-11-03T01:00:00.000-07:00",
        "2024-11-03T01:15:00.000-07:00",
        "2024-11-03T01:30:00.000-07:00",
        "2024-11-03T01:45:00.000-07:00",
        "2024-11-03T01:00:00.000-08:00",
    ]


def test_it_records_a_400_as_rejected_and_goes_on(meter, wattics_sim, monkeypatch):
    packets = PacketBuilder.packets
    bad_ts = T0 + timedelta(minutes=15 * 7)

    def one_bad(self, rows, **kwargs):
        for packet in packets(self, rows, **kwargs):
            if packet.row_ts == bad_ts:
                # A local time without its offset: Wattics answers 400 for that packet only.
                packet.body = packet.body.replace(b".000+00:00", b".000")
            yield packet

    monkeypatch.setattr(PacketBuilder, "packets", one_bad)
    delivery = _deliver(factories.make_stored_upload(meter, T0, 20))
    assert delivery.status == DeliveryStatus.PARTIALLY_FAILED
    assert (delivery.acknowledged, delivery.rejected) == (19, 1)
    assert "rejected by Wattics" in delivery.last_error
    assert len(wattics_sim.packets("demo-elec-1")["accepted"]) == 20  # the opening and 19 readings


def test_it_fails_with_credentials_rejected_on_401(meter, wattics_sim):
    meter.wattics_username, meter.wattics_password = "demo", "not-the-password"
    meter.save()
    delivery = _deliver(factories.make_stored_upload(meter, T0, 5))
    assert delivery.status == DeliveryStatus.FAILED
    assert "Wattics credentials rejected" in delivery.last_error
    assert wattics_sim.packets("demo-elec-1")["accepted"] == []


def test_it_fails_an_unknown_stream_with_a_clear_message(org, vendor_credentials, wattics_sim):
    meter = factories.make_meter(factories.make_site(org), wattics_stream_id="not-registered-7")
    delivery = _deliver(factories.make_stored_upload(meter, T0, 5))
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "data stream id not-registered-7 unknown at Wattics"


def test_it_retries_the_same_packet_after_503s_and_dropped_connections(meter, wattics_sim, fast_retries):
    wattics_sim.faults(fail_next=[503, 503, "drop", 500])
    delivery = _deliver(factories.make_stored_upload(meter, T0, 30))
    assert delivery.status == DeliveryStatus.DELIVERED
    packets = wattics_sim.packets("demo-elec-1")
    assert (len(packets["accepted"]), packets["discarded_count"]) == (31, 0)
    assert HttpExchange.objects.filter(delivery=delivery, status_code=None).count() == 1


def test_it_gives_up_after_the_deadline(meter, wattics_sim, fast_retries):
    fast_retries.DELIVERY_RETRY_DEADLINE_SECONDS = 0.3
    wattics_sim.faults(maintenance=True)
    delivery = _deliver(factories.make_stored_upload(meter, T0, 5))
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("Gave up after")
    assert "503" in delivery.last_error


def test_a_long_wait_gives_the_worker_back(meter, wattics_sim, settings):
    # Wattics asks for two minutes: the wait is too long to hold a worker for.
    wattics_sim.faults(fail_next=[503], retry_after=120)
    delivery = _deliver(factories.make_stored_upload(meter, T0, 5))
    assert delivery.status == DeliveryStatus.QUEUED
    assert delivery.next_attempt_at > delivery.updated_at + timedelta(seconds=50)
    # A message that comes early does nothing: the delivery is not due.
    delivery_push_task(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED and delivery.sent == 0


def test_it_skips_what_the_vendor_already_has_when_resuming(meter, wattics_sim):
    upload = factories.make_stored_upload(meter, T0, 300)
    (delivery,) = deliveries_create_for_upload(upload=upload)
    # An earlier run pushed the opening and 150 readings, then died having recorded only 100.
    builder = PacketBuilder(wattics_stream(meter))
    session = __import__("requests").Session()
    rows = Reading.objects.filter(meter=meter).order_by("ts").values_list("ts", "value", "extra")
    for packet in list(builder.packets(rows, opening=True))[:151]:
        session.post(wattics_sim.url + "/measurements/v2/unifiedjson/", data=packet.body,
                     auth=("demo", "demo-password")).raise_for_status()  # fmt: skip
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PUSHING, attempts=1, heartbeat_at=T0, started_at=T0, sent=100, acknowledged=100,
        cursor_ts=T0 + timedelta(minutes=15 * 99),
    )  # fmt: skip
    delivery_push_task(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert (delivery.sent, delivery.acknowledged, delivery.rejected) == (300, 300, 0)
    packets = wattics_sim.packets("demo-elec-1")
    assert packets["discarded_count"] == 0
    assert [p["pC_1"] for p in packets["accepted"]] == pytest.approx([0.0, *_expected_wh(meter)], abs=0.01)
    stamps = [p["tsISO8601"] for p in packets["accepted"]]
    assert stamps == sorted(set(stamps)) and len(stamps) == 301


def test_a_new_delivery_reports_rows_older_than_the_vendors_latest_as_not_sendable(meter, wattics_sim):
    later = _deliver(factories.make_stored_upload(meter, T0 + timedelta(days=1), 10))
    earlier = _deliver(factories.make_stored_upload(meter, T0, 10))
    assert later.status == DeliveryStatus.DELIVERED
    assert earlier.status == DeliveryStatus.FAILED
    assert (earlier.sent, earlier.acknowledged, earlier.rejected, earlier.not_sendable) == (0, 0, 0, 10)
    assert earlier.last_error.startswith("10 rows (2024-01-01T00:00:00.000+00:00 to 2024-01-01T02:15:00.000+00:00) are")
    assert "not sendable: Wattics already holds a later packet for stream demo-elec-1" in earlier.last_error
    assert earlier.last_error in earlier.note
    assert wattics_sim.packets("demo-elec-1")["discarded_count"] == 0


def test_only_one_worker_claims_a_delivery(meter):
    (delivery,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 3))
    assert delivery_claim(delivery_id=delivery.pk).attempts == 1
    assert delivery_claim(delivery_id=delivery.pk) is None
    # Its worker died: the heartbeat goes stale and another worker may take it.
    Delivery.objects.filter(pk=delivery.pk).update(heartbeat_at=T0)
    assert delivery_claim(delivery_id=delivery.pk).attempts == 2


def test_a_stream_pushes_one_delivery_at_a_time(meter, wattics_sim):
    january, february = (factories.make_stored_upload(meter, T0 + timedelta(days=31 * i), 3) for i in range(2))
    (first,) = deliveries_create_for_upload(upload=january)
    (second,) = deliveries_create_for_upload(upload=february)
    assert delivery_claim(delivery_id=first.pk).pk == first.pk
    # While the first pushes, nothing else of the stream may: the claim finds it busy ...
    assert delivery_claim(delivery_id=second.pk) is None
    second.refresh_from_db()
    assert (second.status, second.attempts) == (DeliveryStatus.QUEUED, 0)
    # ... and the database refuses a second pushing delivery of the stream, whoever asks.
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.filter(pk=second.pk).update(status=DeliveryStatus.PUSHING)
    # Another meter's stream is free.
    other = factories.make_meter(meter.site, name="Other", wattics_stream_id="demo-gas-1")
    (third,) = deliveries_create_for_upload(upload=factories.make_stored_upload(other, T0, 3))
    assert delivery_claim(delivery_id=third.pk).pk == third.pk


def test_packets_are_one_line_json(meter, wattics_sim):
    upload = factories.make_stored_upload(meter, T0, 3)
    rows = Reading.objects.filter(meter=meter).order_by("ts").values_list("ts", "value", "extra")
    bodies = [p.body for p in PacketBuilder(wattics_stream(meter)).packets(rows, opening=True)]
    assert len(bodies) == 4 and all(b"\n" not in body and isinstance(json.loads(body), dict) for body in bodies)
    _deliver(upload)
    # The simulator refuses a body of more than one line, as Wattics does: all were taken.
    packets = wattics_sim.packets("demo-elec-1")
    assert (len(packets["accepted"]), packets["rejected_count"]) == (4, 0)


def test_it_pushes_two_uploads_of_one_stream_in_the_order_they_were_made(meter, wattics_sim):
    january = factories.make_stored_upload(meter, T0, 20)
    february = factories.make_stored_upload(meter, T0 + timedelta(days=31), 20)
    (first,) = deliveries_create_for_upload(upload=january)
    (second,) = deliveries_create_for_upload(upload=february)
    # The worker happens to get the later delivery's message first: it pushes the stream's
    # oldest delivery, and the later one waits for its turn.
    delivery_push_task(second.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == DeliveryStatus.DELIVERED
    assert (second.status, second.sent, second.attempts) == (DeliveryStatus.QUEUED, 0, 0)
    assert len(wattics_sim.packets("demo-elec-1")["accepted"]) == 21  # the opening packet and January's 20
    delivery_push_task(second.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERED)
    packets = wattics_sim.packets("demo-elec-1")
    assert len(packets["accepted"]) == 41 and packets["discarded_count"] == 0


def _reupload(meter, *, value=None):
    """The same rows stored again by a new upload (as the ingest upsert does), values changed by `value`."""
    upload = factories.make_upload(meter.organization, meter=meter, targets=["wattics"])
    rows = Reading.objects.filter(meter=meter)
    rows.update(upload=upload)
    if value is not None:
        for reading in rows:
            reading.value = value(reading.value)
            reading.save(update_fields=["value"])
    return upload


def test_an_identical_reupload_is_already_at_vendor_and_up_to_date(meter, wattics_sim):
    first = _deliver(factories.make_stored_upload(meter, T0, 50))
    before = wattics_sim.packets("demo-elec-1")["accepted"]
    again = _deliver(_reupload(meter))
    assert first.status == again.status == DeliveryStatus.DELIVERED
    assert (again.sent, again.acknowledged, again.rejected, again.already_at_vendor, again.not_sendable) == (
        0, 0, 0, 50, 0,
    )  # fmt: skip
    assert again.note.endswith("Up to date: all 50 rows were already at the vendor; nothing was sent.")
    assert again.last_error == "" and again.percent == 100
    assert wattics_sim.packets("demo-elec-1")["accepted"] == before
    assert not HttpExchange.objects.filter(delivery=again, method="POST").exists()


def test_a_reupload_with_changed_values_is_not_sendable_and_says_why(meter, wattics_sim):
    _deliver(factories.make_stored_upload(meter, T0, 20))
    again = _deliver(_reupload(meter, value=lambda v: v + 1))
    assert again.status == DeliveryStatus.FAILED
    assert (again.acknowledged, again.already_at_vendor, again.not_sendable) == (0, 0, 20)
    assert "not sendable: Wattics already holds a later packet" in again.last_error
    assert len(wattics_sim.packets("demo-elec-1")["accepted"]) == 21


def test_a_retry_never_claims_rows_the_vendor_does_not_hold(meter, wattics_sim):
    # Issue repro: January fails on a 401, February is delivered, January is retried.
    wattics_sim.faults(fail_next=[401])
    january = _deliver(factories.make_stored_upload(meter, T0, 100))
    assert (january.status, january.sent) == (DeliveryStatus.FAILED, 0)
    assert "credentials rejected" in january.last_error
    february = _deliver(factories.make_stored_upload(meter, T0 + timedelta(days=31), 100))
    assert february.status == DeliveryStatus.DELIVERED
    from uploads.services.deliveries import delivery_retry

    delivery_retry(delivery=january)
    delivery_push_task(january.pk)
    january.refresh_from_db()
    assert january.status == DeliveryStatus.FAILED
    assert (january.sent, january.acknowledged, january.already_at_vendor, january.not_sendable) == (0, 0, 0, 100)
    assert "not sendable" in january.last_error and "never got these" in january.last_error
    stamps = [p["tsISO8601"] for p in wattics_sim.packets("demo-elec-1")["accepted"]]
    assert not [s for s in stamps if s.startswith("2024-01-01")]


def test_a_retry_keeps_the_whole_last_message_until_the_run_says_more(meter, wattics_sim):
    wattics_sim.faults(fail_next=[401])
    delivery = _deliver(factories.make_stored_upload(meter, T0, 5))
    message = delivery.last_error
    from uploads.services.deliveries import delivery_retry

    delivery = delivery_retry(delivery=delivery)
    assert delivery.status == DeliveryStatus.QUEUED and delivery.last_error == message


def test_an_unreadable_latest_answer_resumes_from_our_own_record_and_says_so(meter, wattics_sim):
    first = _deliver(factories.make_stored_upload(meter, T0, 10))
    wattics_sim.faults(other_latest_shape=True)
    second = _deliver(factories.make_stored_upload(meter, T0 + timedelta(days=1), 10))
    assert first.status == second.status == DeliveryStatus.DELIVERED
    assert (second.sent, second.acknowledged) == (10, 10)
    assert "Wattics' latest packet could not be read" in second.note
    assert "Went on from our own record of what Wattics acknowledged for this meter: 2024-01-01T02:30:00.000+00:00" in (
        second.note
    )
    packets = wattics_sim.packets("demo-elec-1")
    assert (len(packets["accepted"]), packets["discarded_count"]) == (21, 0)
    assert [p["pC_1"] for p in packets["accepted"]] == pytest.approx([0.0, *_expected_wh(meter)], abs=0.01)


def test_it_honours_retry_after_within_its_cap(meter, wattics_sim, fast_retries):
    import time

    wattics_sim.faults(fail_next=[503], retry_after=1)
    started = time.monotonic()
    assert _deliver(factories.make_stored_upload(meter, T0, 3)).status == DeliveryStatus.DELIVERED
    assert time.monotonic() - started >= 1.0  # our own backoff here is 10-50 ms
    fast_retries.DELIVERY_RETRY_AFTER_MAX_SECONDS = 0.2
    wattics_sim.faults(fail_next=[503], retry_after=30)
    started = time.monotonic()
    assert _deliver(factories.make_stored_upload(meter, T0 + timedelta(days=1), 3)).status == DeliveryStatus.DELIVERED
    assert time.monotonic() - started < 10


def test_the_deadline_counts_from_the_last_progress(meter, wattics_sim, fast_retries):
    fast_retries.DELIVERY_RETRY_DEADLINE_SECONDS = 5
    (delivery,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 5))
    # Started long ago, but it progressed a moment ago: a short outage does not fail it.
    Delivery.objects.filter(pk=delivery.pk).update(started_at=T0, attempts=1)
    wattics_sim.faults(fail_next=[503, 503, 500])
    delivery_push_task(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error


def test_a_meter_with_its_own_credentials_may_use_its_own_entry_point(org, wattics_sim):
    from accounts.services import credentials_update

    credentials_update(organization=org, wattics_base_url="http://127.0.0.1:9", wattics_username="demo",
                       wattics_password="demo-password")  # fmt: skip
    meter = factories.make_meter(factories.make_site(org), wattics_stream_id="demo-elec-1",
                                 wattics_username="demo", wattics_password="demo-password",
                                 wattics_base_url=wattics_sim.url + "/")  # fmt: skip
    delivery = _deliver(factories.make_stored_upload(meter, T0, 4))
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    route = wattics_sim.url + "/measurements/v2/unifiedjson/"
    assert HttpExchange.objects.filter(delivery=delivery, url=route).count() == 6  # GET, opening, 4 readings


def _org_with_wattics_account(name: str, sim):
    from accounts.services import credentials_update

    org = factories.make_org(name)
    sim.add_account(username=f"{name}-user", password=f"{name}-pw", streams=[f"{name}-stream"])
    credentials_update(organization=org, wattics_base_url=sim.url, wattics_username=f"{name}-user",
                       wattics_password=f"{name}-pw")  # fmt: skip
    return factories.make_meter(factories.make_site(org), wattics_stream_id=f"{name}-stream")


def test_one_organizations_session_cookie_never_travels_with_anothers(wattics_sim):
    import requests

    acme, globex = _org_with_wattics_account("acme", wattics_sim), _org_with_wattics_account("globex", wattics_sim)
    # Both pushed from this one thread, one after the other, twice: as a worker thread would.
    for meter, day in ((acme, 0), (globex, 0), (acme, 1), (globex, 1)):
        delivery = _deliver(factories.make_stored_upload(meter, T0 + timedelta(days=day), 5))
        assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    cookies = requests.get(wattics_sim.url + "/_sim/cookies").json()
    assert cookies["accounts"] == ["acme-user", "globex-user"]
    assert cookies["foreign"] == []


def test_a_repush_of_a_delivered_span_is_up_to_date(meter, wattics_sim):
    from uploads.services.deliveries import delivery_repush

    delivery = _deliver(factories.make_stored_upload(meter, T0, 12))
    delivery_repush(delivery=delivery)
    delivery_push_task(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert (delivery.sent, delivery.acknowledged, delivery.already_at_vendor, delivery.not_sendable) == (0, 0, 12, 0)
    assert len(wattics_sim.packets("demo-elec-1")["accepted"]) == 13


def test_uploads_made_newest_first_still_reach_wattics_oldest_first(meter, wattics_sim):
    # A backlog confirmed in the wrong order (March's file before February's): both wait
    # queued, and the stream pushes them by their data, so nothing becomes unsendable.
    march = factories.make_stored_upload(meter, T0 + timedelta(days=59), 20)
    february = factories.make_stored_upload(meter, T0 + timedelta(days=31), 20)
    (later,) = deliveries_create_for_upload(upload=march)
    (earlier,) = deliveries_create_for_upload(upload=february)
    delivery_push_task(later.pk)
    later.refresh_from_db()
    earlier.refresh_from_db()
    assert (earlier.status, later.status) == (DeliveryStatus.DELIVERED, DeliveryStatus.QUEUED)
    delivery_push_task(later.pk)
    later.refresh_from_db()
    assert later.status == DeliveryStatus.DELIVERED
    assert (earlier.not_sendable, later.not_sendable) == (0, 0)
    packets = wattics_sim.packets("demo-elec-1")
    assert len(packets["accepted"]) == 41 and packets["discarded_count"] == 0
    stamps = [p["tsISO8601"] for p in packets["accepted"]]
    assert stamps == sorted(stamps)
