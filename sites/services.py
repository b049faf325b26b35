"""Writes for sites, meters and devices, and their sync to WattCarbon.

A sync moves `wattcarbon_status` through not_synced/failed → pending (a person asked)
→ syncing (a worker claimed the row with a conditional update) → synced or failed.
Only these services move it, and each checks the current status first.
"""

import logging
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone

from accounts.models import Organization
from accounts.selectors import credentials_for_org
from audit.services import audited
from sites.methodologies import clean_values
from sites.models import Device, Meter, MeterType, Site, SyncStatus
from vendors.http import ExchangeLog, VendorUnreachable
from vendors.models import Vendor
from vendors.wattcarbon import VendorRejected, VendorTransient, WattCarbonClient

logger = logging.getLogger(__name__)

# WattCarbon takes only these meter types.
SYNCABLE_METER_TYPES = (MeterType.ELECTRICITY, MeterType.GAS)
CLAIMABLE = (SyncStatus.NOT_SYNCED, SyncStatus.PENDING, SyncStatus.FAILED)
# A "syncing" row older than this lost its worker (the task's hard limit is far shorter).
STALE_CLAIM = timedelta(minutes=10)


class SyncError(Exception):
    """A sync that cannot succeed as things are: recorded as failed, retryable by a person."""

    def __init__(self, message: str, field_errors: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}


class SyncRetry(Exception):
    """A transient failure: the task should try again later (after `retry_after` if the vendor said)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


# ----- Sites, meters, devices ---------------------------------------------------------------


@audited("create", "site")
def site_create(*, organization: Organization, **fields: Any) -> Site:
    site = Site(organization=organization, **fields)
    site.full_clean()
    site.save()
    return site


@audited("update", "site", target="site")
def site_update(*, site: Site, **fields: Any) -> Site:
    for name, value in fields.items():
        setattr(site, name, value)
    site.full_clean()
    site.save()
    return site


@audited("delete", "site", target="site")
def site_delete(*, site: Site) -> None:
    """Delete a site with its meters and devices (and their stored readings)."""
    site.delete()


@audited("create", "meter")
def meter_create(*, organization: Organization, site: Site, **fields: Any) -> Meter:
    if site.organization_id != organization.pk:
        raise ValidationError({"site": "Choose a site of your organization."})
    meter = Meter(organization=organization, site=site, **fields)
    meter.full_clean()
    meter.save()
    return meter


@audited("update", "meter", target="meter")
def meter_update(*, meter: Meter, **fields: Any) -> Meter:
    """Update a meter. An empty Wattics password keeps the stored one (it is write-only)."""
    if not fields.get("wattics_password"):
        fields.pop("wattics_password", None)
    site = fields.get("site")
    if site is not None and site.organization_id != meter.organization_id:
        raise ValidationError({"site": "Choose a site of your organization."})
    for name, value in fields.items():
        setattr(meter, name, value)
    meter.full_clean()
    meter.save()
    return meter


@audited("delete", "meter", target="meter")
def meter_delete(*, meter: Meter) -> None:
    meter.delete()


def _check_device_meters(site: Site, meters) -> None:
    stray = [m for m in meters if m.site_id != site.pk]
    if stray:
        raise ValidationError({"meters": f"These meters are not at {site}: {', '.join(m.name for m in stray)}."})


@audited("create", "device")
@transaction.atomic
def device_create(
    *, organization: Organization, site: Site, kind: str, fields: dict, meters=(), **common: Any
) -> Device:
    """Create a device; its kind's `fields` are validated against the methodology registry."""
    if site.organization_id != organization.pk:
        raise ValidationError({"site": "Choose a site of your organization."})
    _check_device_meters(site, meters)
    device = Device(organization=organization, site=site, kind=kind, fields=clean_values(kind, fields), **common)
    device.full_clean()
    device.save()
    device.meters.set(meters)
    return device


@audited("update", "device", target="device")
@transaction.atomic
def device_update(*, device: Device, kind: str, fields: dict, meters=(), **common: Any) -> Device:
    site = common.get("site", device.site)
    if site.organization_id != device.organization_id:
        raise ValidationError({"site": "Choose a site of your organization."})
    _check_device_meters(site, meters)
    for name, value in common.items():
        setattr(device, name, value)
    device.kind = kind
    device.fields = clean_values(kind, fields)
    device.full_clean()
    device.save()
    device.meters.set(meters)
    return device


@audited("delete", "device", target="device")
def device_delete(*, device: Device) -> None:
    device.delete()


# ----- Sync: request, claim, finish ----------------------------------------------------------


def _request_sync(obj: Meter | Device, task) -> bool:
    """Mark the row pending and enqueue its task once the transaction commits.
    False when a worker is syncing it right now."""
    model = type(obj)
    stale = timezone.now() - STALE_CLAIM
    movable = Q(wattcarbon_status__in=[*CLAIMABLE, SyncStatus.SYNCED]) | Q(
        wattcarbon_status=SyncStatus.SYNCING, wattcarbon_claimed_at__lt=stale
    )
    with transaction.atomic():
        moved = model.objects.filter(movable, pk=obj.pk).update(wattcarbon_status=SyncStatus.PENDING)
        if moved:
            transaction.on_commit(lambda: task.delay(obj.pk))
    if moved:
        obj.wattcarbon_status = SyncStatus.PENDING
    return bool(moved)


def meter_sync_request(*, meter: Meter) -> bool:
    """A person pressed "Sync to WattCarbon" for a meter."""
    from sites.tasks import meter_sync

    return _request_sync(meter, meter_sync)


def device_sync_request(*, device: Device) -> bool:
    """A person pressed "Sync to WattCarbon" for a device (its unsynced meters go first)."""
    from sites.tasks import device_sync

    return _request_sync(device, device_sync)


def _claim(model: type[Model], pk: int) -> bool:
    """Take the row for this worker: only one worker syncs a row at a time."""
    stale = timezone.now() - STALE_CLAIM
    claimable = Q(wattcarbon_status__in=CLAIMABLE) | Q(
        wattcarbon_status=SyncStatus.SYNCING, wattcarbon_claimed_at__lt=stale
    )
    return bool(
        model.objects.filter(claimable, pk=pk).update(
            wattcarbon_status=SyncStatus.SYNCING, wattcarbon_claimed_at=timezone.now()
        )
    )


def _finish(model: type[Model], pk: int, status: str, *, error: str = "", field_errors=None, **extra) -> None:
    # Only from "syncing": a row someone deleted or re-requested meanwhile is left alone.
    values = {
        "wattcarbon_status": status,
        "wattcarbon_error": error[:2000],
        "wattcarbon_field_errors": field_errors or {},
    }
    if status == SyncStatus.SYNCED:
        values["wattcarbon_synced_at"] = timezone.now()
    model.objects.filter(pk=pk, wattcarbon_status=SyncStatus.SYNCING).update(**values, **extra)


def sync_mark_failed(*, model: type[Model], pk: int, message: str) -> None:
    """A transient failure outlived its retries: failed, with the vendor's message."""
    model.objects.filter(pk=pk, wattcarbon_status__in=[SyncStatus.PENDING, SyncStatus.SYNCING]).update(
        wattcarbon_status=SyncStatus.FAILED, wattcarbon_error=message[:2000], wattcarbon_field_errors={}
    )


def _client(organization_id: int, **log_ids: int) -> WattCarbonClient:
    credentials = credentials_for_org(organization=Organization(pk=organization_id))
    return WattCarbonClient(
        credentials, ExchangeLog(organization_id=organization_id, vendor=Vendor.WATTCARBON, **log_ids)
    )


def site_location(site: Site) -> dict[str, Any]:
    """WattCarbon's `location`: the street address, else the coordinates."""
    address = {
        "street": site.street,
        "city": site.city,
        "state": site.state,
        "country": site.country,
        "postalCode": site.postal_code,
    }
    if site.street or site.city or site.postal_code:
        return {k: v for k, v in address.items() if v}
    if site.latitude is not None and site.longitude is not None:
        return {"latitude": float(site.latitude), "longitude": float(site.longitude)}
    raise SyncError(
        f"Site {site.name} needs a street address or coordinates: WattCarbon maps devices to weather by it."
    )


def meter_payload(meter: Meter) -> dict[str, Any]:
    if meter.meter_type not in SYNCABLE_METER_TYPES:
        raise SyncError(
            f"WattCarbon takes electricity and gas meters only; "
            f"{meter.name} is a {meter.get_meter_type_display().lower()} meter."
        )
    return {
        "apiProvider": "manual",
        "meterType": meter.meter_type,
        "location": site_location(meter.site),
        "name": meter.name,
    }


def _remote_id(value: Any) -> int | str:
    text = str(value)
    return int(text) if text.isdigit() else text


def device_payload(device: Device, meter_ids: list) -> dict[str, Any]:
    """The JSON for POST /devices: common fields, then the kind's own from the registry."""
    try:
        kind_values = clean_values(device.kind, device.fields)
    except ValidationError as exc:
        raise SyncError(
            "Some of this device's fields are invalid; edit the device.",
            {name: " ".join(messages) for name, messages in exc.message_dict.items()},
        ) from None
    payload: dict[str, Any] = {
        "name": device.name,
        "customId": device.custom_id,
        "location": site_location(device.site),
        "meterIds": [_remote_id(m) for m in meter_ids],
        "commencedOperationDate": device.commenced_operation_date.isoformat(),
        "kind": device.kind,
    }
    if device.utility or device.site.utility:
        payload["utility"] = device.utility or device.site.utility
    if device.owner_name:
        payload["deviceOwner"] = {"name": device.owner_name}
    if device.external_registry_name:
        payload["externalRegistryName"] = device.external_registry_name
    if device.external_registry_id:
        payload["externalRegistryDeviceId"] = device.external_registry_id
    payload.update(kind_values)
    return payload


def _sync_meter_remote(meter: Meter, client: WattCarbonClient) -> str:
    """The meter's WattCarbon id: confirmed with a GET if known, else created. Row must be claimed."""
    if meter.wattcarbon_id:
        try:
            client.get_meter(meter.wattcarbon_id)
        except VendorRejected as exc:
            if exc.status == 404:
                Meter.objects.filter(pk=meter.pk).update(wattcarbon_id="")
                raise SyncError(
                    f"Meter {meter.wattcarbon_id} no longer exists at WattCarbon; press Sync again to create it anew."
                ) from exc
            raise
        return meter.wattcarbon_id
    remote_id = str(client.create_meter(meter_payload(meter)))
    # Saved at once, on its own: a crash after this point must not create a second meter.
    Meter.objects.filter(pk=meter.pk).update(wattcarbon_id=remote_id)
    meter.wattcarbon_id = remote_id
    return remote_id


def _run(model: type[Model], pk: int, work) -> str | None:
    """Claim the row, do `work(row)`, record the outcome. Returns the new status (None: not claimed)."""
    if not _claim(model, pk):
        return None
    row = model.objects.select_related("site", "organization").get(pk=pk)
    try:
        work(row)
    except SyncError as exc:
        _finish(model, pk, SyncStatus.FAILED, error=exc.message, field_errors=exc.field_errors)
        return SyncStatus.FAILED
    except VendorRejected as exc:
        _finish(model, pk, SyncStatus.FAILED, error=str(exc), field_errors=exc.field_errors)
        return SyncStatus.FAILED
    except (VendorTransient, VendorUnreachable) as exc:
        # Back to pending so the retry can claim it; the message shows meanwhile.
        retry_after = getattr(exc, "retry_after", None)
        model.objects.filter(pk=pk, wattcarbon_status=SyncStatus.SYNCING).update(
            wattcarbon_status=SyncStatus.PENDING, wattcarbon_error=f"Retrying: {exc}"[:2000]
        )
        raise SyncRetry(str(exc), retry_after) from exc
    _finish(model, pk, SyncStatus.SYNCED)
    return SyncStatus.SYNCED


def meter_sync(*, meter_id: int) -> str | None:
    """Create the meter at WattCarbon (or confirm it exists). Idempotent: a synced meter is
    only read back. Raises SyncRetry on a transient failure."""

    def work(meter: Meter) -> None:
        client = _client(meter.organization_id, meter_id=meter.pk)
        try:
            _sync_meter_remote(meter, client)
        finally:
            client.log.flush()

    return _run(Meter, meter_id, work)


def device_sync(*, device_id: int) -> str | None:
    """Create the device at WattCarbon, after its unsynced meters (or confirm it exists).
    Idempotent: a device with a WattCarbon id is only read back. Raises SyncRetry on a
    transient failure."""

    def work(device: Device) -> None:
        client = _client(device.organization_id, device_id=device.pk)
        try:
            if device.wattcarbon_id:
                try:
                    client.get_device(device.wattcarbon_id)
                except VendorRejected as exc:
                    if exc.status == 404:
                        Device.objects.filter(pk=device.pk).update(wattcarbon_id="")
                        raise SyncError(
                            f"Device {device.wattcarbon_id} no longer exists at WattCarbon; "
                            "press Sync again to create it anew."
                        ) from exc
                    raise
                return
            meter_ids = [_device_meter_id(meter) for meter in device.meters.select_related("site").order_by("pk")]
            remote_id = str(client.create_device(device_payload(device, meter_ids)))
            Device.objects.filter(pk=device.pk).update(wattcarbon_id=remote_id)
        finally:
            client.log.flush()

    return _run(Device, device_id, work)


def _device_meter_id(meter: Meter) -> str:
    """An attached meter's WattCarbon id, syncing it first (claimed, logged as the meter's)."""
    if meter.wattcarbon_id and meter.wattcarbon_status == SyncStatus.SYNCED:
        return meter.wattcarbon_id
    try:
        status = meter_sync(meter_id=meter.pk)
    except SyncRetry as exc:
        raise VendorTransient(None, f"meter {meter.name}: {exc.message}", exc.retry_after) from exc
    if status is None:
        # Another worker holds it: come back when it is done.
        raise VendorTransient(None, f"Meter {meter.name} is being synced; the device will follow.")
    meter.refresh_from_db()
    if status != SyncStatus.SYNCED:
        raise SyncError(f"Meter {meter.name} could not be synced: {meter.wattcarbon_error}")
    return meter.wattcarbon_id
