"""Organization scoping for views.

Every object the portal stores belongs to one organization. A view fetches
objects only through these helpers: an object of an organization the user is not
a member of is a 404 (its existence is not revealed), and a change by a member
whose role is too low is a 403.
"""

from typing import TypeVar

from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from accounts.middleware import user_memberships
from accounts.models import Membership, Organization, Role

M = TypeVar("M", bound=Model)


def membership_for(request: HttpRequest, organization: Organization) -> Membership:
    membership = next((m for m in user_memberships(request) if m.organization_id == organization.pk), None)
    if membership is None:
        raise Http404("No such object.")
    return membership


def require_role(request: HttpRequest, organization: Organization, role: str) -> Membership:
    membership = membership_for(request, organization)
    if not membership.allows(role):
        raise PermissionDenied("Your role in this organization cannot make this change.")
    return membership


def scoped(request: HttpRequest, queryset: QuerySet[M]) -> QuerySet[M]:
    """The rows of `queryset` that belong to the user's organizations."""
    return queryset.filter(organization__memberships__user=request.user)


def object_or_404(request: HttpRequest, queryset: QuerySet[M], *, change: bool = False, **lookup) -> M:
    """One object of the user's organizations; with change=True the user must be an operator."""
    obj = get_object_or_404(scoped(request, queryset), **lookup)
    if change:
        require_role(request, obj.organization, Role.OPERATOR)
    return obj


def current_org_or_404(request: HttpRequest, *, change: bool = False) -> Organization:
    org = request.organization
    if org is None:
        raise Http404("You are not a member of any organization.")
    if change:
        require_role(request, org, Role.OPERATOR)
    return org
