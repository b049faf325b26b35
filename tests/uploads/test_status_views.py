"""The uploads list and an upload's detail page, as owner, teammate, viewer and outsider."""

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests import factories
from tests.dashboard.fixtures import *  # noqa: F403

# --- List -------------------------------------------------------------------------


def test_it_lists_the_organizations_uploads_with_links_to_detail(owner_client, upload, other_upload):
    response = owner_client.get("/uploads/")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="/uploads/{upload.pk}/"' in html
    assert "march.csv" in html
    assert "secret-theirs.csv" not in html


def test_it_shows_one_badge_per_target_with_the_worst_status(owner_client, upload, meter, site, pushing, failed):
    second = factories.make_meter(site, name="Second meter")
    factories.make_delivery(upload, second, target="wattics", status="delivered", total=10, acknowledged=10)
    html = owner_client.get("/uploads/").content.decode()
    # Wattics: one meter pushing, one delivered: the badge says pushing, with the combined percent.
    assert "status-pushing" in html and "Wattics packets · 50 %" in html
    assert "status-failed" in html and "WattCarbon intervals · Failed" in html


@pytest.mark.parametrize(
    "query,expected,unexpected",
    [
        ("status=invalid", ["bad.csv"], ["march.csv"]),
        ("target=wattcarbon_bills", ["bills.csv"], ["march.csv", "bad.csv"]),
        ("target=wattics", ["march.csv"], ["bills.csv"]),
        ("uploaded_by={teammate}", ["bills.csv"], ["march.csv", "bad.csv"]),
        ("meter={meter2}", ["bills.csv"], ["march.csv"]),
        ("site={site2}", ["bills.csv"], ["march.csv"]),
        ("date_from={old_day}&date_to={old_day}", ["old.csv"], ["march.csv", "bills.csv"]),
    ],
)
def test_it_filters_uploads(owner_client, org, owner, teammate, upload, query, expected, unexpected):
    site2 = factories.make_site(org, name="Second site")
    meter2 = factories.make_meter(site2, name="Gas meter")
    factories.make_upload(org, owner, original_name="bad.csv", status="invalid")
    bills = factories.make_upload(org, teammate, original_name="bills.csv", targets=["wattcarbon_bills"])
    # A file with a meter column has no upload.meter: its deliveries say which meters it fed.
    factories.make_delivery(bills, meter2, target="wattcarbon_bills")
    old_day = date.today() - timedelta(days=40)
    factories.make_upload(org, owner, original_name="old.csv", created_at=timezone.now() - timedelta(days=40))
    query = query.format(teammate=teammate.pk, meter2=meter2.pk, site2=site2.pk, old_day=old_day.isoformat())
    html = owner_client.get(f"/uploads/?{query}").content.decode()
    for name in expected:
        assert name in html, (query, name)
    for name in unexpected:
        assert name not in html, (query, name)


def test_it_ignores_filters_naming_another_organizations_meter(owner_client, upload, other_meter):
    response = owner_client.get(f"/uploads/?meter={other_meter.pk}")
    assert response.status_code == 200
    assert response.context["filter"].form.errors  # not a choice: the list is unfiltered, nothing leaks
    assert "march.csv" in response.content.decode()


@pytest.mark.parametrize(
    "sort,first",
    [("name", "a.csv"), ("-name", "c.csv"), ("rows", "c.csv"), ("-rows", "a.csv"), ("-created", "c.csv")],
)
def test_it_sorts_by_a_query_parameter(owner_client, org, owner, sort, first):
    factories.make_upload(org, owner, original_name="b.csv", rows_total=20)
    factories.make_upload(org, owner, original_name="a.csv", rows_total=30)
    factories.make_upload(org, owner, original_name="c.csv", rows_total=10)
    response = owner_client.get(f"/uploads/?sort={sort}")
    names = [u.original_name for u in response.context["page"].object_list]
    assert names[0] == first
    assert 'aria-sort="' in response.content.decode()


def test_it_paginates_25_per_page_and_keeps_filters_in_page_links(owner_client, org, owner):
    for i in range(30):
        factories.make_upload(org, owner, original_name=f"f{i:02}.csv", status="stored")
    response = owner_client.get("/uploads/?status=stored&sort=name")
    assert len(response.context["page"].object_list) == 25
    html = response.content.decode()
    assert "?status=stored&amp;sort=name&amp;page=2" in html
    page2 = owner_client.get("/uploads/?status=stored&sort=name&page=2")
    assert [u.original_name for u in page2.context["page"].object_list] == [f"f{i}.csv" for i in range(25, 30)]


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_it_shows_the_list_to_every_member(client, request, who, upload):
    client.force_login(request.getfixturevalue(who))
    response = client.get("/uploads/")
    assert response.status_code == 200 and "march.csv" in response.content.decode()


def test_it_hides_the_new_upload_button_from_viewers(viewer_client, upload):
    assert "/uploads/new/" not in viewer_client.get("/uploads/").content.decode()


# --- Detail -----------------------------------------------------------------------


def test_it_shows_the_file_facts_and_validation_summary(owner_client, upload):
    upload.rows_total, upload.rows_valid, upload.rows_invalid = 100, 96, 4
    upload.warnings = [{"message": "2 duplicate rows dropped"}, "DST: 1 hour repeated"]
    upload.save()
    html = owner_client.get(f"/uploads/{upload.pk}/").content.decode()
    for fact in ["march.csv", "12.1\xa0KB", upload.sha256, "owner", "96", "Period covered"]:
        assert fact in html, fact
    assert f'href="/uploads/{upload.pk}/errors.csv"' in html
    assert "2 duplicate rows dropped" in html and "DST: 1 hour repeated" in html


def test_it_links_no_error_report_when_every_row_is_valid(owner_client, upload):
    assert "errors.csv" not in owner_client.get(f"/uploads/{upload.pk}/").content.decode()


def test_it_shows_each_delivery_with_its_counts_and_last_error(owner_client, upload, pushing, failed):
    html = owner_client.get(f"/uploads/{upload.pk}/").content.decode()
    assert 'aria-valuenow="50"' in html and 'aria-valuenow="100"' in html
    assert "<dt>Remaining</dt><dd>500</dd>" in html
    assert "<dt>Attempts</dt><dd>3</dd>" in html
    assert "start_datetime is not ISO 8601" in html
    # The section polls while a delivery is pushing.
    assert f'hx-get="/uploads/{upload.pk}/progress/"' in html and 'hx-trigger="every 2s"' in html


def test_it_stops_polling_when_no_delivery_is_active(owner_client, upload, failed):
    html = owner_client.get(f"/uploads/{upload.pk}/progress/").content.decode()
    assert "hx-trigger" not in html and "<html" not in html
    assert "Failed" in html


@pytest.mark.parametrize("who", ["owner", "teammate"])
def test_it_shows_actions_to_operators(client, request, who, upload, pushing, failed):
    client.force_login(request.getfixturevalue(who))
    html = client.get(f"/uploads/{upload.pk}/").content.decode()
    assert client.get(f"/uploads/{upload.pk}/").context["can_act"] is True
    for name, delivery in [
        ("uploads:delivery_retry", failed),
        ("uploads:delivery_cancel", pushing),
        ("uploads:delivery_repush", failed),
    ]:
        assert f'action="{reverse(name, args=[delivery.pk])}"' in html, name


def test_it_shows_no_actions_to_viewers(viewer_client, upload, pushing, failed):
    response = viewer_client.get(f"/uploads/{upload.pk}/")
    html = response.content.decode()
    assert response.status_code == 200 and response.context["can_act"] is False
    assert "/retry/" not in html and "/cancel/" not in html and "/repush/" not in html
    assert "row-actions" not in html


def test_it_pages_a_deliverys_http_exchanges_20_at_a_time(owner_client, upload, failed):
    for i in range(25):
        factories.make_exchange(failed, url=f"https://api.example/meters/1/intervals?n={i}", status_code=503)
    detail = owner_client.get(f"/uploads/{upload.pk}/").content.decode()
    log_url = f"/uploads/{upload.pk}/deliveries/{failed.pk}/exchanges/"
    assert f'hx-get="{log_url}"' in detail and "25 requests" in detail
    page1 = owner_client.get(log_url).content.decode()
    assert page1.count("<tr>") == 21  # header + 20
    assert "n=24" in page1 and "n=4<" not in page1  # newest first
    assert f"{log_url}?page=2" in page1
    page2 = owner_client.get(f"{log_url}?page=2").content.decode()
    assert page2.count("<tr>") == 6 and "n=0" in page2


@pytest.mark.parametrize(
    "path",
    [
        "/uploads/{pk}/",
        "/uploads/{pk}/progress/",
        "/uploads/{pk}/deliveries/{delivery}/exchanges/",
    ],
)
def test_it_hides_other_organizations_uploads(outsider_client, upload, failed, path):
    response = outsider_client.get(path.format(pk=upload.pk, delivery=failed.pk))
    assert response.status_code == 404


def test_it_does_not_serve_a_delivery_through_another_upload(owner_client, org, owner, upload, other_upload):
    other_delivery = other_upload.deliveries.get()
    response = owner_client.get(f"/uploads/{upload.pk}/deliveries/{other_delivery.pk}/exchanges/")
    assert response.status_code == 404


def test_a_retry_from_the_detail_page_comes_back_to_it(owner_client, upload, failed):
    html = owner_client.get(f"/uploads/{upload.pk}/").content.decode()
    retry = reverse("uploads:delivery_retry", args=[failed.pk])
    assert f'action="{retry}"' in html
    response = owner_client.post(retry, follow=True)
    assert response.redirect_chain[-1][0] == f"/uploads/{upload.pk}/"
    failed.refresh_from_db()
    assert failed.status == "queued"
