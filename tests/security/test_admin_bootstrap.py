"""16.1: bootstrap never puts a known password on the admin login.

Production (DEBUG off) refuses a missing or default DJANGO_SUPERUSER_PASSWORD, and
bootstrap never overwrites the password of a user that already exists."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.services import demo_bootstrap
from core.management.commands.bootstrap import DEV_PASSWORD


@pytest.mark.parametrize("password", ["", DEV_PASSWORD, "short"])
def test_production_bootstrap_refuses_a_missing_default_or_weak_admin_password(db, settings, password):
    # DJANGO_SUPERUSER_PASSWORD, read into settings ("" when unset in production).
    settings.DEBUG = False
    settings.DJANGO_SUPERUSER_PASSWORD = password
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        call_command("bootstrap")
    assert not get_user_model().objects.filter(username="admin").exists()


def test_production_bootstrap_creates_the_admin_with_the_given_password(db, settings):
    settings.DEBUG = False
    settings.DJANGO_SUPERUSER_PASSWORD = "a-Long-and-Unique-passphrase-42"
    call_command("bootstrap")
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("a-Long-and-Unique-passphrase-42")
    assert not admin.check_password(DEV_PASSWORD)


def test_bootstrap_never_resets_an_existing_users_password(db):
    demo_bootstrap(username="admin", password=DEV_PASSWORD)
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("changed-by-its-owner-7")
    admin.save()
    # The next deployment runs bootstrap again with the default (or any other) password.
    demo_bootstrap(username="admin", password=DEV_PASSWORD)
    admin.refresh_from_db()
    assert admin.check_password("changed-by-its-owner-7")
    assert not admin.check_password(DEV_PASSWORD)


def test_development_bootstrap_keeps_the_documented_login(db, settings, client):
    settings.DEBUG = True
    settings.DJANGO_SUPERUSER_PASSWORD = DEV_PASSWORD  # the development default
    call_command("bootstrap")
    response = client.post("/login/", {"username": "admin", "password": DEV_PASSWORD})
    assert response.status_code == 302
