"""Green Button, Portfolio Manager and a zip, from the file to the vendors: a real worker parses and
stores them and pushes to the simulators over real HTTP."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.selectors import wattcarbon_account
from tests import factories
from tests.data import espi
from tests.drills.support import wait_done, wait_for
from tests.uploads import formats_support as fs
from tests.uploads.ingest_support import hourly, submit
from uploads.models import Delivery, DeliveryStatus, Reading, Target, Upload, UploadStatus
from uploads.services.formats import batch_create, batch_status, upload_set_source_meters
from uploads.services.ingest import upload_confirm
from vendors.http import ExchangeLog
from vendors.wattcarbon import WattCarbonClient

pytestmark = pytest.mark.worker
NY = ZoneInfo("America/New_York")


def wait_upload(upload: Upload, status: str, worker, timeout: float = 120) -> Upload:
    def reached():
        row = Upload.objects.get(pk=upload.pk)
        assert row.status not in (UploadStatus.FAILED, UploadStatus.INVALID), row.error
        return row if row.status == status else None

    return wait_for(reached, timeout=timeout, what=f"upload {upload.pk} to be {status}", worker=worker)


def remote_meter(org, credentials, site, *, name: str, meter_type: str = "electricity", **kwargs):
    client = WattCarbonClient(
        wattcarbon_account(credentials=credentials), ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    )
    remote = client.create_meter({"apiProvider": "manual", "meterType": "gas" if meter_type == "gas" else "electricity",
                                  "name": name, "location": {"latitude": 40.69, "longitude": -73.99}})  # fmt: skip
    return factories.make_meter(site, name=name, meter_type=meter_type, wattcarbon_id=str(remote), **kwargs)


@pytest.fixture
def site(org):
    return factories.make_site(org, name="Brooklyn Depot", timezone="America/New_York")


def test_a_green_button_file_with_two_usage_points_reaches_both_vendors(
    celery_worker, settings, org, owner, site, vendor_credentials, wattcarbon_sim, wattics_sim
):
    settings.INGEST_INLINE_MAX_BYTES = 0  # the worker does the parsing and storing
    wattics_sim.register_stream("pv-1")
    main = remote_meter(org, vendor_credentials, site, name="Main", interval_minutes=60,
                        wattics_stream_id="demo-elec-1")  # fmt: skip
    solar = remote_meter(org, vendor_credentials, site, name="Roof PV", meter_type="production", interval_minutes=60,
                         wattics_stream_id="pv-1")  # fmt: skip
    gas = remote_meter(org, vendor_credentials, site, name="Gas", meter_type="gas", interval_minutes=1440,
                       wattics_stream_id="demo-gas-1", wattics_format="single_value")  # fmt: skip
    start = datetime(2024, 11, 2, tzinfo=NY)  # 49 hours across the fall-back of 2024-11-03
    data = espi.feed([
        espi.Point("Depot service", channels=[
            espi.Channel(multiplier=-1, readings=espi.hourly(start, 49, value=lambda i: 4000 + 10 * i)),
            espi.Channel(flow=espi.REVERSE, multiplier=-1, readings=espi.hourly(start, 49, value=lambda i: 500)),
        ]),
        espi.Point("Depot gas", service_kind=1, channels=[
            espi.Channel(uom=espi.THERM, multiplier=-3, commodity=7, interval=86400,
                         readings=espi.daily(start, 3, value=lambda i: 2500 + i)),
        ]),
    ])  # fmt: skip
    upload = submit(org, owner, data, name="Green_Button_Data.xml", run_now=None,
                    targets=[Target.WATTCARBON_INTERVALS, Target.WATTICS])  # fmt: skip
    upload = wait_upload(upload, UploadStatus.NEEDS_MAPPING, celery_worker)
    keys = upload.options["meter_keys"]
    upload = upload_set_source_meters(upload=upload, choices=dict(zip(keys, [gas, main, solar], strict=True)),
                                      user=owner)  # fmt: skip
    upload = wait_upload(upload, UploadStatus.VALIDATED, celery_worker)
    assert upload.rows_valid == 49 + 49 + 3
    upload_confirm(upload=upload, user=owner)
    upload = wait_upload(upload, UploadStatus.STORED, celery_worker)
    deliveries = wait_done(*Delivery.objects.filter(upload=upload), timeout=180, worker=celery_worker)
    assert len(deliveries) == 6 and {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}, [
        (d.meter_id, d.target, d.last_error) for d in deliveries
    ]
    # WattCarbon: consumption positive (4000 × 10^-1 Wh = 0.4 kWh), generation negative, gas in kWh.
    consumed = wattcarbon_sim.intervals(int(main.wattcarbon_id))
    generated = wattcarbon_sim.intervals(int(solar.wattcarbon_id))
    burned = wattcarbon_sim.intervals(int(gas.wattcarbon_id))
    assert len(consumed) == len(generated) == 49 and len(burned) == 3
    assert consumed[0] == {"start_datetime": "2024-11-02T04:00:00+00:00", "energy_kwh": pytest.approx(0.4)}
    assert [row["energy_kwh"] for row in generated] == pytest.approx([-0.05] * 49)
    assert burned[0]["energy_kwh"] == pytest.approx(2.5 * 29.3071070)
    # Wattics: every hour once, the repeated 01:00 of 2024-11-03 in both offsets, in order.
    stamps = [p["tsISO8601"] for p in wattics_sim.packets("demo-elec-1")["accepted"]]
    assert wattics_sim.packets("demo-elec-1")["discarded_count"] == 0
    assert "2024-11-03T01:00:00.000-04:00" in stamps and "2024-11-03T01:00:00.000-05:00" in stamps
    assert len(wattics_sim.packets("demo-gas-1")["accepted"]) >= 3
    assert Reading.objects.filter(meter=solar, value__lt=0).count() == 0  # stored as generation, signed at push


def test_a_portfolio_manager_export_reaches_wattcarbon_as_bills(
    celery_worker, settings, org, owner, site, vendor_credentials, wattcarbon_sim
):
    settings.INGEST_INLINE_MAX_BYTES = 0
    main = remote_meter(org, vendor_credentials, site, name="Main", interval_minutes=60)
    gas = remote_meter(org, vendor_credentials, site, name="Gas", meter_type="gas", interval_minutes=1440)
    upload = submit(org, owner, fs.portfolio_manager_export(), name="Meter Entries.xlsx", run_now=None,
                    targets=[Target.WATTCARBON_BILLS])  # fmt: skip
    upload = wait_upload(upload, UploadStatus.NEEDS_MAPPING, celery_worker)
    upload = upload_set_source_meters(upload=upload, choices={"7700101": main, "7700102": gas}, user=owner)
    upload = wait_upload(upload, UploadStatus.VALIDATED, celery_worker)
    assert any(w["code"] == "estimated" for w in upload.warnings)
    upload_confirm(upload=upload, user=owner)
    upload = wait_upload(upload, UploadStatus.STORED, celery_worker)
    deliveries = wait_done(*Delivery.objects.filter(upload=upload), timeout=120, worker=celery_worker)
    assert {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}, [d.last_error for d in deliveries]
    electric = wattcarbon_sim.bills(int(main.wattcarbon_id))
    therms = wattcarbon_sim.bills(int(gas.wattcarbon_id))
    assert len(electric) == len(therms) == 6
    assert (electric[0]["start_date"], electric[0]["end_date"]) == ("2024-01-01", "2024-01-31")
    assert electric[0]["energy_kwh"] == pytest.approx(12000)
    assert therms[0]["energy_kwh"] == pytest.approx(900 * 29.3071070)


def test_a_zip_of_csv_excel_and_green_button_is_one_batch_pushed_by_the_worker(
    celery_worker, settings, org, owner, owner_client, site, vendor_credentials, wattcarbon_sim
):
    # WattCarbon takes the months in any order. (Wattics discards packets older than its latest: the files of
    # one meter would have to be pushed one after the other; see docs/formats.md.)
    settings.INGEST_INLINE_MAX_BYTES = 0
    meter = remote_meter(org, vendor_credentials, site, name="Main", interval_minutes=60)
    feb = [["timestamp", "energy_kwh"]] + [[datetime(2024, 2, 1, h), 2.0] for h in range(3)]
    mar = espi.feed(
        [espi.Point("Depot", channels=[espi.Channel(readings=espi.hourly(datetime(2024, 3, 1, tzinfo=UTC), 3))])]
    )
    zipped = fs.zipped({"2024-01.csv": hourly(3).encode(), "2024-02.xlsx": fs.xlsx({"Feb": feb}), "2024-03.xml": mar})
    batch = batch_create(organization=org, user=owner, files=[SimpleUploadedFile("q1.zip", zipped)], meter=meter,
                         targets=[Target.WATTCARBON_INTERVALS])  # fmt: skip
    wait_for(lambda: batch_status(batch=batch)["code"] == "validated", timeout=120, what="batch validated",
             worker=celery_worker)  # fmt: skip
    assert owner_client.post(f"/uploads/batches/{batch.pk}/confirm/").status_code == 302
    wait_for(lambda: batch_status(batch=batch)["code"] == "stored", timeout=120, what="batch stored",
             worker=celery_worker)  # fmt: skip
    deliveries = wait_done(*Delivery.objects.filter(upload__batch=batch), timeout=120, worker=celery_worker)
    assert len(deliveries) == 3 and {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}, [
        (d.upload.original_name, d.last_error) for d in deliveries
    ]
    intervals = wattcarbon_sim.intervals(int(meter.wattcarbon_id))
    assert Reading.objects.filter(meter=meter).count() == 9
    assert [row["start_datetime"][:13] for row in intervals] == [
        "2024-01-15T00", "2024-01-15T01", "2024-01-15T02",  # CSV, UTC
        "2024-02-01T05", "2024-02-01T06", "2024-02-01T07",  # Excel, New York local times
        "2024-03-01T00", "2024-03-01T01", "2024-03-01T02",  # Green Button, epoch seconds
    ]  # fmt: skip
    page = owner_client.get(f"/uploads/batches/{batch.pk}/")
    assert page.content.count(b"/review/") == 3 and b'data-batch-status="stored"' in page.content
