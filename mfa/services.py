"""Writes for two-factor login: enrol an authenticator app, recovery codes, turn it off,
and an organization's rule that its owners use it. Devices are django-otp's."""

from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Organization
from audit.services import audit_record, audited

RECOVERY_CODES = 10
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def _record(user, action: str) -> None:
    """Each organization of the user sees that its member turned two-factor login on or off."""
    for org_id in Membership.objects.filter(user=user).values_list("organization_id", flat=True):
        audit_record(
            organization_id=org_id, action=action, object_type="two_factor", object_id=user.pk,
            object_label=user.get_username(), user=user,
        )  # fmt: skip


def totp_device_start(*, user) -> TOTPDevice:
    """The user's unconfirmed authenticator (a new secret the first time); confirmed by a code."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


@transaction.atomic
def recovery_codes_create(*, user) -> list[str]:
    """New one-time recovery codes; the old ones stop working. Shown once, to the user."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_NAME, defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def totp_device_confirm(*, device: TOTPDevice, token: str, user) -> list[str] | None:
    """Confirm the authenticator with a code it shows; returns fresh recovery codes, or None
    when the code is wrong."""
    if not device.verify_token(token):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    codes = recovery_codes_create(user=user)
    _record(user, "enable")
    return codes


@transaction.atomic
def two_factor_disable(*, user) -> None:
    """Remove the user's authenticator and recovery codes."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    _record(user, "disable")


@audited("update", "organization", target="organization", fields=("require_two_factor",))
def organization_require_two_factor(*, organization: Organization, required: bool) -> Organization:
    """Whether the organization's owners must log in with a second factor."""
    organization.require_two_factor = required
    organization.save(update_fields=["require_two_factor"])
    return organization
