"""Celery tasks of the API: they take ids and call a service."""

from celery import shared_task

from api import services
from core import tasks as common

# A file at the size limit is validated in minutes: look every few seconds, for up to ~35 minutes.
AUTOCONFIRM_EVERY_SECONDS = 3
AUTOCONFIRM_MAX_LOOKS = 700


@shared_task(**common.TASK_OPTIONS, bind=True, max_retries=AUTOCONFIRM_MAX_LOOKS, time_limit=1800, soft_time_limit=1700)
def upload_autoconfirm_task(self, upload_id: int, user_id: int | None = None) -> str:
    """An upload posted with confirm=true: once a worker has validated it, store and push it."""
    outcome = services.upload_autoconfirm_step(upload_id=upload_id, user_id=user_id)
    if outcome == "wait":
        raise self.retry(countdown=AUTOCONFIRM_EVERY_SECONDS)
    return outcome
