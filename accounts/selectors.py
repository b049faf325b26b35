from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from accounts.fields import fernet
from accounts.models import Organization, VendorCredentials
from vendors.wattcarbon import WattCarbonAccount


def organizations_for_user(*, user: AbstractBaseUser | AnonymousUser):
    return Organization.objects.filter(memberships__user=user).order_by("name")


def credentials_for_org(*, organization: Organization) -> VendorCredentials:
    """The organization's vendor credentials (an unsaved empty row if none were set)."""
    creds = VendorCredentials.objects.filter(organization=organization).first()
    return creds or VendorCredentials(organization=organization)


def wattcarbon_account(*, credentials: VendorCredentials) -> WattCarbonAccount:
    """What the WattCarbon client needs of an organization's credentials, as plain values."""
    return WattCarbonAccount(
        organization_id=credentials.organization_id,
        base_url=credentials.wattcarbon_url,
        email=credentials.wattcarbon_email,
        api_key=credentials.wattcarbon_api_key,
        cipher=fernet(),
    )
