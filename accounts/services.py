from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from accounts.models import Membership, Organization, Role, VendorCredentials
from audit.services import audited


@transaction.atomic
def organization_create(*, name: str, owner=None, slug: str = "") -> Organization:
    """Create an organization; its creator becomes its owner."""
    base = slug or slugify(name) or "org"
    candidate, n = base, 1
    while Organization.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    org = Organization.objects.create(name=name, slug=candidate)
    if owner is not None:
        Membership.objects.create(user=owner, organization=org, role=Role.OWNER)
    return org


def membership_set(*, organization: Organization, user, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": Role(role)}
    )
    return membership


@audited(
    "update", "credentials", lookup=lambda kw: VendorCredentials.objects.filter(organization=kw["organization"]).first()
)
def credentials_update(*, organization: Organization, **fields: str) -> VendorCredentials:
    """Update vendor credentials. A secret left empty keeps its stored value."""
    creds, _ = VendorCredentials.objects.get_or_create(organization=organization)
    for name, value in fields.items():
        if name in ("wattcarbon_api_key", "wattics_password") and not value:
            continue
        setattr(creds, name, value)
    creds.save()
    return creds


@transaction.atomic
def demo_bootstrap(*, username: str, password: str, email: str = "") -> Organization:
    """The admin login and a demo organization wired to the local simulators' demo accounts."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    if created or not user.check_password(password):
        user.set_password(password)
    user.is_staff = user.is_superuser = True
    user.save()
    org = Organization.objects.filter(slug="demo").first() or organization_create(name="Demo Energy Co", slug="demo")
    membership_set(organization=org, user=user, role=Role.OWNER)
    creds, _ = VendorCredentials.objects.get_or_create(organization=org)
    if not creds.wattcarbon_email:
        credentials_update(
            organization=org,
            wattcarbon_email="demo@example.com",
            wattcarbon_api_key="demo-api-key",
            wattics_username="demo",
            wattics_password="demo-password",
        )
    return org
