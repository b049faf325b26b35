"""The status pages in headless Chromium: dashboard, uploads list, upload detail,
meter data. Every page visited is saved as a full-page screenshot."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.dashboard.fixtures import T0

pytestmark = pytest.mark.browser


@pytest.fixture
def world(org, owner, teammate, viewer):
    site = factories.make_site(org, name="Ellis Street Depot")
    meter = factories.make_meter(site, name="Main incomer", interval_minutes=15, wattics_stream_id="acme-1")
    gas = factories.make_meter(site, name="Gas boiler", meter_type="gas", interval_minutes=60)
    now = timezone.now()
    march = factories.make_upload(
        org,
        owner,
        meter=meter,
        original_name="ellis-main-2025-03.csv",
        targets=["wattics", "wattcarbon_intervals"],
        rows_total=2976,
        rows_valid=2970,
        rows_invalid=6,
        rows_stored=2970,
        size_bytes=187_422,
        period_start=T0,
        period_end=T0 + timedelta(days=31),
        warnings=[{"message": "4 duplicate rows dropped"}, {"message": "1 gap of 3 intervals on 2025-03-09"}],
    )
    pushing = factories.make_delivery(
        march,
        meter,
        target="wattics",
        status="pushing",
        total=2970,
        sent=1710,
        acknowledged=1700,
        attempts=1,
        started_at=now - timedelta(seconds=85),
        first_ts=T0,
        last_ts=T0 + timedelta(days=31),
    )
    failed = factories.make_delivery(
        march,
        meter,
        target="wattcarbon_intervals",
        status="failed",
        total=2970,
        sent=2970,
        rejected=2970,
        attempts=5,
        last_error='422 Unprocessable Entity: {"detail": [{"loc": ["body", "start_datetime"], "msg": "invalid"}]}',
    )
    for i in range(24):
        factories.make_exchange(failed, url=f"http://127.0.0.1:8101/meters/17/intervals?chunk={i}", status_code=422,
                                duration_ms=40 + i, error="start_datetime: invalid datetime")  # fmt: skip
    factories.make_exchange(pushing, url="http://127.0.0.1:8102/push", status_code=200)
    gas_upload = factories.make_upload(org, teammate, meter=gas, original_name="gas-q1.csv", targets=["wattics"])
    factories.make_delivery(gas_upload, gas, status="delivered", total=96, sent=96, acknowledged=96,
                            cursor_ts=T0 + timedelta(days=1), finished_at=now - timedelta(hours=2))  # fmt: skip
    factories.make_upload(org, owner, original_name="broken-export.csv", status="invalid", rows_total=40,
                          rows_valid=0, rows_invalid=40, targets=[])  # fmt: skip
    for i in range(5):
        factories.make_upload(org, teammate, meter=gas, original_name=f"gas-daily-{i}.csv", status="stored")
    # 40 days of 15-minute readings with two holes.
    factories.make_readings(meter, T0, 40 * 96, skip=[*range(900, 912), *range(2000, 2003)])
    return {"meter": meter, "upload": march, "pushing": pushing, "failed": failed}


def test_it_walks_the_status_pages_as_an_owner(page, login, screenshot, world):
    login(page, "owner")
    assert page.get_by_role("heading", name="Acme Energy").is_visible()
    page.get_by_text("Deliveries in progress").wait_for()
    assert page.locator("#active-deliveries [role=progressbar]").count() == 1
    assert page.locator("#active-deliveries").get_attribute("hx-trigger") == "every 2s"
    screenshot(page, "dashboard")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Uploads").click()
    page.wait_for_url(re.compile(r"/uploads/$"))
    assert page.get_by_role("link", name="ellis-main-2025-03.csv").is_visible()
    screenshot(page, "uploads-list")

    page.get_by_label("Status").select_option("invalid")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=invalid"))
    assert page.get_by_role("link", name="broken-export.csv").is_visible()
    assert page.get_by_role("link", name="ellis-main-2025-03.csv").count() == 0
    screenshot(page, "uploads-list-filtered")

    page.goto("/uploads/?sort=name")
    page.get_by_role("link", name="ellis-main-2025-03.csv").click()
    page.wait_for_url(re.compile(r"/uploads/\d+/$"))
    assert page.get_by_role("link", name=re.compile("error report")).is_visible()
    assert page.locator("article.delivery").count() == 2
    screenshot(page, "upload-detail")

    page.get_by_text(re.compile(r"WattCarbon intervals · .*24 requests")).click()
    log = f"#exchanges-{world['failed'].pk}"
    page.locator(f"{log} table").wait_for()
    assert page.locator(f"{log} tbody tr").count() == 20
    page.get_by_role("link", name="Older ›").click()
    page.get_by_text("Page 2 of 2").wait_for()
    assert page.locator(f"{log} tbody tr").count() == 4
    screenshot(page, "upload-detail-exchanges")
    assert page.js_errors == []


def test_it_updates_the_progress_bar_without_reloading(page, login, screenshot, world):
    login(page, "owner")
    page.goto(f"/uploads/{world['upload'].pk}/")
    bar = page.locator(f"#delivery-{world['pushing'].pk} [role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == "57"
    screenshot(page, "detail-while-pushing")

    pushing = world["pushing"]
    pushing.acknowledged = pushing.sent = pushing.total
    pushing.status = "delivered"
    pushing.finished_at = timezone.now()
    pushing.save()
    # The next poll (every 2 s) swaps the section in place; then polling stops.
    page.locator(f"#delivery-{pushing.pk} .badge.status-delivered").wait_for(timeout=8000)
    assert bar.get_attribute("aria-valuenow") == "100"
    assert page.locator("#upload-progress").get_attribute("hx-trigger") is None
    screenshot(page, "detail-after-push")
    assert page.js_errors == []


def test_a_viewer_sees_no_action_buttons(page, login, screenshot, world):
    login(page, "viewer")
    screenshot(page, "dashboard-viewer")
    page.goto(f"/uploads/{world['upload'].pk}/")
    assert page.locator(".row-actions").count() == 0
    assert page.get_by_role("button", name=re.compile("Retry|Cancel|Re-push")).count() == 0
    screenshot(page, "upload-detail-viewer")


def test_it_draws_the_meter_data_chart(page, login, screenshot, world):
    login(page, "owner")
    page.goto(f"/meters/{world['meter'].pk}/data/")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))")
    assert page.get_by_text("1 hole", exact=True).is_visible()  # the other is before the 30 days
    screenshot(page, "meter-data")

    page.get_by_label("From", exact=True).fill("2025-03-08")
    page.get_by_label("To", exact=True).fill("2025-03-12")
    page.get_by_role("button", name="Show").click()
    page.get_by_text("468 readings in range").wait_for()  # 5 days of 96, less a 12-interval hole
    page.wait_for_function("() => Chart.getChart(document.querySelector('canvas[data-chart]'))")
    screenshot(page, "meter-data-range")
    assert page.js_errors == []
