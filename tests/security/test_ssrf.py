"""16.2: no server-side request forgery through vendor base URLs.

Production rules (the settings a DJANGO_DEBUG=False process gets): only the vendors'
published hosts, https only, no query or fragment, and at connect time no address that
is not public, checked on the address actually connected to (DNS rebinding fails). No
redirect is followed; a vendor's error text is cut and stripped of markup."""

import http.server
import json
import socket
import threading

import pytest
import requests

from tests.security.conftest import PUBLIC_IP
from tests.security.test_settings import manage, production_env
from vendors.http import ExchangeLog, VendorUnreachable, error_text, send
from vendors.models import HttpExchange
from vendors.wattics import Outcome, WatticsClient

PUBLISHED = ["api.wattcarbon.com", "web-collector.wattics.com", "demo-dc.wattics.com", "dev-web-collector.wattics.com"]


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.VENDOR_ALLOWED_HOSTS = list(PUBLISHED)
    settings.VENDOR_ALLOWED_NETWORKS = []
    settings.VENDOR_REQUIRE_HTTPS = True
    return settings


@pytest.fixture
def listener():
    """A TCP port on loopback that counts the connections it gets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


def test_production_defaults_allow_only_the_vendors_published_hosts():
    code = (
        "from django.conf import settings; "
        "print(settings.VENDOR_ALLOWED_HOSTS, settings.VENDOR_ALLOWED_NETWORKS, settings.VENDOR_REQUIRE_HTTPS)"
    )
    result = manage("shell", "-c", code, env=production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"{PUBLISHED} [] True"


# ----- refused when saved ---------------------------------------------------------------------

REFUSED_URLS = [
    ("127.0.0.1:6379", "not a vendor host"),
    ("https://169.254.169.254/latest/meta-data/", "not a vendor host"),
    ("https://[::1]:8101", "not a vendor host"),
    ("file:///etc/passwd", ""),
    ("https://api.wattcarbon.com/?", "query string"),
    ("https://api.wattcarbon.com/#x", "query string"),
    ("http://api.wattcarbon.com", "https"),
    ("https://user:pw@api.wattcarbon.com", "user name"),
]


@pytest.mark.parametrize("url,message", REFUSED_URLS)
def test_the_credentials_form_refuses_a_url_the_worker_must_not_reach(
    owner_client, org, production, fake_dns, url, message
):
    response = owner_client.post(
        "/organization/credentials/", {"wattcarbon_base_url": url, "wattcarbon_email": "a@example.com"}
    )
    assert response.status_code == 200, "saved"
    assert b'id="field-wattcarbon_base_url"' in response.content
    field = response.content.split(b'id="field-wattcarbon_base_url"')[1].split(b"</div>")[0]
    assert b'class="error"' in field
    assert message.encode() in field
    assert not org.__class__.objects.get(pk=org.pk).__dict__.get("credentials")


def test_the_form_refuses_a_vendor_name_that_resolves_to_loopback(owner_client, org, production, fake_dns):
    fake_dns["api.wattcarbon.com"] = "127.0.0.1"
    response = owner_client.post("/organization/credentials/", {"wattcarbon_base_url": "https://api.wattcarbon.com"})
    assert response.status_code == 200
    assert b"resolves to 127.0.0.1, a non-public address" in response.content


def test_the_form_accepts_a_published_vendor_host(owner_client, org, production, fake_dns):
    response = owner_client.post("/organization/credentials/", {"wattcarbon_base_url": "https://api.wattcarbon.com"})
    assert response.status_code == 302
    assert org.credentials.wattcarbon_base_url == "https://api.wattcarbon.com"


# ----- refused when sent --------------------------------------------------------------------


def _send(url: str, org) -> None:
    log = ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    try:
        send("GET", url, log=log)
    finally:
        log.flush()


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:{port}/", "https://localhost:{port}/", "https://169.254.169.254/latest/meta-data/"]
)
def test_the_client_refuses_to_send_to_a_forbidden_address(org, production, listener, url):
    port, accepted = listener
    with pytest.raises(VendorUnreachable, match="^Refused: .* not a vendor host"):
        _send(url.format(port=port), org)
    assert accepted == []
    exchange = HttpExchange.objects.get()
    assert exchange.status_code is None and exchange.error.startswith("Refused")


def test_the_client_refuses_ipv6_loopback(org, production):
    with pytest.raises(VendorUnreachable, match="^Refused: ::1 is not a vendor host"):
        _send("https://[::1]:6379/", org)


def test_the_client_has_no_way_to_file_urls(org, production):
    """requests itself has no adapter for file:// (InvalidSchema): nothing is read."""
    with pytest.raises(VendorUnreachable, match="InvalidSchema"):
        _send("file:///etc/passwd", org)


def test_the_client_refuses_a_base_url_ending_in_a_question_mark(org, production, fake_dns, listener):
    port, accepted = listener
    fake_dns["api.wattcarbon.com"] = PUBLIC_IP
    with pytest.raises(VendorUnreachable, match="query string"):
        _send(f"https://api.wattcarbon.com:{port}/?/internal/state", org)


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(org, production, fake_dns, listener):
    port, accepted = listener
    fake_dns["api.wattcarbon.com"] = "127.0.0.1"
    with pytest.raises(VendorUnreachable, match="resolves to 127.0.0.1"):
        _send(f"https://api.wattcarbon.com:{port}/token", org)
    assert accepted == []  # not even a TCP connection
    assert "resolves to 127.0.0.1" in HttpExchange.objects.get().error


def test_dns_rebinding_after_the_form_check_fails(owner_client, org, production, fake_dns, listener):
    """The name is public when the form is saved, loopback when the worker connects."""
    port, accepted = listener
    production.VENDOR_ALLOWED_HOSTS = [*PUBLISHED, f"rebind.example.com:{port}"]
    fake_dns["rebind.example.com"] = PUBLIC_IP
    response = owner_client.post(
        "/organization/credentials/",
        {"wattics_base_url": f"https://rebind.example.com:{port}", "wattics_username": "demo", "wattics_password": "x"},
    )
    assert response.status_code == 302
    fake_dns["rebind.example.com"] = "127.0.0.1"
    log = ExchangeLog(organization_id=org.pk, vendor="wattics")
    client = WatticsClient(base_url=org.credentials.wattics_url, username="demo", password="x", stream_id="s", log=log)
    result = client.push(b"{}")  # the packet path (its own prepared requests, same adapter)
    assert result.outcome == Outcome.TRANSIENT
    log.flush()
    assert accepted == []
    assert HttpExchange.objects.get().status_code is None


def test_loopback_is_allowed_when_listed(org, production, listener):
    """The simulators in a production-like deployment: listed explicitly, they are reached."""
    port, accepted = listener
    production.VENDOR_ALLOWED_HOSTS = [*PUBLISHED, f"127.0.0.1:{port}"]
    production.VENDOR_REQUIRE_HTTPS = False
    with pytest.raises(VendorUnreachable):  # the listener closes at once: no HTTP answer
        _send(f"http://127.0.0.1:{port}/", org)
    assert len(accepted) == 1


# ----- redirects and error text --------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 - the standard library's name
        _Handler.seen.append(self.path)
        if self.path == "/start":
            self.send_response(302)
            self.send_header("Location", "/_sim/state")
            self.end_headers()
            return
        if self.path == "/error":
            body = json.dumps({"detail": "<script>alert(1)</script>\x1b[31m" + "A" * 5000}).encode()
            self.send_response(500)
        else:
            body = b'{"secret": "another organization\'s meter"}'
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def vendor_server():
    _Handler.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_redirects_are_not_followed(org, vendor_server):
    log = ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    response = send("GET", vendor_server + "/start", log=log)
    assert response.status_code == 302
    assert _Handler.seen == ["/start"]  # the internal page was never asked for
    assert b"another organization" not in response.content


def test_vendor_error_text_is_cut_and_stripped(org, vendor_server):
    log = ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    response = send("GET", vendor_server + "/error", log=log)
    log.flush()
    shown = error_text(response)
    stored = HttpExchange.objects.get().error
    for text in (shown, stored):
        assert "<script>" not in text and "\x1b" not in text
        assert len(text) <= 500
        assert text.startswith("alert(1)")


def test_requests_follows_redirects_by_default_so_the_guard_must_say_no(vendor_server):
    """Why send() passes allow_redirects=False: a bare session would fetch the target."""
    _Handler.seen = []
    requests.get(vendor_server + "/start", timeout=5)
    assert _Handler.seen == ["/start", "/_sim/state"]


def test_vendor_field_errors_are_cut_and_stripped():
    from vendors.wattcarbon import field_errors_from

    body = {"detail": [{"loc": ["body", f"f{n}"], "msg": "<b>bad</b>" + "x" * 5000} for n in range(500)]}
    errors = field_errors_from(body)
    assert len(errors) == 50
    assert all(msg.startswith("bad") and len(msg) <= 500 and "<" not in msg for msg in errors.values())


def test_webhooks_never_reach_a_non_public_address_in_production(org, production, listener):
    """Webhook URLs are the organization's choice (any host), but the worker still connects
    to public addresses only: no loopback, private or metadata address."""
    from notifications import services as notifications
    from notifications.models import WebhookAttempt, WebhookDelivery

    port, accepted = listener
    notifications.webhook_create(organization=org, url=f"http://127.0.0.1:{port}/hook", secret="s" * 20, events=[])
    notice = notifications.notice_create(organization=org, event="delivery_failed", subject="s", title="t")
    delivery = WebhookDelivery.objects.get(notice=notice)
    notifications.webhook_attempt(delivery_id=delivery.pk)
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and "non-public address" in attempt.error
    assert accepted == []
