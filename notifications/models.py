from django.conf import settings
from django.db import models

from accounts.fields import EncryptedTextField
from accounts.models import Organization


class Event(models.TextChoices):
    DELIVERY_FAILED = "delivery_failed", "A delivery failed"
    UPLOAD_INVALID = "upload_invalid", "An upload was invalid"
    FEED_LATE = "feed_late", "A live meter is late"


class Notice(models.Model):
    """Something an organization is told about, once: e-mails and webhooks are made from it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="notices")
    event = models.CharField(max_length=24, choices=Event.choices)
    # What it is about, e.g. "delivery:12:2026-11-23T10:00:00+00:00": the same failure is told once.
    subject = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "event", "subject"], name="notice_unique_subject"),
            models.CheckConstraint(condition=models.Q(event__in=Event.values), name="notice_event_valid"),
        ]

    def __str__(self) -> str:
        return self.title


class EmailMode(models.TextChoices):
    IMMEDIATE = "immediate", "One e-mail per event"
    DIGEST = "digest", "A daily digest"
    OFF = "off", "No e-mail"


class EmailPreference(models.Model):
    """One member's e-mail choices for one organization. No row: every event, one e-mail each."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_preferences")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="email_preferences")
    mode = models.CharField(max_length=12, choices=EmailMode.choices, default=EmailMode.IMMEDIATE)
    events = models.JSONField(default=list, blank=True, help_text="Event values this member is mailed about.")
    last_digest_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="emailpref_unique_user_org"),
            models.CheckConstraint(condition=models.Q(mode__in=EmailMode.values), name="emailpref_mode_valid"),
        ]


class Webhook(models.Model):
    """An organization's endpoint: each event is POSTed as JSON, signed with HMAC-SHA256 of the body."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = EncryptedTextField()
    events = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url


class WebhookStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One notice sent to one webhook, retried with backoff; each try is a WebhookAttempt."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="webhook_deliveries")
    status = models.CharField(max_length=12, choices=WebhookStatus.choices, default=WebhookStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "notice"], name="webhookdelivery_unique"),
            models.CheckConstraint(
                condition=models.Q(status__in=WebhookStatus.values), name="webhookdelivery_status_valid"
            ),
        ]


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery", "number"]
