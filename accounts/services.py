from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from accounts.fields import is_unreadable
from accounts.models import Membership, Organization, Role, VendorCredentials
from audit.services import audited
from vendors.safety import VendorURLRefused, check_base_url


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


# Each vendor's base URL and the secret that may be sent there.
SECRET_OF_URL = {"wattcarbon_base_url": "wattcarbon_api_key", "wattics_base_url": "wattics_password"}


@audited(
    "update", "credentials", lookup=lambda kw: VendorCredentials.objects.filter(organization=kw["organization"]).first()
)
def credentials_update(*, organization: Organization, **fields: str) -> VendorCredentials:
    """Update vendor credentials. A secret left empty keeps its stored value (an unreadable
    one too: it is written back as it was). A base URL must be one the portal may send to,
    and a changed base URL needs its vendor's secret again: a stored secret never follows
    a URL to another host."""
    creds, _ = VendorCredentials.objects.get_or_create(organization=organization)
    for url_field, secret_field in SECRET_OF_URL.items():
        url = fields.get(url_field)
        if url is None:
            continue
        if url:
            try:
                check_base_url(url)
            except VendorURLRefused as exc:
                raise ValidationError({url_field: str(exc)}) from exc
        stored_secret = getattr(creds, secret_field)
        moved = effective_url(url_field, url) != effective_url(url_field, getattr(creds, url_field))
        if moved and not fields.get(secret_field) and (stored_secret or is_unreadable(stored_secret)):
            raise ValidationError({secret_field: "The base URL changed: enter this secret again to send it there."})
    for name, value in fields.items():
        if name in SECRET_OF_URL.values() and not value:
            continue
        setattr(creds, name, value)
    creds.save()
    return creds


def effective_url(url_field: str, url: str) -> str:
    """The URL a vendor's requests go to: the organization's own, or the portal's default."""
    default = settings.WATTCARBON_BASE_URL if url_field == "wattcarbon_base_url" else settings.WATTICS_BASE_URL
    return (url or default).rstrip("/")


def credentials_reencrypt() -> tuple[int, int]:
    """Write every stored secret again with the current key (MultiFernet read it with a
    previous one). Returns (rows written, rows holding a secret no key can read)."""
    done = unreadable = 0
    for creds in VendorCredentials.objects.all():
        if is_unreadable(creds.wattcarbon_api_key) or is_unreadable(creds.wattics_password):
            unreadable += 1
        creds.save(update_fields=["wattcarbon_api_key", "wattics_password"])
        done += 1
    return done, unreadable


@transaction.atomic
def demo_bootstrap(*, username: str, password: str, email: str = "") -> Organization:
    """The admin login and a demo organization wired to the local simulators' demo accounts."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    if created:
        user.set_password(password)
    # An existing user keeps the password it has: bootstrap runs on every deployment, and
    # must never put a known password back on an account.
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
