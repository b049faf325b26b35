"""Deliveries tell the truth: drills with a real worker and the simulators over real HTTP.

- a retried delivery never claims rows the vendor does not hold;
- an identical re-upload (by the form and by upload_csv) is "up to date", never failed;
- a 503 storm slows a delivery down, it does not fail it (the give-up deadline counts from
  the last progress);
- one organization's vendor session cookie never travels with another's requests.
"""

import os
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from accounts.selectors import wattcarbon_account
from tests import factories
from tests.drills.conftest import FAST_ENV
from tests.drills.support import wait_done, wait_for
from uploads.models import Delivery, DeliveryStatus, Reading, Upload, UploadStatus
from uploads.services.deliveries import deliveries_create_for_upload, delivery_retry
from vendors.http import ExchangeLog
from vendors.models import HttpExchange
from vendors.wattcarbon import WattCarbonClient

pytestmark = pytest.mark.worker
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def meter(org, vendor_credentials):
    return factories.make_meter(factories.make_site(org, timezone="Europe/Dublin"), wattics_stream_id="demo-elec-1")


def test_a_retry_never_claims_what_wattics_does_not_hold(drill_worker, meter, wattics_sim):
    # The probe's repro: the first request is refused, January fails with nothing sent.
    wattics_sim.faults(fail_next=[401])
    (january,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 100))
    (january,) = wait_done(january, worker=drill_worker)
    assert (january.status, january.sent, january.acknowledged) == (DeliveryStatus.FAILED, 0, 0)
    (february,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0 + timedelta(days=31), 100))
    (february,) = wait_done(february, worker=drill_worker)
    assert february.status == DeliveryStatus.DELIVERED, february.last_error
    delivery_retry(delivery=january)
    (january,) = wait_done(january, worker=drill_worker)
    # Wattics holds February's register: January can no longer be placed, and says so.
    assert january.status == DeliveryStatus.FAILED
    assert (january.sent, january.acknowledged, january.already_at_vendor, january.not_sendable) == (0, 0, 0, 100)
    assert january.last_error.startswith("100 rows (2024-01-01T00:00:00.000+00:00 to 2024-01-02T00:45:00.000+00:00)")
    assert "not sendable: Wattics already holds a later packet for stream demo-elec-1" in january.last_error
    stamps = [p["tsISO8601"] for p in wattics_sim.packets("demo-elec-1")["accepted"]]
    assert len(stamps) == 101 and all(s >= "2024-02-01" for s in stamps)


# ----- an identical re-upload ----------------------------------------------------------------


def _year_csv() -> str:
    lines = ["timestamp,energy_kwh"]
    start = datetime(2023, 1, 1, tzinfo=UTC)
    lines += [f"{(start + timedelta(hours=i)).isoformat()},{round(1 + (i % 24) / 10, 2)}" for i in range(8760)]
    return "\n".join(lines) + "\n"


def _upload_csv(path, org, owner) -> Upload:
    call_command("upload_csv", "--org", org.slug, "--meter", "Main", "--to", "wattics,wattcarbon",
                 "--user", owner.username, str(path), stdout=StringIO(), stderr=StringIO())  # fmt: skip
    return Upload.objects.latest("pk")


def _upload_by_form(client, content: str, meter) -> Upload:
    form = {"file": SimpleUploadedFile("year.csv", content.encode()), "meter": meter.pk,
            "targets": ["wattics", "wattcarbon_intervals"]}  # fmt: skip
    response = client.post("/uploads/new/", form)
    assert response.status_code == 302, response.content[:2000]
    upload = Upload.objects.latest("pk")
    upload = wait_for(lambda: Upload.objects.filter(pk=upload.pk, status=UploadStatus.VALIDATED).first(),
                      timeout=120, what="the form's upload to be checked")  # fmt: skip
    response = client.post(f"/uploads/{upload.pk}/confirm/")
    assert response.status_code == 302
    return wait_for(lambda: Upload.objects.filter(pk=upload.pk, status=UploadStatus.STORED).first(),
                    timeout=120, what="the form's upload to be stored")  # fmt: skip


def _deliveries(upload: Upload, worker) -> dict[str, Delivery]:
    found = wait_for(lambda: list(Delivery.objects.filter(upload=upload)) if upload.deliveries.count() == 2 else None,
                     timeout=30, what="the deliveries")  # fmt: skip
    return {d.target: d for d in wait_done(*found, timeout=300, worker=worker)}


def test_an_identical_reupload_by_the_form_and_by_upload_csv_is_up_to_date(
    drill_worker, org, owner, owner_client, vendor_credentials, wattics_sim, wattcarbon_sim, tmp_path
):
    log = ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    client = WattCarbonClient(wattcarbon_account(credentials=vendor_credentials), log)
    remote = client.create_meter({"apiProvider": "manual", "meterType": "electricity", "name": "Main",
                                  "location": {"latitude": 53.35, "longitude": -6.26}})  # fmt: skip
    meter = factories.make_meter(factories.make_site(org, timezone="Europe/Dublin"), name="Main", interval_minutes=60,
                                 wattics_stream_id="demo-elec-1", wattcarbon_id=str(remote))  # fmt: skip
    content = _year_csv()
    path = tmp_path / "year.csv"
    path.write_text(content)

    first = _deliveries(_upload_csv(path, org, owner), drill_worker)
    assert {t: d.status for t, d in first.items()} == {"wattics": "delivered", "wattcarbon_intervals": "delivered"}
    assert first["wattics"].acknowledged == first["wattcarbon_intervals"].acknowledged == 8760
    packets = wattics_sim.packets("demo-elec-1")["accepted"]
    intervals = wattcarbon_sim.intervals(remote)
    assert (len(packets), len(intervals)) == (8761, 8760)  # the opening packet, then one per hour

    for upload in (_upload_by_form(owner_client, content, meter), _upload_csv(path, org, owner)):
        again = _deliveries(upload, drill_worker)
        for target, delivery in again.items():
            assert delivery.status == DeliveryStatus.DELIVERED, (target, delivery.last_error, delivery.note)
            assert (delivery.sent, delivery.acknowledged, delivery.rejected, delivery.already_at_vendor,
                    delivery.not_sendable) == (0, 0, 0, 8760, 0), target  # fmt: skip
            assert "Up to date: all 8,760 rows were already at the vendor" in delivery.note
            assert not HttpExchange.objects.filter(delivery=delivery, method="POST").exists()
        page = owner_client.get(f"/uploads/{upload.pk}/")
        assert b"Already at vendor" in page.content and b"Up to date: all 8,760 rows" in page.content
    # The vendors hold exactly what they held after the first push.
    assert wattics_sim.packets("demo-elec-1")["accepted"] == packets
    assert wattcarbon_sim.intervals(remote) == intervals
    assert Reading.objects.filter(meter=meter).count() == 8760


# ----- storms -----------------------------------------------------------------------------------

# Far shorter than the storm lasts: a deadline counted from the start would fail the delivery.
STORM_DEADLINE_SECONDS = "3"


@pytest.fixture
def storm_worker(_session_worker, transactional_db):
    """The session worker with fast retries and a 3 s give-up deadline; restored afterwards."""
    os.environ.update(FAST_ENV, DELIVERY_RETRY_DEADLINE_SECONDS=STORM_DEADLINE_SECONDS)
    _session_worker.stop()
    _session_worker.start()
    yield _session_worker
    os.environ.update(FAST_ENV)
    _session_worker.stop()
    _session_worker.start()


def _rate(delivery: Delivery) -> float:
    return delivery.acknowledged / (delivery.finished_at - delivery.started_at).total_seconds()


def test_a_503_storm_slows_a_delivery_and_does_not_fail_it(storm_worker, meter, wattics_sim):
    wattics_sim.faults(latency_ms=50)
    (calm,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 300))
    (calm,) = wait_done(calm, timeout=120, worker=storm_worker)
    assert calm.status == DeliveryStatus.DELIVERED, calm.last_error
    # 30 % of the answers are 503s saying "Retry-After: 0".
    wattics_sim.faults(latency_ms=50, fail_503=0.3, retry_after=0)
    upload = factories.make_stored_upload(meter, T0 + timedelta(days=7), 300)
    (storm,) = deliveries_create_for_upload(upload=upload)
    (storm,) = wait_done(storm, timeout=180, worker=storm_worker)
    assert storm.status == DeliveryStatus.DELIVERED, storm.last_error
    assert storm.acknowledged == 300
    storm_seconds = (storm.finished_at - storm.started_at).total_seconds()
    assert storm_seconds > 2 * float(STORM_DEADLINE_SECONDS)  # it outlived the deadline by progressing
    assert HttpExchange.objects.filter(delivery=storm, status_code=503).count() >= 50
    print(f"\nrate: {_rate(calm):.1f}/s calm, {_rate(storm):.1f}/s under 30 % 503 (50 ms latency)")
    assert _rate(storm) >= 0.5 * _rate(calm)
    packets = wattics_sim.packets("demo-elec-1")
    assert (len(packets["accepted"]), packets["discarded_count"]) == (601, 0)


def test_the_deadline_still_fails_a_delivery_that_makes_no_progress(storm_worker, meter, wattics_sim):
    wattics_sim.faults(maintenance=True)
    (delivery,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 5))
    (delivery,) = wait_done(delivery, timeout=60, worker=storm_worker)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("Gave up after 3 s without progress: Wattics HTTP 503")


# ----- sessions per organization -------------------------------------------------------------


@pytest.fixture
def one_thread_worker(_session_worker, worker_factory, transactional_db):
    """A worker with one thread, so both organizations' pushes run on the same thread."""
    _session_worker.stop()
    worker = worker_factory(concurrency=1, env=dict(FAST_ENV))
    yield worker
    worker.stop()
    os.environ.update(FAST_ENV)
    _session_worker.start()


def test_one_organizations_cookie_never_travels_with_anothers(one_thread_worker, wattics_sim):
    from accounts.services import credentials_update

    meters = []
    for name in ("acme", "globex"):
        org = factories.make_org(name)
        wattics_sim.add_account(username=f"{name}-user", password=f"{name}-pw", streams=[f"{name}-stream"])
        credentials_update(organization=org, wattics_base_url=wattics_sim.url, wattics_username=f"{name}-user",
                           wattics_password=f"{name}-pw")  # fmt: skip
        meters.append(factories.make_meter(factories.make_site(org), wattics_stream_id=f"{name}-stream"))
    for day in range(2):
        for meter in meters:
            (d,) = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0 + timedelta(days=day), 5))
            (d,) = wait_done(d, worker=one_thread_worker)
            assert d.status == DeliveryStatus.DELIVERED, d.last_error
    cookies = requests.get(wattics_sim.url + "/_sim/cookies").json()
    assert cookies["accounts"] == ["acme-user", "globex-user"]
    assert cookies["foreign"] == []
