"""Notices and their delivery: e-mail (each member's choice, or a daily digest) and signed webhooks.

Notices are found by a periodic scan of failed deliveries and invalid uploads (no hook
inside the upload and push code: the scan reads what those services wrote), and by the
live-feed check for late meters. A notice is unique per (organization, event, subject),
so a scan that runs twice tells nobody twice.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta
from functools import partial

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, Organization
from core.tasks import backoff_seconds

# The tasks import these services; the module is complete by the time a task is enqueued.
from notifications import tasks
from notifications.models import (
    EmailMode,
    EmailPreference,
    Event,
    Notice,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookStatus,
)
from vendors.safety import public_session

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Portal-Signature"
# Failures older than this are not notified when the scan first runs (or after a long stop).
SCAN_WINDOW = timedelta(days=2)
# A pending webhook delivery this overdue has lost its task.
LOST_AFTER = timedelta(minutes=10)


def sign(*, secret: str, body: bytes) -> str:
    """The signature header's value: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ----- Notices ------------------------------------------------------------------------------------


def notice_create(
    *, organization: Organization, event: str, subject: str, title: str, body: str = "", url: str = "",
    payload: dict | None = None,
) -> Notice | None:  # fmt: skip
    """Record a notice and send it (e-mails now, webhooks by a worker). None if it was told already."""
    try:
        with transaction.atomic():
            notice = Notice.objects.create(organization=organization, event=event, subject=subject, title=title,
                                           body=body, url=url, payload=payload or {})  # fmt: skip
    except IntegrityError:
        return None
    notice_dispatch(notice=notice)
    return notice


def _preference(user, organization: Organization) -> EmailPreference:
    pref = EmailPreference.objects.filter(user=user, organization=organization).first()
    return pref or EmailPreference(user=user, organization=organization, mode=EmailMode.IMMEDIATE,
                                   events=list(Event.values))  # fmt: skip


def _recipients(notice: Notice, mode: str) -> list:
    users = []
    for membership in Membership.objects.filter(organization=notice.organization).select_related("user"):
        user = membership.user
        if not user.email or not user.is_active:
            continue
        pref = _preference(user, notice.organization)
        if pref.mode == mode and notice.event in pref.events:
            users.append(user)
    return users


def _absolute(url: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + url if url.startswith("/") else url


def notice_dispatch(*, notice: Notice) -> None:
    for user in _recipients(notice, EmailMode.IMMEDIATE):
        text = f"{notice.body}\n\n{_absolute(notice.url)}\n\n— {notice.organization.name}, Energy Data Portal"
        try:
            send_mail(f"[{notice.organization.name}] {notice.title}", text, None, [user.email])
        except Exception:
            # A mail server down must not stop the others (nor the webhooks).
            logger.exception("mailing notice %s to %s failed", notice.pk, user.pk)
    webhooks = Webhook.objects.filter(organization=notice.organization, active=True)
    for webhook in webhooks:
        if webhook.events and notice.event not in webhook.events:
            continue
        delivery, created = WebhookDelivery.objects.get_or_create(webhook=webhook, notice=notice)
        if created:
            transaction.on_commit(partial(tasks.webhook_deliver_task.delay, delivery.pk))


def _iso(moment: datetime | None) -> str:
    # The rows scanned have the moment (the query asks for it); the type allows None.
    return moment.isoformat() if moment else ""


def notices_scan(*, now=None) -> list[Notice]:
    """Newly failed deliveries and invalid uploads, as notices (each told once)."""
    from uploads.models import Delivery, DeliveryStatus, Upload, UploadStatus

    now = now or timezone.now()
    since = now - SCAN_WINDOW
    made = []
    failed = Delivery.objects.filter(
        status__in=[DeliveryStatus.FAILED, DeliveryStatus.PARTIALLY_FAILED], finished_at__gte=since
    ).select_related("organization", "meter", "upload")
    for d in failed:
        notice = notice_create(
            organization=d.organization, event=Event.DELIVERY_FAILED,
            # A retried delivery that fails again is a new failure (a new finished_at).
            subject=f"delivery:{d.pk}:{_iso(d.finished_at)}",
            title=f"Delivery {d.get_status_display().lower()}: {d.upload.original_name} to {d.get_target_display()}",
            body=f"Meter {d.meter.name}: {d.acknowledged}/{d.total} rows acknowledged, {d.rejected} rejected. "
            f"{d.last_error}",
            url=f"/uploads/{d.upload_id}/",
            payload={"delivery": d.pk, "upload": d.upload_id, "meter": d.meter_id, "target": d.target,
                     "status": d.status, "total": d.total, "acknowledged": d.acknowledged,
                     "rejected": d.rejected, "last_error": d.last_error},
        )  # fmt: skip
        if notice:
            made.append(notice)
    invalid = Upload.objects.filter(status=UploadStatus.INVALID, validated_at__gte=since).select_related("organization")
    for u in invalid:
        notice = notice_create(
            organization=u.organization, event=Event.UPLOAD_INVALID, subject=f"upload:{u.pk}",
            title=f"Upload invalid: {u.original_name}", body=u.error, url=f"/uploads/{u.pk}/review/",
            payload={"upload": u.pk, "rows_total": u.rows_total, "rows_invalid": u.rows_invalid, "error": u.error},
        )  # fmt: skip
        if notice:
            made.append(notice)
    return made


def webhooks_requeue_lost(*, now=None) -> list[int]:
    """Pending webhook deliveries whose retry message was lost (broker restart), enqueued again.
    A duplicate is harmless: an attempt on a delivery no longer pending does nothing."""
    now = now or timezone.now()
    overdue = now - LOST_AFTER
    lost = WebhookDelivery.objects.filter(status=WebhookStatus.PENDING).filter(
        Q(next_attempt_at__lt=overdue) | Q(next_attempt_at__isnull=True, created_at__lt=overdue)
    )
    ids = list(lost.values_list("pk", flat=True)[:500])
    for pk in ids:
        WebhookDelivery.objects.filter(pk=pk).update(next_attempt_at=now)
        tasks.webhook_deliver_task.delay(pk)
    return ids


def feeds_check(*, now=None) -> list[Notice]:
    """Refresh the live feeds; a meter that has just become late is a notice."""
    from sites.feeds import feeds_refresh

    made = []
    for feed in feeds_refresh(now=now):
        meter = feed.meter
        notice = notice_create(
            organization=meter.organization, event=Event.FEED_LATE,
            subject=f"feed:{meter.pk}:{_iso(feed.late_since)}",
            title=f"Live meter late: {meter}",
            body=f"No reading since {feed.last_reading_at:%Y-%m-%d %H:%M} UTC "
            f"(expected every {meter.interval_minutes} minutes).",
            url=f"/meters/{meter.pk}/",
            payload={"meter": meter.pk, "last_reading_at": _iso(feed.last_reading_at),
                     "due_at": feed.due_at.isoformat() if feed.due_at else None},
        )  # fmt: skip
        if notice:
            made.append(notice)
    return made


def digests_send(*, now=None) -> int:
    """One e-mail per member in digest mode with the notices since their last digest."""
    now = now or timezone.now()
    sent = 0
    for pref in EmailPreference.objects.filter(mode=EmailMode.DIGEST).select_related("user", "organization"):
        if not pref.user.email:
            continue
        since = pref.last_digest_at or now - timedelta(days=1)
        notices = list(
            Notice.objects.filter(
                organization=pref.organization, event__in=pref.events, created_at__gt=since, created_at__lte=now
            ).order_by("created_at")
        )
        if notices:
            lines = [f"- {n.created_at:%Y-%m-%d %H:%M} {n.title}\n  {_absolute(n.url)}" for n in notices]
            send_mail(f"[{pref.organization.name}] {len(notices)} notices since {since:%Y-%m-%d %H:%M} UTC",
                      "\n".join(lines), None, [pref.user.email])  # fmt: skip
            sent += 1
        EmailPreference.objects.filter(pk=pref.pk).update(last_digest_at=now)
    return sent


def email_preference_set(*, user, organization: Organization, mode: str, events: list[str]) -> EmailPreference:
    pref, _ = EmailPreference.objects.update_or_create(
        user=user, organization=organization, defaults={"mode": EmailMode(mode).value,
                                                        "events": [Event(e).value for e in events]},
    )  # fmt: skip
    return pref


def webhook_create(*, organization: Organization, url: str, secret: str, events: list[str]) -> Webhook:
    return Webhook.objects.create(organization=organization, url=url, secret=secret,
                                  events=[Event(e).value for e in events])  # fmt: skip


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


# ----- Webhook delivery ---------------------------------------------------------------------------


def webhook_body(notice: Notice) -> bytes:
    return json.dumps(
        {"id": notice.pk, "event": notice.event, "organization": notice.organization.slug, "title": notice.title,
         "body": notice.body, "url": _absolute(notice.url), "created_at": notice.created_at.isoformat(),
         "data": notice.payload},
        separators=(",", ":"),
    ).encode()  # fmt: skip


def webhook_backoff(attempt: int) -> float:
    """The shared backoff (full jitter) from WEBHOOK_RETRY_BASE_SECONDS, doubling per attempt."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    return backoff_seconds(attempt - 1, base=base, cap=base * 2**settings.WEBHOOK_MAX_ATTEMPTS)


def webhook_attempt(*, delivery_id: int) -> float | None:
    """POST the notice once, record the attempt. Returns the delay before the next try, or None if done."""
    delivery = WebhookDelivery.objects.select_related("webhook", "notice__organization").get(pk=delivery_id)
    if delivery.status != WebhookStatus.PENDING:
        return None
    number = delivery.attempts + 1
    body = webhook_body(delivery.notice)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret=delivery.webhook.secret, body=body),
        "X-Portal-Event": delivery.notice.event,
        "X-Portal-Delivery": str(delivery.pk),
        "User-Agent": settings.VENDOR_USER_AGENT,
    }
    started = time.monotonic()
    status_code, error = None, ""
    try:
        # Any host, but never a loopback, private or metadata address (vendors/safety.py).
        response = public_session().post(delivery.webhook.url, data=body, headers=headers,
                                 timeout=settings.WEBHOOK_TIMEOUT_SECONDS, allow_redirects=False)  # fmt: skip
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    WebhookAttempt.objects.create(delivery=delivery, number=number, status_code=status_code, error=error,
                                  duration_ms=(time.monotonic() - started) * 1000)  # fmt: skip
    if not error:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookStatus.SUCCEEDED, attempts=number, last_error="", next_attempt_at=None
        )
        return None
    if number >= settings.WEBHOOK_MAX_ATTEMPTS:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookStatus.FAILED, attempts=number, last_error=f"Gave up after {number} attempts: {error}",
            next_attempt_at=None,
        )  # fmt: skip
        return None
    delay = webhook_backoff(number)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=number, last_error=error, next_attempt_at=timezone.now() + timedelta(seconds=delay)
    )
    return delay
