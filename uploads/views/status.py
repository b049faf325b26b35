"""Upload status pages: the list of an organization's uploads, and one upload's
facts, deliveries and HTTP exchanges. Read-only; actions post to uploads.views.actions."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from accounts.models import Role
from accounts.permissions import current_org_or_404, membership_for, object_or_404
from uploads import selectors
from uploads.filters import UploadFilter
from uploads.models import ACTIVE_DELIVERY_STATUSES, Delivery, Upload

UPLOADS_PER_PAGE = 25
DELIVERIES_PER_PAGE = 25
EXCHANGES_PER_PAGE = 20


def upload_list(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request)
    sort = request.GET.get("sort", selectors.DEFAULT_UPLOAD_SORT)
    if sort not in selectors.UPLOAD_SORTS:
        sort = selectors.DEFAULT_UPLOAD_SORT
    uploads = selectors.uploads_for_org(organization=org, sort=sort)
    filter_ = UploadFilter(request.GET, queryset=uploads, organization=org)
    page = Paginator(filter_.qs, UPLOADS_PER_PAGE).get_page(request.GET.get("page"))
    summaries = selectors.delivery_summaries(upload_ids=[u.pk for u in page.object_list])
    for upload in page.object_list:
        upload.target_summaries = summaries.get(upload.pk, [])
    # The filter part of the query string, kept by sort links and page links.
    params = request.GET.copy()
    params.pop("page", None)
    params.pop("sort", None)
    columns = [("created", "Uploaded"), ("name", "File"), ("rows", "Rows"), ("status", "Status")]
    return render(
        request,
        "uploads/status/list.html",
        {
            "org": org,
            "filter": filter_,
            "page": page,
            "sort": sort,
            "filter_query": params.urlencode(),
            "filtered": any(v for k, v in request.GET.items() if k not in ("page", "sort")),
            "sort_columns": [
                {"key": key, "label": label, "active": sort.lstrip("-") == key, "desc": sort == f"-{key}"}
                for key, label in columns
            ],
        },
    )


def _can_act(request: HttpRequest, upload: Upload) -> bool:
    # The upload may belong to another of the user's organizations than the current one.
    return membership_for(request, upload.organization).allows(Role.OPERATOR)


def _progress_context(request: HttpRequest, upload: Upload) -> dict:
    page = Paginator(selectors.deliveries_for_upload(upload=upload), DELIVERIES_PER_PAGE).get_page(
        request.GET.get("dpage")
    )
    deliveries = selectors.with_progress(list(page.object_list))
    return {
        "upload": upload,
        "deliveries": deliveries,
        "delivery_page": page,
        "any_active": any(d.status in ACTIVE_DELIVERY_STATUSES for d in deliveries),
        "can_act": _can_act(request, upload),
    }


def _upload_or_404(request: HttpRequest, pk: int) -> Upload:
    return object_or_404(request, Upload.objects.select_related("organization", "uploaded_by", "meter__site"), pk=pk)


def upload_detail(request: HttpRequest, pk: int) -> HttpResponse:
    upload = _upload_or_404(request, pk)
    context = _progress_context(request, upload)
    return render(request, "uploads/status/detail.html", context)


def upload_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The deliveries section alone, polled by the detail page while a push runs."""
    upload = _upload_or_404(request, pk)
    return render(request, "uploads/status/_progress.html", _progress_context(request, upload))


def delivery_exchanges(request: HttpRequest, pk: int, delivery_pk: int) -> HttpResponse:
    """One page of a delivery's HTTP exchanges, as a partial for the detail page."""
    upload = _upload_or_404(request, pk)
    delivery = get_object_or_404(Delivery, upload=upload, pk=delivery_pk)
    status = request.GET.get("status", "")
    status = status if status in dict(selectors.EXCHANGE_FILTERS) else ""
    page = Paginator(selectors.exchanges_for_delivery(delivery=delivery, status=status), EXCHANGES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "upload": upload,
        "delivery": delivery,
        "page": page,
        "status": status,
        "exchange_filters": selectors.EXCHANGE_FILTERS,
    }
    return render(request, "uploads/status/_exchanges.html", context)
