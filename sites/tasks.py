"""Celery tasks: each takes an id, calls a service, and retries transient failures.

Retries are explicit (`self.retry`) rather than Celery's autoretry: the countdown honours
the vendor's Retry-After, and a sync that gives up is recorded as failed."""

from celery import shared_task
from django.conf import settings

from core import tasks as common
from sites.models import Device, Meter
from sites.services import sync

MAX_RETRIES = 5
SYNC_TASK_OPTIONS = {
    **common.TASK_OPTIONS,
    "bind": True,
    "max_retries": MAX_RETRIES,
    "soft_time_limit": 90,
    "time_limit": 120,
}


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    """The shared backoff with the sync's own base and cap; half a second at least."""
    delay = common.backoff_seconds(
        retries,
        base=settings.WATTCARBON_SYNC_RETRY_BASE_SECONDS,
        cap=settings.WATTCARBON_SYNC_RETRY_MAX_SECONDS,
        retry_after=retry_after,
    )
    return max(delay, 0.5)


def _run(task, work, give_up) -> str | None:
    """Run `work()`; on SyncRetry retry later, or after the last try record the failure."""
    try:
        return work()
    except sync.SyncRetry as exc:
        if task.request.retries >= task.max_retries:
            give_up(f"Gave up after {task.request.retries + 1} attempts: {exc.message}")
            return "failed"
        raise task.retry(countdown=backoff_seconds(task.request.retries, exc.retry_after)) from None


@shared_task(**SYNC_TASK_OPTIONS)
def meter_sync_task(self, meter_id: int) -> str | None:
    return _run(
        self,
        lambda: sync.meter_sync(meter_id=meter_id),
        lambda message: sync.sync_mark_failed(model=Meter, pk=meter_id, message=message),
    )


@shared_task(**SYNC_TASK_OPTIONS)
def device_sync_task(self, device_id: int) -> str | None:
    return _run(
        self,
        lambda: sync.device_sync(device_id=device_id),
        lambda message: sync.sync_mark_failed(model=Device, pk=device_id, message=message),
    )


@shared_task(**SYNC_TASK_OPTIONS)
def device_document_upload_task(self, document_id: int) -> str | None:
    return _run(
        self,
        lambda: sync.device_document_upload(document_id=document_id),
        lambda message: sync.document_mark_failed(document_id=document_id, message=message),
    )
