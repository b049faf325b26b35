from django.http import HttpRequest

from accounts.models import Organization

SESSION_KEY = "organization_id"


def current_organization(request: HttpRequest) -> Organization | None:
    if not request.user.is_authenticated:
        return None
    orgs = Organization.objects.filter(memberships__user=request.user).order_by("name")
    chosen = request.session.get(SESSION_KEY)
    if chosen is not None:
        org = orgs.filter(pk=chosen).first()
        if org is not None:
            return org
    return orgs.first()


class CurrentOrganizationMiddleware:
    """Sets request.organization: the one chosen in the switcher, or the user's first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        request.organization = current_organization(request)
        return self.get_response(request)
