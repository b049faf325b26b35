from base64 import b32encode

import django_otp
import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import current_org_or_404, require_role
from core.http import local_url
from mfa import selectors, services
from mfa.forms import RequireTwoFactorForm, SetupForm, TokenForm


def _next_url(request: HttpRequest) -> str:
    return local_url(request, request.POST.get("next") or request.GET.get("next"), "/")


def _qr_svg(uri: str) -> str:
    # An SVG of paths with presentation attributes only: no inline style for the CSP to refuse.
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


@never_cache
def overview(request: HttpRequest) -> HttpResponse:
    """Two-factor login of the logged-in user: on or off, recovery codes left."""
    device = selectors.totp_device_for(user=request.user)
    context = {"device": device, "codes_left": selectors.recovery_codes_left(user=request.user) if device else 0}
    return render(request, "mfa/overview.html", context)


@never_cache
def setup(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app: scan the QR code (or type the secret), confirm with a code,
    then see the recovery codes, once."""
    if selectors.totp_device_for(user=request.user) is not None:
        return redirect("mfa:overview")
    device = services.totp_device_start(user=request.user)
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = services.totp_device_confirm(device=device, token=form.cleaned_data["token"], user=request.user)
        if codes is not None:
            device.refresh_from_db()
            django_otp.login(request, device)
            return render(request, "mfa/recovery_codes.html", {"codes": codes, "next": _next_url(request)})
        form.add_error("token", "That code is not right. Check the time on your phone and try the current one.")
    context = {
        "form": form,
        "secret": b32encode(device.bin_key).decode(),
        "uri": device.config_url,
        "next": _next_url(request),
        # Sent here on the way to the Django admin only: say so, and that the portal works without it.
        "admin_only": _next_url(request).startswith(reverse("admin:index"))
        and not selectors.two_factor_state(user=request.user)[1],
    }
    return render(request, "mfa/setup.html", context)


@never_cache
def setup_qr(request: HttpRequest) -> HttpResponse:
    """The QR code of the set-up page, an SVG image (no secret in any URL: it is the user's own device)."""
    if selectors.totp_device_for(user=request.user) is not None:
        return HttpResponse(status=404)
    device = services.totp_device_start(user=request.user)
    return HttpResponse(_qr_svg(device.config_url), content_type="image/svg+xml")


@never_cache
def verify(request: HttpRequest) -> HttpResponse:
    """The second step of the login: a code from the authenticator app, or a recovery code."""
    if request.user.is_verified():  # type: ignore[union-attr]  # django-otp adds it (OTPMiddleware)
        return redirect(_next_url(request))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # match_token checks every device of the user; django-otp throttles wrong codes
        # per device, and a recovery code is used up when it matches.
        device = django_otp.match_token(request.user, form.cleaned_data["token"])
        if device is not None:
            django_otp.login(request, device)
            return redirect(_next_url(request))
        form.add_error("token", "That code is not right (after several wrong codes, wait a little).")
    return render(request, "mfa/verify.html", {"form": form, "next": _next_url(request)})


@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """New recovery codes (the old ones stop working), shown once."""
    if selectors.totp_device_for(user=request.user) is None:
        return redirect("mfa:setup")
    codes = services.recovery_codes_create(user=request.user)
    return render(request, "mfa/recovery_codes.html", {"codes": codes, "next": "/"})


@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    """Turn two-factor login off; a current code is asked for."""
    device = selectors.totp_device_for(user=request.user)
    form = TokenForm(request.POST)
    if device is None:
        return redirect("mfa:overview")
    if form.is_valid() and device.verify_token(form.cleaned_data["token"]):
        services.two_factor_disable(user=request.user)
        messages.success(request, "Two-factor login is off.")
        return redirect("mfa:overview")
    messages.error(request, "That code is not right: two-factor login stays on.")
    return redirect("mfa:overview")


def organization_security(request: HttpRequest) -> HttpResponse:
    """The organization's rule on two-factor login for owners. Only owners see or change it."""
    org = current_org_or_404(request)
    require_role(request, org, Role.OWNER)
    form = RequireTwoFactorForm(request.POST or None, initial={"require_two_factor": org.require_two_factor})
    if request.method == "POST" and form.is_valid():
        services.organization_require_two_factor(organization=org, required=form.cleaned_data["require_two_factor"])
        messages.success(request, "Security settings saved.")
        return redirect("mfa:organization_security")
    return render(request, "mfa/organization_security.html", {"form": form, "org": org})
