import pytest
from django.urls import reverse

from accounts.models import VendorCredentials
from accounts.services import credentials_update
from tests.factories import PASSWORD, make_user


def test_it_redirects_anonymous_users_to_login(client, db):
    for url in ["/", "/organization/credentials/", "/admin/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert "/login/" in response["Location"]


def test_it_logs_in_and_out_through_the_form(client, owner, org):
    response = client.post("/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_it_rejects_a_wrong_password(client, owner):
    response = client.post("/login/", {"username": "owner", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_it_throttles_logins_after_repeated_failures(client, owner, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert client.post("/login/", {"username": "owner", "password": "bad"}).status_code == 200
    # Even the right password is refused while the window lasts.
    response = client.post("/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content


def test_it_shows_the_dashboard_of_the_users_organization(owner_client, org):
    response = owner_client.get("/")
    assert response.status_code == 200
    assert org.name.encode() in response.content


def test_it_switches_only_to_organizations_the_user_belongs_to(client, owner, org, other_org):
    from tests.factories import make_org

    second = make_org("Second Org", owner=owner)
    client.force_login(owner)
    client.post("/organization/switch/", {"organization": second.pk})
    assert b"Second Org" in client.get("/").content
    client.post("/organization/switch/", {"organization": other_org.pk})
    assert client.session["organization_id"] == second.pk


@pytest.mark.parametrize("who,status", [("owner", 200), ("teammate", 403), ("viewer", 403), ("outsider", 404)])
def test_it_shows_credentials_to_owners_only(client, request, org, who, status):
    user = request.getfixturevalue(who)
    if who == "outsider":
        # The outsider's own organization is a different one: they see theirs, never org's.
        client.force_login(user)
        response = client.get("/organization/credentials/")
        assert response.status_code == 200
        assert org.name.encode() not in response.content
        return
    client.force_login(user)
    assert client.get("/organization/credentials/").status_code == status


def test_it_encrypts_credentials_at_rest_and_never_shows_them(owner_client, org):
    response = owner_client.post(
        "/organization/credentials/",
        {
            "wattcarbon_email": "ops@example.com",
            "wattcarbon_api_key": "super-secret-key-123",
            "wattics_username": "acme",
            "wattics_password": "wattics-pass-456",
            "wattcarbon_base_url": "",
            "wattics_base_url": "",
        },
    )
    assert response.status_code == 302
    creds = VendorCredentials.objects.get(organization=org)
    assert creds.wattcarbon_api_key == "super-secret-key-123"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT wattcarbon_api_key, wattics_password FROM accounts_vendorcredentials")
        raw = cursor.fetchone()
    assert "super-secret" not in raw[0] and "wattics-pass" not in raw[1]
    page = owner_client.get("/organization/credentials/").content
    assert b"super-secret-key-123" not in page and b"wattics-pass-456" not in page
    assert "•".encode() in page


def test_it_keeps_a_stored_secret_when_the_field_is_left_empty(org):
    credentials_update(organization=org, wattics_password="keep-me")
    credentials_update(organization=org, wattics_password="", wattics_username="new")
    creds = VendorCredentials.objects.get(organization=org)
    assert creds.wattics_password == "keep-me" and creds.wattics_username == "new"


def test_a_user_without_organization_gets_404_on_the_dashboard(client, db):
    client.force_login(make_user("lonely"))
    assert client.get(reverse("dashboard:home")).status_code == 404
