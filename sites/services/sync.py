"""The sync of meters and devices to WattCarbon, and the upload of device documents.

A sync moves `wattcarbon_status` through not_synced/failed → pending (a person asked)
→ syncing (a worker claimed the row with a conditional update) → synced or failed.
Only these services move it, and each checks the current status first.

Creation at WattCarbon is crash-safe. WattCarbon publishes no idempotency key, so the
intent is saved before the POST (`wattcarbon_marker`), and a sync that finds an intent
without an id knows an earlier attempt may have created the object before dying: a
meter is looked for by the marker we put in its name (GET /meters), an asset by its
customId when WattCarbon answers that the customId is already used. Either is adopted.
"""

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from accounts.selectors import credentials_for_org, wattcarbon_account
from audit.services import audit_record

# The tasks import these services; the module is complete by the time a task is enqueued.
from sites import tasks
from sites.documents import DocumentInvalid, check_document
from sites.methodologies import canonical_kind, clean_values, get_methodology
from sites.models import Device, DeviceDocument, DocumentStatus, Meter, MeterType, Site, SyncStatus
from vendors import wattcarbon
from vendors.http import ExchangeLog, VendorRejected, VendorTransient
from vendors.models import Vendor
from vendors.wattcarbon import VENDOR as WATTCARBON
from vendors.wattcarbon import Asset, Location, PayloadInvalid, WattCarbonClient

logger = logging.getLogger(__name__)
# The two models whose rows are synced (they share the fields of WattCarbonSynced).
SyncedModel = type[Meter] | type[Device]

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
    return _request_sync(meter, tasks.meter_sync_task)


def device_sync_request(*, device: Device) -> bool:
    """A person pressed "Sync to WattCarbon" for a device (its unsynced meters go first)."""
    return _request_sync(device, tasks.device_sync_task)


def _claim(model: SyncedModel, pk: int) -> bool:
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


def _finish(model: SyncedModel, pk: int, status: str, *, error: str = "", field_errors=None, **extra) -> None:
    # Only from "syncing": a row someone deleted or re-requested meanwhile is left alone.
    values = {
        "wattcarbon_status": status,
        "wattcarbon_error": error[:2000],
        "wattcarbon_field_errors": field_errors or {},
    }
    if status == SyncStatus.SYNCED:
        values["wattcarbon_synced_at"] = timezone.now()
    model.objects.filter(pk=pk, wattcarbon_status=SyncStatus.SYNCING).update(**values, **extra)


def sync_mark_failed(*, model: SyncedModel, pk: int, message: str) -> None:
    """A transient failure outlived its retries: failed, with the vendor's message."""
    model.objects.filter(pk=pk, wattcarbon_status__in=[SyncStatus.PENDING, SyncStatus.SYNCING]).update(
        wattcarbon_status=SyncStatus.FAILED, wattcarbon_error=message[:2000], wattcarbon_field_errors={}
    )


def _client(organization_id: int, *, meter_id: int | None = None, device_id: int | None = None) -> WattCarbonClient:
    credentials = credentials_for_org(organization=Organization(pk=organization_id))
    log = ExchangeLog(organization_id=organization_id, vendor=Vendor.WATTCARBON, meter_id=meter_id, device_id=device_id)
    return WattCarbonClient(wattcarbon_account(credentials=credentials), log)


def site_location(site: Site) -> Location:
    return Location(
        site=site.name,
        street=site.street,
        city=site.city,
        state=site.state,
        country=site.country,
        postal_code=site.postal_code,
        latitude=float(site.latitude) if site.latitude is not None else None,
        longitude=float(site.longitude) if site.longitude is not None else None,
    )


def meter_payload(meter: Meter, marker: str = "") -> dict[str, Any]:
    """The meter as WattCarbon takes it (vendors.wattcarbon builds the JSON)."""
    if meter.meter_type not in SYNCABLE_METER_TYPES:
        raise SyncError(
            f"WattCarbon takes electricity and gas meters only; "
            f"{meter.name} is a {meter.get_meter_type_display().lower()} meter."
        )
    return wattcarbon.meter_payload(
        name=meter.name, meter_type=meter.meter_type, location=site_location(meter.site), marker=marker
    )


def device_payload(device: Device, meter_ids: list) -> dict[str, Any]:
    """The device as a WattCarbon asset: its kind's values checked against the registry."""
    kind = canonical_kind(device.kind)
    methodology = get_methodology(kind)
    if methodology is None:
        raise SyncError(f"WattCarbon takes no device of kind {device.kind!r}; edit the device.")
    try:
        kind_values = clean_values(kind, device.fields)
    except ValidationError as exc:
        raise SyncError(
            "Some of this device's fields are invalid; edit the device.",
            {name: " ".join(messages) for name, messages in exc.message_dict.items()},
        ) from None
    # Sent where the kind takes one (demand response does not).
    if methodology.commenced_date_required and device.commenced_operation_date is None:
        raise SyncError(
            "This device needs its commenced operation date; edit the device.",
            {"commencedOperationDate": "Field required"},
        )
    asset = Asset(
        name=device.name,
        custom_id=device.custom_id,
        kind=kind,
        location=site_location(device.site),
        meter_ids=[str(m) for m in meter_ids],
        kind_values=kind_values,
        commenced_operation_date=device.commenced_operation_date if methodology.commenced_date_required else None,
        utility=device.utility or device.site.utility,
        owner_name=device.owner_name,
        external_registry_name=device.external_registry_name,
        external_registry_id=device.external_registry_id,
    )
    return wattcarbon.asset_payload(asset)


def _confirm_remote(row: Meter | Device, read) -> None:
    """Read the row's WattCarbon object back. Gone (404): forget its id, so the next sync creates it anew."""
    try:
        read(row.wattcarbon_id)
    except VendorRejected as exc:
        if exc.status == 404:
            type(row).objects.filter(pk=row.pk).update(wattcarbon_id="")
            what = type(row).__name__
            raise SyncError(
                f"{what} {row.wattcarbon_id} no longer exists at WattCarbon; press Sync again to create it anew."
            ) from exc
        raise


def _sync_meter_remote(meter: Meter, client: WattCarbonClient) -> str:
    """The meter's WattCarbon id: confirmed with a GET if known, else created. Row must be claimed."""
    if meter.wattcarbon_id:
        _confirm_remote(meter, client.get_meter)
        return meter.wattcarbon_id
    if meter.wattcarbon_marker:
        # An earlier attempt recorded its intent and did not save an id: it may have created
        # the meter and died before hearing the answer (or before saving it). Look first.
        found = client.find_meter_named(wattcarbon.meter_marker_tag(meter.wattcarbon_marker))
        if found is not None:
            return _save_meter_id(meter, client.id_of(found))
        marker = meter.wattcarbon_marker
    else:
        marker = uuid.uuid4().hex
    payload = meter_payload(meter, marker)
    client.ensure_token()
    if not meter.wattcarbon_marker:
        # The intent, committed before the POST (autocommit: no transaction holds it back).
        Meter.objects.filter(pk=meter.pk).update(wattcarbon_marker=marker)
        meter.wattcarbon_marker = marker
    return _save_meter_id(meter, client.create_meter(payload))


def _save_meter_id(meter: Meter, remote: Any) -> str:
    # Saved at once, on its own: a crash after this point must not create a second meter.
    remote_id = str(remote)
    Meter.objects.filter(pk=meter.pk).update(wattcarbon_id=remote_id)
    meter.wattcarbon_id = remote_id
    return remote_id


def _run(model: SyncedModel, pk: int, work) -> str | None:
    """Claim the row, do `work(row)`, record the outcome. Returns the new status (None: not claimed)."""
    if not _claim(model, pk):
        return None
    row = model.objects.select_related("site", "organization").get(pk=pk)
    try:
        work(row)
    except (SyncError, PayloadInvalid) as exc:
        _finish(model, pk, SyncStatus.FAILED, error=exc.message, field_errors=exc.field_errors)
        return SyncStatus.FAILED
    except VendorRejected as exc:
        _finish(model, pk, SyncStatus.FAILED, error=str(exc), field_errors=exc.field_errors)
        return SyncStatus.FAILED
    except VendorTransient as exc:  # (VendorUnreachable too: no answer)
        # Back to pending so the retry can claim it; the message shows meanwhile.
        model.objects.filter(pk=pk, wattcarbon_status=SyncStatus.SYNCING).update(
            wattcarbon_status=SyncStatus.PENDING, wattcarbon_error=f"Retrying: {exc}"[:2000]
        )
        raise SyncRetry(str(exc), exc.retry_after) from exc
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
    """Create the device at WattCarbon as an asset, after its unsynced meters (or confirm it
    exists). Idempotent: a device with a WattCarbon id is only read back, and one whose
    creation may have happened is adopted. Raises SyncRetry on a transient failure."""

    def work(device: Device) -> None:
        client = _client(device.organization_id, device_id=device.pk)
        try:
            if device.wattcarbon_id:
                _confirm_remote(device, client.get_asset)
                return
            meter_ids = [_device_meter_id(meter) for meter in device.meters.select_related("site").order_by("pk")]
            remote_id = str(_create_asset(device, device_payload(device, meter_ids), client))
            Device.objects.filter(pk=device.pk).update(wattcarbon_id=remote_id)
        finally:
            client.log.flush()

    return _run(Device, device_id, work)


def _create_asset(device: Device, payload: dict[str, Any], client: WattCarbonClient) -> Any:
    """POST the asset, its intent saved first. "customId already used" after an earlier
    attempt that may have created it: find that asset and adopt it if it is the one we sent."""
    earlier_attempt = bool(device.wattcarbon_marker)
    client.ensure_token()
    if not earlier_attempt:
        marker = uuid.uuid4().hex
        Device.objects.filter(pk=device.pk).update(wattcarbon_marker=marker)
        device.wattcarbon_marker = marker
    try:
        return client.create_asset(payload)
    except VendorRejected as exc:
        if not (earlier_attempt and client.is_custom_id_taken(exc)):
            raise
        found = client.find_asset_by_custom_id(device.custom_id)
        if found is None:
            raise
        same = found.get("kind") == payload["kind"] and sorted(map(str, found.get("meterIds") or [])) == sorted(
            map(str, payload["meterIds"])
        )
        if not same:
            raise VendorRejected(
                exc.status,
                f"{exc.message} (asset {found.get('id')} has this custom id but another kind or other meters: "
                "it is not ours to adopt)",
                vendor=WATTCARBON,
            ) from exc
        logger.info("Adopted WattCarbon asset %s for device %s after an interrupted creation", found["id"], device.pk)
        return client.id_of(found)


def _device_meter_id(meter: Meter) -> str:
    """An attached meter's WattCarbon id, syncing it first (claimed, logged as the meter's)."""
    if meter.wattcarbon_id and meter.wattcarbon_status == SyncStatus.SYNCED:
        return meter.wattcarbon_id
    try:
        status = meter_sync(meter_id=meter.pk)
    except SyncRetry as exc:
        raise VendorTransient(
            None, f"meter {meter.name}: {exc.message}", retry_after=exc.retry_after, vendor=WATTCARBON
        ) from exc
    if status is None:
        # Another worker holds it: come back when it is done.
        raise VendorTransient(None, f"Meter {meter.name} is being synced; the device will follow.", vendor=WATTCARBON)
    meter.refresh_from_db()
    if status != SyncStatus.SYNCED:
        raise SyncError(f"Meter {meter.name} could not be synced: {meter.wattcarbon_error}")
    return meter.wattcarbon_id


# ----- Asset documents (e.g. demand-response events) -----------------------------------------


def device_document_create(*, device: Device, document_type: str, filename: str, raw: bytes) -> DeviceDocument:
    """Check a document of a synced device and queue its upload to WattCarbon."""
    methodology = get_methodology(device.kind)
    if methodology is None or document_type not in methodology.documents:
        raise ValidationError({"file": f"A {device.kind} device takes no {document_type} document."})
    if not device.wattcarbon_id:
        raise ValidationError({"file": "Sync the device to WattCarbon first: the document belongs to its asset."})
    try:
        content, rows = check_document(document_type, raw)
    except DocumentInvalid as exc:
        raise ValidationError({"file": exc.messages}) from None
    document = DeviceDocument.objects.create(
        organization_id=device.organization_id,
        device=device,
        document_type=document_type,
        filename=filename[:255] or f"{document_type}.csv",
        content=content,
        rows=rows,
    )
    # Who sent which document of the device to WattCarbon.
    audit_record(
        organization_id=device.organization_id, action="upload", object_type="device", object_id=device.pk,
        object_label=str(device), changes={document_type: [None, document.filename]},
    )  # fmt: skip
    transaction.on_commit(lambda: tasks.device_document_upload_task.delay(document.pk))
    return document


def device_document_upload(*, document_id: int) -> str | None:
    """Upload one document to its device's asset. Claims the row first (pending → uploading);
    returns the new status, None if it was not claimable. Raises SyncRetry on a transient failure."""
    stale = timezone.now() - STALE_CLAIM
    claimable = Q(status=DocumentStatus.PENDING) | Q(status=DocumentStatus.UPLOADING, claimed_at__lt=stale)
    if not DeviceDocument.objects.filter(claimable, pk=document_id).update(
        status=DocumentStatus.UPLOADING, claimed_at=timezone.now()
    ):
        return None
    document = DeviceDocument.objects.select_related("device").get(pk=document_id)
    mine = DeviceDocument.objects.filter(pk=document_id, status=DocumentStatus.UPLOADING)
    client = _client(document.organization_id, device_id=document.device_id)
    try:
        answer = client.upload_asset_document(
            document.device.wattcarbon_id, document.document_type, document.content.encode(), document.filename
        )
    except VendorRejected as exc:
        mine.update(status=DocumentStatus.FAILED, error=str(exc)[:2000])
        return DocumentStatus.FAILED
    except VendorTransient as exc:  # (VendorUnreachable too: no answer)
        mine.update(status=DocumentStatus.PENDING, error=f"Retrying: {exc}"[:2000])
        raise SyncRetry(str(exc), exc.retry_after) from exc
    finally:
        client.log.flush()
    remote = answer.get("id", "") if isinstance(answer, dict) else ""
    mine.update(status=DocumentStatus.UPLOADED, error="", wattcarbon_id=str(remote)[:64], uploaded_at=timezone.now())
    return DocumentStatus.UPLOADED


def document_mark_failed(*, document_id: int, message: str) -> None:
    DeviceDocument.objects.filter(pk=document_id, status__in=[DocumentStatus.PENDING, DocumentStatus.UPLOADING]).update(
        status=DocumentStatus.FAILED, error=message[:2000]
    )
