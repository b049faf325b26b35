"""16.3: a stored secret never follows a changed base URL to another host."""

import pytest
from django.core.exceptions import ValidationError

from accounts.models import VendorCredentials
from accounts.services import credentials_update

OLD = {"wattcarbon_base_url": "https://api.wattcarbon.com", "wattics_base_url": "https://web-collector.wattics.com"}
NEW = {
    "wattcarbon_base_url": "https://demo-dc.wattics.com",
    "wattics_base_url": "https://dev-web-collector.wattics.com",
}


@pytest.fixture
def stored(org, fake_dns):
    return credentials_update(
        organization=org,
        wattcarbon_email="a@example.com",
        wattcarbon_api_key="stored-key-1",
        wattics_username="u",
        wattics_password="stored-pass-1",
        **OLD,
    )


def form_data(**overrides):
    data = {"wattcarbon_email": "a@example.com", "wattics_username": "u", **OLD}
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "url_field,secret_field", [("wattcarbon_base_url", "wattcarbon_api_key"), ("wattics_base_url", "wattics_password")]
)
def test_changing_a_base_url_requires_the_secret_again(owner_client, org, stored, url_field, secret_field):
    response = owner_client.post("/organization/credentials/", form_data(**{url_field: NEW[url_field]}))
    assert response.status_code == 200
    assert b"The base URL changed: enter this secret again" in response.content
    creds = VendorCredentials.objects.get(organization=org)
    assert getattr(creds, url_field) == OLD[url_field]  # nothing saved


@pytest.mark.parametrize(
    "url_field,secret_field", [("wattcarbon_base_url", "wattcarbon_api_key"), ("wattics_base_url", "wattics_password")]
)
def test_a_new_url_with_its_secret_is_saved(owner_client, org, stored, url_field, secret_field):
    response = owner_client.post(
        "/organization/credentials/", form_data(**{url_field: NEW[url_field], secret_field: "new-secret-9"})
    )
    assert response.status_code == 302
    creds = VendorCredentials.objects.get(organization=org)
    assert getattr(creds, url_field) == NEW[url_field] and getattr(creds, secret_field) == "new-secret-9"


def test_other_changes_keep_the_stored_secrets(owner_client, org, stored):
    response = owner_client.post("/organization/credentials/", form_data(wattics_username="renamed"))
    assert response.status_code == 302
    creds = VendorCredentials.objects.get(organization=org)
    assert (creds.wattcarbon_api_key, creds.wattics_password) == ("stored-key-1", "stored-pass-1")


def test_the_service_refuses_too(org, stored):
    with pytest.raises(ValidationError) as caught:
        credentials_update(organization=org, wattics_base_url=NEW["wattics_base_url"])
    assert "wattics_password" in caught.value.message_dict
    assert VendorCredentials.objects.get(organization=org).wattics_base_url == OLD["wattics_base_url"]
