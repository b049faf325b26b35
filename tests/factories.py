"""Test data builders, in one place. Plain functions: each returns a saved row."""

import itertools
from datetime import date

from django.contrib.auth import get_user_model

from accounts.models import Membership, Organization, Role
from sites.methodologies import canonical_kind
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
    # Stored under today's name, as the services store it (the database refuses any other).
    defaults["kind"] = canonical_kind(defaults["kind"])
    device = Device.objects.create(organization=site.organization, site=site, **defaults)
    if meters:
        device.meters.set(meters)
    return device


# --- Uploads, deliveries, exchanges, readings --------------------------------------


def make_upload(org: Organization, user=None, **kwargs):
    """A stored upload (no file on disk: the status pages never open it)."""
    from datetime import timedelta

    from django.utils import timezone

    from uploads.models import Upload, UploadStatus

    n = next(_seq)
    now = timezone.now()
    defaults = {
        "original_name": f"readings-{n}.csv",
        "file": f"uploads/test/readings-{n}.csv",
        "size_bytes": 12_345,
        "sha256": f"{n:064x}",
        "status": UploadStatus.STORED,
        "targets": ["wattics"],
        "rows_total": 96,
        "rows_valid": 96,
        "rows_stored": 96,
        "period_start": now - timedelta(days=1),
        "period_end": now,
    }
    defaults.update(kwargs)
    created_at = defaults.pop("created_at", None)
    upload = Upload.objects.create(organization=org, uploaded_by=user, **defaults)
    if created_at is not None:
        # auto_now_add ignores the value given to create().
        Upload.objects.filter(pk=upload.pk).update(created_at=created_at)
        upload.created_at = created_at
    return upload


def make_delivery(upload, meter: Meter, **kwargs):
    from uploads.models import Delivery

    defaults = {"target": "wattics", "status": "queued", "total": upload.rows_valid}
    defaults.update(kwargs)
    return Delivery.objects.create(organization=upload.organization, upload=upload, meter=meter, **defaults)


def make_exchange(delivery, **kwargs):
    from vendors.models import HttpExchange

    defaults = {
        "vendor": "wattcarbon" if delivery.target.startswith("wattcarbon") else "wattics",
        "method": "POST",
        "url": "http://127.0.0.1:8102/push",
        "status_code": 200,
        "duration_ms": 12.5,
        "meter": delivery.meter,
    }
    defaults.update(kwargs)
    return HttpExchange.objects.create(organization=delivery.organization, delivery=delivery, **defaults)


def make_readings(meter: Meter, start, count: int, interval_minutes: int | None = None, *, value=None, skip=()):
    """`count` readings every `interval_minutes` from `start`, in one bulk_create.
    `value(i)` gives the i-th value (default: a daily-ish wave); indexes in `skip` are left out (holes)."""
    import math
    from datetime import timedelta

    from uploads.models import Reading

    step = timedelta(minutes=interval_minutes or meter.interval_minutes)
    skip = set(skip)
    value = value or (lambda i: round(2 + math.sin(i / 16), 4))
    rows = [Reading(meter=meter, ts=start + i * step, value=value(i)) for i in range(count) if i not in skip]
    created = Reading.objects.bulk_create(rows, batch_size=5000)
    if created:  # as the ingest does: the meter's roll-ups follow its stored readings
        from uploads.services import rollups

        rollups.rollups_refresh(ranges=rollups.day_ranges(spans=[(meter.pk, created[0].ts, created[-1].ts)]))
    return created


def make_stored_upload(meter: Meter, start, count: int, *, targets=("wattics",), value=None, user=None, **kwargs):
    """A stored upload of `count` readings of one meter (see make_readings), rows linked to it."""
    from uploads.models import Reading

    upload = make_upload(meter.organization, user, meter=meter, targets=list(targets), rows_total=count,
                         rows_valid=count, rows_stored=count)  # fmt: skip
    rows = make_readings(meter, start, count, value=value, **kwargs)
    # By (meter, ts), the readings' key, in slices (a long `pk IN` of pairs is too deep for SQLite).
    for i in range(0, len(rows), 500):
        Reading.objects.filter(meter=meter, ts__in=[r.ts for r in rows[i : i + 500]]).update(upload=upload)
    return upload
