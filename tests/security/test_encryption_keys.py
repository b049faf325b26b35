"""17.8: a secret stored with another key is an explicit error and is never erased;
keys rotate through MultiFernet with the previous keys in settings."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from accounts.fields import fernet, is_unreadable
from accounts.models import VendorCredentials
from accounts.services import credentials_update

OLD_KEY, NEW_KEY, LOST_KEY = (Fernet.generate_key().decode() for _ in range(3))


def raw_secret(org) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT wattics_password FROM {VendorCredentials._meta.db_table} WHERE organization_id = %s",  # noqa: S608
            [org.pk],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def stored_with_lost_key(org, settings):
    settings.FIELD_ENCRYPTION_KEY = LOST_KEY
    settings.FIELD_ENCRYPTION_KEYS_PREVIOUS = []
    credentials_update(organization=org, wattics_username="demo", wattics_password="kept-secret")
    ciphertext = raw_secret(org)
    settings.FIELD_ENCRYPTION_KEY = NEW_KEY  # the key was changed without listing the old one
    return ciphertext


def test_an_unreadable_secret_is_shown_as_an_error(owner_client, org, stored_with_lost_key):
    creds = VendorCredentials.objects.get(organization=org)
    assert is_unreadable(creds.wattics_password) and not creds.wattics_password  # nothing is sent with it
    page = owner_client.get("/organization/credentials/")
    assert b"stored with another encryption key" in page.content
    assert b"Stored password:" not in page.content


def test_the_next_save_does_not_erase_an_unreadable_secret(owner_client, org, stored_with_lost_key, settings):
    response = owner_client.post("/organization/credentials/", {"wattics_username": "renamed"})
    assert response.status_code == 302
    assert VendorCredentials.objects.get(organization=org).wattics_username == "renamed"
    assert raw_secret(org) == stored_with_lost_key  # the ciphertext, byte for byte
    # With the lost key found again (listed as previous), the secret reads back.
    settings.FIELD_ENCRYPTION_KEYS_PREVIOUS = [LOST_KEY]
    assert VendorCredentials.objects.get(organization=org).wattics_password == "kept-secret"


def test_a_previous_key_still_reads_and_the_next_save_rotates(org, settings):
    settings.FIELD_ENCRYPTION_KEY = OLD_KEY
    settings.FIELD_ENCRYPTION_KEYS_PREVIOUS = []
    credentials_update(organization=org, wattics_password="rotated-secret")
    settings.FIELD_ENCRYPTION_KEY = NEW_KEY
    settings.FIELD_ENCRYPTION_KEYS_PREVIOUS = [OLD_KEY]
    assert VendorCredentials.objects.get(organization=org).wattics_password == "rotated-secret"
    call_command("reencrypt_credentials")
    assert Fernet(NEW_KEY.encode()).decrypt(raw_secret(org).encode()) == b"rotated-secret"
    settings.FIELD_ENCRYPTION_KEYS_PREVIOUS = []  # the old key can go now
    assert VendorCredentials.objects.get(organization=org).wattics_password == "rotated-secret"
    assert len(fernet()._fernets) == 1


def test_a_meters_unreadable_wattics_password_survives_a_meter_save(org, settings):
    from sites.models import Meter
    from sites.services.crud import meter_update
    from tests import factories

    settings.FIELD_ENCRYPTION_KEY = LOST_KEY
    settings.FIELD_ENCRYPTION_KEYS_PREVIOUS = []
    meter = factories.make_meter(factories.make_site(org), wattics_password="meter-secret")

    def raw() -> str:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT wattics_password FROM {Meter._meta.db_table} WHERE id = %s", [meter.pk])  # noqa: S608
            return cursor.fetchone()[0]

    ciphertext = raw()
    assert ciphertext.startswith("gAAAAA")  # Fernet, not the plain text
    settings.FIELD_ENCRYPTION_KEY = NEW_KEY
    meter = Meter.objects.get(pk=meter.pk)
    assert is_unreadable(meter.wattics_password)
    meter_update(meter=meter, name="Renamed", wattics_password="")
    assert raw() == ciphertext and Meter.objects.get(pk=meter.pk).name == "Renamed"
