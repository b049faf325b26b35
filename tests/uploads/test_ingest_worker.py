"""A file too big for the request goes through a real Celery worker, both steps."""

import time

import pytest

from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import hourly, submit
from uploads.models import Reading, Upload, UploadStatus
from uploads.services.ingest import upload_confirm

meter, ny_site = support.meter, support.ny_site


def wait_for(upload: Upload, status: str, timeout: float = 60) -> Upload:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        upload.refresh_from_db()
        if upload.status == status:
            return upload
        time.sleep(0.2)
    raise AssertionError(f"upload {upload.pk} is {upload.status}, not {status}: {upload.error}")


@pytest.mark.worker
def test_it_parses_and_stores_a_big_file_in_the_worker(celery_worker, settings, org, owner, meter, owner_client):
    settings.INGEST_INLINE_MAX_BYTES = 0
    upload = submit(org, owner, hourly(3000) + "2024-06-01T00:00:00Z,bad\n", meter=meter, run_now=None)
    assert upload.status in (UploadStatus.RECEIVED, UploadStatus.PARSING, UploadStatus.VALIDATED)
    upload = wait_for(upload, UploadStatus.VALIDATED)
    assert (upload.rows_valid, upload.rows_invalid) == (3000, 1)
    upload = upload_confirm(upload=upload, user=owner)
    assert upload.status in (UploadStatus.STORING, UploadStatus.STORED)
    upload = wait_for(upload, UploadStatus.STORED)
    assert upload.rows_stored == 3000 and Reading.objects.filter(meter=meter).count() == 3000
    page = owner_client.get(f"/uploads/{upload.pk}/review/")
    assert b"every 1s" not in page.content and b"Stored" in page.content
