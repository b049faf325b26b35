"""Who is calling the API, for which organization, with which role.

Two ways in: an organization API key (`Authorization: Api-Key <key>`), or a browser
session (with its CSRF token, DRF's SessionAuthentication). Either way the caller
acts for one organization: the key's, or the one chosen in the switcher. Every
queryset of the API is filtered on it, so another organization's object is a 404.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from accounts.models import ROLE_RANK, Membership, Organization, Role
from accounts.throttle import client_ip
from api.models import OrganizationAPIKey
from audit.context import Actor, set_actor

KEYWORD = "Api-Key"
# last_used_at is written at most this often per key (not one UPDATE per request).
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyUser(AnonymousUser):
    """request.user for a call made with an API key: nobody's account. The key (request.auth)
    is what authenticates; to everything that looks at users (context processors, services
    recording who did what) this caller is not a person, so it is an anonymous user."""

    def __init__(self, api_key: OrganizationAPIKey):
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.name} ({self.api_key.prefix})"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, key = header.partition(" ")
        if keyword != KEYWORD:
            return None
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed("No API key after 'Api-Key'.")
        try:
            api_key = OrganizationAPIKey.objects.get_from_key(key)
        except OrganizationAPIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.") from None
        if not api_key.is_valid(key) or api_key.revoked:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        # The audit trail names the key as the actor of what this request changes (the audit
        # middleware ran before DRF authenticated the key, and resets this after the request).
        set_actor(Actor(user_id=None, label=str(ApiKeyUser(api_key)), ip_address=client_ip(request) or None))
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            OrganizationAPIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a call without credentials.
        return KEYWORD


@dataclass(frozen=True)
class Caller:
    organization: Organization
    role: str
    # The person behind a session; None for an API key.
    user: object | None = None
    api_key: OrganizationAPIKey | None = None

    @property
    def ident(self) -> str:
        return f"key:{self.api_key.pk}" if self.api_key is not None else f"user:{self.user.pk}"

    def allows(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


def caller_for(request: Request) -> Caller | None:
    """The caller of an authenticated request, or None (a user in no organization)."""
    cached = getattr(request, "_api_caller", None)
    if cached is not None:
        return cached
    if isinstance(request.auth, OrganizationAPIKey):
        caller = Caller(organization=request.auth.organization, role=request.auth.role, api_key=request.auth)
    else:
        user = request.user
        org = getattr(request, "organization", None)
        if not user or not user.is_authenticated or org is None:
            return None
        membership = Membership.objects.filter(user=user, organization=org).first()
        if membership is None:
            return None
        caller = Caller(organization=org, role=membership.role, user=user)
    request._api_caller = caller
    return caller


class HasOrganizationRole(permissions.BasePermission):
    """Viewers read; operators (and owners) change. A view may ask for more with `required_role`."""

    message = "Your role in this organization cannot make this change."

    def has_permission(self, request: Request, view) -> bool:
        caller = caller_for(request)
        if caller is None:
            return False
        needed = getattr(view, "required_role", None) or (
            Role.VIEWER if request.method in permissions.SAFE_METHODS else Role.OPERATOR
        )
        return caller.allows(needed)


class PerCallerRateThrottle(throttling.SimpleRateThrottle):
    """One budget per API key (or per session user): 429 with Retry-After beyond API_THROTTLE_RATE."""

    scope = "api"

    def get_rate(self) -> str:
        # Read at each request, not at import, so settings (and tests) can change it.
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request: Request, view) -> str:
        if isinstance(request.auth, OrganizationAPIKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
