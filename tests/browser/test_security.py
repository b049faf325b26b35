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


def code(secret: str, *, after_step: int = -1) -> tuple[str, int]:
    """What an authenticator app shows (RFC 6238, django-otp's own implementation) and its
    30-second step; a step later than `after_step` (a used code is refused) is taken, which the
    portal accepts (it allows one step of clock difference)."""
    step = max(int(time.time() // 30), after_step + 1)
    generator = TOTP(b32decode(secret), step=30, t0=0, digits=6)
    generator.time = step * 30
    return f"{generator.token():06d}", step


def test_two_factor_enrol_log_out_and_log_in_with_a_code(page, owner, org, login, screenshot):
    login(page, "owner")
    page.get_by_role("link", name="owner").click()
    page.get_by_role("link", name="Set up two-factor login").click()
    page.wait_for_url(re.compile(r"/account/two-factor/setup/$"))
    page.locator("img.qr-code").wait_for()
    assert page.locator("img.qr-code").evaluate("img => img.complete && img.naturalWidth > 0")
    secret = page.locator("#totp-secret").inner_text()
    screenshot(page, "setup")
    setup_code, setup_step = code(secret)
    page.get_by_label("Code").fill(setup_code)
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
    page.get_by_label("Code").fill(code(secret, after_step=setup_step)[0])
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
