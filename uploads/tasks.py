"""Celery tasks of the uploads app: they take ids and call services. Files in (validate,
store), pushes out, and the periodic sweeps that pick up work whose worker died."""

from celery import shared_task
from django.conf import settings

from core import tasks as common
from uploads.services import deliveries, ingest

# Parsing a file at the size limit takes minutes, not hours.
INGEST_OPTIONS = {**common.TASK_OPTIONS, "time_limit": 1800, "soft_time_limit": 1700}
# A push run gives its worker back after RUN_SLICE_SECONDS; these limits are the safety net.
PUSH_OPTIONS = {
    **common.TASK_OPTIONS,
    "soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.CELERY_TASK_TIME_LIMIT,
    "ignore_result": True,
}
# Periodic sweeps: losing one costs nothing, the next comes within a minute.
SWEEP_OPTIONS = {"serializer": "json", "ignore_result": True, "time_limit": 120, "soft_time_limit": 100}


@shared_task(**INGEST_OPTIONS)
def upload_validate_task(upload_id: int) -> None:
    ingest.upload_validate(upload_id=upload_id)


@shared_task(**INGEST_OPTIONS)
def upload_store_task(upload_id: int) -> None:
    ingest.upload_store(upload_id=upload_id)


@shared_task(**PUSH_OPTIONS)
def delivery_push_task(delivery_id: int) -> None:
    """Push the delivery's stream (idempotent: only the worker that claims it pushes)."""
    deliveries.delivery_push(delivery_id=delivery_id)


@shared_task(**SWEEP_OPTIONS)
def uploads_requeue_stale_task() -> int:
    """Periodic: restart parsing or storing whose worker died."""
    return len(ingest.uploads_requeue_stale())


@shared_task(**SWEEP_OPTIONS)
def deliveries_requeue_stale_task() -> int:
    """Periodic: re-enqueue deliveries whose worker died or whose message was lost."""
    return len(deliveries.deliveries_requeue_stale())


@shared_task(**{**SWEEP_OPTIONS, "time_limit": 600, "soft_time_limit": 550})
def uploads_purge_expired_task() -> int:
    """Periodic: delete the files of invalid and cancelled uploads past UPLOAD_RETENTION_DAYS."""
    return len(ingest.uploads_purge_expired())
