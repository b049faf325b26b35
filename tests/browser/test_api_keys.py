"""An owner creates an API key in the browser, sees it once, uses it, and revokes it."""

import re

import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_owner_creates_and_revokes_an_api_key(page, live_server, login, screenshot, owner, org):
    login(page, "owner")
    page.get_by_role("link", name="API keys").click()
    page.wait_for_url(re.compile(r"/organization/api-keys/$"))
    page.get_by_label("Name").fill("nightly logger")
    page.get_by_label("Role").select_option("operator")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").inner_text().strip()
    screenshot(page, "key-created")
    assert re.fullmatch(r"[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}", key)
    row = page.locator(f"tr[data-key='{key.split('.')[0]}']")
    assert "nightly logger" in row.inner_text() and "active" in row.inner_text()
    api = f"{live_server.url}/api/v1/sites/"
    assert requests.get(api, headers={"Authorization": f"Api-Key {key}"}, timeout=10).status_code == 200
    # Shown once: the page reloaded does not show it again.
    page.goto("/organization/api-keys/")
    assert key not in page.content()
    page.locator(f"tr[data-key='{key.split('.')[0]}']").get_by_role("button", name="Revoke").click()
    page.wait_for_url(re.compile(r"/organization/api-keys/$"))
    screenshot(page, "key-revoked")
    assert "revoked" in page.locator(f"tr[data-key='{key.split('.')[0]}']").inner_text()
    assert requests.get(api, headers={"Authorization": f"Api-Key {key}"}, timeout=10).status_code == 401
    assert page.js_errors == []


def test_the_api_docs_page_runs_from_local_assets_under_a_strict_csp(page, live_server, login, owner, org):
    login(page, "owner")
    external, violations = [], []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else external.append(r.url))
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    response = page.goto("/api/v1/docs/")
    # The portal's own policy (django-csp), with the data: icons the docs view adds to it.
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    page.wait_for_selector("text=/api/v1/uploads/", timeout=20_000)
    assert external == []
    assert [v[:120] for v in violations] == []
    assert page.js_errors == []
