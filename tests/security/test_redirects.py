"""16.7: redirects stay on this site, whatever `next` says."""

import pytest

from accounts.middleware import SESSION_KEY
from tests import factories


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/",
        "//evil.example.com/path",
        "javascript:alert(1)",
        "http:///evil.example.com",
        "\\\\evil.example.com",
        "https://testserver.evil.example.com/",
    ],
)
def test_switch_organization_never_leaves_the_site(client, owner, org, target):
    second = factories.make_org("Second", owner=owner)
    client.force_login(owner)
    response = client.post("/organization/switch/", {"organization": second.pk, "next": target})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session[SESSION_KEY] == second.pk


def test_switch_organization_follows_a_local_next(client, owner, org):
    client.force_login(owner)
    response = client.post("/organization/switch/", {"organization": org.pk, "next": "/meters/?q=main"})
    assert response.status_code == 302 and response["Location"] == "/meters/?q=main"


@pytest.mark.parametrize("target", ["https://evil.example.com/", "javascript:alert(1)"])
def test_login_never_redirects_off_site(client, owner, target):
    response = client.post("/login/", {"username": "owner", "password": factories.PASSWORD, "next": target})
    assert response.status_code == 302 and response["Location"] == "/"


def test_every_view_that_reads_next_checks_it():
    """Local-only redirects everywhere: a module that reads a `next` parameter also calls
    url_has_allowed_host_and_scheme (or goes through core.http's local_url or local_redirect)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    reads_next = re.compile(r"""(POST|GET|REQUEST)\.get\(\s*["']next["']""")
    checked = ("url_has_allowed_host_and_scheme", "local_redirect(", "local_url(")
    offenders = []
    for path in root.glob("*/**/*.py"):
        if any(part in (".venv", "tests", "simulators", "bench") for part in path.parts):
            continue
        text = path.read_text()
        if reads_next.search(text) and not any(name in text for name in checked):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
    assert reads_next.search((root / "accounts" / "views.py").read_text())  # the walk sees the switcher
