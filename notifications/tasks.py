"""Celery tasks of notifications: periodic scans, and one webhook delivery by id."""

from celery import shared_task

from core import tasks as common
from notifications import services


@shared_task(time_limit=300, soft_time_limit=280, ignore_result=True)
def scan_task() -> int:
    """Periodic: failed deliveries and invalid uploads become notices; lost webhook retries resume."""
    services.webhooks_requeue_lost()
    return len(services.notices_scan())


@shared_task(time_limit=300, soft_time_limit=280, ignore_result=True)
def feeds_refresh_task() -> int:
    """Periodic: live feeds recomputed; late meters become notices."""
    return len(services.feeds_check())


@shared_task(time_limit=600, soft_time_limit=580, ignore_result=True)
def send_digests_task() -> int:
    return services.digests_send()


@shared_task(**common.TASK_OPTIONS, bind=True, max_retries=None, time_limit=120, soft_time_limit=100)
def webhook_deliver_task(self, delivery_id: int) -> None:
    delay = services.webhook_attempt(delivery_id=delivery_id)
    if delay is not None:
        raise self.retry(countdown=delay)
