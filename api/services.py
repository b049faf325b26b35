"""Writes behind the API. They call the apps' own services (uploads, sites): the API
adds the ways in (JSON rows, confirm without review), not other rules."""

import csv
import io
import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

# The tasks import these services; the module is complete by the time a task is enqueued.
from api import tasks
from api.access import Caller
from audit.services import audit_record
from sites.models import Meter
from uploads.models import Upload, UploadStatus
from uploads.services.ingest import IngestError, upload_confirm, upload_create

logger = logging.getLogger(__name__)


def api_upload_create(
    *, caller: Caller, file, meter: Meter | None, targets: list[str], naive_times: str | None = None,
    confirm: bool = False,
) -> Upload:  # fmt: skip
    """Create an upload as the web form does; with confirm=True its valid rows are stored and
    pushed as soon as it is validated (now for a small file, else by a worker)."""
    upload = upload_create(
        organization=caller.organization, user=caller.user, file=file, meter=meter, targets=targets,
        naive_times=naive_times,
    )  # fmt: skip
    if confirm:
        upload_confirm_when_validated(upload=upload, user=caller.user)
    return upload


def upload_confirm_when_validated(*, upload: Upload, user=None) -> Upload:
    """Confirm now if validated; while a worker still validates it, a task confirms it after.
    An upload the ingest service will not confirm stays at review (its status says so): it
    exists either way, so the caller gets it back rather than an error."""
    if upload.status == UploadStatus.VALIDATED:
        try:
            return upload_confirm(upload=upload, user=user)
        except IngestError:
            logger.info("upload %s was not confirmed: it stays at review", upload.pk)
            upload.refresh_from_db()
            return upload
    if upload.status in (UploadStatus.RECEIVED, UploadStatus.PARSING):
        user_id = getattr(user, "pk", None)
        transaction.on_commit(lambda: tasks.upload_autoconfirm_task.apply_async((upload.pk, user_id), countdown=1))
    return upload


def upload_autoconfirm_step(*, upload_id: int, user_id: int | None = None) -> str:
    """One look at an upload that asked for confirm: "wait" while validating, else what happened."""
    from django.contrib.auth import get_user_model

    upload = Upload.objects.get(pk=upload_id)
    if upload.status in (UploadStatus.RECEIVED, UploadStatus.PARSING):
        return "wait"
    if upload.status != UploadStatus.VALIDATED:
        return upload.status
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        upload_confirm(upload=upload, user=user, run_now=True)
    except IngestError:
        # Confirmed meanwhile (by a person, or a duplicate of this task): nothing to do.
        return "already"
    return "confirmed"


def readings_csv(*, rows: list[dict]) -> bytes:
    """JSON rows as the CSV a logger would have sent: the same parser reads both."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value"])
    for row in rows:
        writer.writerow([row["ts"], repr(float(row["value"]))])
    return out.getvalue().encode("utf-8")


def api_readings_create(
    *, caller: Caller, meter: Meter, rows: list[dict], targets: list[str], naive_times: str | None = None,
    confirm: bool = True,
) -> Upload:  # fmt: skip
    """JSON rows of one meter through the same validation, storage and push as a file."""
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    file = ContentFile(readings_csv(rows=rows), name=f"api-meter-{meter.pk}-{stamp}.csv")
    return api_upload_create(
        caller=caller, file=file, meter=meter, targets=targets, naive_times=naive_times, confirm=confirm
    )


# ----- API keys -----------------------------------------------------------------------------------


def api_key_create(*, organization, name: str, role: str, created_by=None):
    """Make a key; returns (key row, the key itself). The key is shown once and never stored."""
    from api.models import KeyRole, OrganizationAPIKey

    if role not in KeyRole.values:
        raise ValueError(f"A key's role is one of {', '.join(KeyRole.values)}.")
    api_key, key = OrganizationAPIKey.objects.create_key(
        organization=organization, name=name[:50], role=role, created_by=created_by
    )
    audit_record(organization_id=organization.pk, action="create", object_type="api_key", object_id=api_key.prefix,
                 object_label=api_key.name, after={"name": api_key.name, "role": role}, user=created_by)  # fmt: skip
    return api_key, key


def api_key_revoke(*, api_key, user=None) -> bool:
    """Revoke a key for good; False if it already was."""
    from api.models import OrganizationAPIKey

    revoked = OrganizationAPIKey.objects.filter(pk=api_key.pk, revoked=False).update(
        revoked=True, revoked_at=timezone.now()
    )
    api_key.refresh_from_db()
    if revoked:
        audit_record(organization_id=api_key.organization_id, action="disable", object_type="api_key",
                     object_id=api_key.prefix, object_label=api_key.name, changes={"revoked": [False, True]},
                     user=user)  # fmt: skip
    return bool(revoked)
