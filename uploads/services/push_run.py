"""One worker's turn at a delivery: counters, checkpoints, backoff, and the way out.

A run starts after the delivery was claimed (status pushing, `attempts` bumped). The
claim's attempt number fences the run: every write filters on status=pushing and
attempts=<ours>, so a run that was cancelled by a person or taken over by another
worker (after its heartbeat went stale) finds 0 rows at its next checkpoint and stops.

Progress is written every CHECKPOINT_PACKETS items or CHECKPOINT_SECONDS, never per
packet: a push is bounded by the vendor's speed, not by our database.

Counting is truthful: a row is acknowledged only when the vendor acknowledged it to us (or
the vendor's own latest packet is that row); rows the vendor already held are "already at
vendor"; rows it can no longer take are "not sendable", with the reason in the note.
A run never assumes that an earlier run sent something because it was an earlier run.
"""

import functools
import hashlib
import json
import logging
import time
from datetime import datetime, timedelta
from enum import Enum
from typing import cast

from django.conf import settings
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from core import tasks as common
from core.db import connection_give_back
from uploads.models import Bill, Delivery, DeliveryStatus, Reading, Target
from vendors.http import ExchangeLog

logger = logging.getLogger(__name__)

CHECKPOINT_PACKETS = 200
CHECKPOINT_SECONDS = 1.0
# Waits up to this long happen inside the task; longer ones give the worker back and
# come again as a new message with a countdown.
IN_TASK_WAIT_MAX = 30.0
# A run gives its worker back after this long (and is re-enqueued at once), so one
# huge push neither hits the task's time limit nor holds a worker for hours.
RUN_SLICE_SECONDS = 600.0


def enqueue(delivery_id: int, *, countdown: float | None = None) -> None:
    """The one way a push is put on the queue (deliveries, runs, people's actions)."""
    # Imported here: the tasks import the services (uploads.tasks -> deliveries -> this module),
    # so importing this module first (push_wattics, push_wattcarbon) must not need the tasks yet.
    from uploads import tasks

    tasks.delivery_push_task.apply_async((delivery_id,), countdown=countdown or None)


def backoff_seconds(failures: int) -> float:
    """The shared backoff (core.tasks) with the delivery's base and cap, after `failures` tries."""
    return common.backoff_seconds(
        failures - 1, base=settings.DELIVERY_RETRY_BASE_SECONDS, cap=settings.DELIVERY_RETRY_MAX_SECONDS
    )


# Consecutive failures of one item for which the vendor's Retry-After alone decides the wait;
# past them our own backoff applies too, so a vendor saying "0" forever is not hammered.
RETRY_AFTER_TRUSTED_FAILURES = 3


def retry_delay(failures: int, retry_after: float | None = None) -> float:
    """How long to wait before trying the same item again. The vendor's Retry-After is
    honoured (capped by DELIVERY_RETRY_AFTER_MAX_SECONDS): in a storm of 503s that say
    "retry at once" the delivery slows down instead of sleeping our full backoff."""
    if retry_after is None:
        return backoff_seconds(failures)
    honoured = min(max(retry_after, 0.0), settings.DELIVERY_RETRY_AFTER_MAX_SECONDS)
    if failures <= RETRY_AFTER_TRUSTED_FAILURES:
        return honoured
    return max(honoured, backoff_seconds(failures - RETRY_AFTER_TRUSTED_FAILURES))


def rows_digest(*, meter_id: int, target: str, first_ts: datetime, last_ts: datetime) -> str:
    """sha256 of a meter's rows in a span as they are stored now: an earlier delivery's
    digest equal to today's means the vendor holds exactly these rows."""
    h = hashlib.sha256()
    if target == Target.WATTCARBON_BILLS:
        bills = Bill.objects.filter(meter_id=meter_id, start_date__gte=first_ts.date(), start_date__lte=last_ts.date())
        for start, end, kwh in bills.order_by("start_date").values_list("start_date", "end_date", "energy_kwh"):
            h.update(f"{start}|{end}|{kwh!r}\n".encode())
        return h.hexdigest()
    readings = Reading.objects.filter(meter_id=meter_id, ts__gte=first_ts, ts__lte=last_ts).order_by("ts")
    for ts, value, extra in readings.values_list("ts", "value", "extra").iterator(chunk_size=5000):
        h.update(f"{ts.isoformat()}|{value!r}|{json.dumps(extra, sort_keys=True)}\n".encode())
    return h.hexdigest()


def span_rows(*, meter_id: int, target: str, first_ts: datetime, last_ts: datetime) -> int:
    if target == Target.WATTCARBON_BILLS:
        return Bill.objects.filter(meter_id=meter_id, start_date__gte=first_ts.date(),
                                   start_date__lte=last_ts.date()).count()  # fmt: skip
    return Reading.objects.filter(meter_id=meter_id, ts__gte=first_ts, ts__lte=last_ts).count()


_PROGRESS_FIELDS = ("sent", "acknowledged", "rejected", "already_at_vendor", "not_sendable", "note", "progress_at",
                    "cursor_ts", "last_error", "heartbeat_at", "updated_at")  # fmt: skip


def _delivery_field(name: str) -> models.Field:
    return cast(models.Field, Delivery._meta.get_field(name))


@functools.cache
def _progress_sql() -> str:
    """UPDATE of a run's progress, fenced like `PushRun._mine()` (names from the model)."""
    name = connection.ops.quote_name
    sets = ", ".join(f"{name(_delivery_field(f).column)} = %s" for f in _PROGRESS_FIELDS)
    fence = " AND ".join(f"{name(_delivery_field(f).column)} = %s" for f in ("id", "status", "attempts"))
    return f"UPDATE {name(Delivery._meta.db_table)} SET {sets} WHERE {fence}"  # noqa: S608 - names from the model


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


class RunEnd(Enum):
    """How a run ended. Every method that can end it returns one (None: go on), and its
    caller returns it in turn, so no line runs after the run is over."""

    ENDED = "ended"  # delivered, partially failed or failed: the status is written
    HANDED_BACK = "handed back"  # queued again, a message due later
    CLAIM_LOST = "claim lost"  # cancelled by a person, or taken over after a stale heartbeat


class PushRun:
    def __init__(self, delivery: Delivery, *, vendor: str):
        self.delivery = delivery
        self.attempt = delivery.attempts
        self.sent = delivery.sent
        self.acknowledged = delivery.acknowledged
        self.rejected = delivery.rejected
        self.already_at_vendor = delivery.already_at_vendor
        self.not_sendable = delivery.not_sendable
        self.note = delivery.note
        self.not_sendable_reason = ""
        self.cursor_ts: datetime | None = delivery.cursor_ts
        self.last_error = delivery.last_error
        # The give-up deadline counts from the last progress, not from the first start.
        self.progress_at = delivery.progress_at or timezone.now()
        self.log = ExchangeLog(organization_id=delivery.organization_id, vendor=vendor,
                               delivery_id=delivery.pk, meter_id=delivery.meter_id)  # fmt: skip
        self.began = time.monotonic()
        self._since_checkpoint = 0
        self._checkpoint_at = time.monotonic()

    # ----- progress ------------------------------------------------------------------------
    def _mine(self):
        return Delivery.objects.filter(pk=self.delivery.pk, status=DeliveryStatus.PUSHING, attempts=self.attempt)

    def _counts(self) -> dict:
        return {"sent": self.sent, "acknowledged": self.acknowledged, "rejected": self.rejected,
                "already_at_vendor": self.already_at_vendor, "not_sendable": self.not_sendable, "note": self.note,
                "progress_at": self.progress_at, "cursor_ts": self.cursor_ts,
                "last_error": self.last_error[:4000]}  # fmt: skip

    def _save_progress(self) -> bool:
        """The checkpoint's write: `_mine().update(heartbeat_at=now, updated_at=now,
        **_counts())` as one plain statement. Hundreds of runs checkpoint every second in
        one worker, and building the ORM query each time cost four times the statement."""
        now = timezone.now()
        values = {**self._counts(), "heartbeat_at": now, "updated_at": now}
        params = [_delivery_field(name).get_db_prep_value(values[name], connection) for name in _PROGRESS_FIELDS]
        params += [self.delivery.pk, DeliveryStatus.PUSHING.value, self.attempt]
        with connection.cursor() as cursor:
            cursor.execute(_progress_sql(), params)
            return cursor.rowcount > 0

    def acknowledge(self, n: int = 1) -> None:
        """n rows acknowledged by the vendor: progress."""
        self.acknowledged += n
        self.progress_at = timezone.now()

    def mark_not_sendable(self, n: int, reason: str) -> None:
        """n rows the vendor can no longer take: not sent, and the reason in words."""
        self.not_sendable += n
        self.not_sendable_reason = reason
        self.say(reason)

    def say(self, line: str) -> None:
        """Add a line to the delivery's note (once)."""
        if line and line not in self.note.split("\n"):
            self.note = f"{self.note}\n{line}" if self.note else line

    def checkpoint(self) -> RunEnd | None:
        """Save progress, flush the exchange log. CLAIM_LOST if the run lost its claim;
        HANDED_BACK when its slice of the worker's time is used up."""
        self.log.flush()
        if not self._save_progress():
            logger.info("delivery %s: claim lost (cancelled or taken over); stopping", self.delivery.pk)
            return RunEnd.CLAIM_LOST
        self._since_checkpoint = 0
        self._checkpoint_at = time.monotonic()
        # Until the next checkpoint the run talks to the vendor only: its connection serves
        # the other threads meanwhile (with a pool; see core.db).
        connection_give_back()
        if time.monotonic() - self.began > RUN_SLICE_SECONDS:
            return self.hand_back(0, "")
        return None

    def checkpoint_due(self) -> float:
        """When (time.monotonic()) the next checkpoint is due by time."""
        return self._checkpoint_at + CHECKPOINT_SECONDS

    def tick(self, n: int = 1) -> RunEnd | None:
        """Count n items done; checkpoint when due."""
        self._since_checkpoint += n
        if self._since_checkpoint >= CHECKPOINT_PACKETS or time.monotonic() - self._checkpoint_at >= CHECKPOINT_SECONDS:
            return self.checkpoint()
        return None

    # ----- transient failures --------------------------------------------------------------
    def wait_after_failure(self, failures: int, message: str, retry_after: float | None = None) -> RunEnd | None:
        """Back off before trying the same item again: sleep here for a short wait, hand
        the delivery back with a countdown for a long one, fail it when nothing has
        progressed for DELIVERY_RETRY_DEADLINE_SECONDS (a slow storm is not a failure)."""
        self.last_error = message
        deadline = settings.DELIVERY_RETRY_DEADLINE_SECONDS
        if timezone.now() - self.progress_at > timedelta(seconds=deadline):
            return self.fail(
                f"Gave up after {_duration(deadline)} without progress: {message}. Retry it once the vendor is back."
            )
        delay = retry_delay(failures, retry_after)
        if delay > IN_TASK_WAIT_MAX:
            return self.hand_back(delay, message)
        if ended := self.checkpoint():
            return ended
        time.sleep(delay)
        return None

    def hand_back(self, delay: float, message: str) -> RunEnd:
        """Back to queued, due in `delay` seconds, and a message to come back then."""
        self.log.flush()
        now = timezone.now()
        due = now + timedelta(seconds=delay)
        if self._mine().update(status=DeliveryStatus.QUEUED, next_attempt_at=due, heartbeat_at=None, updated_at=now,
                               **self._counts()):  # fmt: skip
            enqueue(self.delivery.pk, countdown=delay)
        return RunEnd.HANDED_BACK

    # ----- the end -------------------------------------------------------------------------
    def held_spans(self, lo: datetime | None, hi: datetime, *, own: bool) -> list[tuple[datetime, datetime]]:
        """Spans (first, last) of this meter's deliveries to the same target that were
        delivered and whose rows are still identical, overlapping (lo, hi]: the vendor holds
        those rows as they are. `own`: this delivery's own digest counts too (it was
        delivered before being re-pushed)."""
        d = self.delivery
        delivered = Q(status=DeliveryStatus.DELIVERED) | Q(pk=d.pk) if own else Q(status=DeliveryStatus.DELIVERED)
        earlier = Delivery.objects.filter(delivered, meter_id=d.meter_id, target=d.target,
                                          first_ts__lte=hi).exclude(rows_digest="")  # fmt: skip
        if not own:
            earlier = earlier.exclude(pk=d.pk)
        if lo is not None:
            earlier = earlier.filter(last_ts__gt=lo)
        spans = []
        for first, last, digest in earlier.values_list("first_ts", "last_ts", "rows_digest"):
            if rows_digest(meter_id=d.meter_id, target=d.target, first_ts=first, last_ts=last) == digest:
                spans.append((first, last))
        return spans

    def _end(self, status: str) -> RunEnd:
        self.log.flush()
        now = timezone.now()
        extra = {}
        if status == DeliveryStatus.DELIVERED and self.delivery.first_ts:
            d = self.delivery
            extra["rows_digest"] = rows_digest(meter_id=d.meter_id, target=d.target, first_ts=d.first_ts,
                                               last_ts=d.last_ts)  # fmt: skip
        self._mine().update(status=status, finished_at=now, heartbeat_at=now, next_attempt_at=None, updated_at=now,
                            **self._counts(), **extra)  # fmt: skip
        return RunEnd.ENDED

    def fail(self, message: str) -> RunEnd:
        self.last_error = message
        return self._end(DeliveryStatus.FAILED)

    def finish(self) -> RunEnd:
        """All items handled. Delivered when the vendor holds every row (acknowledged now or
        already there: "up to date" when nothing needed sending); partially failed when some
        rows were rejected or are not sendable; failed when none reached the vendor."""
        if not self.rejected and not self.not_sendable:
            self.last_error = ""
            if self.already_at_vendor and not self.acknowledged:
                n = self.already_at_vendor
                self.say(f"Up to date: all {n:,} rows were already at the vendor; nothing was sent.")
            return self._end(DeliveryStatus.DELIVERED)
        if not self.rejected:
            self.last_error = self.not_sendable_reason or f"{self.not_sendable:,} rows not sendable: see the note."
        if not self.acknowledged and not self.already_at_vendor:
            if self.rejected and not self.not_sendable:
                self.last_error = f"All {self.rejected:,} rows were rejected. Last: {self.last_error}"
            return self._end(DeliveryStatus.FAILED)
        return self._end(DeliveryStatus.PARTIALLY_FAILED)
