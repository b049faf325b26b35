"""One worker's turn at a delivery: counters, checkpoints, backoff, and the way out.

A run starts after the delivery was claimed (status pushing, `attempts` bumped). The
claim's attempt number fences the run: every write filters on status=pushing and
attempts=<ours>, so a run that was cancelled by a person or taken over by another
worker (after its heartbeat went stale) finds 0 rows at its next checkpoint and stops.

Progress is written every CHECKPOINT_PACKETS items or CHECKPOINT_SECONDS, never per
packet: a push is bounded by the vendor's speed, not by our database.
"""

import logging
import random
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from uploads.locks import StreamLock
from uploads.models import Delivery, DeliveryStatus
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
    from uploads.tasks import push_delivery

    if countdown:
        push_delivery.apply_async((delivery_id,), countdown=countdown)
    else:
        push_delivery.delay(delivery_id)


def backoff_seconds(failures: int) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, times a random 0.5–1."""
    base = settings.DELIVERY_RETRY_BASE_SECONDS
    delay = min(settings.DELIVERY_RETRY_MAX_SECONDS, base * 2 ** min(failures - 1, 30))
    return delay * random.uniform(0.5, 1.0)


class Stop(Exception):
    """The run is over (finished, failed, cancelled, handed back): unwind to the task."""


class PushRun:
    def __init__(self, delivery: Delivery, lock: StreamLock, *, vendor: str):
        self.delivery = delivery
        self.lock = lock
        self.attempt = delivery.attempts
        # The delivery was taken up before: what the vendor already has was sent by us.
        self.resumed = delivery.attempts > 1
        self.sent = delivery.sent
        self.acknowledged = delivery.acknowledged
        self.rejected = delivery.rejected
        self.cursor_ts: datetime | None = delivery.cursor_ts
        self.last_error = delivery.last_error
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
                "cursor_ts": self.cursor_ts, "last_error": self.last_error[:2000]}  # fmt: skip

    def checkpoint(self) -> None:
        """Save progress, flush the exchange log, refresh the lock; Stop if the run lost its claim."""
        self.log.flush()
        now = timezone.now()
        if not self._mine().update(heartbeat_at=now, updated_at=now, **self._counts()):
            logger.info("delivery %s: claim lost (cancelled or taken over); stopping", self.delivery.pk)
            raise Stop
        self.lock.refresh()
        self._since_checkpoint = 0
        self._checkpoint_at = time.monotonic()
        if time.monotonic() - self.began > RUN_SLICE_SECONDS:
            self.hand_back(0, "")

    def tick(self, n: int = 1) -> None:
        """Count n items done; checkpoint when due."""
        self._since_checkpoint += n
        if self._since_checkpoint >= CHECKPOINT_PACKETS or time.monotonic() - self._checkpoint_at >= CHECKPOINT_SECONDS:
            self.checkpoint()

    # ----- transient failures --------------------------------------------------------------
    def wait_after_failure(self, failures: int, message: str) -> None:
        """Back off before trying the same item again: sleep here for a short wait, hand
        the delivery back with a countdown for a long one, fail it past the deadline."""
        self.last_error = message
        started = self.delivery.started_at or timezone.now()
        if timezone.now() - started > timedelta(seconds=settings.DELIVERY_RETRY_DEADLINE_SECONDS):
            hours = settings.DELIVERY_RETRY_DEADLINE_SECONDS / 3600
            self.fail(f"Gave up after retrying for {hours:g} h: {message}. Retry it once the vendor is back.")
        delay = backoff_seconds(failures)
        if delay > IN_TASK_WAIT_MAX:
            self.hand_back(delay, message)
        self.checkpoint()
        time.sleep(delay)

    def hand_back(self, delay: float, message: str) -> None:
        """Back to queued, due in `delay` seconds, and a message to come back then."""
        self.log.flush()
        now = timezone.now()
        due = now + timedelta(seconds=delay)
        if self._mine().update(status=DeliveryStatus.QUEUED, next_attempt_at=due, heartbeat_at=None, updated_at=now,
                               **self._counts()):  # fmt: skip
            enqueue(self.delivery.pk, countdown=delay)
        raise Stop

    # ----- the end -------------------------------------------------------------------------
    def _end(self, status: str) -> None:
        self.log.flush()
        now = timezone.now()
        self._mine().update(status=status, finished_at=now, heartbeat_at=now, next_attempt_at=None, updated_at=now,
                            **self._counts())  # fmt: skip
        raise Stop

    def fail(self, message: str) -> None:
        self.last_error = message
        self._end(DeliveryStatus.FAILED)

    def finish(self) -> None:
        """All items handled: delivered, partially failed, or failed if nothing passed."""
        if not self.rejected:
            self.last_error = ""
            self._end(DeliveryStatus.DELIVERED)
        if not self.acknowledged:
            self.last_error = f"All {self.rejected} rows were rejected. Last: {self.last_error}"
            self._end(DeliveryStatus.FAILED)
        self._end(DeliveryStatus.PARTIALLY_FAILED)
