"""Retention of refused and cancelled uploads' files, and the per-organization storage quota."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.drills.support import wait_for
from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import hourly, submit
from uploads.models import Upload, UploadStatus
from uploads.services.ingest import upload_cancel
from uploads.tasks import uploads_purge_expired_task

meter, ny_site = support.meter, support.ny_site


def age(upload: Upload, days: int) -> None:
    Upload.objects.filter(pk=upload.pk).update(created_at=timezone.now() - timedelta(days=days))


@pytest.fixture
def uploads_of_every_kind(org, owner, meter, settings):
    settings.UPLOAD_RETENTION_DAYS = 30
    invalid = submit(org, owner, "timestamp,energy_kwh\n2024-01-01T00:00:00Z,abc\n", meter=meter)
    assert invalid.status == UploadStatus.INVALID and invalid.error_report
    cancelled = upload_cancel(upload=submit(org, owner, hourly(5), meter=meter), user=owner)
    validated = submit(org, owner, hourly(6), meter=meter)
    recent_invalid = submit(org, owner, "timestamp,energy_kwh\n2024-01-01T00:00:00Z,x\n", meter=meter)
    for upload in (invalid, cancelled, validated):
        age(upload, 31)
    age(recent_invalid, 29)
    return {"invalid": invalid, "cancelled": cancelled, "validated": validated, "recent": recent_invalid}


@pytest.mark.worker
def test_the_periodic_task_deletes_files_of_old_invalid_and_cancelled_uploads(celery_worker, uploads_of_every_kind):
    u = uploads_of_every_kind
    names = {key: (x.file.name, x.error_report.name) for key, x in u.items()}
    assert all(default_storage.exists(file) for file, _ in names.values())
    uploads_purge_expired_task.delay()  # as beat sends it, to the real worker
    wait_for(
        lambda: not default_storage.exists(names["invalid"][0]), timeout=60, what="the purge", worker=celery_worker
    )
    for key in ("invalid", "cancelled"):
        upload = Upload.objects.get(pk=u[key].pk)
        assert upload.purged_at is not None and not upload.file and not upload.error_report
        assert not default_storage.exists(names[key][0])
    assert not default_storage.exists(names["invalid"][1])  # the error report goes too
    for key in ("validated", "recent"):  # kept: not refused, or not old enough
        upload = Upload.objects.get(pk=u[key].pk)
        assert upload.purged_at is None and default_storage.exists(names[key][0])


def test_the_purge_is_in_the_beat_schedule():
    from portal.celery import app

    entries = {e["task"] for e in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert (
        "uploads.tasks.uploads_purge_expired_task" in entries
        and "uploads.tasks.uploads_purge_expired_task" in app.tasks
    )
    assert django_settings.UPLOAD_RETENTION_DAYS > 0


def test_a_purged_upload_page_still_answers(owner_client, uploads_of_every_kind):
    from uploads.services.ingest import uploads_purge_expired

    assert sorted(uploads_purge_expired()) == sorted(
        [uploads_of_every_kind["invalid"].pk, uploads_of_every_kind["cancelled"].pk]
    )
    assert uploads_purge_expired() == []  # once
    for key in ("invalid", "cancelled"):
        pk = uploads_of_every_kind[key].pk
        assert owner_client.get(f"/uploads/{pk}/").status_code == 200
        assert owner_client.get(f"/uploads/{pk}/review/").status_code == 200


def post_upload(client, meter, data: bytes):
    file = SimpleUploadedFile("readings.csv", data, content_type="text/csv")
    return client.post("/uploads/new/", {"file": file, "meter": meter.pk, "targets": ["wattics"]})


def test_an_upload_past_the_organization_quota_is_refused_with_a_clear_message(owner_client, org, meter, settings):
    settings.UPLOAD_QUOTA_BYTES = 10 * 1024 * 1024
    org.storage_quota_bytes = 1000  # the organization's own quota overrides the default
    org.save()
    first = hourly(10).encode()
    assert len(first) < 1000
    assert post_upload(owner_client, meter, first).status_code == 302
    before = Upload.objects.count()
    response = post_upload(owner_client, meter, hourly(30).encode())
    assert response.status_code == 200
    text = response.content.decode()
    assert "storage quota is reached" in text and "1000 bytes" in text.replace("\xa0", " ")
    assert Upload.objects.count() == before


def test_the_default_quota_applies_and_purged_files_no_longer_count(owner_client, org, owner, meter, settings):
    data = hourly(10).encode()
    settings.UPLOAD_QUOTA_BYTES = len(data) + 10
    first = submit(org, owner, data, meter=meter)
    assert b"storage quota is reached" in post_upload(owner_client, meter, data).content
    # Cancelled, and purged after the retention period: its bytes are free again.
    upload_cancel(upload=first, user=owner)
    age(first, settings.UPLOAD_RETENTION_DAYS + 1)
    from uploads.services.ingest import uploads_purge_expired

    assert uploads_purge_expired() == [first.pk]
    assert post_upload(owner_client, meter, data).status_code == 302
