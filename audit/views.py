from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import Role
from accounts.permissions import current_org_or_404, require_role
from audit.forms import AuditFilterForm
from audit.selectors import audit_actors_for_org, audit_events_for_org

PAGE_SIZE = 50


def events(request: HttpRequest) -> HttpResponse:
    """The organization's audit trail, read-only and filterable. Only owners see it."""
    org = current_org_or_404(request)
    require_role(request, org, Role.OWNER)
    form = AuditFilterForm(request.GET or None, actors=audit_actors_for_org(organization=org))
    filters = {}
    if form.is_bound and form.is_valid():
        filters = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
        if "actor" in filters:
            filters["actor_id"] = filters.pop("actor")
    rows = audit_events_for_org(organization=org, **filters)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = {k: request.GET.get(k, "") for k in form.fields if request.GET.get(k)}
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(
        request, "audit/events.html", {"form": form, "page": page, "filters": query, "org": org}, status=status
    )
