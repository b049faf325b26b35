"""After the password, the second factor.

A logged-in user whose session is not verified by django-otp is sent to the code page when
they have an authenticator, and to its set-up when they must have one: an owner of an
organization that requires it, or staff entering the Django admin (which therefore always
goes through two-factor login). Login, logout, the two pages themselves and static files pass.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse

from mfa.selectors import two_factor_state

# URL names a half-logged-in user may reach.
OPEN_URL_NAMES = {"login", "logout", "healthz", "mfa:verify", "mfa:setup", "admin:login", "admin:logout"}


def _url_name(path: str) -> str | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match.view_name


class TwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_verified():
            return self.get_response(request)
        path = request.path_info
        if path.startswith("/" + settings.STATIC_URL.lstrip("/")) or _url_name(path) in OPEN_URL_NAMES:
            return self.get_response(request)
        enrolled, required = two_factor_state(user=user)
        if enrolled:
            target = "mfa:verify"
        elif required or (path.startswith(reverse("admin:index")) and user.is_staff):
            target = "mfa:setup"
        else:
            return self.get_response(request)
        next_url = request.get_full_path() if request.method == "GET" else ""
        query = "?" + urlencode({"next": next_url}) if next_url else ""
        return HttpResponseRedirect(reverse(target) + query)
