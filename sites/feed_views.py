"""The coverage page: meters × days, the share of expected readings stored and delivered."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.permissions import current_org_or_404
from sites.feeds import coverage_for_org, feeds_for_org

DAY_CHOICES = (7, 14, 30, 60)


def coverage(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request)
    days = int(request.GET.get("days", 14)) if request.GET.get("days", "14").isdigit() else 14
    days = days if days in DAY_CHOICES else 14
    context = {
        "coverage": coverage_for_org(organization=org, days=days),
        "feeds": list(feeds_for_org(organization=org)),
        "days": days,
        "day_choices": DAY_CHOICES,
    }
    return render(request, "feeds/coverage.html", context)
