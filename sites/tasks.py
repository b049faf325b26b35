"""Celery tasks: each takes an id, calls a service, and retries transient failures."""

import random

from celery import shared_task
from django.conf import settings

from sites.models import Device, Meter
from sites.services import sync

MAX_RETRIES = 5
TASK_OPTIONS = {
    "bind": True,
    # A sync must survive a worker's death: acknowledge only after it ran.
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": MAX_RETRIES,
    "soft_time_limit": 90,
    "time_limit": 120,
    "serializer": "json",
}


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter; at least what the vendor asked for."""
    base = settings.WATTCARBON_SYNC_RETRY_BASE_SECONDS
    cap = settings.WATTCARBON_SYNC_RETRY_MAX_SECONDS
    delay = random.uniform(0, min(cap, base * 2**retries))
    return max(delay, retry_after or 0.0, 0.5)


def _sync(task, model, run, pk: int) -> str | None:
    try:
        return run(pk)
    except sync.SyncRetry as exc:
        if task.request.retries >= task.max_retries:
            sync.sync_mark_failed(
                model=model, pk=pk, message=f"Gave up after {task.request.retries + 1} attempts: {exc.message}"
            )
            return "failed"
        raise task.retry(countdown=backoff_seconds(task.request.retries, exc.retry_after)) from None


@shared_task(**TASK_OPTIONS)
def meter_sync(self, meter_id: int) -> str | None:
    return _sync(self, Meter, lambda pk: sync.meter_sync(meter_id=pk), meter_id)


@shared_task(**TASK_OPTIONS)
def device_sync(self, device_id: int) -> str | None:
    return _sync(self, Device, lambda pk: sync.device_sync(device_id=pk), device_id)


@shared_task(**TASK_OPTIONS)
def device_document_upload(self, document_id: int) -> str | None:
    try:
        return sync.device_document_upload(document_id=document_id)
    except sync.SyncRetry as exc:
        if self.request.retries >= self.max_retries:
            sync.document_mark_failed(
                document_id=document_id,
                message=f"Gave up after {self.request.retries + 1} attempts: {exc.message}",
            )
            return "failed"
        raise self.retry(countdown=backoff_seconds(self.request.retries, exc.retry_after)) from None
