"""Retry, cancel and re-push: the services check the status first; the views are POST
only, for operators and owners of the delivery's organization."""

from datetime import UTC, datetime

import pytest

from tests import factories
from uploads.models import Delivery, DeliveryStatus
from uploads.services.deliveries import DeliveryActionError, delivery_cancel, delivery_repush, delivery_retry

pytestmark = pytest.mark.django_db
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def delivery(org):
    meter = factories.make_meter(factories.make_site(org), wattics_stream_id="demo-elec-1")
    upload = factories.make_upload(org)
    return factories.make_delivery(upload, meter, status=DeliveryStatus.FAILED, total=10, sent=6, acknowledged=5,
                                   rejected=1, cursor_ts=T0, first_ts=T0, last_ts=T0, last_error="boom")  # fmt: skip


def _url(action, delivery):
    return f"/uploads/deliveries/{delivery.pk}/{action}/"


def test_it_retries_a_failed_delivery_from_where_it_stopped(delivery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        delivery_retry(delivery=delivery)
    delivery.refresh_from_db()
    # The last message stays, whole, until the new run has something to say.
    assert (delivery.status, delivery.last_error, delivery.cursor_ts) == (DeliveryStatus.QUEUED, "boom", T0)
    assert (delivery.acknowledged, delivery.rejected) == (5, 1)
    assert len(callbacks) == 1


def test_it_refuses_to_retry_a_delivered_delivery(delivery):
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DELIVERED)
    with pytest.raises(DeliveryActionError, match="delivered: it cannot be retried"):
        delivery_retry(delivery=delivery)


def test_it_cancels_only_active_deliveries(delivery):
    with pytest.raises(DeliveryActionError):
        delivery_cancel(delivery=delivery)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PUSHING)
    delivery_cancel(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.CANCELLED and delivery.finished_at is not None


def test_it_repushes_with_counts_reset(delivery):
    delivery_repush(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED
    assert (delivery.sent, delivery.acknowledged, delivery.rejected, delivery.cursor_ts) == (0, 0, 0, None)
    with pytest.raises(DeliveryActionError, match="re-pushed"):
        delivery_repush(delivery=delivery)


def test_it_lets_the_owner_retry(owner_client, delivery):
    response = owner_client.post(_url("retry", delivery))
    assert response.status_code == 302
    assert response["Location"] == f"/uploads/{delivery.upload_id}/"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED


def test_a_retry_from_the_dashboard_returns_to_the_dashboard(owner_client, delivery):
    html = owner_client.get("/").content.decode()
    # The dashboard's Retry form names the dashboard as the page to come back to.
    assert f'action="{_url("retry", delivery)}"' in html
    assert '<input type="hidden" name="next" value="/">' in html
    response = owner_client.post(_url("retry", delivery), {"next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED


@pytest.mark.parametrize("elsewhere", ["https://evil.example/", "//evil.example/uploads/"])
def test_it_returns_only_to_a_page_of_the_portal(owner_client, delivery, elsewhere):
    response = owner_client.post(_url("retry", delivery), {"next": elsewhere})
    assert response["Location"] == f"/uploads/{delivery.upload_id}/"


def test_it_lets_a_teammate_repush(teammate_client, delivery):
    response = teammate_client.post(_url("repush", delivery), follow=True)
    assert response.status_code == 200
    assert "queued to be pushed again" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.sent == 0


def test_it_tells_why_an_action_is_not_possible(owner_client, delivery):
    response = owner_client.post(_url("cancel", delivery), follow=True)
    assert "it cannot be cancelled now" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


def test_it_refuses_a_viewer(viewer_client, delivery):
    assert viewer_client.post(_url("retry", delivery)).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


def test_it_hides_the_delivery_from_an_outsider(outsider_client, delivery):
    for action in ("retry", "cancel", "repush"):
        assert outsider_client.post(_url(action, delivery)).status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


def test_it_refuses_get(owner_client, delivery):
    assert owner_client.get(_url("retry", delivery)).status_code == 405
