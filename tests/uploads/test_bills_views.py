"""The upload form's targets and naive-time choice, the review's labels, and the newcomer
fixes of the status pages: message numbers, the 'failed' filter, the exchange filter, the favicon."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests import factories
from tests.uploads.bill_files import gas_billing_export
from uploads.models import Upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(org):
    return factories.make_site(org, name="Brooklyn Depot", timezone="America/New_York")


@pytest.fixture
def gas(site):
    return factories.make_meter(site, name="Gas", meter_type="gas", reading_kind="billing", wattcarbon_id="9")


@pytest.fixture
def elec(site):
    return factories.make_meter(site, name="Main", interval_minutes=60, wattics_stream_id="main")


def _checked(body: str, value: str) -> bool:
    import re

    box = re.search(rf'<input[^>]*value="{value}"[^>]*>', body).group(0)
    return "checked" in box


def test_the_upload_form_preselects_the_targets_that_fit_the_meter(owner_client, gas, elec):
    body = owner_client.get(f"/uploads/new/?meter={gas.pk}").content.decode()
    assert _checked(body, "wattcarbon_bills")
    assert not _checked(body, "wattcarbon_intervals") and not _checked(body, "wattics")
    body = owner_client.get(f"/uploads/new/?meter={elec.pk}").content.decode()
    assert not _checked(body, "wattcarbon_bills")
    assert _checked(body, "wattcarbon_intervals") and _checked(body, "wattics")
    # The script that re-ticks them when another meter is chosen gets each meter's targets.
    assert f'"{gas.pk}": ["wattcarbon_bills"]' in body and "js/upload_form.js" in body


def test_the_upload_form_does_not_tick_wattics_for_a_meter_without_a_stream_id(owner_client, elec):
    plain = factories.make_meter(elec.site, name="Sub-meter", interval_minutes=60, wattics_stream_id="")
    body = owner_client.get(f"/uploads/new/?meter={plain.pk}").content.decode()
    assert _checked(body, "wattcarbon_intervals") and not _checked(body, "wattics")
    assert f'"{plain.pk}": ["wattcarbon_intervals"]' in body
    assert f'"{elec.pk}": ["wattcarbon_intervals", "wattics"]' in body


def test_an_upload_says_its_naive_times_and_the_review_shows_them(owner_client, elec):
    data = {"file": SimpleUploadedFile("r.csv", b"timestamp,kwh\n2024-01-15 00:00,1\n2024-01-15 01:00,2\n"),
            "meter": elec.pk, "targets": ["wattics"], "naive_times": "utc"}  # fmt: skip
    response = owner_client.post("/uploads/new/", data)
    upload = Upload.objects.get()
    assert upload.naive_times == "utc" and upload.preview[0]["ts"] == "2024-01-15T00:00:00+00:00"
    review = owner_client.get(response["Location"]).content.decode()
    assert "Times without an offset were read as <strong>UTC</strong>" in review


def test_the_review_of_bills_shows_local_dates_without_utc(owner_client, gas):
    content, expected = gas_billing_export()
    data = {"file": SimpleUploadedFile("gas.csv", content.encode()), "meter": gas.pk, "targets": ["wattcarbon_bills"]}
    review = owner_client.get(owner_client.post("/uploads/new/", data)["Location"]).content.decode()
    assert f"{expected[0][0]} → {expected[-1][1]}" in review
    assert "billing period (local dates)" in review and "period (UTC)" not in review and "Time (UTC)" not in review
    assert "each period ending at the next row's start" in review
    assert "the site's local time (America/New_York)" in review
    detail = owner_client.get(f"/uploads/{Upload.objects.get().pk}/").content.decode()
    assert f'{expected[0][0]} → {expected[-1][1]} <span class="muted">bill dates</span>' in detail


def test_the_stored_message_has_thousands_separators(owner_client, elec, settings):
    settings.INGEST_INLINE_MAX_BYTES = 10 * 1024 * 1024  # validated and stored in the request
    from tests.uploads.ingest_support import hourly

    data = {"file": SimpleUploadedFile("big.csv", hourly(1200).encode()), "meter": elec.pk, "targets": ["wattics"]}
    owner_client.post("/uploads/new/", data)
    upload = Upload.objects.get()
    response = owner_client.post(f"/uploads/{upload.pk}/confirm/", follow=True)
    assert "1,200 rows stored; the pushes are queued." in response.content.decode()


def test_the_failed_filter_finds_uploads_whose_deliveries_failed(owner_client, org, owner, elec):
    ok = factories.make_upload(org, owner, meter=elec, original_name="fine.csv")
    factories.make_delivery(ok, elec, status="delivered")
    pushed_badly = factories.make_upload(org, owner, meter=elec, original_name="push-failed.csv")
    factories.make_delivery(pushed_badly, elec, status="failed")
    partly = factories.make_upload(org, owner, meter=elec, original_name="partly.csv")
    factories.make_delivery(partly, elec, status="partially_failed")
    broken = factories.make_upload(org, owner, meter=elec, original_name="broken.csv", status="failed")
    body = owner_client.get("/uploads/?status=failed").content.decode()
    assert "push-failed.csv" in body and "partly.csv" in body and "broken.csv" in body
    assert "fine.csv" not in body
    assert broken.pk


def test_the_exchange_log_filters_by_status_errors_first(owner_client, org, owner, elec):
    upload = factories.make_upload(org, owner, meter=elec)
    delivery = factories.make_delivery(upload, elec, status="failed")
    for i, code in enumerate([200, 503, 200, 422, None]):
        factories.make_exchange(delivery, url=f"https://x.example/p?n={i}", status_code=code)
    url = f"/uploads/{upload.pk}/deliveries/{delivery.pk}/exchanges/"
    everything = owner_client.get(url).content.decode()
    assert everything.index(">Errors<") < everything.index(">Successful<") < everything.index(">All<")
    errors = owner_client.get(url + "?status=errors").content.decode()
    assert [n for n in range(5) if f"n={n}" in errors] == [1, 3, 4]
    ok = owner_client.get(url + "?status=ok").content.decode()
    assert [n for n in range(5) if f"n={n}" in ok] == [0, 2]


def test_the_dashboard_names_uploads_and_deliveries(owner_client, org, owner, elec):
    upload = factories.make_upload(org, owner, meter=elec)
    factories.make_delivery(upload, elec, status="failed")
    body = owner_client.get("/").content.decode()
    assert "1 upload in total" in body and "failed deliveries" in body and "1 failed delivery" in body


def test_there_is_a_favicon(client, owner_client):
    assert 'rel="icon"' in owner_client.get("/").content.decode()
    response = client.get("/favicon.ico")  # no session needed
    assert response.status_code == 302 and response["Location"].endswith(".svg")


def test_a_file_that_does_not_fit_its_targets_is_stopped_with_a_way_forward(owner_client, gas):
    content, _ = gas_billing_export()
    data = {"file": SimpleUploadedFile("gas.csv", content.encode()), "meter": gas.pk, "targets": ["wattics"]}
    review = owner_client.get(owner_client.post("/uploads/new/", data)["Location"]).content.decode()
    assert "they go to WattCarbon bills only, never as intervals" in review
    assert f"/uploads/new/?meter={gas.pk}" in review and "Push " not in review


def test_the_dashboards_failed_tile_counts_what_the_failed_filter_finds(owner_client, org, owner, elec):
    factories.make_delivery(factories.make_upload(org, owner, meter=elec, status="stored"), elec, status="failed")
    factories.make_delivery(factories.make_upload(org, owner, meter=elec, status="stored"), elec, status="delivered")
    factories.make_upload(org, owner, meter=elec, status="failed")
    response = owner_client.get("/")
    counts = {value: n for value, _, n in response.context["status_counts"]}
    assert (counts["stored"], counts["failed"]) == (2, 2)
    assert response.context["recent_total"] == 3  # each upload once
    listed = owner_client.get("/uploads/?status=failed").context["page"].paginator.count
    assert listed == counts["failed"]
