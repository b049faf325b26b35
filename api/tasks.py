"""Celery tasks of the API: they take ids and call a service."""

from celery import shared_task

from api.services import upload_autoconfirm_step

# A file at the size limit is validated in minutes: look every few seconds, for up to ~35 minutes.
AUTOCONFIRM_EVERY_SECONDS = 3
AUTOCONFIRM_MAX_LOOKS = 700


@shared_task(bind=True, name="api.upload_autoconfirm", acks_late=True, max_retries=AUTOCONFIRM_MAX_LOOKS,
             time_limit=1800, soft_time_limit=1700)  # fmt: skip
def upload_autoconfirm(self, upload_id: int, user_id: int | None = None) -> str:
    """An upload posted with confirm=true: once a worker has validated it, store and push it."""
    outcome = upload_autoconfirm_step(upload_id=upload_id, user_id=user_id)
    if outcome == "wait":
        raise self.retry(countdown=AUTOCONFIRM_EVERY_SECONDS)
    return outcome
