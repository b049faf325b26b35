"""Sites, meters and devices: list, detail, create, edit, delete, and "Sync to WattCarbon".

Lists show the current organization's rows; a row of another organization is a 404.
Viewers read everything; a change (any POST, and the create/edit/delete pages) needs an operator.
"""

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import Model
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_filters import FilterSet

from accounts.models import Role
from accounts.permissions import current_org_or_404, membership_for, object_or_404
from sites import selectors
from sites.documents import DOCUMENT_FORMATS, MAX_DOCUMENT_BYTES
from sites.filters import DeviceFilter, MeterFilter, SiteFilter
from sites.forms import (
    COMMON_TIMEZONES,
    DeviceDocumentForm,
    DeviceForm,
    MeterForm,
    SiteForm,
)
from sites.methodologies import METHODOLOGIES, get_methodology
from sites.models import Device, Meter, Site
from sites.services import crud, sync

PAGE_SIZE = 25
M = TypeVar("M", bound=Model)


def _page(request: HttpRequest, queryset) -> Page:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _can_change(request: HttpRequest, obj) -> bool:
    return membership_for(request, obj.organization).allows(Role.OPERATOR)


def _apply_errors(form: BaseForm, exc: ValidationError) -> None:
    """A service's ValidationError onto the form, next to its fields when the form has them."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _save(request: HttpRequest, form: BaseForm, save: Callable[[], M]) -> M | None:
    """On a valid POST, run the service and return what it saved; its ValidationError goes
    onto the form instead (None: show the form again)."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        return save()
    except ValidationError as exc:
        _apply_errors(form, exc)
        return None


def _confirm_delete(request: HttpRequest, obj, *, what: str, consequences: list[str]) -> HttpResponse:
    cancel_url = reverse(f"sites:{what}_detail", args=[obj.pk])
    context = {"object": obj, "what": what, "consequences": consequences, "cancel_url": cancel_url}
    return render(request, "sites/confirm_delete.html", context)


def _sync_queued(request: HttpRequest, obj, *, queued: bool, what: str) -> HttpResponse:
    if queued:
        messages.info(request, "Sync to WattCarbon queued.")
    else:
        messages.warning(request, f"This {what} is being synced right now.")
    return redirect(f"sites:{what}_detail", pk=obj.pk)


# ----- Sites -------------------------------------------------------------------------------


def _list(request: HttpRequest, template: str, filter_: FilterSet, **extra) -> HttpResponse:
    """A page of the filtered rows. A bad filter (a site that is not a number of this
    organization's) is a 400 that shows the filter's error over the unfiltered list."""
    valid = filter_.is_valid()
    page = _page(request, filter_.qs if valid else filter_.queryset)
    return render(request, template, {"page": page, "filter": filter_, **extra}, status=200 if valid else 400)


def site_list(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request)
    return _list(
        request, "sites/site_list.html", SiteFilter(request.GET, queryset=selectors.sites_for_org(organization=org))
    )


def site_detail(request: HttpRequest, pk: int) -> HttpResponse:
    site = object_or_404(request, Site.objects.all(), pk=pk)
    context = {
        "site": site,
        "meters": site.meters.all(),
        "devices": site.devices.all(),
        "can_change": _can_change(request, site),
    }
    return render(request, "sites/site_detail.html", context)


def site_create(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request, change=True)
    form = SiteForm(request.POST or None, organization=org)
    if site := _save(request, form, lambda: crud.site_create(organization=org, **form.cleaned_data)):
        messages.success(request, f"Site {site.name} created.")
        return redirect("sites:site_detail", pk=site.pk)
    return render(request, "sites/site_form.html", {"form": form, "timezones": COMMON_TIMEZONES})


def site_edit(request: HttpRequest, pk: int) -> HttpResponse:
    site = object_or_404(request, Site.objects.all(), change=True, pk=pk)
    form = SiteForm(request.POST or None, instance=site, organization=site.organization)
    if _save(request, form, lambda: crud.site_update(site=site, **form.cleaned_data)):
        messages.success(request, "Site saved.")
        return redirect("sites:site_detail", pk=site.pk)
    return render(request, "sites/site_form.html", {"form": form, "site": site, "timezones": COMMON_TIMEZONES})


def site_delete(request: HttpRequest, pk: int) -> HttpResponse:
    site = object_or_404(request, Site.objects.all(), change=True, pk=pk)
    if request.method == "POST":
        crud.site_delete(site=site)
        messages.success(request, f"Site {site.name} deleted.")
        return redirect("sites:site_list")
    consequences = [f"{site.meters.count()} meter(s)", f"{site.devices.count()} device(s)"]
    return _confirm_delete(request, site, what="site", consequences=consequences)


# ----- Meters ------------------------------------------------------------------------------


def meter_list(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request)
    filter_ = MeterFilter(request.GET, queryset=selectors.meters_for_org(organization=org), organization=org)
    return _list(request, "sites/meter_list.html", filter_)


def meter_detail(request: HttpRequest, pk: int) -> HttpResponse:
    meter = object_or_404(request, Meter.objects.select_related("site"), pk=pk)
    context = {
        "meter": meter,
        "devices": meter.devices.all(),
        "exchanges": selectors.exchanges_for(meter=meter),
        "can_change": _can_change(request, meter),
        "other_errors": dict(meter.wattcarbon_field_errors or {}),
    }
    return render(request, "sites/meter_detail.html", context)


def _sync_card(request: HttpRequest, obj, *, what: str) -> HttpResponse:
    """The WattCarbon card alone, polled by htmx while a sync is pending or running."""
    errors = dict(obj.wattcarbon_field_errors or {})
    if what == "device":
        # The device page shows these beside their fields; the card lists only the others.
        methodology = METHODOLOGIES.get(obj.kind)
        shown = set(_COMMON_KEYS) | {spec.name for spec in (methodology.fields if methodology else ())}
        errors = {key: message for key, message in errors.items() if key not in shown}
    context = {
        "obj": obj,
        "sync_url": reverse(f"sites:{what}_sync", args=[obj.pk]),
        "card_url": reverse(f"sites:{what}_sync_card", args=[obj.pk]),
        "exchanges": selectors.exchanges_for(**{what: obj}),
        "can_change": _can_change(request, obj),
        "other_errors": errors,
    }
    return render(request, "sites/_sync_card.html", context)


def meter_sync_card(request: HttpRequest, pk: int) -> HttpResponse:
    return _sync_card(request, object_or_404(request, Meter.objects.select_related("site"), pk=pk), what="meter")


def device_sync_card(request: HttpRequest, pk: int) -> HttpResponse:
    return _sync_card(request, object_or_404(request, Device.objects.select_related("site"), pk=pk), what="device")


def meter_create(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request, change=True)
    initial = {"site": request.GET.get("site")} if request.GET.get("site") else None
    form = MeterForm(request.POST or None, organization=org, initial=initial)
    if meter := _save(request, form, lambda: crud.meter_create(organization=org, **form.cleaned_data)):
        messages.success(request, f"Meter {meter.name} created.")
        return redirect("sites:meter_detail", pk=meter.pk)
    return render(request, "sites/meter_form.html", {"form": form})


def meter_edit(request: HttpRequest, pk: int) -> HttpResponse:
    meter = object_or_404(request, Meter.objects.all(), change=True, pk=pk)
    stored_password = bool(meter.wattics_password)
    form = MeterForm(request.POST or None, instance=meter, organization=meter.organization)
    if _save(request, form, lambda: crud.meter_update(meter=meter, **form.cleaned_data)):
        messages.success(request, "Meter saved.")
        return redirect("sites:meter_detail", pk=meter.pk)
    return render(request, "sites/meter_form.html", {"form": form, "meter": meter, "stored_password": stored_password})


def meter_delete(request: HttpRequest, pk: int) -> HttpResponse:
    meter = object_or_404(request, Meter.objects.select_related("site"), change=True, pk=pk)
    if request.method == "POST":
        crud.meter_delete(meter=meter)
        messages.success(request, f"Meter {meter.name} deleted.")
        return redirect("sites:meter_list")
    consequences = [f"{meter.readings.count()} stored reading(s)", "its upload deliveries"]
    return _confirm_delete(request, meter, what="meter", consequences=consequences)


@require_POST
def meter_sync(request: HttpRequest, pk: int) -> HttpResponse:
    meter = object_or_404(request, Meter.objects.all(), change=True, pk=pk)
    return _sync_queued(request, meter, queued=sync.meter_sync_request(meter=meter), what="meter")


# ----- Devices -----------------------------------------------------------------------------


def device_list(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request)
    filter_ = DeviceFilter(request.GET, queryset=selectors.devices_for_org(organization=org), organization=org)
    labels = {m.kind: m.label for m in METHODOLOGIES.values()}
    return _list(request, "sites/device_list.html", filter_, kind_labels=labels)


def device_detail(request: HttpRequest, pk: int) -> HttpResponse:
    device = object_or_404(request, Device.objects.select_related("site"), pk=pk)
    methodology = get_methodology(device.kind)
    vendor_errors = dict(device.wattcarbon_field_errors or {})
    kind_rows = []
    if methodology is not None:
        for spec in methodology.fields:
            value = device.fields.get(spec.name)
            # A choice shows its label ("Natural gas"), not the value sent to WattCarbon.
            value = dict(spec.choices).get(value, value) if spec.choices else value
            kind_rows.append({"spec": spec, "value": value, "error": vendor_errors.pop(spec.name, "")})
    context = {
        "device": device,
        "methodology": methodology,
        "kind_rows": kind_rows,
        # WattCarbon keys of the common fields, to show the vendor's errors beside them.
        "common_errors": {key: vendor_errors.pop(key, "") for key in _COMMON_KEYS},
        "other_errors": vendor_errors,
        "meters": device.meters.select_related("site"),
        "preflight": selectors.device_preflight(device=device),
        "exchanges": selectors.exchanges_for(device=device),
        "can_change": _can_change(request, device),
        "document_formats": [DOCUMENT_FORMATS[t] for t in (methodology.documents if methodology else ())],
        "documents": device.documents.all()[:20],
    }
    return render(request, "sites/device_detail.html", context)


_COMMON_KEYS = (
    "name",
    "customId",
    "location",
    "utility",
    "deviceOwner",
    "meterIds",
    "commencedOperationDate",
    "kind",
    "externalRegistryName",
    "externalRegistryDeviceId",
)


def _device_form_page(request: HttpRequest, org, device: Device | None) -> HttpResponse:
    """Create and edit: "Show fields" (no JavaScript) re-renders for the chosen kind, keeping the data."""
    if request.method == "POST" and "_show_fields" in request.POST:
        kept: dict[str, object] = {
            key: request.POST.get(key) for key in request.POST if key not in ("csrfmiddlewaretoken", "_show_fields")
        }
        kept["meters"] = request.POST.getlist("meters")
        form = DeviceForm(organization=org, instance=device, initial=kept)
    else:
        initial = {"site": request.GET.get("site")} if request.GET.get("site") else None
        form = DeviceForm(
            request.POST or None, organization=org, instance=device, kind=request.GET.get("kind", ""), initial=initial
        )
        if device is None:
            saved = _save(request, form, lambda: crud.device_create(organization=org, **form.service_kwargs()))
            done = f"Device {saved.name} created." if saved else ""
        else:
            saved = _save(request, form, lambda: crud.device_update(device=device, **form.service_kwargs()))
            done = "Device saved."
        if saved:
            messages.success(request, done)
            return redirect("sites:device_detail", pk=saved.pk)
    return render(request, "sites/device_form.html", {"form": form, "device": device})


def device_create(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request, change=True)
    return _device_form_page(request, org, None)


def device_edit(request: HttpRequest, pk: int) -> HttpResponse:
    device = object_or_404(request, Device.objects.select_related("site"), change=True, pk=pk)
    return _device_form_page(request, device.organization, device)


def device_kind_fields(request: HttpRequest) -> HttpResponse:
    """The field block of one kind, swapped into the device form by htmx."""
    org = current_org_or_404(request, change=True)
    form = DeviceForm(organization=org, kind=request.GET.get("kind", ""))
    return render(request, "sites/_device_kind_fields.html", {"form": form})


def device_delete(request: HttpRequest, pk: int) -> HttpResponse:
    device = object_or_404(request, Device.objects.select_related("site"), change=True, pk=pk)
    if request.method == "POST":
        crud.device_delete(device=device)
        messages.success(request, f"Device {device.name} deleted.")
        return redirect("sites:device_list")
    consequences = ["the device in the portal (not at WattCarbon)"]
    return _confirm_delete(request, device, what="device", consequences=consequences)


@require_POST
def device_sync(request: HttpRequest, pk: int) -> HttpResponse:
    device = object_or_404(request, Device.objects.all(), change=True, pk=pk)
    return _sync_queued(request, device, queued=sync.device_sync_request(device=device), what="device")


@require_POST
def device_document_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload a document of the device's WattCarbon asset (e.g. demand-response events)."""
    device = object_or_404(request, Device.objects.all(), change=True, pk=pk)
    form = DeviceDocumentForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a CSV file to upload.")
        return redirect("sites:device_detail", pk=device.pk)
    upload = form.cleaned_data["file"]
    try:
        sync.device_document_create(
            device=device,
            document_type=form.cleaned_data["document_type"],
            filename=upload.name,
            raw=upload.read(MAX_DOCUMENT_READ),
        )
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, f"{upload.name} queued for WattCarbon.")
    return redirect("sites:device_detail", pk=device.pk)


# One byte more than the service takes, so it can say the file is too large.
MAX_DOCUMENT_READ = MAX_DOCUMENT_BYTES + 1
