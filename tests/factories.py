"""Test data builders, in one place. Plain functions: each returns a saved row."""

import itertools
from datetime import date

from django.contrib.auth import get_user_model

from accounts.models import Membership, Organization, Role
from sites.models import Device, Meter, Site

_seq = itertools.count(1)

PASSWORD = "correct-horse-battery"


def make_user(username: str = "", **kwargs):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **kwargs)


def make_org(name: str = "", *, owner=None) -> Organization:
    n = next(_seq)
    org = Organization.objects.create(name=name or f"Org {n}", slug=f"org-{n}")
    if owner is not None:
        make_membership(owner, org, Role.OWNER)
    return org


def make_membership(user, org: Organization, role: str = Role.OPERATOR) -> Membership:
    return Membership.objects.create(user=user, organization=org, role=role)


def make_site(org: Organization, **kwargs) -> Site:
    n = next(_seq)
    defaults = {
        "name": f"Site {n}",
        "street": "606 Ellis St",
        "city": "San Francisco",
        "state": "CA",
        "country": "US",
        "postal_code": "94109",
        "timezone": "America/Los_Angeles",
        "utility": "PG&E",
    }
    defaults.update(kwargs)
    return Site.objects.create(organization=org, **defaults)


def make_meter(site: Site, **kwargs) -> Meter:
    n = next(_seq)
    defaults = {"name": f"Meter {n}", "meter_type": "electricity", "unit": "kWh", "interval_minutes": 15}
    defaults.update(kwargs)
    return Meter.objects.create(organization=site.organization, site=site, **defaults)


def make_device(site: Site, **kwargs) -> Device:
    n = next(_seq)
    meters = kwargs.pop("meters", [])
    defaults = {
        "name": f"Device {n}",
        "custom_id": f"DEV-{n}",
        "kind": "solar_direct",
        "commenced_operation_date": date(2022, 8, 1),
        "owner_name": "Person Person",
        "fields": {"nameplateCapacityKw": 123},
    }
    defaults.update(kwargs)
    device = Device.objects.create(organization=site.organization, site=site, **defaults)
    if meters:
        device.meters.set(meters)
    return device
