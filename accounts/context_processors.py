from django.http import HttpRequest

from accounts.middleware import user_memberships


def organizations(request: HttpRequest) -> dict:
    """The organization switcher and the current role, for the base template."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    memberships = user_memberships(request)
    current = getattr(request, "organization", None)
    role = next((m.role for m in memberships if current and m.organization_id == current.pk), None)
    return {
        "memberships": memberships,
        "current_org": current,
        "current_role": role,
        "can_change": role in ("owner", "operator"),
    }
