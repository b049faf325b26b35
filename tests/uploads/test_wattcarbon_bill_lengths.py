"""Bills of unusual length: 25-35 days (70 bimonthly) is CalTRACK's analysis filter, not an
API rule. The portal warns on review and a real worker delivers them; WattCarbon's simulator
takes them with a warning of its own."""

import pytest

from accounts.selectors import wattcarbon_account
from tests import factories
from tests.drills.support import wait_done
from tests.uploads.ingest_support import submit
from uploads.models import Delivery, DeliveryStatus, Target, UploadStatus
from uploads.services.ingest import upload_confirm
from vendors.http import ExchangeLog
from vendors.wattcarbon import WattCarbonClient

pytestmark = pytest.mark.worker

ODD_BILLS = "start_date,end_date,energy_kwh\n2024-01-01,2024-01-10,90\n2024-02-01,2024-05-01,2700\n"


def test_bills_of_unusual_length_are_a_warning_and_are_delivered(celery_worker, org, owner, vendor_credentials,
                                                                   wattcarbon_sim):  # fmt: skip
    client = WattCarbonClient(
        wattcarbon_account(credentials=vendor_credentials), ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    )
    remote = client.create_meter({"apiProvider": "manual", "meterType": "gas", "name": "Gas",
                                  "location": {"latitude": 37.78, "longitude": -122.41}})  # fmt: skip
    meter = factories.make_meter(factories.make_site(org), meter_type="gas", wattcarbon_id=str(remote))
    upload = submit(org, owner, ODD_BILLS, meter=meter, targets=[Target.WATTCARBON_BILLS])
    assert upload.status == UploadStatus.VALIDATED and upload.rows_invalid == 0
    assert "bill_period_length" in [w["code"] for w in upload.warnings]
    upload_confirm(upload=upload, user=owner, run_now=True)
    (delivery,) = wait_done(*Delivery.objects.filter(upload=upload), timeout=60, worker=celery_worker)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert (delivery.acknowledged, delivery.rejected) == (2, 0)
    assert [b["start_date"] for b in wattcarbon_sim.bills(remote)] == ["2024-01-01", "2024-02-01"]
