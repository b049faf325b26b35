"""Services of the other formats: batches (a zip, or several files in one form), meters of other
systems matched once (Green Button UsagePoints, Portfolio Manager meter ids), saved column mappings."""

import hashlib
import zipfile
from pathlib import PurePath
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.core.files import File
from django.db import transaction

from accounts.models import Organization
from audit.services import audited
from sites.models import Meter
from uploads.models import SavedMapping, SourceMeter, Upload, UploadBatch, UploadStatus
from uploads.parsing import MeterInfo
from uploads.parsing.columns import normalise
from uploads.parsing.source import FileProblem
from uploads.parsing.zipfiles import is_zip, members
from uploads.services.ingest import (
    UPLOAD_AUDIT_FIELDS,
    IngestError,
    MeterLookup,
    _info,
    _schedule,
    upload_create,
    upload_schedule_validation,
)

# --- Meters of other systems --------------------------------------------------------

LEFT_OUT = "was left out when the file's meters were matched (change it by matching meters again)"


class SourceMeterLookup(MeterLookup):
    """Meter column values -> meters: first the ids matched earlier (SourceMeter), then as MeterLookup."""

    def __init__(self, organization: Organization):
        super().__init__(organization)
        self.matched: dict[str, MeterInfo | None] = {
            sm.key: _info(sm.meter) if sm.meter is not None else None
            for sm in SourceMeter.objects.filter(organization=organization).select_related("meter__site")
        }

    def _find(self, key: str):
        if key in self.matched:
            return self.matched[key] or LEFT_OUT
        return super()._find(key)

    def unresolved(self) -> list[str]:
        """Keys no meter was found for, and that nobody chose to leave out."""
        return sorted(key for key, found in self._seen.items() if isinstance(found, str) and found != LEFT_OUT)


def source_of(options: dict) -> str:
    if options.get("format") == "greenbutton":
        return SourceMeter.Source.GREEN_BUTTON
    return SourceMeter.Source.PORTFOLIO_MANAGER


@transaction.atomic
def source_meters_save(*, organization: Organization, source: str, choices: dict[str, Meter | None]) -> None:
    """Remember which meter each id of another system is (replacing an earlier choice); None leaves it out."""
    for key, meter in choices.items():
        if meter is not None and meter.organization_id != organization.pk:
            raise IngestError("That meter belongs to another organization.")
        SourceMeter.objects.update_or_create(
            organization=organization, source=SourceMeter.Source(source), key=key[:300], defaults={"meter": meter}
        )


@audited("map", "upload", target="upload", fields=UPLOAD_AUDIT_FIELDS + ("options",))
def upload_set_source_meters(
    *, upload: Upload, choices: dict[str, Meter | None], user, run_now: bool | None = None
) -> Upload:
    """The user matched the file's meter ids to meters: remember them, validate again."""
    allowed = (UploadStatus.NEEDS_MAPPING, UploadStatus.VALIDATED, UploadStatus.INVALID)
    with transaction.atomic():
        if not Upload.objects.filter(pk=upload.pk, status__in=allowed).update(status=UploadStatus.RECEIVED):
            raise IngestError(f"This upload is {upload.get_status_display().lower()}: its meters can no longer change.")
        source_meters_save(organization=upload.organization, source=source_of(upload.options), choices=choices)
    upload.refresh_from_db()
    _schedule(upload, "validate", run_now)
    return upload


# --- Saved column mappings ----------------------------------------------------------


def header_key(header: list[str]) -> str:
    return hashlib.sha256("\x1f".join(normalise(h) for h in header).encode()).hexdigest()


def saved_mapping_exact(*, organization: Organization, header: list[str]) -> dict[str, str] | None:
    """The mapping saved for exactly this header (names compared as normalised), by this file's names."""
    saved = SavedMapping.objects.filter(organization=organization, header_key=header_key(header)).first()
    if saved is None:
        return None
    by_norm = {normalise(h): h for h in header}
    return {by_norm[normalise(name)]: role for name, role in saved.mapping.items() if normalise(name) in by_norm}


def saved_mapping_suggestion(*, organization: Organization, header: list[str]) -> dict[str, str]:
    """The roles of the most recent saved mapping that names any of these columns (a close header)."""
    names = {normalise(h): h for h in header}
    for saved in SavedMapping.objects.filter(organization=organization)[:50]:
        found = {names[normalise(n)]: role for n, role in saved.mapping.items() if normalise(n) in names}
        if found:
            return found
    return {}


def saved_mapping_save(*, organization: Organization, header: list[str], mapping: dict[str, str]) -> None:
    if not header or not mapping:
        return
    SavedMapping.objects.update_or_create(
        organization=organization,
        header_key=header_key(header),
        defaults={"header": header[:200], "mapping": mapping},
    )


# --- Batches ------------------------------------------------------------------------


def _unpack(files: list[File]) -> list[tuple[str, int, Any]]:
    """(name, size, file) for each file to upload: zips unpacked, everything checked before anything is stored."""
    out: list[tuple[str, int, Any]] = []
    for file in files:
        file.seek(0)
        head = file.read(4)
        file.seek(0)
        name = PurePath(file.name or "upload").name
        if is_zip(head):
            try:
                is_workbook = "xl/workbook.xml" in zipfile.ZipFile(file).namelist()
            except (zipfile.BadZipFile, OSError, EOFError):
                is_workbook = False
            file.seek(0)
            if not is_workbook:
                try:
                    found = list(
                        members(
                            cast(BinaryIO, file),
                            max_total=settings.UPLOAD_MAX_DECOMPRESSED_BYTES,
                            max_ratio=settings.UPLOAD_ZIP_MAX_RATIO,
                            max_files=settings.UPLOAD_ZIP_MAX_FILES,
                        )
                    )
                except FileProblem as exc:
                    raise IngestError(f"{str(exc).rstrip('.')} ({name}).") from exc
                for member in found:
                    if is_zip(member.file.read(4)) and member.name.lower().endswith(".zip"):
                        raise IngestError(f"The file {member.name} in {name} is a zip inside the zip; unpack it first.")
                    member.file.seek(0)
                    out.append((member.name, member.size, member.file))
                continue
        out.append((name, file.size, file))
    if len(out) > settings.UPLOAD_ZIP_MAX_FILES:
        raise IngestError(f"{len(out)} files were sent; at most {settings.UPLOAD_ZIP_MAX_FILES} are accepted at once.")
    return out


def batch_create(
    *,
    organization: Organization,
    user,
    files: list[File],
    meter: Meter | None,
    targets: list[str],
    sheet: str = "",
    source_unit: str = "",
    run_now: bool | None = None,
    naive_times: str | None = None,
) -> UploadBatch:
    """One upload per file (a zip gives one per file inside), in one batch. A zip bomb, a broken zip
    or too many files raise IngestError and store nothing."""
    unpacked = _unpack(files)
    title = files[0].name if len(files) == 1 else f"{len(unpacked)} files"
    uploads = []
    with transaction.atomic():
        batch = UploadBatch.objects.create(
            organization=organization, created_by=user, name=PurePath(title or "batch").name[:255]
        )
        for name, _size, fileobj in unpacked:
            uploads.append(
                upload_create(
                    organization=organization,
                    user=user,
                    file=File(fileobj, name=name),
                    meter=meter,
                    targets=targets,
                    run_now=run_now,
                    batch=batch,
                    sheet=sheet,
                    source_unit=source_unit,
                    schedule=False,
                    naive_times=naive_times,
                )
            )
    # Checked after the commit: parsing inside the transaction would hold SQLite's write lock.
    for upload in uploads:
        upload_schedule_validation(upload=upload, run_now=run_now)
    return batch


def batch_status(*, batch: UploadBatch) -> dict:
    """One status for the batch: busy while any file is, else what the files came to."""
    counts: dict[str, int] = {}
    for status in batch.uploads.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    busy = sum(counts.get(s, 0) for s in (UploadStatus.RECEIVED, UploadStatus.PARSING, UploadStatus.STORING))
    if busy:
        overall = "busy"
    elif counts.get(UploadStatus.NEEDS_MAPPING):
        overall = "needs_mapping"
    elif counts.get(UploadStatus.VALIDATED):
        overall = "validated"
    elif counts.get(UploadStatus.STORED) and len(counts) == 1:
        overall = "stored"
    elif counts.get(UploadStatus.FAILED) or counts.get(UploadStatus.INVALID):
        overall = "attention"
    else:
        overall = "done"
    labels = {
        "busy": "Checking or storing files",
        "needs_mapping": "Some files need their columns or meters matched",
        "validated": "Ready to push",
        "stored": "All files stored",
        "attention": "Some files could not be used",
        "done": "Done",
    }
    return {"code": overall, "label": labels[overall], "counts": counts, "total": sum(counts.values())}
