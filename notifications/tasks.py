"""Celery tasks of notifications: periodic scans, and one webhook delivery by id."""

from celery import shared_task

from notifications import services


@shared_task(name="notifications.scan", time_limit=300, soft_time_limit=280, ignore_result=True)
def scan() -> int:
    """Periodic: failed deliveries and invalid uploads become notices; lost webhook retries resume."""
    services.webhooks_requeue_lost()
    return len(services.notices_scan())


@shared_task(name="notifications.feeds_refresh", time_limit=300, soft_time_limit=280, ignore_result=True)
def feeds_refresh() -> int:
    """Periodic: live feeds recomputed; late meters become notices."""
    return len(services.feeds_check())


@shared_task(name="notifications.send_digests", time_limit=600, soft_time_limit=580, ignore_result=True)
def send_digests() -> int:
    return services.digests_send()


@shared_task(bind=True, name="notifications.webhook_deliver", acks_late=True, max_retries=None,
             time_limit=120, soft_time_limit=100)  # fmt: skip
def webhook_deliver(self, delivery_id: int) -> None:
    delay = services.webhook_attempt(delivery_id=delivery_id)
    if delay is not None:
        raise self.retry(countdown=delay)
