"""End to end, in headless Chromium, with a real Celery worker and the vendor simulators
over HTTP: log in, create a site, a meter and a device through the forms, upload a CSV,
confirm it on the review page, watch the progress bar reach 100 % and the delivery
delivered, see the meter's chart, and download the error report of a bad file."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from uploads.models import Delivery, Upload

pytestmark = [pytest.mark.browser, pytest.mark.worker]

STREAM = "demo-elec-1"  # a stream the Wattics simulator's demo account owns
ROWS = 1200


def readings_csv(rows: int) -> str:
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    lines = ["timestamp,value"]
    for i in range(rows):
        lines.append(f"{(t0 + timedelta(minutes=15 * i)).isoformat()},{1 + (i % 96) / 40:.3f}")
    return "\n".join(lines) + "\n"


def bad_csv() -> str:
    return (
        "timestamp,value\n"
        "2025-03-01T00:00:00+00:00,1.0\n"
        "not-a-date,2.0\n"
        "2025-03-01T00:30:00+00:00,abc\n"
        "2025-03-01T00:45:00+00:00,4.0\n"
    )


def field(pg, label: str):
    """A form field by its label; required fields' labels end with an asterisk."""
    return pg.get_by_label(re.compile(rf"^{re.escape(label)}( \*)?$"))


def fill_by_label(pg, label: str, value: str) -> None:
    field(pg, label).fill(value)


@pytest.fixture
def e2e(celery_worker, vendor_credentials, wattics_sim):
    # Slow the simulator a little so the progress bar is seen moving.
    wattics_sim.faults(latency_ms=8)
    return wattics_sim


def test_from_login_to_a_delivered_upload(page, login, screenshot, e2e, tmp_path, org, owner):
    login(page, "owner")
    screenshot(page, "dashboard-empty")

    # A site, through its form.
    page.goto("/sites/new/")
    fill_by_label(page, "Name", "Harbour Depot")
    fill_by_label(page, "Street", "1 Quay Road")
    fill_by_label(page, "City", "Dublin")
    fill_by_label(page, "Postal code", "D01 X2Y3")
    fill_by_label(page, "Country", "IE")
    fill_by_label(page, "Timezone", "Europe/Dublin")
    screenshot(page, "site-form")
    page.get_by_role("button", name="Save site").click()
    page.wait_for_url(re.compile(r"/sites/\d+/$"))
    screenshot(page, "site-detail")

    # A meter with a Wattics stream.
    page.goto("/meters/new/")
    field(page, "Site").select_option(label="Harbour Depot")
    fill_by_label(page, "Name", "Main incomer")
    fill_by_label(page, "Wattics data stream id", STREAM)
    screenshot(page, "meter-form")
    page.get_by_role("button", name="Save meter").click()
    page.wait_for_url(re.compile(r"/meters/\d+/$"))
    meter_url = page.url
    screenshot(page, "meter-detail-empty")

    # A solar device on that meter.
    page.goto("/devices/new/")
    field(page, "Site").select_option(label="Harbour Depot")
    fill_by_label(page, "Name", "Roof array")
    page.get_by_label(re.compile("^Custom id", re.I)).fill("HARBOUR-PV-1")
    page.get_by_label(re.compile("^Commenced operation", re.I)).fill("2023-06-01")
    page.get_by_label(re.compile("^Nameplate capacity")).fill("120")
    screenshot(page, "device-form")
    page.get_by_role("button", name="Save device").click()
    page.wait_for_url(re.compile(r"/devices/\d+/$"))
    screenshot(page, "device-detail")

    # Upload a CSV for the meter, to Wattics only.
    good = tmp_path / "harbour-march.csv"
    good.write_text(readings_csv(ROWS))
    page.goto("/uploads/new/")
    page.get_by_label("CSV file").set_input_files(str(good))
    field(page, "Meter").select_option(label="Harbour Depot / Main incomer")
    page.get_by_label("WattCarbon intervals").uncheck()
    page.get_by_label("Wattics packets").check()
    screenshot(page, "upload-form")
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_url(re.compile(r"/uploads/\d+/review/$"))
    push = page.get_by_role("button", name=re.compile(r"^Push [\d,]+ valid rows?"))
    push.wait_for(timeout=60_000)  # the worker parses the file; the page updates by itself
    assert f"Push {ROWS:,} valid rows" in push.inner_text()
    screenshot(page, "review")
    push.click()

    # The upload's page: the progress bar moves, reaches 100 %, the delivery is delivered.
    page.wait_for_url(re.compile(r"/uploads/\d+/$"), timeout=60_000)
    upload = Upload.objects.get(original_name="harbour-march.csv")
    bar = page.locator("#upload-progress [role=progressbar]").first
    bar.wait_for(timeout=60_000)
    screenshot(page, "detail-pushing")
    page.locator("#upload-progress .badge.status-delivered").wait_for(timeout=120_000)
    assert bar.get_attribute("aria-valuenow") == "100"
    assert page.locator("#upload-progress").get_attribute("hx-trigger") is None  # polling stopped
    delivery = Delivery.objects.get(upload=upload)
    assert (delivery.status, delivery.acknowledged) == ("delivered", ROWS)
    assert len(e2e.packets(STREAM)["accepted"]) == ROWS + 1  # the register's opening packet, then one per row
    page.locator(f"#exchanges-{delivery.pk} summary").click()
    page.locator(f"#exchanges-{delivery.pk} table").wait_for()
    screenshot(page, "detail-delivered")

    # The dashboard and the list show it; the meter page charts the stored readings.
    page.goto("/")
    assert page.locator("#active-deliveries").get_attribute("hx-trigger") is None
    screenshot(page, "dashboard-after")
    page.goto("/uploads/")
    assert page.get_by_text("Wattics packets · Delivered").is_visible()
    screenshot(page, "uploads-list")
    page.goto(meter_url)
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))")
    assert page.get_by_text(f"{ROWS:,} readings in range").is_visible()
    screenshot(page, "meter-detail-data")

    # A bad file: its review names the row errors and the error report downloads.
    bad = tmp_path / "harbour-bad.csv"
    bad.write_text(bad_csv())
    page.goto("/uploads/new/")
    page.get_by_label("CSV file").set_input_files(str(bad))
    field(page, "Meter").select_option(label="Harbour Depot / Main incomer")
    page.get_by_label("WattCarbon intervals").uncheck()
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_url(re.compile(r"/uploads/\d+/review/$"))
    report = page.get_by_role("link", name="Download the error report (CSV)")
    report.wait_for(timeout=60_000)
    screenshot(page, "review-bad-file")
    with page.expect_download() as download_info:
        report.click()
    download = download_info.value
    content = Path(download.path()).read_text(encoding="utf-8")
    assert "not-a-date" in content and "abc" in content
    bad_upload = Upload.objects.get(original_name="harbour-bad.csv")
    assert bad_upload.rows_invalid == 2
    page.goto(f"/uploads/{bad_upload.pk}/")
    assert page.get_by_role("link", name=re.compile("error report")).is_visible()
    screenshot(page, "detail-bad-file")
    assert page.js_errors == []
