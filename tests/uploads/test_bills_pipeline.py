"""A monthly gas billing export, `start,value` with a final nan row, through the real worker to
the WattCarbon simulator: it must hold the periods as bills, with the right end dates."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.selectors import wattcarbon_account
from tests import factories
from tests.drills.support import wait_done, wait_for
from tests.uploads.bill_files import gas_billing_export
from uploads.models import Delivery, DeliveryStatus, Target, Upload, UploadStatus
from uploads.services.ingest import upload_confirm, upload_create
from vendors.http import ExchangeLog
from vendors.wattcarbon import WattCarbonClient

pytestmark = pytest.mark.worker


def test_a_gas_billing_export_arrives_at_wattcarbon_as_bills(celery_worker, org, owner, vendor_credentials,
                                                             wattcarbon_sim):  # fmt: skip
    log = ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    client = WattCarbonClient(wattcarbon_account(credentials=vendor_credentials), log)
    remote = client.create_meter({"apiProvider": "manual", "meterType": "gas", "name": "Gas",
                                  "location": {"latitude": 40.68, "longitude": -73.94}})  # fmt: skip
    site = factories.make_site(org, timezone="America/New_York")
    meter = factories.make_meter(site, name="Gas", meter_type="gas", reading_kind="billing", wattcarbon_id=str(remote))
    content, expected = gas_billing_export()
    assert len(content.splitlines()) == 27  # header, 25 periods, the nan end row

    # run_now=False: the worker validates and stores, as for a big file.
    upload = upload_create(
        organization=org,
        user=owner,
        file=SimpleUploadedFile("gas-bills-2022-2024.csv", content.encode(), content_type="text/csv"),
        meter=meter,
        targets=[Target.WATTCARBON_BILLS],
        run_now=False,
    )
    upload = wait_for(lambda: Upload.objects.filter(pk=upload.pk, status=UploadStatus.VALIDATED).first(),
                      timeout=60, what="validation", worker=celery_worker)  # fmt: skip
    assert (upload.rows_valid, upload.rows_invalid) == (25, 0)
    upload_confirm(upload=upload, user=owner, run_now=False)
    delivery = wait_for(lambda: Delivery.objects.filter(upload=upload).first(), timeout=60, what="the delivery",
                        worker=celery_worker)  # fmt: skip
    (delivery,) = wait_done(delivery, timeout=120, worker=celery_worker)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert (delivery.target, delivery.total, delivery.acknowledged) == (Target.WATTCARBON_BILLS, 25, 25)
    assert delivery.last_ts.date() == expected[-1][1]

    bills = wattcarbon_sim.bills(int(remote))
    assert [(b["start_date"], b["end_date"]) for b in bills] == [(s.isoformat(), e.isoformat()) for s, e, _ in expected]
    assert [b["energy_kwh"] for b in bills] == pytest.approx([kwh for _, _, kwh in expected])
    # Nothing went to WattCarbon as intervals.
    assert wattcarbon_sim.intervals(int(remote)) == []
