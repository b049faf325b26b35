"""Deliveries: the push of stored rows to the vendors.

Life of a delivery: created queued by `deliveries_create_for_upload`, claimed by one
worker (`delivery_claim`: the stream's oldest queued delivery -> pushing, one per stream
by a database constraint), pushed by the
runner of its target (uploads.services.push_wattics / push_wattcarbon), and ended
delivered, partially_failed or failed. People may retry, cancel or re-push it; each
action checks the current status first, in the same UPDATE that changes it.
"""

import logging
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.services import audited
from uploads.models import ACTIVE_DELIVERY_STATUSES, Bill, Delivery, DeliveryStatus, Reading, Target, Upload

# The module, not its name: push_run imports the tasks, which import this module, so a
# process that imports push_run first finds it half-made here.
from uploads.services import push_run

logger = logging.getLogger(__name__)

READING_TARGETS = (Target.WATTICS, Target.WATTCARBON_INTERVALS)


class DeliveryActionError(Exception):
    """A person asked for something the delivery's current status does not allow."""


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _missing_remote_id(meter, target: str) -> str:
    """Why this meter cannot be pushed to the target, or ''."""
    if target == Target.WATTICS and not meter.wattics_stream_id:
        return f"Meter {meter} has no Wattics data stream id: set it on the meter page, then retry."
    if target in (Target.WATTCARBON_INTERVALS, Target.WATTCARBON_BILLS) and not meter.wattcarbon_id:
        return f"Meter {meter} has no WattCarbon meter id: sync the meter to WattCarbon on its page, then retry."
    return ""


def _spans(upload: Upload, target: str) -> dict[int, tuple[datetime, datetime]]:
    """Per meter, the first and last instant of the upload's rows for this target."""
    if target == Target.WATTCARBON_BILLS:
        # A bill delivery's span ends at the last bill's end date (a local date, kept as midnight UTC).
        bills = Bill.objects.filter(upload=upload).values("meter_id").annotate(first=Min("start_date"),
                                                                               last=Max("end_date"))  # fmt: skip
        return {r["meter_id"]: (_day_start(r["first"]), _day_start(r["last"])) for r in bills}
    rows = Reading.objects.filter(upload=upload).values("meter_id").annotate(first=Min("ts"), last=Max("ts"))
    return {r["meter_id"]: (r["first"], r["last"]) for r in rows}


def span_total(*, meter_id: int, target: str, first_ts: datetime, last_ts: datetime) -> int:
    """How many of the meter's stored rows lie in the span (a re-upload may have added some)."""
    if target == Target.WATTCARBON_BILLS:
        return Bill.objects.filter(meter_id=meter_id, start_date__gte=first_ts.date(),
                                   end_date__lte=last_ts.date()).count()  # fmt: skip
    return Reading.objects.filter(meter_id=meter_id, ts__gte=first_ts, ts__lte=last_ts).count()


def deliveries_create_for_upload(*, upload: Upload) -> list[Delivery]:
    """Create one delivery per (meter, target) of a stored upload and enqueue their pushes
    on commit. Idempotent: an existing delivery is returned, not duplicated.

    A delivery covers the span of the upload's rows for its meter (first to last instant).
    A meter without the vendor's id for it gets a delivery failed at once, with the fix."""
    from sites.models import Meter

    deliveries: list[Delivery] = []
    for target in upload.targets:
        spans = _spans(upload, target)
        meters = Meter.objects.select_related("site").in_bulk(list(spans))
        for meter_id, (first_ts, last_ts) in sorted(spans.items()):
            meter = meters[meter_id]
            problem = _missing_remote_id(meter, target)
            defaults = {
                "organization_id": upload.organization_id,
                "total": span_total(meter_id=meter_id, target=target, first_ts=first_ts, last_ts=last_ts),
                "first_ts": first_ts,
                "last_ts": last_ts,
                "status": DeliveryStatus.FAILED if problem else DeliveryStatus.QUEUED,
                "last_error": problem,
                "finished_at": timezone.now() if problem else None,
            }
            try:
                with transaction.atomic():
                    delivery, created = Delivery.objects.get_or_create(
                        upload=upload, meter=meter, target=target, defaults=defaults
                    )
            except IntegrityError:  # created by a concurrent call meanwhile
                delivery, created = Delivery.objects.get(upload=upload, meter=meter, target=target), False
            if created and not problem:
                transaction.on_commit(lambda pk=delivery.pk: push_run.enqueue(pk))
            deliveries.append(delivery)
    return deliveries


# ----- the worker side ------------------------------------------------------------------------


# A stream's unfinished deliveries go in the order of their data, then of their making: files
# of one meter confirmed in any order (a batch, a backlog) still reach Wattics oldest first.
STREAM_ORDER = (F("first_ts").asc(nulls_last=True), "pk")


def delivery_claim(*, delivery_id: int) -> Delivery | None:
    """Take, for this worker, the oldest unfinished delivery of this delivery's stream (its
    meter and target; oldest by its data, then by its making): Wattics discards packets
    older than the stream's latest, so a later upload pushed first would make an earlier
    one's packets arrive out of order.

    It is claimed if it is queued and due, or pushing with a stale heartbeat (its worker
    died). The database allows one pushing delivery per stream (constraint
    delivery_one_push_per_stream), so while another delivery of the stream is pushing the
    claim fails, and only one worker's conditional UPDATE ever matches. None: nothing to
    do now (the stream is busy, or its oldest delivery is waiting for its retry)."""
    stream = Delivery.objects.filter(pk=delivery_id).values("meter_id", "target").first()
    if stream is None:
        return None
    oldest = (
        Delivery.objects.filter(**stream, status__in=ACTIVE_DELIVERY_STATUSES)
        .order_by(*STREAM_ORDER)
        .values_list("pk", flat=True)
        .first()
    )
    if oldest is None:
        return None
    now = timezone.now()
    stale = now - timedelta(seconds=settings.DELIVERY_STALE_SECONDS)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    claimable = (Q(status=DeliveryStatus.QUEUED) & due) | Q(status=DeliveryStatus.PUSHING, heartbeat_at__lt=stale)
    try:
        with transaction.atomic():
            claimed = Delivery.objects.filter(claimable, pk=oldest).update(
                status=DeliveryStatus.PUSHING,
                attempts=F("attempts") + 1,
                heartbeat_at=now,
                updated_at=now,
                next_attempt_at=None,
                finished_at=None,
                started_at=Coalesce("started_at", now),
            )
    except IntegrityError:
        return None  # another delivery of the stream is pushing (a re-pushed older one waits for it)
    if not claimed:
        return None
    return Delivery.objects.select_related("meter__site", "meter__organization__credentials", "organization").get(
        pk=oldest
    )


def _enqueue_next_in_stream(delivery: Delivery) -> None:
    """After a run: the stream's next delivery goes now if it is due (its own message may
    have come while this one pushed, and claimed nothing)."""
    following = (
        Delivery.objects.filter(meter_id=delivery.meter_id, target=delivery.target, status__in=ACTIVE_DELIVERY_STATUSES)
        .order_by(*STREAM_ORDER)
        .values_list("pk", "status", "next_attempt_at")
        .first()
    )
    if following is None:
        return
    pk, status, due_at = following
    if status == DeliveryStatus.QUEUED and (due_at is None or due_at <= timezone.now()):
        push_run.enqueue(pk)


def delivery_push(*, delivery_id: int) -> None:
    """Claim the stream's oldest delivery and push it as far as it goes in this run. Safe to call twice."""
    from uploads.services.push_wattcarbon import push_wattcarbon_bills, push_wattcarbon_intervals
    from uploads.services.push_wattics import push_wattics

    runners = {
        Target.WATTICS: push_wattics,
        Target.WATTCARBON_INTERVALS: push_wattcarbon_intervals,
        Target.WATTCARBON_BILLS: push_wattcarbon_bills,
    }
    delivery = delivery_claim(delivery_id=delivery_id)
    if delivery is None:
        return
    ended = runners[Target(delivery.target)](delivery)
    logger.debug("delivery %s: run %s", delivery.pk, ended.value)
    _enqueue_next_in_stream(delivery)


def deliveries_requeue_stale(*, stale_seconds: float | None = None) -> list[int]:
    """Deliveries that lost their message or their worker, enqueued again.

    - pushing with a heartbeat older than `stale_seconds`: the worker died. They go back to
      queued (the dead run is fenced off: its claim no longer matches);
    - queued, due, and untouched for `stale_seconds`: the message was lost (broker restart,
      filesystem broker, a publish that failed). `updated_at` is touched so one lost message
      is replaced once per period, not at every sweep.
    A duplicate message is harmless: only one claim succeeds."""
    stale_seconds = settings.DELIVERY_STALE_SECONDS if stale_seconds is None else stale_seconds
    now = timezone.now()
    stale = now - timedelta(seconds=stale_seconds)
    dead = Delivery.objects.filter(status=DeliveryStatus.PUSHING, heartbeat_at__lt=stale)
    dead_ids = list(dead.values_list("pk", flat=True))
    if dead_ids:
        Delivery.objects.filter(pk__in=dead_ids, status=DeliveryStatus.PUSHING, heartbeat_at__lt=stale).update(
            status=DeliveryStatus.QUEUED, heartbeat_at=None, next_attempt_at=None, updated_at=now
        )
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=stale)
    lost = Delivery.objects.filter(due, status=DeliveryStatus.QUEUED, updated_at__lt=stale)
    lost_ids = list(lost.values_list("pk", flat=True))
    if lost_ids:
        Delivery.objects.filter(pk__in=lost_ids).update(updated_at=now)
    ids = sorted(set(dead_ids) | set(lost_ids))
    for pk in ids:
        push_run.enqueue(pk)
    if ids:
        logger.warning("re-enqueued %d stale deliveries: %s", len(ids), ids[:50])
    return ids


# ----- people's actions ---------------------------------------------------------------------


def _transition(delivery: Delivery, *, allowed: tuple[str, ...], verb: str, **changes) -> Delivery:
    now = timezone.now()
    changed = Delivery.objects.filter(pk=delivery.pk, status__in=allowed).update(updated_at=now, **changes)
    delivery.refresh_from_db()
    if not changed:
        raise DeliveryActionError(f"This delivery is {delivery.get_status_display().lower()}: it cannot be {verb} now.")
    return delivery


@audited("retry", "delivery", target="delivery", fields=("status",))
def delivery_retry(*, delivery: Delivery, user=None) -> Delivery:
    """A failed or partially failed delivery goes on from where it stopped. Rows the vendor
    rejected stay rejected (re-push sends everything again). The last message stays, whole,
    until the run has something new to say; the retry deadline counts afresh."""
    delivery = _transition(
        delivery,
        allowed=(DeliveryStatus.FAILED, DeliveryStatus.PARTIALLY_FAILED),
        verb="retried",
        status=DeliveryStatus.QUEUED, next_attempt_at=None, started_at=None, finished_at=None, heartbeat_at=None,
        progress_at=None,
    )  # fmt: skip
    logger.info("delivery %s retried by %s", delivery.pk, user)
    transaction.on_commit(lambda: push_run.enqueue(delivery.pk))
    return delivery


@audited("cancel", "delivery", target="delivery", fields=("status",))
def delivery_cancel(*, delivery: Delivery, user=None) -> Delivery:
    """Stop a queued or running delivery; a running push stops at its next checkpoint."""
    delivery = _transition(
        delivery,
        allowed=(DeliveryStatus.QUEUED, DeliveryStatus.PUSHING),
        verb="cancelled",
        status=DeliveryStatus.CANCELLED, finished_at=timezone.now(), next_attempt_at=None,
        last_error=f"Cancelled by {user}." if user else "Cancelled.",
    )  # fmt: skip
    logger.info("delivery %s cancelled by %s", delivery.pk, user)
    return delivery


@audited("repush", "delivery", target="delivery", fields=("status",))
def delivery_repush(*, delivery: Delivery, user=None) -> Delivery:
    """Push the span again from the start: counts reset. For Wattics the run starts after
    the latest packet the vendor has (it discards older ones); rows this delivery delivered
    before and that are unchanged count as already at vendor. WattCarbon gets every chunk
    again (it replaces intervals with the same start)."""
    total = span_total(meter_id=delivery.meter_id, target=delivery.target, first_ts=delivery.first_ts,
                       last_ts=delivery.last_ts) if delivery.first_ts else delivery.total  # fmt: skip
    delivery = _transition(
        delivery,
        allowed=(DeliveryStatus.DELIVERED, DeliveryStatus.PARTIALLY_FAILED, DeliveryStatus.FAILED,
                 DeliveryStatus.CANCELLED),
        verb="re-pushed",
        status=DeliveryStatus.QUEUED, total=total, sent=0, acknowledged=0, rejected=0, already_at_vendor=0,
        not_sendable=0, note="", cursor_ts=None, last_error="", next_attempt_at=None, started_at=None,
        finished_at=None, heartbeat_at=None, progress_at=None,
    )  # fmt: skip
    logger.info("delivery %s re-pushed by %s", delivery.pk, user)
    transaction.on_commit(lambda: push_run.enqueue(delivery.pk))
    return delivery
