"""The push pipeline with a real worker process and the simulators over real HTTP."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests import factories
from tests.drills.support import wait_done, wait_for
from uploads.models import DeliveryStatus, Reading
from uploads.services.deliveries import deliveries_create_for_upload

pytestmark = pytest.mark.worker
T0 = datetime(2024, 3, 30, tzinfo=UTC)  # the span crosses Ireland's DST change of 2024-03-31


def _local_stamps(meter):
    from zoneinfo import ZoneInfo

    from vendors.wattics import format_local_ts

    # pC_1 is a register: the stream opens at the first reading's start, then each reading
    # is the register at its interval's end.
    tz = ZoneInfo(meter.site.timezone)
    step = timedelta(minutes=meter.interval_minutes)
    stamps = list(Reading.objects.filter(meter=meter).order_by("ts").values_list("ts", flat=True))
    return [format_local_ts(ts, tz) for ts in [stamps[0], *(ts + step for ts in stamps)]]


def test_a_few_thousand_readings_arrive_complete_and_in_order(celery_worker, org, vendor_credentials, wattics_sim):
    site = factories.make_site(org, timezone="Europe/Dublin")
    meter = factories.make_meter(site, wattics_stream_id="demo-elec-1")
    upload = factories.make_stored_upload(meter, T0, 3000)
    started = time.monotonic()
    (delivery,) = deliveries_create_for_upload(upload=upload)
    (delivery,) = wait_done(delivery, timeout=120, worker=celery_worker)
    elapsed = time.monotonic() - started
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert (delivery.sent, delivery.acknowledged, delivery.rejected) == (3000, 3000, 0)
    packets = wattics_sim.packets("demo-elec-1")
    assert packets["discarded_count"] == 0
    assert [p["tsISO8601"] for p in packets["accepted"]] == _local_stamps(meter)
    assert "2024-03-31T00:45:00.000+00:00" in _local_stamps(meter)
    assert "2024-03-31T02:00:00.000+01:00" in _local_stamps(meter)
    total, expected = 0.0, [0.0]
    for value in Reading.objects.filter(meter=meter).order_by("ts").values_list("value", flat=True):
        total += value * 1000
        expected.append(total)
    assert [p["pC_1"] for p in packets["accepted"]] == pytest.approx(expected, abs=0.01)
    print(f"\npush rate through the worker: {3000 / elapsed:.0f} packets/s (3000 in {elapsed:.2f}s)")


def test_several_meters_push_in_parallel(celery_worker, org, vendor_credentials, wattics_sim):
    site = factories.make_site(org)
    streams = ["demo-elec-1", "demo-gas-1", "demo-env-1", "extra-4"]
    wattics_sim.register_stream("extra-4")
    wattics_sim.faults(latency_ms=2)
    meters = [factories.make_meter(site, wattics_stream_id=s) for s in streams]
    deliveries = [
        d for m in meters for d in deliveries_create_for_upload(upload=factories.make_stored_upload(m, T0, 400))
    ]
    done = wait_done(*deliveries, timeout=120, worker=celery_worker)
    assert [d.status for d in done] == [DeliveryStatus.DELIVERED] * 4
    for meter in meters:
        packets = wattics_sim.packets(meter.wattics_stream_id)
        assert [p["tsISO8601"] for p in packets["accepted"]] == _local_stamps(meter)
        assert packets["discarded_count"] == 0
    # In parallel: the pushes overlap in time.
    assert max(d.started_at for d in done) < min(d.finished_at for d in done)


def test_a_duplicate_upload_sends_nothing_twice(celery_worker, org, vendor_credentials, wattics_sim):
    meter = factories.make_meter(factories.make_site(org), wattics_stream_id="demo-elec-1")
    first = deliveries_create_for_upload(upload=factories.make_stored_upload(meter, T0, 300))
    # The same file again, with 300 more rows: the upsert moves the first 300 rows to it.
    upload = factories.make_upload(org, meter=meter, targets=["wattics"])
    factories.make_readings(meter, T0 + timedelta(days=5), 300)
    Reading.objects.filter(meter=meter).update(upload=upload)
    second = deliveries_create_for_upload(upload=upload)
    done = wait_done(*first, *second, timeout=120, worker=celery_worker)
    packets = wattics_sim.packets("demo-elec-1")
    assert packets["discarded_count"] == 0
    assert [p["tsISO8601"] for p in packets["accepted"]] == _local_stamps(meter)
    # Each row was acknowledged once; the copy is counted as already at the vendor, never re-sent.
    assert [d.status for d in done] == [DeliveryStatus.DELIVERED] * 2
    assert sum(d.acknowledged for d in done) == 600
    assert (sum(d.rejected for d in done), sum(d.already_at_vendor for d in done)) == (0, 300)
    assert any("300 rows were already at Wattics" in d.note for d in done)


def test_a_year_of_15_minute_data_arrives_complete_and_in_order_at_both_vendors(
    celery_worker, org, owner, vendor_credentials, wattics_sim, wattcarbon_sim
):
    """The promise of the portal: a year of meter data, uploaded as a file, reaches both vendors
    whole, once, in order (the ingest path and the pushes run on the real worker)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from sites.services.sync import meter_sync
    from uploads.models import Delivery, UploadStatus
    from uploads.services.ingest import upload_confirm, upload_create

    site = factories.make_site(org, timezone="America/Chicago")
    meter = factories.make_meter(site, wattics_stream_id="demo-elec-1")
    meter_sync(meter_id=meter.pk)
    meter.refresh_from_db()
    start, count = datetime(2025, 1, 1, tzinfo=UTC), 365 * 96
    lines = ["timestamp,kwh"] + [
        f"{(start + timedelta(minutes=15 * i)).isoformat()},{(i % 96) / 10:.1f}" for i in range(count)
    ]
    file = SimpleUploadedFile("site-2025.csv", "\n".join(lines).encode(), content_type="text/csv")
    upload = upload_create(organization=org, user=owner, file=file, meter=meter,
                           targets=["wattics", "wattcarbon_intervals"])  # fmt: skip
    upload = wait_for_upload(upload, UploadStatus.VALIDATED, celery_worker)
    assert (upload.rows_valid, upload.rows_invalid) == (count, 0)
    upload_confirm(upload=upload, user=owner)
    upload = wait_for_upload(upload, UploadStatus.STORED, celery_worker)
    # The deliveries are created right after the upload turns STORED.
    both = Delivery.objects.filter(upload=upload)
    deliveries = wait_for(lambda: list(both) if both.count() == 2 else None, what="deliveries", worker=celery_worker)
    assert {d.target for d in deliveries} == {"wattics", "wattcarbon_intervals"}
    done = wait_done(*deliveries, timeout=900, worker=celery_worker)
    assert [(d.status, d.acknowledged, d.rejected) for d in done] == [(DeliveryStatus.DELIVERED, count, 0)] * 2
    packets = wattics_sim.packets("demo-elec-1")
    assert packets["discarded_count"] == 0
    assert [p["tsISO8601"] for p in packets["accepted"]] == _local_stamps(meter)
    intervals = wattcarbon_sim.intervals(int(meter.wattcarbon_id))
    assert len(intervals) == count
    assert intervals[0] == {"start_datetime": "2025-01-01T00:00:00+00:00", "energy_kwh": 0.0}
    assert intervals[-1]["start_datetime"] == "2025-12-31T23:45:00+00:00" and intervals[-1]["energy_kwh"] == 9.5


def wait_for_upload(upload, status, worker, timeout: float = 300):
    from uploads.models import Upload

    def reached():
        row = Upload.objects.get(pk=upload.pk)
        assert row.status not in ("failed", "invalid"), row.error
        return row if row.status == status else None

    return wait_for(reached, timeout=timeout, what=f"upload {upload.pk} to be {status}", worker=worker)
