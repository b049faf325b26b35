"""Celery tasks of ingest: they take an upload id and call a service (which claims the upload)."""

from celery import shared_task

from uploads.services.ingest import upload_store, upload_validate, uploads_purge_expired, uploads_requeue_stale

# Parsing a file at the size limit takes minutes, not hours.
LIMITS = {"time_limit": 1800, "soft_time_limit": 1700, "acks_late": True}


@shared_task(name="uploads.ingest.validate", **LIMITS)
def upload_validate_task(upload_id: int) -> None:
    upload_validate(upload_id=upload_id)


@shared_task(name="uploads.ingest.store", **LIMITS)
def upload_store_task(upload_id: int) -> None:
    upload_store(upload_id=upload_id)


@shared_task(name="uploads.ingest.requeue_stale", time_limit=120, soft_time_limit=100, ignore_result=True)
def requeue_stale_uploads() -> int:
    """Periodic: restart parsing or storing whose worker died."""
    return len(uploads_requeue_stale())


@shared_task(name="uploads.ingest.purge_expired", time_limit=600, soft_time_limit=550, ignore_result=True)
def purge_expired_uploads() -> int:
    """Periodic: delete the files of invalid and cancelled uploads past UPLOAD_RETENTION_DAYS."""
    return len(uploads_purge_expired())
