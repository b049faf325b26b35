"""Writes of sites, meters and devices. Each validates the whole row before it saves, and
checks that what it links (a site, a device's meters) belongs to the same organization."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Organization
from audit.services import audited
from core.services import model_update
from sites.methodologies import canonical_kind, clean_values, get_methodology
from sites.models import Device, Meter, Site


def _check_same_organization(site: Site, organization_id: int) -> None:
    """A meter or device is placed only at a site of its own organization."""
    if site.organization_id != organization_id:
        raise ValidationError({"site": "Choose a site of your organization."})


@audited("create", "site")
def site_create(*, organization: Organization, **fields: Any) -> Site:
    return model_update(instance=Site(organization=organization), data=fields)


@audited("update", "site", target="site")
def site_update(*, site: Site, **fields: Any) -> Site:
    return model_update(instance=site, data=fields)


@audited("delete", "site", target="site")
def site_delete(*, site: Site) -> None:
    """Delete a site with its meters and devices (and their stored readings)."""
    site.delete()


@audited("create", "meter")
def meter_create(*, organization: Organization, site: Site, **fields: Any) -> Meter:
    _check_same_organization(site, organization.pk)
    return model_update(instance=Meter(organization=organization, site=site), data=fields)


@audited("update", "meter", target="meter")
def meter_update(*, meter: Meter, **fields: Any) -> Meter:
    """Update a meter. An empty Wattics password keeps the stored one (it is write-only)."""
    if not fields.get("wattics_password"):
        fields.pop("wattics_password", None)
    _check_same_organization(fields.get("site", meter.site), meter.organization_id)
    return model_update(instance=meter, data=fields)


@audited("delete", "meter", target="meter")
def meter_delete(*, meter: Meter) -> None:
    meter.delete()


def _check_device_meters(site: Site, meters) -> None:
    stray = [m for m in meters if m.site_id != site.pk]
    if stray:
        raise ValidationError({"meters": f"These meters are not at {site}: {', '.join(m.name for m in stray)}."})


def _check_commenced_date(kind: str, common: dict[str, Any]) -> None:
    methodology = get_methodology(kind)
    if methodology and methodology.commenced_date_required and not common.get("commenced_operation_date"):
        raise ValidationError({"commenced_operation_date": f"A {methodology.label} device needs this date."})


@audited("create", "device")
@transaction.atomic
def device_create(
    *, organization: Organization, site: Site, kind: str, fields: dict, meters=(), **common: Any
) -> Device:
    """Create a device; its kind's `fields` are validated against the methodology registry."""
    return _device_save(Device(organization=organization, site=site), kind=kind, fields=fields, meters=meters, **common)


@audited("update", "device", target="device")
@transaction.atomic
def device_update(*, device: Device, kind: str, fields: dict, meters=(), **common: Any) -> Device:
    return _device_save(device, kind=kind, fields=fields, meters=meters, **common)


def _device_save(device: Device, *, kind: str, fields: dict, meters, **common: Any) -> Device:
    site = common.get("site", device.site)
    _check_same_organization(site, device.organization_id)
    _check_device_meters(site, meters)
    kind = canonical_kind(kind)
    _check_commenced_date(kind, {"commenced_operation_date": device.commenced_operation_date, **common})
    device = model_update(instance=device, data={**common, "kind": kind, "fields": clean_values(kind, fields)})
    device.meters.set(meters)
    return device


@audited("delete", "device", target="device")
def device_delete(*, device: Device) -> None:
    device.delete()
