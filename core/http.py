"""Helpers every app's views share."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme


def local_url(request: HttpRequest, target: str | None, fallback: str) -> str:
    """`target` if it stays on this site (no other host, no javascript:), else `fallback`."""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def local_redirect(request: HttpRequest, target: str | None, fallback: str) -> HttpResponse:
    """Redirect to `target` only if it stays on this site; else to `fallback` (a URL or a URL name)."""
    return redirect(local_url(request, target, fallback))
