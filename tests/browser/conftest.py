"""Headless Chromium for browser tests, driven by Playwright's sync API.

Playwright cannot download a browser here: it drives the Chromium that bin/ensure-chromium
finds (or installs) and prints. Pages are served by pytest-django's live_server, a thread of
this process, on a transactional database so the server thread sees the test's rows.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.factories import PASSWORD

# Playwright's sync API runs an event loop in this thread; Django's ORM, used by the
# test body between page actions, would otherwise refuse to run "in an async context".
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}


def chromium_path() -> str:
    """The Chromium bin/ensure-chromium found (the same one `make test` made sure of), or skip."""
    found = subprocess.run(["bash", str(ROOT / "bin" / "ensure-chromium")], capture_output=True, text=True, timeout=900)
    path = found.stdout.strip()
    if not path:
        pytest.skip(f"no Chromium: {found.stderr.strip() or 'bin/ensure-chromium found none'}")
    return path


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Reports every Content-Security-Policy violation of the page to the test (init scripts run
# outside the page's CSP, so this one cannot itself be refused).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolation(
    e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber
  );
});
"""


@pytest.fixture
def page(browser, live_server):
    """A page of a fresh context. Any CSP violation (event or console report) fails the test."""
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(10_000)
    violations: list[str] = []
    context.expose_binding("__cspViolation", lambda source, text: violations.append(text))
    context.add_init_script(CSP_LISTENER)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    pg.js_errors = errors
    pg.csp_violations = violations
    yield pg
    context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS_DIR", "test-artifacts")) / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def screenshot(artifacts_dir, request):
    """screenshot(page, "what-it-shows"): a full-page PNG named after the test and the step."""
    test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    taken: list[Path] = []

    def take(pg, name: str) -> Path:
        path = artifacts_dir / f"{test}--{len(taken) + 1:02}-{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    take.taken = taken
    return take


@pytest.fixture
def login(screenshot):
    """Log in through the login form, as a person would."""

    def do(pg, username: str, password: str = PASSWORD) -> None:
        pg.goto("/login/")
        screenshot(pg, "login-form")
        pg.get_by_label("Username").fill(username)
        pg.get_by_label("Password").fill(password)
        pg.get_by_role("button", name="Log in").click()
        pg.wait_for_url(re.compile(r"/$"))

    return do
