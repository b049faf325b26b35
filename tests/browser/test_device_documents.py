"""A demand-response device in the browser: synced by the real worker, then its events
CSV uploaded from the device page and delivered to WattCarbon as an asset document."""

import time

import pytest

from sites.models import DeviceDocument, DocumentStatus
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.worker]

EVENTS = b"Event Start Time,Event End Time\n2021-01-01 17:00:00-05:00,2021-01-01 19:00:00-05:00\n"


def _wait(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_demand_response_events_are_uploaded_from_the_device_page(
    page, login, screenshot, celery_worker, vendor_credentials, wattcarbon_sim, org, owner
):
    site = factories.make_site(org, name="Depot")
    meter = factories.make_meter(site, name="Main incomer")
    device = factories.make_device(
        site, name="Depot DR", kind="demand_response_eemetered", fields={}, meters=[meter], custom_id="DR-1",
        commenced_operation_date=None,
    )  # fmt: skip
    login(page, "owner")
    page.goto(f"/devices/{device.pk}/")
    assert "Sync the device to WattCarbon first" in page.locator("main").inner_text()
    # A form POST that redirects back here: wait for that page, or the reload below races it.
    with page.expect_navigation():
        page.get_by_role("button", name="Sync to WattCarbon").click()

    def synced():
        device.refresh_from_db()
        return device.wattcarbon_status in ("synced", "failed")

    _wait(synced, "the device sync")
    assert device.wattcarbon_status == "synced", device.wattcarbon_error
    page.reload()
    page.set_input_files("input[type=file][name=file]", files=[
        {"name": "events.csv", "mimeType": "text/csv", "buffer": EVENTS}
    ])  # fmt: skip
    page.get_by_role("button", name="Upload to WattCarbon").click()
    page.wait_for_url(f"**/devices/{device.pk}/")
    _wait(lambda: DeviceDocument.objects.filter(device=device, status=DocumentStatus.UPLOADED).exists(), "the upload")
    page.reload()
    screenshot(page, "dr-events-uploaded")
    row = page.locator("tr", has_text="events.csv").inner_text()
    assert "Uploaded" in row and "1" in row
    [remote] = wattcarbon_sim.documents(int(device.wattcarbon_id))
    assert remote["type"] == "demand_response_events" and len(remote["rows"]) == 1
