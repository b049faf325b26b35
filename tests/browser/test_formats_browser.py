"""The other formats in headless Chromium: a Green Button file whose UsagePoints are matched to meters
on the page, the unit conversion shown on the review, two files sent as one batch, the formats page."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests import factories
from tests.data import espi
from uploads.models import SourceMeter, Upload, UploadStatus

pytestmark = pytest.mark.browser


def test_green_button_meters_matched_on_the_page_and_a_batch_of_two_files(
    page, login, screenshot, tmp_path, transactional_db, org, owner
):
    csp: list[str] = []
    page.on("console", lambda msg: csp.append(msg.text) if "Content Security Policy" in msg.text else None)
    site = factories.make_site(org, name="Brooklyn Depot", timezone="America/New_York")
    factories.make_meter(site, name="Main", interval_minutes=60)
    factories.make_meter(site, name="Gas", meter_type="gas", interval_minutes=1440)
    start = datetime(2024, 11, 2, tzinfo=ZoneInfo("America/New_York"))
    feed = espi.feed([
        espi.Point("Depot service", channels=[espi.Channel(readings=espi.hourly(start, 48))]),
        espi.Point("Depot gas", service_kind=1, channels=[
            espi.Channel(uom=espi.THERM, multiplier=-2, commodity=7, interval=86400, readings=espi.daily(start, 2)),
        ]),
    ])  # fmt: skip
    xml = tmp_path / "Green_Button_Data.xml"
    xml.write_bytes(feed)
    login(page, "owner")

    page.goto("/uploads/new/")
    page.get_by_role("link", name="accepted formats").click()
    page.wait_for_url(re.compile(r"/uploads/formats/$"))
    assert page.get_by_role("link", name="green-button.xml").is_visible()
    screenshot(page, "formats-page")

    page.goto("/uploads/new/")
    page.get_by_label("CSV file").set_input_files(str(xml))
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_url(re.compile(r"/review/$"))
    page.get_by_role("link", name="Match meters").click()
    page.get_by_label("Depot gas (UsagePoint 2), delivered").select_option(label="Brooklyn Depot / Gas")
    page.get_by_label("Depot service (UsagePoint 1), delivered").select_option(label="Brooklyn Depot / Main")
    screenshot(page, "match-meters")
    page.get_by_role("button", name="Save and check again").click()
    page.wait_for_url(re.compile(r"/review/$"))
    units = page.locator("section", has=page.get_by_role("heading", name="Units"))
    assert "× 0.001" in units.inner_text() and "therm" in units.inner_text()
    assert "0.475" in page.locator("table").last.inner_text()  # 475 Wh, no float noise
    screenshot(page, "review-units")
    assert Upload.objects.get().status == UploadStatus.VALIDATED
    assert SourceMeter.objects.filter(organization=org).count() == 2

    one, two = tmp_path / "jan.csv", tmp_path / "feb.csv"
    one.write_text("timestamp,value\n2024-01-15T00:00:00Z,1\n2024-01-15T01:00:00Z,2\n")
    two.write_text("timestamp,value\n2024-02-15T00:00:00Z,oops\n")
    page.goto("/uploads/new/")
    page.get_by_label("CSV file").set_input_files(str(one))
    page.get_by_label("More files").set_input_files([str(two)])
    page.get_by_label("Meter", exact=True).select_option(label="Brooklyn Depot / Main")
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_url(re.compile(r"/uploads/batches/\d+/$"))
    page.get_by_text("Ready to push").wait_for()
    rows = page.locator("tbody tr")
    assert rows.count() == 2 and "jan.csv" in rows.nth(0).inner_text() and "feb.csv" in rows.nth(1).inner_text()
    screenshot(page, "batch")
    assert not page.js_errors and not csp, (page.js_errors, csp)
