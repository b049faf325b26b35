"""16.4: login throttles that hold.

Attempts are counted atomically before the password is checked (60 parallel guesses
get LOGIN_FAILURE_LIMIT password checks), the lockout lasts the stated window, and the
same throttle guards the portal login, the admin login and the password reset, keyed
per username and per client address (as reported by a configured trusted proxy)."""

import threading
import time

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail
from django.core.cache import caches

from accounts import throttle
from tests import factories

LIMIT = 5


class SlowHasher(MD5PasswordHasher):
    """A password check that takes as long as a real one (PBKDF2 under load), without
    the CPU: it is the window in which parallel requests overtake a non-atomic count."""

    algorithm = "slow_md5"
    checks = 0
    lock = threading.Lock()

    def verify(self, password, encoded):
        with SlowHasher.lock:
            SlowHasher.checks += 1
        time.sleep(1.5)
        return super().verify(password, encoded.replace("slow_md5$", "md5$", 1))

    def encode(self, password, salt):
        return super().encode(password, salt).replace("md5$", "slow_md5$", 1)


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = LIMIT
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    return settings


def test_sixty_parallel_guesses_get_only_the_limit_of_password_checks(live_server, limits, transactional_db):
    limits.PASSWORD_HASHERS = ["tests.security.test_throttle.SlowHasher"]
    factories.make_user("target")
    SlowHasher.checks = 0
    session = requests.Session()
    session.get(live_server.url + "/login/", timeout=30)
    token = session.cookies["csrftoken"]
    statuses: list[int] = []

    start = threading.Barrier(60)

    def guess(n: int) -> None:
        own = requests.Session()  # a Session is not thread-safe: one per guesser, same cookies
        own.cookies.update(session.cookies)
        start.wait(30)  # all at once
        for _ in range(10):
            try:
                response = own.post(
                    live_server.url + "/login/",
                    data={"username": "target", "password": f"guess-{n}", "csrfmiddlewaretoken": token},
                    headers={"Referer": live_server.url + "/login/"},
                    timeout=120,
                )
            except requests.ConnectionError:
                # The test server's listen backlog overflowed: the request never reached a
                # view (no password checked); knock again, as a client would.
                time.sleep(0.2)
                continue
            statuses.append(response.status_code)
            return

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(statuses) == 60
    assert SlowHasher.checks <= LIMIT, f"{SlowHasher.checks} passwords checked"
    assert statuses.count(429) >= 60 - LIMIT
    # And the right password, now, is refused too: the account is locked for the window.
    response = session.post(
        live_server.url + "/login/",
        data={"username": "target", "password": factories.PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": live_server.url + "/login/"},
        timeout=60,
    )
    assert response.status_code == 429


def _remaining_seconds(key: str) -> float:
    cache = caches["throttle"]
    full = cache.make_and_validate_key(key)
    if django_settings.CACHES["throttle"]["BACKEND"].endswith("RedisCache"):
        return cache._cache.get_client(full).ttl(full)
    return cache._expire_info[full] - time.time()


def test_the_lockout_lasts_the_stated_window(client, owner, limits):
    for _ in range(LIMIT):
        client.post("/login/", {"username": "owner", "password": "bad"})
    response = client.post("/login/", {"username": "owner", "password": factories.PASSWORD})
    assert response.status_code == 429
    assert b"Wait 15 minutes" in response.content
    user_key, ip_key = throttle._keys(response.wsgi_request, "owner")
    for key in (user_key, ip_key):
        assert 880 <= _remaining_seconds(key) <= 900


def test_the_lockout_ends_when_the_window_passes(client, owner, limits):
    limits.LOGIN_FAILURE_WINDOW_SECONDS = 2
    for _ in range(LIMIT):
        client.post("/login/", {"username": "owner", "password": "bad"})
    assert client.post("/login/", {"username": "owner", "password": factories.PASSWORD}).status_code == 429
    time.sleep(3)
    assert client.post("/login/", {"username": "owner", "password": factories.PASSWORD}).status_code == 302


def test_the_admin_login_is_throttled(client, limits, db):
    factories.make_user("boss", is_staff=True, is_superuser=True)
    for _ in range(20):
        client.post("/admin/login/", {"username": "boss", "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": factories.PASSWORD})
    assert response.status_code == 200
    assert b"Too many failed attempts" in response.content
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_the_password_reset_is_throttled(client, limits, owner):
    owner.email = "owner@example.com"
    owner.save()
    for _ in range(LIMIT):
        assert client.post("/account/password-reset/", {"email": "owner@example.com"}).status_code == 302
    response = client.post("/account/password-reset/", {"email": "owner@example.com"})
    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    assert len(mail.outbox) == LIMIT


def test_the_per_address_key_uses_the_address_the_trusted_proxy_reports(client, limits, owner):
    limits.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    # One client behind the proxy tries many usernames: its own address gets locked...
    for n in range(LIMIT):
        client.post("/login/", {"username": f"nobody{n}", "password": "x"}, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    # ...even when it prepends a made-up address of its own to the header.
    spoofed = client.post(
        "/login/", {"username": "owner", "password": "x"}, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7", **proxy
    )
    assert spoofed.status_code == 429
    # Another client behind the same proxy is not locked out with it.
    other = client.post(
        "/login/", {"username": "owner", "password": factories.PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.99", **proxy
    )
    assert other.status_code == 302


def test_without_a_trusted_proxy_the_forwarded_header_is_ignored(rf, limits):
    limits.TRUSTED_PROXY_COUNT = 0
    request = rf.post("/login/", REMOTE_ADDR="192.0.2.5", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert throttle.client_ip(request) == "192.0.2.5"
    limits.TRUSTED_PROXY_COUNT = 2
    request = rf.post("/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.7, 10.0.0.1")
    assert throttle.client_ip(request) == "203.0.113.7"


def test_the_old_password_check_of_a_password_change_is_throttled(client, owner, limits):
    client.force_login(owner)
    new = {"new_password1": "Fresh-long-passphrase-31", "new_password2": "Fresh-long-passphrase-31"}
    for _ in range(LIMIT):
        client.post("/account/password/", {"old_password": "guess", **new})
    response = client.post("/account/password/", {"old_password": factories.PASSWORD, **new})
    assert b"Too many failed attempts" in response.content
    owner.refresh_from_db()
    assert owner.check_password(factories.PASSWORD)
