"""Notifications to a real SMTP server and a real HTTP receiver; live feeds; coverage; key pages."""

import hashlib
import hmac
import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller

from notifications import services
from notifications.models import Event, Notice, WebhookAttempt, WebhookDelivery, WebhookStatus
from sites.feeds import feeds_refresh
from sites.models import FeedState, MeterFeed
from tests import factories
from uploads.models import UploadStatus

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 OK"


@pytest.fixture
def smtp(settings):
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


class _Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).answers.pop(0) if type(self).answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.answers, _Receiver.received = [], []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Receiver
    server.shutdown()


@pytest.fixture
def failed_delivery(org):
    meter = factories.make_meter(factories.make_site(org), name="Main")
    upload = factories.make_upload(org, meter=meter)
    from django.utils import timezone

    return factories.make_delivery(upload, meter, status="failed", last_error="Wattics said 401",
                                   finished_at=timezone.now())  # fmt: skip


def test_a_failed_delivery_is_mailed_once_through_smtp(
    smtp, org, owner, viewer, failed_delivery, django_capture_on_commit_callbacks
):
    owner.email, viewer.email = "owner@example.com", "viewer@example.com"
    owner.save(), viewer.save()
    services.email_preference_set(user=viewer, organization=org, mode="off", events=[])
    made = services.notices_scan()
    assert [n.event for n in made] == [Event.DELIVERY_FAILED]
    assert services.notices_scan() == []  # told once
    assert len(smtp.messages) == 1
    (to, content) = smtp.messages[0]
    assert to == ["owner@example.com"]
    assert "Delivery failed" in content and "Wattics said 401" in content


def test_an_invalid_upload_goes_to_the_daily_digest(smtp, org, owner):
    from django.utils import timezone

    owner.email = "owner@example.com"
    owner.save()
    services.email_preference_set(user=owner, organization=org, mode="digest", events=[Event.UPLOAD_INVALID])
    factories.make_upload(org, status=UploadStatus.INVALID, error="No valid rows", validated_at=timezone.now(),
                          original_name="bad.csv")  # fmt: skip
    assert len(services.notices_scan()) == 1
    assert smtp.messages == []  # digest mode: nothing yet
    assert services.digests_send(now=timezone.now() + timedelta(seconds=1)) == 1
    assert "Upload invalid: bad.csv" in smtp.messages[0][1]


def test_webhooks_are_signed_retried_and_every_attempt_recorded(receiver, org, failed_delivery, settings):
    server, handler = receiver
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    secret = "a-long-shared-secret-123"
    hook = services.webhook_create(organization=org, url=f"http://127.0.0.1:{server.server_port}/hook",
                                   secret=secret, events=[])  # fmt: skip
    handler.answers = [500, 200]
    (notice,) = services.notices_scan()
    delivery = WebhookDelivery.objects.get(webhook=hook, notice=notice)
    delay = services.webhook_attempt(delivery_id=delivery.pk)
    assert delay is not None and delay >= settings.WEBHOOK_RETRY_BASE_SECONDS * 0.5
    assert services.webhook_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookStatus.SUCCEEDED, 2)
    assert list(WebhookAttempt.objects.filter(delivery=delivery).values_list("status_code", flat=True)) == [500, 200]
    headers, body = handler.received[-1]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Portal-Signature"] == expected
    assert json.loads(body)["event"] == "delivery_failed"
    assert json.loads(body)["data"]["last_error"] == "Wattics said 401"
    # Every attempt is shown to the organization.
    page = _as(org.memberships.get(role="owner").user).get("/notifications/").content.decode()
    assert page.index("HTTP 500") < page.index("HTTP 200") and "Succeeded" in page


def test_a_webhook_that_keeps_failing_gives_up(receiver, org, failed_delivery, settings):
    server, handler = receiver
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    handler.answers = [503, 503]
    services.webhook_create(organization=org, url=f"http://127.0.0.1:{server.server_port}/", secret="x" * 20,
                            events=[])  # fmt: skip
    services.notices_scan()
    delivery = WebhookDelivery.objects.get()
    services.webhook_attempt(delivery_id=delivery.pk)
    assert services.webhook_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == WebhookStatus.FAILED and "Gave up after 2 attempts: HTTP 503" in delivery.last_error


def test_a_live_meter_turns_late_once_and_is_notified(org, owner, mailoutbox):
    owner.email = "owner@example.com"
    owner.save()
    meter = factories.make_meter(factories.make_site(org), live=True, interval_minutes=15)
    quiet = factories.make_meter(meter.site, live=False)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    factories.make_readings(meter, start, 4)  # last at 00:45
    factories.make_readings(quiet, start, 4)
    assert feeds_refresh(now=start + timedelta(hours=1)) == []
    assert MeterFeed.objects.get(meter=meter).state == FeedState.OK
    assert feeds_refresh(now=start + timedelta(hours=1, minutes=20)) == []
    assert MeterFeed.objects.get(meter=meter).state == FeedState.DUE
    made = services.feeds_check(now=start + timedelta(hours=2))
    assert [n.event for n in made] == [Event.FEED_LATE]
    assert services.feeds_check(now=start + timedelta(hours=3)) == []  # still late: not told again
    assert not MeterFeed.objects.filter(meter=quiet).exists()
    assert len(mailoutbox) == 1 and "late" in mailoutbox[0].subject


def test_the_api_and_dashboard_list_late_meters_first(org, owner_client, callers):
    site = factories.make_site(org)
    on_time = factories.make_meter(site, name="A on time", live=True)
    late = factories.make_meter(site, name="Z late", live=True)
    from django.utils import timezone

    now = timezone.now()
    factories.make_readings(on_time, now - timedelta(minutes=15), 1)
    factories.make_readings(late, now - timedelta(days=1), 1)
    feeds_refresh()
    rows = callers["viewer"].get("/api/v1/feeds/").json()["results"]
    assert [(r["meter"], r["state"]) for r in rows] == [(late.pk, "late"), (on_time.pk, "ok")]
    html = owner_client.get("/").content.decode()
    assert html.index("Z late") < html.index("A on time")
    assert "feed-late" in html


def test_the_coverage_page_shows_shares_as_classes(org, owner_client):
    from django.utils import timezone

    meter = factories.make_meter(factories.make_site(org), interval_minutes=60)
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    factories.make_readings(meter, today - timedelta(days=1), 24)  # yesterday: all 24
    factories.make_readings(meter, today - timedelta(days=2), 12)  # the day before: half
    # Yesterday's readings are delivered to Wattics, none to WattCarbon.
    upload = factories.make_upload(org, meter=meter)
    factories.make_delivery(upload, meter, target="wattics", status="delivered", first_ts=today - timedelta(days=1),
                            last_ts=today - timedelta(hours=1))  # fmt: skip
    html = owner_client.get("/coverage/?days=7").content.decode()
    day = lambda d: (today - timedelta(days=d)).date().isoformat()  # noqa: E731
    assert f'class="cov-cell cov-full" role="cell" title="{day(1)}: 100% of expected readings stored"' in html
    assert f'class="cov-cell cov-mid" role="cell" title="{day(2)}: 50% of expected readings stored"' in html
    assert f'class="cov-cell cov-full" role="cell" title="{day(1)}: 100% delivered to Wattics packets"' in html
    assert f'class="cov-cell cov-empty" role="cell" title="{day(2)}: 0% delivered to Wattics packets"' in html
    assert f'title="{day(1)}: 0% delivered to WattCarbon intervals"' in html
    assert 'style="' not in html.split("<main")[1]


def _as(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_only_owners_manage_api_keys(owner, teammate, outsider, org):
    owner_client, teammate_client, outsider_client = _as(owner), _as(teammate), _as(outsider)
    assert teammate_client.get("/organization/api-keys/").status_code == 403
    made = owner_client.post("/organization/api-keys/", {"name": "logger", "role": "operator"})
    assert made.status_code == 200
    from api.models import OrganizationAPIKey

    key = OrganizationAPIKey.objects.get(organization=org)
    assert f"{key.prefix}." in made.content.decode()
    assert outsider_client.post(f"/organization/api-keys/{key.prefix}/revoke/").status_code == 404
    assert teammate_client.post(f"/organization/api-keys/{key.prefix}/revoke/").status_code == 403
    owner_client.post(f"/organization/api-keys/{key.prefix}/revoke/")
    key.refresh_from_db()
    assert key.revoked and key.revoked_at is not None
    # The list shows the prefix, never the key.
    assert made.content.decode().count(f"{key.prefix}.") == 1


def test_members_choose_their_emails_and_owners_add_webhooks(owner, org, teammate):
    owner_client, teammate_client = _as(owner), _as(teammate)
    from notifications.models import EmailPreference, Webhook

    r = teammate_client.post("/notifications/", {"save_email": "1", "mode": "digest", "events": ["feed_late"]})
    assert r.status_code == 302
    pref = EmailPreference.objects.get(user=teammate, organization=org)
    assert (pref.mode, pref.events) == ("digest", ["feed_late"])
    hook = {"add_webhook": "1", "url": "https://example.com/hook", "secret": "s" * 20}
    assert teammate_client.post("/notifications/", hook).status_code == 403
    assert owner_client.post("/notifications/", hook).status_code == 302
    assert Webhook.objects.get(organization=org).url == "https://example.com/hook"
    assert Notice.objects.count() == 0


def test_a_webhook_retry_whose_task_was_lost_is_enqueued_again(org, failed_delivery, monkeypatch):
    from django.utils import timezone

    from notifications import tasks

    services.webhook_create(organization=org, url="https://example.com/", secret="x" * 20, events=[])
    services.notices_scan()
    delivery = WebhookDelivery.objects.get()
    sent = []
    monkeypatch.setattr(tasks.webhook_deliver_task, "delay", lambda pk: sent.append(pk))
    assert services.webhooks_requeue_lost() == []  # just made: not lost
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert services.webhooks_requeue_lost() == [delivery.pk] and sent == [delivery.pk]
    assert services.webhooks_requeue_lost() == []  # its due time moved on


def test_a_meter_is_marked_live_on_its_form_and_its_page_shows_the_feed(org, owner):
    client = _as(owner)
    meter = factories.make_meter(factories.make_site(org), name="Feeder")
    data = {"site": meter.site_id, "name": "Feeder", "meter_type": "electricity", "unit": "kWh",
            "interval_minutes": 15, "wattics_format": "electrical", "live": "on"}  # fmt: skip
    assert client.post(f"/meters/{meter.pk}/edit/", data).status_code == 302
    meter.refresh_from_db()
    assert meter.live is True
    factories.make_readings(meter, datetime(2024, 1, 1, tzinfo=UTC), 2)
    feeds_refresh()
    page = client.get(f"/meters/{meter.pk}/").content.decode()
    assert "Live feed</dt><dd>yes: late, last reading 2024-01-01 00:15 UTC" in page
