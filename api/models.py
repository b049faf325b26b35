from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

from accounts.models import Organization, Role


class KeyRole(models.TextChoices):
    """What a key may do: an operator key changes things, a viewer key reads. No key is an owner."""

    OPERATOR = Role.OPERATOR.value, "Operator"
    VIEWER = Role.VIEWER.value, "Viewer"


class OrganizationAPIKey(AbstractAPIKey):
    """An organization's API key. Only a hash is stored; the prefix stays visible to tell keys apart."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    role = models.CharField(max_length=16, choices=KeyRole.choices, default=KeyRole.VIEWER)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "organization API key"
        verbose_name_plural = "organization API keys"
        constraints = [models.CheckConstraint(condition=models.Q(role__in=KeyRole.values), name="apikey_role_valid")]


class IdempotencyRecord(models.Model):
    """The first answer to a POST carrying an `Idempotency-Key`: a repeat gets it back.

    The row is written before the work starts (the unique constraint makes a concurrent
    repeat fail), and its answer filled in once the work is done."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # Who asked: "key:<id>" or "user:<id>"; a key is private to its caller.
    caller = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "caller", "key"], name="idempotency_unique_caller_key")
        ]
