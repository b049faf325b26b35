from django.http import HttpRequest

from accounts.models import Membership, Organization

SESSION_KEY = "organization_id"


def user_memberships(request: HttpRequest) -> list[Membership]:
    """The user's memberships (with their organizations, by name), read once per request."""
    memberships = getattr(request, "_memberships", None)
    if memberships is None:
        memberships = []
        if request.user.is_authenticated:
            memberships = list(
                Membership.objects.filter(user=request.user)
                .select_related("organization")
                .order_by("organization__name")
            )
        request._memberships = memberships
    return memberships


def current_organization(request: HttpRequest) -> Organization | None:
    """The organization chosen in the switcher, or the user's first."""
    orgs = [m.organization for m in user_memberships(request)]
    chosen = request.session.get(SESSION_KEY)
    return next((o for o in orgs if o.pk == chosen), orgs[0] if orgs else None)


class CurrentOrganizationMiddleware:
    """Sets request.organization: the one chosen in the switcher, or the user's first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        request.organization = current_organization(request)
        return self.get_response(request)
