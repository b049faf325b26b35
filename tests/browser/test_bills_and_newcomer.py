"""Bills drawn as periods on the meter page, and what a newcomer tripped over: live sync
status, choice labels, the device form's meters, a favicon, and pages that fit their
screen (1366 px desktop, 390 px phone). Screenshots at both widths."""

import re
from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.dashboard.fixtures import T0
from tests.uploads.bill_files import read_days
from uploads.models import Bill

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


@pytest.fixture
def world(org, owner):
    site = factories.make_site(org, name="Ellis Street Depot", timezone="America/New_York")
    other = factories.make_site(org, name="Harbour Works")
    meter = factories.make_meter(site, name="Main incomer", interval_minutes=15, wattics_stream_id="acme-1")
    gas = factories.make_meter(site, name="Gas boiler", meter_type="gas", reading_kind="billing",
                               wattcarbon_id="77", wattcarbon_status="synced")  # fmt: skip
    far = factories.make_meter(other, name="Harbour main")
    days = read_days(date(2023, 1, 6))
    upload = factories.make_upload(org, owner, meter=gas, targets=["wattcarbon_bills"], original_name="gas.csv")
    for i, (start, end) in enumerate(zip(days, days[1:], strict=False)):
        # Winter high, summer low.
        kwh = 900 + 700 * abs(6 - (start.month % 12)) / 6 + 10 * i
        Bill.objects.create(meter=gas, upload=upload, start_date=start, end_date=end, energy_kwh=kwh)
    factories.make_readings(gas, T0, 96 * 3, 15)  # interval readings beside the bills
    device = factories.make_device(
        site,
        kind="electrification_billing_metered",
        meters=[gas],
        fields={"areaSqft": 1800, "previousFuel": "natural_gas", "buildingType": "single_family_detached"},
    )
    # A delivery with many WattCarbon exchanges: the meter page's request table.
    delivery = factories.make_delivery(upload, gas, target="wattcarbon_bills", status="delivered", total=25)
    for i in range(6):
        error = "" if i % 3 else "Field required: end_date " * 6
        factories.make_exchange(delivery, url=f"https://api.wattcarbon.example/meters/77/bills?chunk={i}",
                                status_code=200 if i % 3 else 422, error=error, meter=gas)  # fmt: skip
    return {"site": site, "other": other, "meter": meter, "gas": gas, "far": far, "device": device, "days": days}


def _fits(page, selector: str = "html") -> bool:
    return page.evaluate(
        "(sel) => { const el = document.querySelector(sel); return el.scrollWidth <= el.clientWidth + 1; }", selector
    )


def test_it_draws_bills_as_periods_beside_readings(page, login, screenshot, world):
    gas, days = world["gas"], world["days"]
    login(page, "owner")
    for name, viewport in (("1366", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        page.goto(f"/meters/{gas.pk}/")
        bars = page.locator("svg.bill-bars rect.bill-bar")
        bars.first.wait_for()
        assert bars.count() == len(days) - 1
        # Each bar spans its period: starts and ends are the bills', widths follow the days.
        starts = [bars.nth(i).get_attribute("data-start") for i in range(bars.count())]
        assert starts == [d.isoformat() for d in days[:-1]]
        assert bars.last.get_attribute("data-end") == days[-1].isoformat()
        boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
        lengths = [(b - a).days for a, b in zip(days, days[1:], strict=False)]
        longest, shortest = lengths.index(max(lengths)), lengths.index(min(lengths))
        assert boxes[longest]["width"] > boxes[shortest]["width"]
        # Bars follow each other left to right, without overlapping.
        assert all(boxes[i]["x"] + boxes[i]["width"] <= boxes[i + 1]["x"] + 0.5 for i in range(len(boxes) - 1))
        # The readings chart is there too.
        page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))")
        assert page.get_by_text("Bills", exact=True).is_visible()
        screenshot(page, f"meter-bills-{name}")
        assert _fits(page), f"the meter page scrolls sideways at {name} px"
    assert page.js_errors == []


def test_the_meter_pages_request_table_fits_its_card(page, login, screenshot, world):
    login(page, "owner")
    page.set_viewport_size(DESKTOP)
    page.goto(f"/meters/{world['gas'].pk}/")
    table = page.locator("#sync-card table")
    table.wait_for()
    # Measured once the page is complete: the data panel (loaded by htmx) is in place.
    page.locator("svg.bill-bars").wait_for()
    # The meter card and the WattCarbon card share the row, nothing else.
    assert page.locator("#sync-card").evaluate("(c) => c.parentElement.children.length") == 2
    card = page.locator("#sync-card").bounding_box()
    box = table.bounding_box()
    assert box["x"] + box["width"] <= card["x"] + card["width"], "the request table overflows its card"
    assert _fits(page, "#sync-card .table-wrap"), "the request table scrolls inside its card"
    # Every column, the error included, is inside the card.
    last = page.locator("#sync-card thead th").last.bounding_box()
    assert last["x"] + last["width"] <= card["x"] + card["width"]
    screenshot(page, "meter-requests-1366")


def test_the_dashboard_fits_a_phone_and_names_uploads_and_deliveries(page, login, screenshot, world, org, owner):
    upload = factories.make_upload(
        org, owner, meter=world["meter"], original_name="ellis-main-2025-03-with-a-long-name.csv"
    )
    factories.make_delivery(upload, world["meter"], target="wattics", status="failed", total=2970,
                            last_error="503 Service Unavailable " * 8)  # fmt: skip
    started = timezone.now() - timedelta(seconds=85)
    factories.make_delivery(upload, world["meter"], target="wattcarbon_intervals", status="pushing", total=2970,
                            sent=1710, acknowledged=1700, started_at=started)  # fmt: skip
    login(page, "owner")
    for name, viewport in (("1366", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        page.goto("/")
        page.locator("#active-title").wait_for()
        assert page.locator("[role=progressbar]").count() == 1
        assert page.get_by_role("heading", name=re.compile("failed deliveries")).is_visible()
        assert page.get_by_text(re.compile(r"\d+ uploads? in total")).is_visible()
        screenshot(page, f"dashboard-{name}")
        assert _fits(page), f"the dashboard scrolls sideways at {name} px"
    # "Failed" uploads: those whose deliveries failed too.
    page.goto("/uploads/?status=failed")
    assert page.get_by_role("link", name=upload.original_name).is_visible()
    screenshot(page, "uploads-failed-390")
    assert _fits(page), "the uploads list scrolls sideways at 390 px"


def test_sync_status_updates_live_until_synced_or_failed(page, login, screenshot, world):
    meter, device = world["meter"], world["device"]
    meter.wattcarbon_status = "pending"
    meter.save()
    device.wattcarbon_status = "syncing"
    device.save()
    login(page, "owner")
    page.goto(f"/meters/{meter.pk}/")
    page.evaluate("() => { window.notReloaded = true; }")
    assert page.locator("#sync-card .badge").inner_text() == "Pending"
    screenshot(page, "meter-sync-pending")
    meter.wattcarbon_status, meter.wattcarbon_id, meter.wattcarbon_synced_at = "synced", "4242", timezone.now()
    meter.save()
    page.locator("#sync-card .badge.status-synced").wait_for(timeout=8000)
    assert page.evaluate("() => window.notReloaded === true"), "the page reloaded"
    assert page.locator("#sync-card").get_by_text("4242").is_visible()
    # Synced: the card stops polling.
    assert page.locator("#sync-card").get_attribute("hx-trigger") is None
    screenshot(page, "meter-sync-synced")

    page.goto(f"/devices/{device.pk}/")
    page.evaluate("() => { window.notReloaded = true; }")
    assert page.locator("#sync-card .badge").inner_text() == "Syncing"
    device.wattcarbon_status, device.wattcarbon_error = "failed", "422: location Field required"
    device.save()
    page.locator("#sync-card .badge.status-failed").wait_for(timeout=8000)
    assert page.evaluate("() => window.notReloaded === true"), "the page reloaded"
    assert page.locator("#sync-card").get_by_text("location Field required").is_visible()
    assert page.locator("#sync-card").get_attribute("hx-trigger") is None
    screenshot(page, "device-sync-failed")
    assert page.js_errors == []


def test_device_pages_show_choice_labels_and_the_form_offers_the_sites_meters(page, login, screenshot, world):
    device = world["device"]
    login(page, "owner")
    page.goto(f"/devices/{device.pk}/")
    assert page.locator("#kind-field-previousFuel").inner_text().strip() == "Natural gas"
    assert "natural_gas" not in page.content()
    assert page.locator("#kind-field-buildingType").inner_text().strip() != "single_family_detached"
    screenshot(page, "device-labels")

    page.goto("/devices/new/")
    meters = page.locator("#id_meters input[name=meters]")
    visible = lambda: sorted(t.strip() for t in page.locator("#id_meters label:visible").all_inner_texts())  # noqa: E731
    assert visible() == []  # no site chosen: no meter offered
    page.get_by_label("Site").select_option(label=world["site"].name)
    assert visible() == ["Ellis Street Depot / Gas boiler", "Ellis Street Depot / Main incomer"]
    page.get_by_label("Ellis Street Depot / Gas boiler").check()
    page.get_by_label("Site").select_option(label=world["other"].name)
    assert visible() == ["Harbour Works / Harbour main"]
    # A meter of the site left behind is not sent.
    assert meters.evaluate_all("(boxes) => boxes.filter((b) => b.checked).length") == 0
    screenshot(page, "device-form-site-meters")
    assert page.js_errors == []


def test_there_is_a_favicon(page, login, live_server):
    login(page, "owner")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(live_server.url + href).status == 200
    response = page.request.get(live_server.url + "/favicon.ico")
    assert response.status == 200 and "svg" in response.headers["content-type"]


def test_a_billing_export_uploaded_through_the_form_is_reviewed_as_bills(page, login, screenshot, world, tmp_path):
    from tests.uploads.bill_files import gas_billing_export

    content, expected = gas_billing_export()
    path = tmp_path / "gas-bills.csv"
    path.write_text(content)
    login(page, "owner")
    page.goto("/uploads/new/")
    boxes = {
        v: page.locator(f"input[name=targets][value={v}]")
        for v in ("wattcarbon_intervals", "wattcarbon_bills", "wattics")
    }
    # Choosing the billing meter ticks WattCarbon bills only; an interval meter ticks the others.
    page.get_by_label("Meter", exact=True).select_option(label=str(world["gas"]))
    assert [boxes[v].is_checked() for v in ("wattcarbon_intervals", "wattcarbon_bills", "wattics")] == [
        False,
        True,
        False,
    ]
    page.get_by_label("Meter", exact=True).select_option(label=str(world["meter"]))
    assert [boxes[v].is_checked() for v in ("wattcarbon_intervals", "wattcarbon_bills", "wattics")] == [
        True,
        False,
        True,
    ]
    page.get_by_label("Meter", exact=True).select_option(label=str(world["gas"]))
    page.get_by_label("Times without an offset are").select_option("utc")
    page.get_by_label("CSV file").set_input_files(str(path))
    screenshot(page, "upload-form-billing-meter")
    page.get_by_role("button", name="Upload and check").click()
    page.get_by_role("button", name="Push 25 valid rows").wait_for()
    assert page.get_by_text(f"{expected[0][0]} → {expected[-1][1]}").is_visible()
    assert page.get_by_text("billing period (local dates)").is_visible()
    assert page.locator("#naive-times").inner_text().startswith("Times without an offset were read as UTC")
    assert page.get_by_text("(UTC)").count() == 0
    starts = page.locator("#preview-title + .table-wrap tbody tr td:nth-child(3)").all_inner_texts()
    ends = page.locator("#preview-title + .table-wrap tbody tr td:nth-child(4)").all_inner_texts()
    assert list(zip(starts, ends, strict=True)) == [(s.isoformat(), e.isoformat()) for s, e, _ in expected[:20]]
    screenshot(page, "review-bills")
    assert page.js_errors == []


def test_messages_use_thousands_separators_and_the_exchange_log_shows_errors_first(
    page, login, screenshot, world, settings, tmp_path
):
    from tests.uploads.ingest_support import hourly
    from uploads.models import Delivery

    settings.INGEST_INLINE_MAX_BYTES = 10 * 1024 * 1024  # checked and stored in the request
    path = tmp_path / "main-hourly.csv"
    path.write_text(hourly(1200))
    login(page, "owner")
    page.set_viewport_size(PHONE)
    page.goto(f"/uploads/new/?meter={world['meter'].pk}")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and check").click()
    page.get_by_role("button", name="Push 1,200 valid rows").click()
    page.get_by_text("1,200 rows stored; the pushes are queued.").wait_for()
    screenshot(page, "stored-message-390")
    # The review's warnings counted with separators too: hourly rows on a 15-minute meter.
    page.goto(f"/uploads/{Delivery.objects.get(upload__original_name='main-hourly.csv', target='wattics').upload_id}/")
    assert page.get_by_text(re.compile(r"1,199 gaps, 3,597 missing readings")).is_visible()
    assert _fits(page), "the upload page scrolls sideways at 390 px"

    delivery = Delivery.objects.get(upload__original_name="main-hourly.csv", target="wattics")
    for i, code in enumerate([200, 200, 503, 200, 400, 200]):
        factories.make_exchange(delivery, url=f"https://collector.example/unifiedjson/?n={i}", status_code=code)
    page.set_viewport_size(DESKTOP)
    page.reload()
    page.locator(f"#exchanges-{delivery.pk} summary").click()
    log = page.locator(f"#exchange-log-{delivery.pk}")
    log.locator(".exchange-filter").wait_for()
    filters = log.locator(".exchange-filter a").all_inner_texts()
    assert filters == ["Errors", "Successful", "All"]
    assert log.locator("tbody tr").count() == 6
    log.get_by_role("link", name="Errors").click()
    page.locator(f"#exchange-log-{delivery.pk} .exchange-filter a[aria-current]").get_by_text("Errors").wait_for()
    rows = page.locator(f"#exchange-log-{delivery.pk} tbody tr")
    assert rows.count() == 2
    assert sorted(rows.locator("td.num .badge").all_inner_texts()) == ["400", "503"]
    screenshot(page, "exchange-log-errors-1366")
    assert page.js_errors == []


def test_the_meter_page_with_data_holes_fits_a_phone(page, login, screenshot, world):
    meter = world["meter"]
    # A month of 15-minute readings with two holes: the holes table has four wide columns.
    factories.make_readings(meter, T0, 96 * 31, 15, skip=set(range(500, 504)) | set(range(2000, 2100)))
    login(page, "owner")
    page.set_viewport_size(PHONE)
    page.goto(f"/meters/{meter.pk}/")
    page.get_by_role("columnheader", name="Missing").wait_for()
    screenshot(page, "meter-holes-390")
    assert _fits(page), "the meter page scrolls sideways at 390 px"
    page.set_viewport_size(DESKTOP)
    assert _fits(page), "the meter page scrolls sideways at 1366 px"
    assert page.js_errors == []


def test_the_coverage_days_are_readable_over_60_days(page, login, screenshot, world):
    login(page, "owner")
    for days in (14, 60):
        page.goto(f"/coverage/?days={days}")
        boxes = page.evaluate(
            """() => [...document.querySelectorAll('.cov-head .cov-day')]
                .filter(e => getComputedStyle(e).visibility !== 'hidden')
                .map(e => { const r = document.createRange(); r.selectNodeContents(e);
                            const b = r.getBoundingClientRect(); return [b.left, b.right, e.textContent]; })"""
        )
        assert len(boxes) >= 7 and any(text == "1" or int(text) % 5 == 0 for _, _, text in boxes)
        # At least a few pixels between two numbers: "30" then "1" read as "301" otherwise.
        overlaps = [(a[2], b[2]) for a, b in zip(boxes, boxes[1:], strict=False) if b[0] < a[1] + 4]
        assert overlaps == [], f"day numbers run into each other over {days} days: {overlaps[:5]}"
        screenshot(page, f"coverage-{days}")
    assert page.js_errors == []
