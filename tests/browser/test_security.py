"""Two-factor login and the Content-Security-Policy in headless Chromium.

Every browser test's `page` fails on a CSP violation (tests/browser/conftest.py); the first
test here shows that the listener does catch one."""

import re
import time
from base64 import b32decode

import pytest
from django_otp.oath import TOTP

from tests import factories
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_the_page_fixture_catches_a_csp_violation(page, owner, org, login):
    login(page, "owner")
    assert page.csp_violations == []
    # An inline style attribute, as a template might carry: the policy refuses it, the fixture sees it.
    page.evaluate("() => document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
    page.wait_for_function("() => true")
    page.wait_for_timeout(300)
    assert any("style-src" in v for v in page.csp_violations), page.csp_violations
    page.csp_violations.clear()  # this one was on purpose


def code(secret: str, *, step_offset: int = 0) -> str:
    """What an authenticator app shows (RFC 6238, django-otp's own implementation), now or
    `step_offset` 30-second steps later."""
    generator = TOTP(b32decode(secret), step=30, t0=0, digits=6)
    generator.time = time.time() + 30 * step_offset
    return f"{generator.token():06d}"


def test_two_factor_enrol_log_out_and_log_in_with_a_code(page, owner, org, login, screenshot):
    login(page, "owner")
    page.get_by_role("link", name="owner").click()
    page.get_by_role("link", name="Set up two-factor login").click()
    page.wait_for_url(re.compile(r"/account/two-factor/setup/$"))
    page.locator("img.qr-code").wait_for()
    assert page.locator("img.qr-code").evaluate("img => img.complete && img.naturalWidth > 0")
    secret = page.locator("#totp-secret").inner_text()
    screenshot(page, "setup")
    page.get_by_label("Code").fill(code(secret))
    page.get_by_role("button", name="Turn on two-factor login").click()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    screenshot(page, "recovery-codes")
    page.get_by_role("link", name="Continue").click()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/account/two-factor/verify/"))
    screenshot(page, "verify")
    page.goto("/sites/")  # no page before the second factor
    page.wait_for_url(re.compile(r"/account/two-factor/verify/\?next=%2Fsites%2F$"))
    page.get_by_label("Code").fill(code(secret, step_offset=1))  # the set-up used the current one
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/sites/$"))
    assert page.get_by_role("heading", name="Sites").is_visible()
    assert page.js_errors == []


def test_an_organization_requiring_two_factor_sends_its_owner_to_setup(page, owner, org, login):
    org.require_two_factor = True
    org.save()
    factories.make_site(org, name="Depot")
    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/account/two-factor/setup/"))
    assert page.get_by_role("heading", name="Set up two-factor login").is_visible()
