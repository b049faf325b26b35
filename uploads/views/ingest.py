"""Ingest pages: new upload, column mapping, review (with its polled status), confirm,
cancel, and the error report. Viewers may look; operators and owners may act."""

import csv
import io

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import current_org_or_404, membership_for, object_or_404
from uploads.forms import MappingForm, UploadForm
from uploads.models import Target, Upload, UploadStatus
from uploads.services.ingest import IngestError, upload_cancel, upload_confirm, upload_create, upload_set_mapping
from uploads.views import formats

BUSY = (UploadStatus.RECEIVED, UploadStatus.PARSING, UploadStatus.STORING)
ERRORS_SHOWN = 20
# Room for the multipart envelope and the other fields around the file.
FORM_OVERHEAD_BYTES = 64 * 1024


def _uploads(request: HttpRequest):
    return Upload.objects.select_related("meter__site", "organization", "uploaded_by")


def upload_new(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request, change=True)
    too_big = int(request.META.get("CONTENT_LENGTH") or 0) > settings.UPLOAD_MAX_BYTES + FORM_OVERHEAD_BYTES
    if request.method == "POST" and too_big:
        # Refuse before Django reads the body to a temporary file.
        limit = filesizeformat(settings.UPLOAD_MAX_BYTES)
        error = f"The file is larger than the limit of {limit}. Split it, or compress it with gzip."
        context = {"form": UploadForm(organization=org), "error": error}
        return render(request, "uploads/ingest/new.html", context, status=413)
    initial = {"meter": request.GET["meter"]} if request.GET.get("meter", "").isdigit() else {}
    form = UploadForm(request.POST or None, request.FILES or None, organization=org, initial=initial)
    if request.method == "POST" and form.is_valid() and formats.is_batch(form):
        # Several files, or a zip: one upload per file, in one batch (uploads.views.formats).
        response = formats.create_batch(request, org, form)
        if response is not None:
            return response
    elif request.method == "POST" and form.is_valid():
        try:
            upload = upload_create(
                organization=org,
                user=request.user,
                file=form.cleaned_data["file"],
                meter=form.cleaned_data["meter"],
                targets=form.cleaned_data["targets"],
                sheet=form.cleaned_data.get("sheet", ""),
                source_unit=form.cleaned_data.get("source_unit", ""),
                naive_times=form.cleaned_data["naive_times"] or None,
            )
        except IngestError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("uploads:review", pk=upload.pk)
    return render(request, "uploads/ingest/new.html", {"form": form})


def _error_sample(upload: Upload) -> list[list[str]]:
    if not upload.error_report:
        return []
    rows = []
    with upload.error_report.open("rb") as f:
        reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8", newline=""))
        next(reader, None)
        for row in reader:
            rows.append(row)
            if len(rows) >= ERRORS_SHOWN:
                break
    return rows


def upload_review(request: HttpRequest, pk: int) -> HttpResponse:
    upload = object_or_404(request, _uploads(request), pk=pk)
    can_act = membership_for(request, upload.organization).allows(Role.OPERATOR)
    context = {
        "upload": upload,
        "busy": upload.status in BUSY,
        "can_act": can_act,
        "errors": _error_sample(upload),
        "electrical": any(row.get("extra") for row in upload.preview),
        "push_blockers": _push_blockers(upload),
    }
    return render(request, "uploads/ingest/review.html", context)


def _push_blockers(upload: Upload) -> list[str]:
    """What would make a push of this upload's meter fail at once: said before the confirm, not after."""
    meter, targets = upload.meter, set(upload.targets)
    if meter is None:
        return []
    blockers = []
    if {Target.WATTCARBON_INTERVALS, Target.WATTCARBON_BILLS} & targets and not meter.wattcarbon_id:
        blockers.append(
            "is not synced to WattCarbon yet: its WattCarbon push would fail. Sync it on its page first, "
            "or push now and retry the failed delivery after the sync."
        )
    if Target.WATTICS in targets and not meter.wattics_stream_id:
        blockers.append(
            "has no Wattics data stream id: its Wattics push would fail. Set one on its page first, "
            "or push now and retry the failed delivery afterwards."
        )
    return blockers


def upload_review_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The polled part of the review page; once the work is done, htmx reloads the page."""
    upload = object_or_404(request, _uploads(request), pk=pk)
    response = render(request, "uploads/ingest/_status.html", {"upload": upload, "busy": upload.status in BUSY})
    if upload.status not in BUSY and request.headers.get("HX-Request"):
        if upload.status == UploadStatus.STORED:
            # Stored: the pushes are under way, and their progress is on the detail page.
            response["HX-Redirect"] = reverse("uploads:detail", args=[upload.pk])
        else:
            response["HX-Refresh"] = "true"
    return response


@require_POST
def upload_confirm_view(request: HttpRequest, pk: int) -> HttpResponse:
    upload = object_or_404(request, _uploads(request), pk=pk, change=True)
    try:
        upload = upload_confirm(upload=upload, user=request.user)
    except IngestError as exc:
        messages.error(request, str(exc))
        return redirect("uploads:review", pk=pk)
    if upload.status == UploadStatus.STORED:
        messages.success(request, f"{upload.rows_stored:,} rows stored; the pushes are queued.")
        return redirect("uploads:detail", pk=pk)
    return redirect("uploads:review", pk=pk)


@require_POST
def upload_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    upload = object_or_404(request, _uploads(request), pk=pk, change=True)
    try:
        upload_cancel(upload=upload, user=request.user)
    except IngestError as exc:
        messages.error(request, str(exc))
        return redirect("uploads:review", pk=pk)
    messages.info(request, f"Upload of {upload.original_name} cancelled: nothing was pushed.")
    return redirect("uploads:list")


def upload_mapping(request: HttpRequest, pk: int) -> HttpResponse:
    upload = object_or_404(request, _uploads(request), pk=pk, change=True)
    if not upload.options.get("header"):
        raise Http404("This file has no header to map.")
    form = MappingForm(request.POST or None, upload=upload)
    if request.method == "POST" and form.is_valid():
        try:
            upload_set_mapping(upload=upload, mapping=form.mapping, user=request.user)
        except IngestError as exc:
            messages.error(request, str(exc))
        return redirect("uploads:review", pk=pk)
    return render(request, "uploads/ingest/mapping.html", {"upload": upload, "form": form})


def upload_errors_csv(request: HttpRequest, pk: int) -> FileResponse:
    upload = object_or_404(request, Upload.objects.all(), pk=pk)
    if not upload.error_report:
        raise Http404("This upload has no error report.")
    response = FileResponse(
        upload.error_report.open("rb"), as_attachment=True, filename=f"{upload.original_name}-errors.csv"
    )
    response["Content-Type"] = "text/csv; charset=utf-8"
    return response
