from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Organization, VendorCredentials


def organizations_for_user(*, user: AbstractBaseUser):
    return Organization.objects.filter(memberships__user=user).order_by("name")


def credentials_for_org(*, organization: Organization) -> VendorCredentials:
    """The organization's vendor credentials (an unsaved empty row if none were set)."""
    creds = VendorCredentials.objects.filter(organization=organization).first()
    return creds or VendorCredentials(organization=organization)
