"""Reads of uploads and deliveries for the status pages and the dashboard.

Every function here does a fixed number of queries, whatever the number of rows:
lists are paginated or limited, and per-row summaries come from one aggregate
query over the page's ids, never from a query per row.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import Organization
from uploads.models import ACTIVE_DELIVERY_STATUSES, Delivery, DeliveryStatus, Target, Upload, UploadStatus
from vendors.models import HttpExchange

# Query-parameter value -> ordering. The id breaks ties so pages never overlap.
UPLOAD_SORTS: dict[str, tuple[str, ...]] = {
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
    "name": ("original_name", "id"),
    "-name": ("-original_name", "-id"),
    "rows": ("rows_total", "id"),
    "-rows": ("-rows_total", "-id"),
    "status": ("status", "-created_at", "-id"),
    "-status": ("-status", "-created_at", "-id"),
}
DEFAULT_UPLOAD_SORT = "-created"

# The worst status wins when one target has several meters' deliveries.
_SEVERITY = [
    DeliveryStatus.FAILED,
    DeliveryStatus.PARTIALLY_FAILED,
    DeliveryStatus.PUSHING,
    DeliveryStatus.QUEUED,
    DeliveryStatus.CANCELLED,
    DeliveryStatus.DELIVERED,
]
ATTENTION_DELIVERY_STATUSES = (DeliveryStatus.FAILED, DeliveryStatus.PARTIALLY_FAILED)


def uploads_for_org(*, organization: Organization, sort: str = DEFAULT_UPLOAD_SORT) -> QuerySet[Upload]:
    """The organization's uploads, ordered, with what a list row shows joined in
    (uploads.filters.UploadFilter narrows them)."""
    qs = Upload.objects.filter(organization=organization).select_related("uploaded_by", "meter__site")
    return qs.order_by(*UPLOAD_SORTS.get(sort, UPLOAD_SORTS[DEFAULT_UPLOAD_SORT]))


def uploaders_for_org(*, organization: Organization) -> QuerySet:
    """Members of the organization, for the uploaded-by filter."""
    return get_user_model().objects.filter(memberships__organization=organization).order_by("username")


@dataclass
class TargetSummary:
    target: str
    label: str
    status: str
    status_label: str
    deliveries: int
    total: int
    done: int

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.status == "delivered" else 0)


def delivery_summaries(*, upload_ids: list[int]) -> dict[int, list[TargetSummary]]:
    """Per upload, one summary per target (worst status of its meters): one query."""
    rows = (
        Delivery.objects.filter(upload_id__in=upload_ids)
        .values("upload_id", "target", "status")
        .annotate(n=Count("id"), total_rows=Sum("total"), ack=Sum("acknowledged"), rej=Sum("rejected"))
        .order_by()
    )
    grouped: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for row in rows:
        grouped[(row["upload_id"], row["target"])].append(row)
    labels = dict(Target.choices)
    status_labels = dict(DeliveryStatus.choices)
    result: dict[int, list[TargetSummary]] = defaultdict(list)
    for (upload_id, target), group in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        worst = min((r["status"] for r in group), key=lambda s: _SEVERITY.index(DeliveryStatus(s)))
        result[upload_id].append(
            TargetSummary(
                target=target,
                label=labels.get(target, target),
                status=worst,
                status_label=status_labels.get(worst, worst),
                deliveries=sum(r["n"] for r in group),
                total=sum(r["total_rows"] or 0 for r in group),
                done=sum((r["ack"] or 0) + (r["rej"] or 0) for r in group),
            )
        )
    return dict(result)


def upload_status_counts(*, organization: Organization, since: datetime) -> list[tuple[str, str, int]]:
    """(status, label, count) for every upload status, in the choices' order, since a moment.

    "Failed" counts as the uploads list's filter does: uploads that failed, and uploads one
    of whose pushes failed (those are counted under their own status too)."""
    failed_push = Delivery.objects.filter(upload=OuterRef("pk"), status__in=ATTENTION_DELIVERY_STATUSES)
    counts: dict[str, int] = defaultdict(int)
    for status, push_failed, n in (
        Upload.objects.filter(organization=organization, created_at__gte=since)
        .annotate(push_failed=Exists(failed_push))
        .values_list("status", "push_failed")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[status] += n
        if push_failed and status != UploadStatus.FAILED:
            counts[UploadStatus.FAILED] += n
    # Short labels ("Validated", not "Validated: awaiting confirmation") fit a tile.
    short: dict[str, str] = {UploadStatus.NEEDS_MAPPING: "Needs mapping", UploadStatus.FAILED: "Failed or push failed"}
    return [
        (value, short.get(value, label.split(":")[0]), counts.get(value, 0)) for value, label in UploadStatus.choices
    ]


def upload_count(*, organization: Organization, since: datetime) -> int:
    return Upload.objects.filter(organization=organization, created_at__gte=since).count()


def deliveries_for_upload(*, upload: Upload) -> QuerySet[Delivery]:
    """An upload's deliveries with their meter and site, and how many HTTP exchanges each logged."""
    return (
        Delivery.objects.filter(upload=upload)
        .select_related("meter__site")
        .annotate(exchange_count=Count("exchanges"))
        .order_by("target", "meter__site__name", "meter__name", "id")
    )


def active_deliveries(*, organization: Organization, limit: int = 50) -> list[Delivery]:
    """Deliveries queued or pushing, oldest first, with their upload and meter."""
    return list(
        Delivery.objects.filter(organization=organization, status__in=ACTIVE_DELIVERY_STATUSES)
        .select_related("upload", "meter__site")
        .order_by("created_at", "id")[:limit]
    )


def attention_deliveries(*, organization: Organization, limit: int = 20) -> list[Delivery]:
    """Failed and partially failed deliveries, most recent first."""
    return list(
        Delivery.objects.filter(organization=organization, status__in=ATTENTION_DELIVERY_STATUSES)
        .select_related("upload", "meter__site")
        .order_by("-updated_at", "-id")[:limit]
    )


def attention_count(*, organization: Organization) -> int:
    return Delivery.objects.filter(organization=organization, status__in=ATTENTION_DELIVERY_STATUSES).count()


# The exchange log's status filter; errors come first, they are what people look for.
EXCHANGE_FILTERS = (("errors", "Errors"), ("ok", "Successful"), ("", "All"))
_EXCHANGE_OK = Q(status_code__gte=200, status_code__lt=300)


def exchanges_for_delivery(*, delivery: Delivery, status: str = "") -> QuerySet[HttpExchange]:
    """The HTTP exchanges a delivery logged, newest first (served by its own index);
    `status` "errors" keeps the failed ones (no answer, or not 2xx), "ok" the others."""
    qs = HttpExchange.objects.filter(delivery=delivery)
    if status == "errors":
        qs = qs.exclude(_EXCHANGE_OK)
    elif status == "ok":
        qs = qs.filter(_EXCHANGE_OK)
    return qs.order_by("-created_at", "-id")


@dataclass(frozen=True)
class Progress:
    """What a progress bar shows of a delivery: rate from its start, ETA from the rate."""

    percent: int
    done: int
    total: int
    rate: float | None  # rows per second
    eta_seconds: int | None


def delivery_progress(*, delivery: Delivery, now: datetime | None = None) -> Progress:
    now = now or timezone.now()
    done = delivery.done
    rate = None
    eta = None
    active = delivery.status in ACTIVE_DELIVERY_STATUSES
    # A finished push's rate is over its own run, not up to now.
    end = now if active or not delivery.finished_at else delivery.finished_at
    if delivery.started_at and delivery.acknowledged:
        elapsed = (end - delivery.started_at).total_seconds()
        if elapsed > 0:
            rate = delivery.acknowledged / elapsed
            if active and rate > 0:
                eta = int(delivery.remaining / rate)
    return Progress(percent=delivery.percent, done=done, total=delivery.total, rate=rate, eta_seconds=eta)


def with_progress(deliveries: list[Delivery], *, now: datetime | None = None) -> list[Delivery]:
    """Attach `.progress` to each delivery, for templates."""
    now = now or timezone.now()
    for d in deliveries:
        d.progress = delivery_progress(delivery=d, now=now)  # type: ignore[attr-defined]
    return deliveries
