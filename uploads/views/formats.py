"""Pages of the other formats: a batch of files, matching another system's meters, the accepted
formats page and its templates. Viewers may look; operators and owners may act."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import current_org_or_404, membership_for, object_or_404
from uploads.format_templates import TEMPLATES
from uploads.forms import MeterMatchForm
from uploads.models import Upload, UploadBatch, UploadStatus
from uploads.parsing.units import UNITS
from uploads.services.formats import batch_create, batch_status, upload_set_source_meters
from uploads.services.ingest import IngestError, upload_confirm


def is_batch(form) -> bool:
    """Several files, or a zip that is not a workbook, make a batch."""
    import zipfile

    if form.cleaned_data.get("more_files"):
        return True
    file = form.cleaned_data["file"]
    head = file.read(4)
    file.seek(0)
    if not head.startswith(b"PK\x03\x04"):
        return False
    try:
        workbook = "xl/workbook.xml" in zipfile.ZipFile(file).namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        workbook = False
    file.seek(0)
    return not workbook


def create_batch(request: HttpRequest, org, form) -> HttpResponse | None:
    """The batch of the form's files; None (with the form's error set) when it is refused."""
    data = form.cleaned_data
    try:
        batch = batch_create(
            organization=org,
            user=request.user,
            files=[data["file"]] + list(data.get("more_files") or []),
            meter=data["meter"],
            targets=data["targets"],
            sheet=data.get("sheet", ""),
            source_unit=data.get("source_unit", ""),
            naive_times=data.get("naive_times") or None,
        )
    except IngestError as exc:
        form.add_error(None, str(exc))
        return None
    return redirect("uploads:batch", pk=batch.pk)


def _batches(request: HttpRequest):
    return UploadBatch.objects.select_related("organization", "created_by")


def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = object_or_404(request, _batches(request), pk=pk)
    status = batch_status(batch=batch)
    context = {
        "batch": batch,
        "uploads": batch.uploads.select_related("meter__site").order_by("id"),
        "status": status,
        "busy": status["code"] == "busy",
        "can_act": membership_for(request, batch.organization).allows(Role.OPERATOR),
    }
    partial = request.headers.get("HX-Request")
    return render(request, f"uploads/formats/{'_batch_status' if partial else 'batch'}.html", context)


@require_POST
def batch_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    batch = object_or_404(request, _batches(request), pk=pk, change=True)
    pushed = 0
    # Oldest data first: pushes are queued in that order (Wattics keeps only packets newer than its latest).
    for upload in batch.uploads.filter(status=UploadStatus.VALIDATED).order_by("period_start", "id"):
        try:
            upload_confirm(upload=upload, user=request.user)
            pushed += 1
        except IngestError as exc:
            messages.error(request, f"{upload.original_name}: {exc}")
    messages.success(request, f"{pushed} file{'s' if pushed != 1 else ''} confirmed; the pushes follow.")
    return redirect("uploads:batch", pk=pk)


def upload_meters(request: HttpRequest, pk: int) -> HttpResponse:
    """Match each meter id of another system in the file to a meter; remembered for the next file."""
    upload = object_or_404(request, Upload.objects.select_related("organization"), pk=pk, change=True)
    if not upload.options.get("meter_keys"):
        return redirect("uploads:review", pk=pk)  # nothing (left) to match
    form = MeterMatchForm(request.POST or None, upload=upload)
    if request.method == "POST" and form.is_valid():
        try:
            upload_set_source_meters(upload=upload, choices=form.choices, user=request.user)
        except IngestError as exc:
            messages.error(request, str(exc))
        return redirect("uploads:review", pk=pk)
    series = {s["key"]: s for s in upload.options.get("series", [])}
    return render(request, "uploads/formats/meters.html", {"upload": upload, "form": form, "series": series})


def formats_page(request: HttpRequest) -> HttpResponse:
    current_org_or_404(request)
    return render(request, "uploads/formats/formats.html", {"templates": TEMPLATES.values(), "units": UNITS})


def format_template(request: HttpRequest, name: str) -> HttpResponse:
    current_org_or_404(request)
    template = TEMPLATES[name]
    response = HttpResponse(template.build(), content_type=template.content_type)
    response["Content-Disposition"] = f'attachment; filename="{template.name}"'
    return response
