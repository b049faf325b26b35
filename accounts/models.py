from django.conf import settings
from django.db import models

from accounts.fields import EncryptedTextField


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"


# Higher rank may do everything a lower rank may.
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.OWNER: 2}


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    # Owners must log in with a second factor (those without one are sent to set it up).
    require_two_factor = models.BooleanField("require two-factor login for owners", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Bytes of uploaded files this organization may keep; empty: UPLOAD_QUOTA_BYTES.
    storage_quota_bytes = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    def allows(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class VendorCredentials(models.Model):
    """One organization's accounts at the two vendors. Secrets are encrypted at rest."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="credentials")
    wattcarbon_base_url = models.URLField(blank=True, help_text="Empty: the portal's default.")
    wattcarbon_email = models.EmailField(blank=True)
    wattcarbon_api_key = EncryptedTextField(blank=True)
    wattics_base_url = models.URLField(blank=True, help_text="Empty: the portal's default.")
    wattics_username = models.CharField(max_length=200, blank=True)
    wattics_password = EncryptedTextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Vendor credentials of {self.organization}"

    @property
    def wattcarbon_url(self) -> str:
        return (self.wattcarbon_base_url or settings.WATTCARBON_BASE_URL).rstrip("/")

    @property
    def wattics_url(self) -> str:
        return (self.wattics_base_url or settings.WATTICS_BASE_URL).rstrip("/")


def mask_secret(value: str) -> str:
    """What a page may show of a secret: that it is set, and its last two characters."""
    if not value:
        return ""
    return "•" * 8 + value[-2:] if len(value) > 6 else "•" * 8
