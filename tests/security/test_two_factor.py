"""Two-factor login (django-otp): set-up with a QR code and secret, confirmed by a code;
recovery codes shown once; after the password, a code before any page; an organization can
require it for its owners; the Django admin always goes through it."""

import re
import time

import pytest
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from audit.models import AuditEvent
from tests import factories
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def code_for(device: TOTPDevice) -> str:
    """The code an authenticator app shows now, never of a step the device has used (a code
    works once): then the next step's, which django-otp accepts (one step of clock difference)."""
    device.refresh_from_db()
    step = int(time.time() // device.step)
    if device.last_t is not None and device.last_t >= 0:
        step = max(step, device.last_t + 1)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = step * device.step
    return f"{totp.token():0{device.digits}d}"


def used_code(device: TOTPDevice) -> str:
    """The code of the step the device last accepted."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = device.last_t * device.step
    return f"{totp.token():0{device.digits}d}"


def enrol(client) -> tuple[TOTPDevice, list[str]]:
    """Through the set-up page, as a person would: read the secret, type a code."""
    page = client.get(reverse("mfa:setup"))
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=page.wsgi_request.user, confirmed=False)
    response = client.post(reverse("mfa:setup"), {"token": code_for(device)})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-z]+)</code></li>", response.content.decode())
    device.refresh_from_db()
    return device, codes


def password_login(client, username: str) -> None:
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]


@pytest.fixture(autouse=True)
def no_throttle_delay(settings):
    # django-otp makes each wrong code wait longer; tests of the happy path type no wrong code
    # except where said, and the throttle has its own test.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def test_setup_shows_the_secret_and_a_qr_code_then_recovery_codes_once(client, owner, org):
    client.force_login(owner)
    page = client.get(reverse("mfa:setup"))
    device = TOTPDevice.objects.get(user=owner, confirmed=False)
    html = page.content.decode()
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
    from base64 import b32decode

    assert b32decode(secret) == device.bin_key
    assert "otpauth://totp/" in html and "Energy%20Data%20Portal" in html
    qr = client.get(reverse("mfa:setup_qr"))
    assert qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content and b"style=" not in qr.content

    wrong = client.post(reverse("mfa:setup"), {"token": "000000" if code_for(device) != "000000" else "111111"})
    assert wrong.status_code == 200 and "not right" in wrong.content.decode()
    device.refresh_from_db()
    assert not device.confirmed

    device, codes = enrol(client)
    assert device.confirmed and len(codes) == 10 and len(set(codes)) == 10
    assert sorted(StaticToken.objects.filter(device__user=owner).values_list("token", flat=True)) == sorted(codes)
    # Shown once: the overview only counts them, and set-up is done.
    overview = client.get(reverse("mfa:overview")).content.decode()
    assert "Recovery codes left: 10" in overview and codes[0] not in overview
    assert client.get(reverse("mfa:setup")).status_code == 302
    assert AuditEvent.objects.filter(organization=org, action="enable", object_type="two_factor").count() == 1


def test_after_the_password_a_code_is_asked_before_any_page(client, owner, org):
    client.force_login(owner)
    device, _ = enrol(client)
    client.post(reverse("logout"))
    password_login(client, "owner")
    for url in ("/", "/sites/", reverse("accounts:credentials"), reverse("audit:events")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("mfa:verify")), url
    response = client.post(reverse("mfa:verify") + "?next=/sites/", {"token": "12345x"})
    assert response.status_code == 200 and client.get("/sites/").status_code == 302
    response = client.post(reverse("mfa:verify"), {"token": code_for(device), "next": "/sites/"})
    assert response.status_code == 302 and response["Location"] == "/sites/"
    assert client.get("/sites/").status_code == 200


def test_a_used_code_and_an_off_site_next_are_refused(client, owner, org):
    client.force_login(owner)
    device, _ = enrol(client)  # the set-up used the current code
    client.post(reverse("logout"))
    password_login(client, "owner")
    response = client.post(reverse("mfa:verify"), {"token": used_code(device)})
    assert response.status_code == 200  # the same code again: refused (no replay)
    response = client.post(reverse("mfa:verify"), {"token": code_for(device), "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_recovery_code_works_once(client, owner, org):
    client.force_login(owner)
    _, codes = enrol(client)
    client.post(reverse("logout"))
    password_login(client, "owner")
    assert client.post(reverse("mfa:verify"), {"token": codes[0]}).status_code == 302
    assert client.get("/").status_code == 200
    client.post(reverse("logout"))
    password_login(client, "owner")
    assert client.post(reverse("mfa:verify"), {"token": codes[0]}).status_code == 200
    assert client.get("/").status_code == 302
    assert StaticToken.objects.filter(device__user=owner).count() == 9


def test_wrong_codes_are_throttled(client, owner, org, settings):
    client.force_login(owner)
    device, _ = enrol(client)
    client.post(reverse("logout"))
    password_login(client, "owner")
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    for _ in range(3):
        client.post(reverse("mfa:verify"), {"token": "000001"})
    # Even the right code is refused while the throttle holds.
    assert client.post(reverse("mfa:verify"), {"token": code_for(device)}).status_code == 200
    assert client.get("/").status_code == 302


def test_turning_it_off_needs_a_current_code(client, owner, org):
    client.force_login(owner)
    device, _ = enrol(client)
    client.post(reverse("mfa:disable"), {"token": "999999" if code_for(device) != "999999" else "1"})
    assert TOTPDevice.objects.filter(user=owner, confirmed=True).exists()
    client.post(reverse("mfa:disable"), {"token": code_for(device)})
    assert not TOTPDevice.objects.filter(user=owner).exists()
    assert not StaticToken.objects.filter(device__user=owner).exists()


# ----- an organization's rule ---------------------------------------------------------------


def test_an_owner_sets_the_rule_and_owners_without_a_device_are_sent_to_setup(client, owner, org, viewer):
    client.force_login(owner)
    assert client.get("/sites/").status_code == 200  # not required yet
    response = client.post(reverse("mfa:organization_security"), {"require_two_factor": "on"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.require_two_factor
    (event,) = AuditEvent.objects.filter(object_type="organization")
    assert event.changes == {"require_two_factor": [False, True]}
    response = client.get("/sites/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa:setup"))
    assert client.get(reverse("mfa:setup")).status_code == 200
    # Required by the organization: no "the portal works without it" even on the way to the admin.
    assert 'id="admin-needs-two-factor"' not in client.get(reverse("mfa:setup") + "?next=/admin/").content.decode()
    enrol(client)
    assert client.get("/sites/").status_code == 200
    # The rule is for owners: a viewer without a device goes on.
    client.force_login(viewer)
    assert client.get("/sites/").status_code == 200


def test_only_owners_change_the_rule(client, org, teammate, viewer, outsider, other_org):
    for user in (teammate, viewer):
        client.force_login(user)
        assert client.get(reverse("mfa:organization_security")).status_code == 403
        assert client.post(reverse("mfa:organization_security"), {"require_two_factor": "on"}).status_code == 403
    client.force_login(outsider)  # changes their own organization, never another
    client.post(reverse("mfa:organization_security"), {"require_two_factor": "on"})
    org.refresh_from_db()
    other_org.refresh_from_db()
    assert not org.require_two_factor and other_org.require_two_factor


# ----- the Django admin -----------------------------------------------------------------------


def test_the_admin_goes_through_two_factor_login(client, org):
    staff = factories.make_user("staffer", is_staff=True, is_superuser=True)
    factories.make_membership(staff, org, Role.VIEWER)
    response = client.post(reverse("admin:login"), {"username": "staffer", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa:setup"))
    # The set-up page says why (the admin only), and that the portal's pages work without it.
    setup_page = client.get(response["Location"]).content.decode()
    assert 'id="admin-needs-two-factor"' in setup_page and "back to the dashboard" in setup_page
    assert 'id="admin-needs-two-factor"' not in client.get(reverse("mfa:setup")).content.decode()
    device, _ = enrol(client)
    assert client.get("/admin/").status_code == 200
    client.post(reverse("admin:logout"))
    client.post(reverse("admin:login"), {"username": "staffer", "password": PASSWORD})
    response = client.get("/admin/audit/auditevent/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa:verify"))
    client.post(reverse("mfa:verify"), {"token": code_for(device)})
    assert client.get("/admin/audit/auditevent/").status_code == 200
