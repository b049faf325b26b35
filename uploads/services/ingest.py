"""Ingest: receive a file, validate it (parse, check, report), store its valid rows.

Status: received → parsing → validated | invalid | needs_mapping | failed;
validated → storing → stored (then deliveries are created) | failed; and
received | parsing | validated | needs_mapping | invalid → cancelled. Each step claims
the upload with a conditional update (its claim time is the claim's token), so a task
run twice (or a double click) does the work once. While parsing or storing, the run
touches the upload's heartbeat; a run whose upload was cancelled or taken up again by
the stale sweep stops at its next heartbeat.

Small files are validated and stored in the request (the user sees the review at
once); larger ones go to a Celery worker and the review page polls. "Small" is what is
read, not the size on disk: a request checks a file only if it expands to little, and
hands it to a worker once it has read more rows than INGEST_INLINE_MAX_ROWS. No long
work runs inside a transaction (on SQLite that would hold the write lock of every
organization).
"""

import csv
import gzip
import hashlib
import logging
import tempfile
import time as clock
import zlib
from datetime import UTC, datetime, time, timedelta
from pathlib import PurePath
from typing import Any, cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q, Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from accounts.models import Organization
from audit.services import audited
from sites.models import Meter, MeterType, NaiveTimes, ReadingKind

# The tasks import these services; the module is complete by the time a task is enqueued.
from uploads import tasks
from uploads.models import Bill, Reading, Target, Upload, UploadStatus
from uploads.parsing import (
    BILLS,
    BillRow,
    FileProblem,
    MappingNeeded,
    MeterInfo,
    ParsedFile,
    ReadingBatch,
    ReadingRow,
    RowError,
    sample_rows,
)
from uploads.parsing.checks import from_us
from uploads.parsing.columns import detect
from uploads.services import formats_hooks, ingest_storage, readings_store, staging

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 20
# What the audit trail compares for people's actions on an upload.
UPLOAD_AUDIT_FIELDS = ("original_name", "meter", "targets", "column_mapping", "status")
# While a big file is checked, the review page shows rows read and the share of the file done.
PROGRESS_EVERY_ROWS = 20_000
# The report lists this many errors, then says how many more there were.
REPORT_MAX_ROWS = 10_000


class IngestError(Exception):
    """An action the upload's current state does not allow; the message is for the user."""


class _Stop(Exception):
    """This run's claim is gone: the upload was cancelled, or the sweep gave it to another worker."""


class _HandOver(Exception):
    """The request read more than it may: a worker checks the file."""


def inline_max_bytes() -> int:
    return settings.INGEST_INLINE_MAX_BYTES


def _expands_within(upload: Upload, limit: int) -> bool:
    """Whether the stored file's content (decompressed, for gzip) is at most `limit` bytes.
    Reads at most `limit` + 1 bytes of content, so a gzip bomb costs nothing here."""
    with upload.file.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            return upload.size_bytes <= limit
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as content:
                read = 0
                while chunk := content.read(64 * 1024):
                    read += len(chunk)
                    if read > limit:
                        return False
        except (OSError, EOFError, zlib.error):
            return True  # a corrupt gzip is refused quickly by the parser, in the request
    return True


class _Claim:
    """One run's hold on an upload in PARSING or STORING: heartbeat and progress updates
    that only land while the upload is still this run's (raising _Stop otherwise)."""

    def __init__(self, upload_id: int, status: str, token: datetime):
        self.upload_id, self.status, self.token = upload_id, status, token
        self.last = clock.monotonic()

    def rows(self):
        return Upload.objects.filter(pk=self.upload_id, status=self.status, claimed_at=self.token)

    def beat(self, *, force: bool = False, **fields) -> None:
        now = clock.monotonic()
        if not force and now - self.last < settings.INGEST_HEARTBEAT_SECONDS:
            return
        self.last = now
        if not self.rows().update(heartbeat_at=timezone.now(), **fields):
            raise _Stop()


def _claim(upload_id: int, *, source: tuple[str, ...], status: str) -> _Claim | None:
    token = timezone.now()
    if not Upload.objects.filter(pk=upload_id, status__in=source).update(
        status=status, claimed_at=token, heartbeat_at=token
    ):
        return None
    return _Claim(upload_id, status, token)


def organization_quota_bytes(organization: Organization) -> int:
    return organization.storage_quota_bytes or settings.UPLOAD_QUOTA_BYTES


def organization_storage_used(organization: Organization) -> int:
    """Bytes of uploaded files the organization keeps (purged files no longer count)."""
    used = Upload.objects.filter(organization=organization, purged_at__isnull=True).aggregate(n=Sum("size_bytes"))
    return used["n"] or 0


def max_decompressed_bytes() -> int:
    return settings.UPLOAD_MAX_DECOMPRESSED_BYTES


# --- Meters ------------------------------------------------------------------------


def _info(meter: Meter) -> MeterInfo:
    return MeterInfo(
        id=meter.pk,
        label=str(meter),
        tz=ZoneInfo(meter.site.timezone),
        interval_minutes=meter.interval_minutes,
        production=meter.meter_type == MeterType.PRODUCTION,
        unit=meter.unit,
    )


class MeterLookup:
    """Meter column values -> meters of one organization: by name, then Wattics stream id,
    then 'Site / Meter'. Answers are remembered (a file repeats the same few values)."""

    def __init__(self, organization: Organization):
        self.by_name: dict[str, list[MeterInfo]] = {}
        self.by_other: dict[str, MeterInfo] = {}
        for meter in Meter.objects.filter(organization=organization).select_related("site"):
            info = _info(meter)
            self.by_name.setdefault(meter.name.casefold(), []).append(info)
            if meter.wattics_stream_id:
                self.by_other.setdefault(meter.wattics_stream_id.casefold(), info)
            self.by_other.setdefault(f"{meter.site.name} / {meter.name}".casefold(), info)
        self._seen: dict[str, MeterInfo | str] = {}

    def __call__(self, key: str) -> MeterInfo | str:
        if key not in self._seen:
            self._seen[key] = self._find(key)
        return self._seen[key]

    def _find(self, key: str) -> MeterInfo | str:
        named = self.by_name.get(key.casefold(), [])
        if len(named) == 1:
            return named[0]
        if key.casefold() in self.by_other:
            return self.by_other[key.casefold()]
        if named:
            return f"names {len(named)} meters on different sites; write 'Site / Meter' or the Wattics stream id"
        return "is not a meter of this organization (no meter has this name or Wattics stream id)"


def _expects_bills(upload: Upload) -> bool:
    """A billing meter's file, or one sent to WattCarbon bills alone, is read as bills when its
    columns allow (`start,value`: each period ends at the next row's start)."""
    if upload.meter_id and upload.meter.reading_kind == ReadingKind.BILLING:
        return True
    return upload.targets == [Target.WATTCARBON_BILLS]


def _open(upload: Upload, raw) -> ParsedFile:
    from uploads.services.formats import SourceMeterLookup

    return ParsedFile(
        raw,
        column_mapping=upload.column_mapping or None,
        fixed_meter=_info(upload.meter) if upload.meter_id else None,
        resolve_meter=SourceMeterLookup(upload.organization),
        max_decompressed_bytes=max_decompressed_bytes(),
        sheet=upload.sheet,
        unit=upload.source_unit,
        naive_utc=upload.naive_times == NaiveTimes.UTC,
        expect_bills=_expects_bills(upload),
    )


# --- Create ------------------------------------------------------------------------


@audited("upload", "upload", fields=UPLOAD_AUDIT_FIELDS)
def upload_create(
    *,
    organization: Organization,
    user,
    file: File,
    meter: Meter | None,
    targets: list[str],
    run_now: bool | None = None,
    batch=None,
    sheet: str = "",
    source_unit: str = "",
    schedule: bool = True,
    naive_times: str | None = None,
) -> Upload:
    """Store the file and its fingerprint, then validate it (now if small or run_now, else in a worker).

    `batch`, `sheet` (of a workbook) and `source_unit` (of a file without a unit column) come from
    uploads.services.formats. `schedule=False`: a caller inside a transaction validates later with
    `upload_schedule_validation`, after its commit (no parsing while holding a write lock).
    `naive_times` says what timestamps without an offset are: "local" (the site's time zone)
    or "utc"; None takes the meter's default (local without a meter)."""
    if meter is not None and meter.organization_id != organization.pk:
        raise IngestError("That meter belongs to another organization.")
    if naive_times and naive_times not in NaiveTimes.values:
        raise IngestError(f"naive_times is {naive_times!r}: say 'local' (the site's time) or 'utc'.")
    if file.size > settings.UPLOAD_MAX_BYTES:
        raise IngestError(f"The file is larger than the limit of {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB.")
    quota, used = organization_quota_bytes(organization), organization_storage_used(organization)
    if used + file.size > quota:
        raise IngestError(
            f"Your organization's storage quota is reached: {filesizeformat(used)} of {filesizeformat(quota)} "
            f"used, and this file is {filesizeformat(file.size)}. Files of invalid and cancelled uploads are "
            f"deleted {settings.UPLOAD_RETENTION_DAYS} days after upload; ask an administrator for a larger quota."
        )
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    name = PurePath(file.name or "upload.csv").name[:255]
    upload = Upload(
        organization=organization,
        uploaded_by=user,
        meter=meter,
        original_name=name,
        size_bytes=file.size,
        sha256=digest.hexdigest(),
        targets=[Target(t).value for t in targets],
        batch=batch,
        sheet=sheet[:100],
        source_unit=source_unit[:16],
        naive_times=naive_times or (meter.naive_times if meter is not None else NaiveTimes.LOCAL),
    )
    upload.file.save(name, file, save=False)
    upload.save()
    # Validation runs outside any transaction: it only writes the upload's own row, in short statements.
    if schedule:
        _schedule(upload, "validate", run_now)
    return upload


def upload_schedule_validation(*, upload: Upload, run_now: bool | None = None) -> Upload:
    """Validate an upload created with `schedule=False` (now, bounded, or in a worker)."""
    _schedule(upload, "validate", run_now)
    return upload


def _schedule(upload: Upload, step: str, run_now: bool | None) -> None:
    """Run a step now (bounded by what it reads, when the caller did not ask for it) or in a worker."""
    bounded = run_now is None
    if run_now is None:
        if step == "validate":
            run_now = upload.size_bytes <= inline_max_bytes() and _expands_within(
                upload, settings.INGEST_INLINE_MAX_DECOMPRESSED_BYTES
            )
        else:
            run_now = upload.rows_total <= settings.INGEST_INLINE_MAX_ROWS
    if run_now:
        if step == "validate":
            upload_validate(upload_id=upload.pk, max_rows=settings.INGEST_INLINE_MAX_ROWS if bounded else None)
        else:
            upload_store(upload_id=upload.pk)
        upload.refresh_from_db()
        if not (step == "validate" and upload.status == UploadStatus.RECEIVED):
            return
        # Handed over: the request read its share, a worker reads the rest.
    _enqueue(upload.pk, step)


def _enqueue(upload_id: int, step: str) -> None:
    task = tasks.upload_validate_task if step == "validate" else tasks.upload_store_task
    transaction.on_commit(lambda: task.delay(upload_id))


# --- Validate ----------------------------------------------------------------------


def _neutralise(cell: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe."""
    text = str(cell)
    if text[:1] in ("=", "@", "\t", "\r") or (text[:1] in ("+", "-") and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Report:
    """The error CSV, written to a temporary file as errors come."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="")  # noqa: SIM115 - closed in save_to
        self.writer = csv.writer(self.file)
        self.writer.writerow(["line", "column", "value", "problem"])
        self.count = 0

    def add(self, error: RowError) -> None:
        self.count += 1
        if self.count <= REPORT_MAX_ROWS:
            self.writer.writerow([_neutralise(str(x)) for x in (error.line, error.column, error.value, error.problem)])

    def save_to(self, upload: Upload) -> str:
        if self.count > REPORT_MAX_ROWS:
            self.writer.writerow(["", "", "", f"… and {self.count - REPORT_MAX_ROWS:,} more errors."])
        self.file.seek(0)
        data = self.file.read().encode("utf-8")

        self.file.close()
        upload.error_report.save(f"upload-{upload.pk}-errors.csv", ContentFile(data), save=False)
        return upload.error_report.name


def _preview(row: ReadingRow | BillRow) -> dict:
    if isinstance(row, BillRow):
        return {
            "line": row.line,
            "meter": row.meter.label,
            "start_date": row.start_date.isoformat(),
            "end_date": row.end_date.isoformat(),
            "value": row.energy_kwh,
        }
    return {
        "line": row.line,
        "meter": row.meter.label,
        "ts": row.ts.isoformat(),
        "local": row.ts.astimezone(row.meter.tz).isoformat(),
        "value": row.value,
        "extra": row.extra,
    }


def _span(row: ReadingRow | BillRow) -> tuple[datetime, datetime]:
    if isinstance(row, BillRow):
        return datetime.combine(row.start_date, time(), UTC), datetime.combine(row.end_date, time(), UTC)
    return row.ts, row.ts


def _target_misfit(upload: Upload, parsed: ParsedFile) -> str:
    """Why the file's shape does not fit a chosen target, or ''. Such a file is stopped at
    review: month totals are never sent as intervals, readings never as bills."""
    again = "Cancel this upload and upload the file again with"
    interval_targets = [Target(t).label for t in upload.targets if t != Target.WATTCARBON_BILLS]
    if parsed.layout.kind == BILLS:
        if interval_targets:
            return (
                f"This file holds bills (billing periods): they go to WattCarbon bills only, never as intervals "
                f"or packets, so {' and '.join(interval_targets)} cannot take them. {again} WattCarbon bills "
                "as the only target."
            )
        return ""
    if upload.meter_id and upload.meter.reading_kind == ReadingKind.BILLING:
        return (
            f"Meter {upload.meter} holds billing periods, but this file was read as interval readings. Map its "
            "columns as bills (a start date, an end date or “end = next row's start”, and a value)."
        )
    monthly = parsed.checks.month_totals()
    if monthly and interval_targets:
        return (
            f"These readings are a month or more apart ({', '.join(monthly)}): month totals, which are never sent "
            f"as intervals or packets. {again} WattCarbon bills as the only target (or set the meter's data to "
            "billing periods): a start and a value per row are then read as bills, each ending at the next row's "
            "start."
        )
    if Target.WATTCARBON_BILLS in upload.targets:
        return (
            "This file holds interval readings; WattCarbon bills takes billing periods (start date, end date, "
            f"energy). {again} WattCarbon intervals or Wattics packets, or map the columns as bills."
        )
    return ""


def upload_validate(*, upload_id: int, max_rows: int | None = None) -> Upload:
    """Parse the stored file: counts, preview, warnings, error report. Claims RECEIVED → PARSING.

    With `max_rows` (a request checking a small file), the run gives the upload back to
    RECEIVED once it has read more rows than that: the caller then queues it for a worker."""
    claim = _claim(upload_id, source=(UploadStatus.RECEIVED,), status=UploadStatus.PARSING)
    if claim is None:
        return Upload.objects.get(pk=upload_id)
    upload = Upload.objects.select_related("meter__site", "organization").get(pk=upload_id)
    try:
        fields = _validate(upload, claim=claim, max_rows=max_rows)
    except _Stop:
        logger.info("upload %s: parsing stopped, the upload was cancelled or taken up again", upload_id)
        return Upload.objects.get(pk=upload_id)
    except _HandOver:
        claim.rows().update(status=UploadStatus.RECEIVED, claimed_at=None, heartbeat_at=None, rows_total=0, options={})
        return Upload.objects.get(pk=upload_id)
    except Exception as exc:
        logger.exception("validation of upload %s failed", upload_id)
        fields = {"status": UploadStatus.FAILED, "error": f"Validation failed unexpectedly ({type(exc).__name__})."}
    fields["validated_at"] = timezone.now()
    if not claim.rows().update(**fields):
        staging.staging_delete(upload)  # cancelled (or taken up again) as the run ended: its rows are not wanted
    upload.refresh_from_db()
    return upload


def _sample(upload: Upload, raw) -> dict:
    raw.seek(0)
    try:
        header, rows = sample_rows(raw, max_decompressed_bytes=max_decompressed_bytes(), sheet=upload.sheet)
    except FileProblem:
        return {}
    return {"header": header, "sample": rows}


def _parse_progress(upload: Upload, claim: _Claim, *, rows: int, raw) -> None:
    """Rows read so far, and the share of the (possibly compressed) file consumed."""
    percent = min(99, int(100 * raw.tell() / upload.size_bytes)) if upload.size_bytes else 0
    claim.beat(force=True, rows_total=rows, options={"progress_percent": percent})


# Rows between two looks at the clock for the heartbeat.
BEAT_EVERY_ROWS = 1000


def _validate(upload: Upload, *, claim: _Claim, max_rows: int | None = None) -> dict:
    fields: dict = {"error": "", "warnings": [], "preview": [], "error_report": ""}
    fields.update(rows_total=0, rows_valid=0, rows_invalid=0, rows_stored=0, period_start=None, period_end=None)
    if upload.error_report:
        upload.error_report.delete(save=False)
    staging.staging_delete(upload)  # validated again: the rows staged before may differ
    with upload.file.open("rb") as raw:
        try:
            parsed = _open(upload, raw)
        except FileProblem as exc:
            return fields | {"status": UploadStatus.INVALID, "error": str(exc)}
        except MappingNeeded as exc:
            options = _sample(upload, raw)
            # A mapping saved for exactly this header is applied without asking (formats).
            if formats_hooks.apply_saved_mapping(upload, options.get("header", [])):
                raw.seek(0)
                return _validate(upload, claim=claim, max_rows=max_rows)
            header = options.get("header", [])
            mapping = upload.column_mapping or formats_hooks.suggested_mapping(upload, header) or detect(header)
            return fields | {
                "status": UploadStatus.NEEDS_MAPPING,
                "error": f"The columns were not all recognised. {exc}",
                "options": options,
                "column_mapping": mapping,
            }
        report, preview = _Report(), cast(list[dict], [])
        valid = invalid = read = 0
        last_bad_line = 0
        start = end = None
        # Readings are staged as they are checked, so the store need not parse the file again.
        writer = None if parsed.layout.kind == BILLS else staging.StagingWriter(staging.staging_path(upload))
        try:
            for row in parsed.batches():
                if isinstance(row, ReadingBatch):
                    # Valid readings as arrays: counted, previewed and staged as the rows they stand for.
                    n = len(row)
                    crossed = (read + n) // BEAT_EVERY_ROWS * BEAT_EVERY_ROWS
                    if crossed > read:
                        if max_rows is not None and crossed > max_rows:
                            raise _HandOver()
                        claim.beat()
                    read += n
                    for at in range((valid // PROGRESS_EVERY_ROWS + 1) * PROGRESS_EVERY_ROWS, valid + n + 1,
                                    PROGRESS_EVERY_ROWS):  # fmt: skip
                        _parse_progress(upload, claim, rows=at + invalid, raw=raw)
                    valid += n
                    preview += [_preview(row.row(i)) for i in range(min(n, PREVIEW_ROWS - len(preview)))]
                    first, last = from_us(int(row.ts_us.min())), from_us(int(row.ts_us.max()))
                    start = first if start is None else min(start, first)
                    end = last if end is None else max(end, last)
                    if writer is not None:
                        writer.add_arrays(meter_id=row.meter_id, ts_us=row.ts_us, value=row.value)
                    continue
                read += 1
                if read % BEAT_EVERY_ROWS == 0:
                    if max_rows is not None and read > max_rows:
                        raise _HandOver()
                    claim.beat()
                if isinstance(row, RowError):
                    report.add(row)
                    if row.line != last_bad_line:
                        invalid, last_bad_line = invalid + 1, row.line
                    continue
                valid += 1
                if writer is not None and isinstance(row, ReadingRow):
                    writer.add(row)
                if valid % PROGRESS_EVERY_ROWS == 0:
                    _parse_progress(upload, claim, rows=valid + invalid, raw=raw)
                if len(preview) < PREVIEW_ROWS:
                    preview.append(_preview(row))
                first, last = _span(row)
                start = first if start is None else min(start, first)
                end = last if end is None else max(end, last)
        except FileProblem as exc:
            if writer is not None:
                writer.discard()
            return fields | {"status": UploadStatus.INVALID, "error": str(exc), "rows_valid": 0}
        except BaseException:  # _Stop, _HandOver, or a failure: nothing staged stays behind
            if writer is not None:
                writer.discard()
            raise
        options = parsed.options | _sample(upload, raw)
        mapping = parsed.mapping
    # Ids of another system (Green Button, Portfolio Manager) not yet matched to meters: ask once (formats).
    unmatched = formats_hooks.unmatched_meters(upload, parsed, options)
    if unmatched:
        report.file.close()
        if writer is not None:
            writer.discard()
        return fields | unmatched
    fields["unit_conversions"] = parsed.conversions()
    if report.count:
        fields["error_report"] = report.save_to(upload)
    misfit = _target_misfit(upload, parsed)
    fields.update(
        rows_total=valid + invalid,
        rows_valid=valid,
        rows_invalid=invalid,
        period_start=start,
        period_end=end,
        preview=preview,
        warnings=parsed.warnings(),
        options=options,
        column_mapping=mapping,
        status=UploadStatus.VALIDATED if valid and not misfit else UploadStatus.INVALID,
    )
    if writer is not None and fields["status"] == UploadStatus.VALIDATED:
        writer.close()
    elif writer is not None:
        writer.discard()  # only a validated upload is ever stored
    if misfit:
        fields["error"] = misfit
    elif not valid:
        fields["error"] = (
            "The file has a header but no data rows."
            if not invalid
            else f"No valid rows: all {invalid:,} rows have errors (see the error report)."
        )
    return fields


@audited("map", "upload", target="upload", fields=UPLOAD_AUDIT_FIELDS)
def upload_set_mapping(*, upload: Upload, mapping: dict[str, str], user, run_now: bool | None = None) -> Upload:
    """Save the user's column mapping and validate again."""
    allowed = (UploadStatus.NEEDS_MAPPING, UploadStatus.VALIDATED, UploadStatus.INVALID)
    updated = Upload.objects.filter(pk=upload.pk, status__in=allowed).update(
        column_mapping={name: role for name, role in mapping.items() if role}, status=UploadStatus.RECEIVED
    )
    if not updated:
        raise IngestError(f"This upload is {upload.get_status_display().lower()}: its columns can no longer change.")
    upload.refresh_from_db()
    formats_hooks.remember_mapping(upload)
    _schedule(upload, "validate", run_now)
    return upload


@audited("cancel", "upload", target="upload", fields=UPLOAD_AUDIT_FIELDS)
def upload_cancel(*, upload: Upload, user) -> Upload:
    """Cancel before anything is stored. A worker parsing the file stops at its next heartbeat."""
    allowed = (
        UploadStatus.VALIDATED,
        UploadStatus.NEEDS_MAPPING,
        UploadStatus.INVALID,
        UploadStatus.RECEIVED,
        UploadStatus.PARSING,
    )
    if not Upload.objects.filter(pk=upload.pk, status__in=allowed).update(status=UploadStatus.CANCELLED):
        raise IngestError(f"This upload is {upload.get_status_display().lower()}: it can no longer be cancelled.")
    staging.staging_delete(upload)
    upload.refresh_from_db()
    return upload


# --- Confirm and store ---------------------------------------------------------------


@audited("confirm", "upload", target="upload", fields=UPLOAD_AUDIT_FIELDS)
def upload_confirm(*, upload: Upload, user, run_now: bool | None = None) -> Upload:
    """The user confirmed the push: store the valid rows (now, or in a worker), then deliveries follow."""
    confirmed = Upload.objects.filter(pk=upload.pk, status=UploadStatus.VALIDATED).update(
        status=UploadStatus.STORING, claimed_at=timezone.now()
    )
    if not confirmed:
        upload.refresh_from_db()
        raise IngestError(f"This upload is {upload.get_status_display().lower()}: only a validated upload is pushed.")
    upload.refresh_from_db()
    _schedule(upload, "store", run_now)
    return upload


def upload_store(*, upload_id: int) -> Upload:
    """Write the valid rows of a STORING upload, mark it STORED, create its deliveries.

    Readings come from the staging file validation wrote (no second parse); bills, and
    uploads validated before staging existed, are parsed again. Idempotent: a task that
    runs again after a crash writes the same rows (upserts, or copies that fall back to
    upserts where rows are already there)."""
    # Claimed again (STORING → STORING with a new token): a run the sweep replaced stops at its next heartbeat.
    claim = _claim(upload_id, source=(UploadStatus.STORING,), status=UploadStatus.STORING)
    upload = Upload.objects.select_related("meter__site", "organization").get(pk=upload_id)
    if claim is None:
        return upload

    def progress(n: int) -> None:
        claim.beat(force=True, rows_stored=n)

    staged = staging.staging_path(upload)
    try:
        if staged.exists():
            # Validation staged the valid readings: stored from there, the file is not parsed again.
            readings_store.readings_store_staged(
                path=staged, upload_id=upload.pk, organization_id=upload.organization_id, progress=progress
            )
        else:
            # Bills, and uploads validated before staging existed (or whose staging file is gone).
            with upload.file.open("rb") as raw:
                parsed = _open(upload, raw)
                valid: Any = (row for row in parsed if not isinstance(row, RowError))  # bills or readings, by layout
                if parsed.layout.kind == BILLS:
                    ingest_storage.bills_upsert(rows=valid, upload_id=upload.pk)
                else:
                    ingest_storage.readings_upsert(rows=valid, upload_id=upload.pk, progress=progress)
    except _Stop:
        logger.info("upload %s: storing stopped, another run took it up", upload_id)
        return Upload.objects.get(pk=upload_id)
    except Exception as exc:
        logger.exception("storing upload %s failed", upload_id)
        if claim.rows().update(
            status=UploadStatus.FAILED, error=f"Storing the rows failed ({type(exc).__name__}); nothing was pushed."
        ):
            staging.staging_delete(upload)  # a failed upload is never stored again
        return Upload.objects.get(pk=upload_id)
    stored = Reading.objects.filter(upload=upload).count() + Bill.objects.filter(upload=upload).count()
    # One transaction: nobody sees a stored upload without its deliveries.
    with transaction.atomic():
        if claim.rows().update(status=UploadStatus.STORED, rows_stored=stored, stored_at=timezone.now()):
            upload.refresh_from_db()
            _create_deliveries(upload)
            done = True
        else:
            upload.refresh_from_db()  # another run holds it now, and needs the staged rows
            done = False
    if done:
        staging.staging_delete(upload)
    return upload


def uploads_requeue_stale(*, stale_seconds: float | None = None) -> list[int]:
    """Uploads whose worker died while parsing or storing, started again.

    A live run touches the heartbeat every INGEST_HEARTBEAT_SECONDS, so an upload whose
    heartbeat (or claim, before the first beat) is older than `stale_seconds` has no live
    worker. Parsing starts over (it writes only the upload row and its report); storing
    runs again (its rows are upserts). Either way the new claim time ends the old claim."""
    stale_seconds = settings.INGEST_STALE_SECONDS if stale_seconds is None else stale_seconds
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_seconds)
    stale = (
        Q(heartbeat_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, claimed_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, claimed_at__isnull=True)
    )
    requeued = []
    for upload_id, status in Upload.objects.filter(
        stale, status__in=[UploadStatus.PARSING, UploadStatus.STORING]
    ).values_list("pk", "status"):
        if status == UploadStatus.PARSING:
            # Back to RECEIVED so the validate task can claim it again.
            if Upload.objects.filter(stale, pk=upload_id, status=status).update(
                status=UploadStatus.RECEIVED, claimed_at=now, heartbeat_at=None
            ):
                tasks.upload_validate_task.delay(upload_id)
                requeued.append(upload_id)
        elif Upload.objects.filter(stale, pk=upload_id, status=status).update(claimed_at=now, heartbeat_at=now):
            tasks.upload_store_task.delay(upload_id)
            requeued.append(upload_id)
    requeued += _resend_waiting(now)
    if requeued:
        logger.warning("restarted %d stale uploads: %s", len(requeued), requeued[:50])
    return requeued


def _resend_waiting(now: datetime) -> list[int]:
    """Uploads still RECEIVED long after their validate task was sent get it again: the broker
    may have lost the message. The send time is `claimed_at` (set by each resend and by the
    sweep's hand-back), else the upload's creation; the conditional update sends it once."""
    cutoff = now - timedelta(seconds=settings.INGEST_RESEND_SECONDS)
    waiting = Q(claimed_at__lt=cutoff) | Q(claimed_at__isnull=True, created_at__lt=cutoff)
    resent = []
    for upload_id in Upload.objects.filter(waiting, status=UploadStatus.RECEIVED).values_list("pk", flat=True):
        if Upload.objects.filter(waiting, pk=upload_id, status=UploadStatus.RECEIVED).update(claimed_at=now):
            tasks.upload_validate_task.delay(upload_id)
            resent.append(upload_id)
    return resent


def _create_deliveries(upload: Upload) -> None:
    from uploads.services.deliveries import deliveries_create_for_upload

    try:
        with transaction.atomic():  # a savepoint: a failure here leaves the stored rows in place
            deliveries_create_for_upload(upload=upload)
    except Exception as exc:
        # The rows are stored either way; the push can be started again from the upload's page.
        logger.exception("creating deliveries for upload %s failed", upload.pk)
        message = f"The rows are stored, but the pushes could not be queued ({type(exc).__name__})."
        Upload.objects.filter(pk=upload.pk).update(error=message)
        upload.error = message


# --- Retention -------------------------------------------------------------------------

PURGED_STATUSES = (UploadStatus.INVALID, UploadStatus.CANCELLED)


def uploads_purge_expired(*, days: int | None = None) -> list[int]:
    """Delete the files (and error reports) of invalid and cancelled uploads older than `days`.

    The upload row stays, marked purged, so the list still tells what was sent and why it
    was refused; its bytes no longer count against the organization's quota. Claimed row
    by row, so two sweeps never delete the same file twice."""
    days = settings.UPLOAD_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    purged = []
    expired = Upload.objects.filter(status__in=PURGED_STATUSES, purged_at__isnull=True, created_at__lt=cutoff)
    for upload in expired.only("pk", "file", "error_report").iterator():
        if not Upload.objects.filter(pk=upload.pk, purged_at__isnull=True).update(purged_at=timezone.now()):
            continue
        for field in (upload.file, upload.error_report):
            if field:
                field.storage.delete(field.name)
        staging.staging_delete(upload)
        Upload.objects.filter(pk=upload.pk).update(file="", error_report="")
        purged.append(upload.pk)
    if purged:
        logger.info("deleted the files of %d expired uploads", len(purged))
    return purged
