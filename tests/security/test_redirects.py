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
