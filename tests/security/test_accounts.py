"""16.9: every user changes their own password; a forgotten one is reset by e-mail
(Django's views, the console backend in development); the credentials page never shows
a masked value that was not stored."""

import re

import pytest
from django.core import mail

from accounts.services import credentials_update
from tests import factories
from tests.security.test_settings import manage, production_env

NEW = "Fresh-long-passphrase-31"


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer", "outsider"])
def test_every_user_can_change_their_password(client, request, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    page = client.get("/account/password/")
    assert page.status_code == 200 and b"Change your password" in page.content
    wrong = client.post("/account/password/", {"old_password": "not-it", "new_password1": NEW, "new_password2": NEW})
    assert wrong.status_code == 200 and b"incorrectly" in wrong.content
    response = client.post(
        "/account/password/", {"old_password": factories.PASSWORD, "new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 302 and response["Location"] == "/account/password/done/"
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert client.get("/account/password/").status_code == 200  # still logged in (session hash updated)


def test_the_user_menu_links_to_the_password_page(owner_client):
    assert b'href="/account/password/"' in owner_client.get("/").content


def test_a_forgotten_password_is_reset_by_email(client, owner):
    owner.email = "owner@example.com"
    owner.save()
    assert b'href="/account/password-reset/"' in client.get("/login/").content
    response = client.post("/account/password-reset/", {"email": "owner@example.com"})
    assert response.status_code == 302 and response["Location"] == "/account/password-reset/sent/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["owner@example.com"]
    link = re.search(r"http://testserver(/account/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302 and done["Location"] == "/account/password-reset/complete/"
    owner.refresh_from_db()
    assert owner.check_password(NEW)
    # The link works once.
    assert b"This link does not work" in client.get(link, follow=True).content
    client.logout()
    assert client.post("/login/", {"username": "owner", "password": NEW}).status_code == 302


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, owner):
    response = client.post("/account/password-reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == "/account/password-reset/sent/"
    assert mail.outbox == []


def test_mail_goes_to_the_console_in_development_and_to_email_url_otherwise():
    code = "from django.conf import settings; print(settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT)"
    dev = manage("shell", "-c", code, env=production_env() | {"DJANGO_DEBUG": "True"})
    assert dev.stdout.strip().splitlines()[-1].startswith("django.core.mail.backends.console.EmailBackend")
    prod = manage("shell", "-c", code, env=production_env(EMAIL_URL="smtp+tls://u:p@mail.example.com:587"))
    assert prod.stdout.strip().splitlines()[-1] == "django.core.mail.backends.smtp.EmailBackend mail.example.com 587"


def test_the_credentials_page_never_shows_a_mask_of_what_was_not_stored(owner_client, org):
    credentials_update(organization=org, wattics_username="demo", wattics_password="stored-pw-AB")
    # An invalid form (a bad e-mail) with a new password typed in: nothing is saved...
    response = owner_client.post(
        "/organization/credentials/",
        {"wattcarbon_email": "not-an-email", "wattics_username": "demo", "wattics_password": "typed-pw-ZQ"},
    )
    assert response.status_code == 200
    # ...so the page shows the stored password's mask, not one of the typed text.
    assert "••••••••AB".encode() in response.content
    assert b"ZQ</code>" not in response.content and b"typed-pw" not in response.content
    assert org.credentials.__class__.objects.get(pk=org.credentials.pk).wattics_password == "stored-pw-AB"
