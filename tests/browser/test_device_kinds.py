"""Issue 3's promise, in the browser: a device of every kind of the methodology registry
is created through the form (its kind's own fields appear when the kind is chosen) and
synced to WattCarbon by the real worker; the page then shows the simulator's id.

The fields are filled from the registry itself, so a kind added to it is walked too."""

import re
import time

import pytest

from sites.methodologies import BOOLEAN, CHOICE, DATE, DECIMAL, INTEGER, METHODOLOGIES
from sites.models import Device
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.worker]

SAMPLE = {DECIMAL: "12.5", INTEGER: "12", DATE: "2024-06-01"}


@pytest.mark.parametrize("kind", list(METHODOLOGIES))
def test_a_device_of_each_kind_is_created_and_synced_in_the_browser(
    kind, page, login, screenshot, celery_worker, vendor_credentials, wattcarbon_sim, org, owner
):
    site = factories.make_site(org, name="Depot")
    meter = factories.make_meter(site, name="Main incomer")
    methodology = METHODOLOGIES[kind]
    login(page, "owner")

    page.goto("/devices/new/")
    page.select_option("#id_kind", kind)
    # The kind's fields came in without a reload (a kind may have none of its own: its legend).
    page.wait_for_selector(f"#kind-fields legend:text-is('{methodology.label}')")
    page.select_option("#id_site", label="Depot")
    page.fill("#id_name", f"{methodology.label} device")
    page.fill("#id_custom_id", f"DEV-{kind}")
    page.fill("#id_commenced_operation_date", "2023-06-01")
    page.check(f"input[name=meters][value='{meter.pk}']")
    for spec in methodology.fields:
        if not spec.required:
            continue
        if spec.type == CHOICE:
            page.select_option(f"#id_{spec.name}", spec.choices[0][0])
        elif spec.type == BOOLEAN:
            page.check(f"#id_{spec.name}")
        else:
            page.fill(f"#id_{spec.name}", SAMPLE.get(spec.type, "sample"))
    screenshot(page, f"{kind}-form")
    page.get_by_role("button", name="Save device").click()
    page.wait_for_url(re.compile(r"/devices/\d+/$"))

    # A form POST that redirects back here: wait for that page, or a reload below races it.
    with page.expect_navigation():
        page.get_by_role("button", name="Sync to WattCarbon").click()
    device = Device.objects.get(organization=org, custom_id=f"DEV-{kind}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        device.refresh_from_db()
        if device.wattcarbon_status in ("synced", "failed"):
            break
        time.sleep(0.2)
    assert device.wattcarbon_status == "synced", device.wattcarbon_error
    page.reload()
    screenshot(page, f"{kind}-synced")
    remote = wattcarbon_sim.state()["devices"][device.wattcarbon_id]
    assert remote["customId"] == f"DEV-{kind}"
    meter.refresh_from_db()
    assert remote["meterIds"] == [int(meter.wattcarbon_id)]  # its meter was synced first
    card = page.locator("main").inner_text()
    assert "Synced" in card and device.wattcarbon_id in card
