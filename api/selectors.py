"""Reads for the API: the caller's organization's rows only."""

from django.db.models import Prefetch, QuerySet

from accounts.models import Organization
from sites.models import Device, Meter, MeterFeed, Site
from uploads.models import ACTIVE_DELIVERY_STATUSES, Delivery, DeliveryStatus, Upload, UploadStatus

# The upload waits for nobody but a worker in these states.
UPLOAD_BUSY = (UploadStatus.RECEIVED, UploadStatus.PARSING, UploadStatus.STORING)


def sites_for(*, organization: Organization) -> QuerySet[Site]:
    return Site.objects.filter(organization=organization).order_by("name", "id")


def meters_for(*, organization: Organization) -> QuerySet[Meter]:
    return Meter.objects.filter(organization=organization).select_related("site").order_by("site__name", "name", "id")


def devices_for(*, organization: Organization) -> QuerySet[Device]:
    return (
        Device.objects.filter(organization=organization)
        .select_related("site")
        .prefetch_related("meters")
        .order_by("site__name", "name", "id")
    )


def uploads_for(*, organization: Organization) -> QuerySet[Upload]:
    deliveries = Prefetch("deliveries", queryset=Delivery.objects.order_by("id"))
    return Upload.objects.filter(organization=organization).prefetch_related(deliveries).order_by("-created_at", "-id")


def deliveries_for(*, organization: Organization, upload_id: int | None = None, status: str = "") -> QuerySet[Delivery]:
    qs = Delivery.objects.filter(organization=organization).order_by("-created_at", "-id")
    if upload_id is not None:
        qs = qs.filter(upload_id=upload_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def feeds_for(*, organization: Organization) -> QuerySet[MeterFeed]:
    from sites.feeds import feeds_for_org

    return feeds_for_org(organization=organization)


def _deliveries(upload: Upload) -> list[Delivery]:
    return list(upload.deliveries.all())


def upload_finished(*, upload: Upload) -> bool:
    """The upload has ended (stored and every delivery ended, or it stopped short of storing)."""
    if upload.status in UPLOAD_BUSY:
        return False
    if upload.status == UploadStatus.STORED:
        return all(d.status not in ACTIVE_DELIVERY_STATUSES for d in _deliveries(upload))
    # Validated / needs mapping: waiting for a person, nothing runs on its own.
    return True


def upload_delivered(*, upload: Upload) -> bool:
    """Everything arrived: stored, with deliveries, every one delivered."""
    deliveries = _deliveries(upload)
    return (
        upload.status == UploadStatus.STORED
        and bool(deliveries)
        and all(d.status == DeliveryStatus.DELIVERED for d in deliveries)
    )
