from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.permissions import current_org_or_404


def home(request: HttpRequest) -> HttpResponse:
    """The organization's home dashboard."""
    org = current_org_or_404(request)
    return render(request, "dashboard/home.html", {"org": org})
