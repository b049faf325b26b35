from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import Role
from accounts.permissions import current_org_or_404, require_role
from audit.filters import AuditFilter
from audit.selectors import audit_actors_for_org, audit_events_for_org

PAGE_SIZE = 50


def events(request: HttpRequest) -> HttpResponse:
    """The organization's audit trail, read-only and filterable. Only owners see it."""
    org = current_org_or_404(request)
    require_role(request, org, Role.OWNER)
    filter_ = AuditFilter(
        request.GET, queryset=audit_events_for_org(organization=org), actors=audit_actors_for_org(organization=org)
    )
    # A bad filter is shown as such (400) and filters nothing.
    valid = filter_.is_valid()
    page = Paginator(filter_.qs if valid else filter_.queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    status = 200 if valid else 400
    return render(request, "audit/events.html", {"filter": filter_, "page": page, "org": org}, status=status)
