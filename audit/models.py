"""The audit trail: an append-only record of who changed what in an organization.

Rows are never updated or deleted: `save()` refuses an existing row, the queryset refuses
`update()` and `delete()`, the admin is read-only, and on PostgreSQL a trigger refuses
UPDATE and DELETE whatever the caller (see the migration).
"""

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Changed"
    DELETE = "delete", "Deleted"
    UPLOAD = "upload", "Uploaded"
    MAP = "map", "Mapped columns"
    CONFIRM = "confirm", "Confirmed"
    RETRY = "retry", "Retried"
    CANCEL = "cancel", "Cancelled"
    REPUSH = "repush", "Re-pushed"
    ENABLE = "enable", "Enabled"
    DISABLE = "disable", "Disabled"


class AuditObjectType(models.TextChoices):
    SITE = "site", "Site"
    METER = "meter", "Meter"
    DEVICE = "device", "Device"
    CREDENTIALS = "credentials", "Vendor credentials"
    API_KEY = "api_key", "API key"
    UPLOAD = "upload", "Upload"
    DELIVERY = "delivery", "Delivery"
    ORGANIZATION = "organization", "Organization"
    TWO_FACTOR = "two_factor", "Two-factor login"


class ImmutableError(Exception):
    """An audit event was about to be changed or deleted."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableError("Audit events are append-only.")

    def delete(self):
        raise ImmutableError("Audit events are append-only.")


class AuditEvent(models.Model):
    # No database constraints on these two: deleting a user or an organization must not
    # rewrite (SET_NULL) or remove (CASCADE) its history. The labels keep the names.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", null=True
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", null=True
    )
    actor_label = models.CharField(max_length=150, blank=True, help_text="The username then; empty: the system.")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    object_type = models.CharField(max_length=32, choices=AuditObjectType.choices)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=255, blank=True)
    # {field: [before, after]}; secrets masked.
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_org_created")]
        constraints = [
            models.CheckConstraint(condition=models.Q(action__in=AuditAction.values), name="audit_action_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("Audit events are append-only.")
