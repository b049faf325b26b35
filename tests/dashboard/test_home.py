from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests import factories


def test_it_counts_the_last_seven_days_of_uploads_by_status(owner_client, org, owner, other_upload):
    factories.make_upload(org, owner, status="stored")
    factories.make_upload(org, owner, status="stored")
    factories.make_upload(org, owner, status="invalid")
    factories.make_upload(org, owner, status="stored", created_at=timezone.now() - timedelta(days=8))
    response = owner_client.get("/")
    assert response.status_code == 200
    counts = {value: n for value, _, n in response.context["status_counts"]}
    assert counts["stored"] == 2
    assert counts["invalid"] == 1
    assert response.context["recent_total"] == 3
    assert b'href="/uploads/?status=stored"' in response.content


def test_it_shows_progress_rate_and_eta_of_running_pushes(owner_client, pushing):
    response = owner_client.get("/")
    html = response.content.decode()
    assert "march.csv" in html
    assert 'aria-valuenow="50"' in html
    assert "500 of 1,000 rows" in html
    # 500 acknowledged in ~100 s: about 5 rows/s, 500 rows left: about 100 s.
    assert "rows/s" in html
    (d,) = response.context["active"]
    assert 4.5 < d.progress.rate < 5.5
    assert 90 <= d.progress.eta_seconds <= 110


def test_it_polls_the_progress_partial_only_while_something_is_active(owner_client, pushing):
    html = owner_client.get("/").content.decode()
    assert 'hx-get="/dashboard/active/"' in html and 'hx-trigger="every 2s"' in html

    partial = owner_client.get("/dashboard/active/").content.decode()
    assert 'hx-trigger="every 2s"' in partial and "<html" not in partial

    pushing.status = "delivered"
    pushing.acknowledged = pushing.total
    pushing.save()
    partial = owner_client.get("/dashboard/active/").content.decode()
    # The swapped-in element carries no trigger, so htmx stops polling.
    assert "hx-trigger" not in partial
    assert "Nothing is being pushed right now" in partial


@pytest.mark.parametrize("who", ["owner", "teammate"])
def test_it_lists_failures_with_a_retry_button_for_operators(client, request, who, failed):
    client.force_login(request.getfixturevalue(who))
    html = client.get("/").content.decode()
    assert "Needs attention" in html
    assert "start_datetime is not ISO 8601" in html
    assert f'action="{reverse("uploads:delivery_retry", args=[failed.pk])}"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_it_shows_failures_to_viewers_without_buttons(viewer_client, failed):
    html = viewer_client.get("/").content.decode()
    assert "start_datetime is not ISO 8601" in html
    assert "/retry/" not in html
    assert ">Retry<" not in html


def test_it_never_shows_another_organizations_uploads(outsider_client, failed, pushing, other_upload):
    html = outsider_client.get("/").content.decode()
    assert "secret-theirs.csv" in html  # their own failure
    assert "march.csv" not in html
    assert "start_datetime is not ISO 8601" not in html


def test_it_scopes_the_active_partial_to_the_current_organization(outsider_client, pushing):
    html = outsider_client.get("/dashboard/active/").content.decode()
    assert "march.csv" not in html
    assert "hx-trigger" not in html


def test_it_redirects_anonymous_users_from_the_partial(client, db):
    response = client.get("/dashboard/active/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_finished_push_keeps_the_rate_of_its_own_run(upload, meter):
    from uploads.selectors import delivery_progress

    start = timezone.now() - timedelta(hours=1)
    done = factories.make_delivery(
        upload, meter, status="delivered", total=1000, acknowledged=1000, started_at=start,
        finished_at=start + timedelta(seconds=10),
    )  # fmt: skip
    progress = delivery_progress(delivery=done)
    assert progress.rate == pytest.approx(100.0)
    assert progress.eta_seconds is None and progress.percent == 100
