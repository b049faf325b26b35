"""Celery tasks of the uploads app: they take ids and call services."""

from celery import shared_task
from django.conf import settings

from uploads.services.deliveries import deliveries_requeue_stale, delivery_push


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    # A run gives its worker back after RUN_SLICE_SECONDS; these are the safety net.
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    serializer="json",
    ignore_result=True,
)
def push_delivery(delivery_id: int) -> None:
    """Push one delivery (idempotent: only the worker that claims it pushes)."""
    delivery_push(delivery_id=delivery_id)


@shared_task(time_limit=120, soft_time_limit=100, serializer="json", ignore_result=True)
def requeue_stale_deliveries() -> int:
    """Periodic: re-enqueue deliveries whose worker died or whose message was lost."""
    return len(deliveries_requeue_stale())
