"""Drill: a worker killed between WattCarbon's creating a meter (then an asset) and our
saving its id. The simulator stores the object, then holds its answer (`hold_created_ms`),
and the worker is SIGKILLed while it waits: the vendor has the object, we have no id.
A later sync must adopt both, never create a second one."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sites.models import Device, Meter, SyncStatus
from sites.services import sync
from tests import factories
from tests.drills.support import wait_for
from vendors.models import HttpExchange

pytestmark = pytest.mark.worker


def _dead_workers_claims_go_stale() -> None:
    # A dead worker's "syncing" claim is taken over after STALE_CLAIM; move time on, not wait.
    old = timezone.now() - sync.STALE_CLAIM - timedelta(minutes=1)
    for model in (Meter, Device):
        model.objects.filter(wattcarbon_status=SyncStatus.SYNCING).update(wattcarbon_claimed_at=old)


def test_a_worker_killed_before_saving_wattcarbon_ids_leaves_one_meter_and_one_asset(
    drill_worker, org, vendor_credentials, wattcarbon_sim
):
    site = factories.make_site(org, name="Depot")
    meter = factories.make_meter(site, name="Main incomer")
    device = factories.make_device(
        site, kind="demand_response_eemetered", fields={}, meters=[meter], custom_id="DR-7",
        commenced_operation_date=None,
    )  # fmt: skip
    remote = wattcarbon_sim.state

    # 1. WattCarbon creates the meter; its answer is held; the worker dies before hearing it.
    wattcarbon_sim.faults(hold_created_ms=60_000)
    assert sync.device_sync_request(device=device)
    wait_for(lambda: len(remote()["meters"]) == 1, timeout=60, what="the remote meter", worker=drill_worker)
    drill_worker.kill()
    meter.refresh_from_db()
    [(remote_meter_id, remote_meter)] = remote()["meters"].items()
    assert meter.wattcarbon_id == "" and meter.wattcarbon_status == SyncStatus.SYNCING
    assert meter.wattcarbon_marker and meter.wattcarbon_marker in remote_meter["name"]  # intent saved first

    # 2. A new worker, a new press: the meter is found by its marker and adopted; then the
    #    asset is created, its answer held, and this worker dies too.
    drill_worker.start()
    _dead_workers_claims_go_stale()
    assert sync.device_sync_request(device=device)
    wait_for(lambda: len(remote()["devices"]) == 1, timeout=60, what="the remote asset", worker=drill_worker)
    drill_worker.kill()
    meter.refresh_from_db()
    device.refresh_from_db()
    assert meter.wattcarbon_id == remote_meter_id and meter.wattcarbon_status == SyncStatus.SYNCED
    assert device.wattcarbon_id == "" and device.wattcarbon_marker
    assert len(remote()["meters"]) == 1

    # 3. WattCarbon answers at once again; the next sync hears "customId already used",
    #    finds the asset by its customId and adopts it.
    wattcarbon_sim.faults(hold_created_ms=0)
    drill_worker.start()
    _dead_workers_claims_go_stale()
    assert sync.device_sync_request(device=device)

    def synced():
        device.refresh_from_db()
        return device.wattcarbon_status in (SyncStatus.SYNCED, SyncStatus.FAILED)

    wait_for(synced, timeout=60, what="the device sync", worker=drill_worker)
    assert device.wattcarbon_status == SyncStatus.SYNCED, device.wattcarbon_error
    state = remote()
    assert len(state["meters"]) == 1 and len(state["devices"]) == 1
    [(remote_asset_id, remote_asset)] = state["devices"].items()
    assert device.wattcarbon_id == remote_asset_id
    assert remote_asset["customId"] == "DR-7" and remote_asset["meterIds"] == [int(remote_meter_id)]
    calls = list(HttpExchange.objects.filter(device=device).order_by("id").values_list("method", "url", "status_code"))
    assert [(m, code) for m, _, code in calls][-2:] == [("POST", 409), ("GET", 200)]
    assert calls[-1][1].endswith("/assets")
