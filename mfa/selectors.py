from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Role


def two_factor_state(*, user) -> tuple[bool, bool]:
    """(has a confirmed authenticator, must have one), in one query: it runs on every request."""
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            enrolled=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
            required=Exists(
                Membership.objects.filter(user=OuterRef("pk"), role=Role.OWNER, organization__require_two_factor=True)
            ),
        )
        .values_list("enrolled", "required")
        .first()
    )
    return (bool(row[0]), bool(row[1])) if row else (False, False)


def totp_device_for(*, user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def recovery_codes_left(*, user) -> int:
    device = StaticDevice.objects.filter(user=user, confirmed=True).first()
    return device.token_set.count() if device else 0
