"""The image's build steps, run without Docker, give a portal that serves its pages.

The Dockerfile's `collectstatic` command is read from the Dockerfile and run as it is
(into a temporary STATIC_ROOT), then gunicorn is started with the Dockerfile's CMD in
production mode (DEBUG off, the secrets set, behind a TLS proxy as in compose). A real
login through /login/, then every page of the portal, as its owner: each answers 200.
"""

import json
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import worker_environment
from tests.factories import PASSWORD
from tests.security.test_outsider_walk import kwargs_for, world  # noqa: F401 - the fixture is used below

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
HOST = "portal.example.com"


def dockerfile_collectstatic() -> str:
    """The Dockerfile's RUN step that collects static files, as one shell line."""
    for run in re.findall(r"^RUN (.*?)(?<!\\)$", DOCKERFILE, flags=re.M | re.S):
        line = run.replace("\\\n", " ")
        for part in line.split("&&"):
            if "collectstatic" in part:
                return part.strip()
    raise AssertionError("the Dockerfile does not run collectstatic")


def dockerfile_cmd() -> list[str]:
    match = re.search(r"^CMD (\[.*\])$", DOCKERFILE, flags=re.M)
    assert match, "the Dockerfile has no CMD"
    return json.loads(match.group(1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_pages(world: dict) -> list[str]:  # noqa: F811 - the fixture's value
    """Every GET URL of the portal (the admin aside), with objects of the owner's organization."""
    urls = []

    def walk(resolvers, namespace=""):
        for p in resolvers:
            if isinstance(p, URLResolver):
                if not str(p.pattern).startswith("admin/"):
                    walk(p.url_patterns, p.namespace or namespace)
            elif isinstance(p, URLPattern) and p.name:
                name = f"{namespace}:{p.name}" if namespace else p.name
                if name in ("logout", "login"):  # login is fetched before, logged out
                    continue
                kwargs = kwargs_for(name, p, world) if p.pattern.converters else {}
                urls.append(reverse(name, kwargs=kwargs))

    walk(get_resolver().url_patterns)
    return urls


@pytest.fixture
def production(tmp_path, transactional_db):
    """collectstatic as the Dockerfile runs it, then gunicorn as its CMD, on the test database."""
    env = worker_environment()
    env = {k: v for k, v in env.items() if not k.startswith("DJANGO_")}
    env["PORTAL_VAR_DIR"] = str(tmp_path / "var")  # STATIC_ROOT is var/staticfiles
    # The build: the Dockerfile's own command line, with this interpreter for `python`.
    build = dockerfile_collectstatic()
    command = re.sub(r"(^|\s)python(\s)", rf"\g<1>{shlex.quote(sys.executable)}\g<2>", build)
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "var" / "staticfiles" / "staticfiles.json").read_text())
    assert any(name.startswith("vendor/chart-") for name in manifest["paths"])

    # The run: production settings, as compose gives them (DEBUG off, secrets, TLS proxy in front).
    port = free_port()
    cmd = dockerfile_cmd()
    assert cmd[0] == "gunicorn"
    cmd[cmd.index("--bind") + 1] = f"127.0.0.1:{port}"
    cmd[cmd.index("--workers") + 1] = "2"
    env.update(
        DJANGO_DEBUG="False",
        DJANGO_SECRET_KEY="prod-test-" + Fernet.generate_key().decode(),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS=HOST,
        DJANGO_BEHIND_PROXY="True",
    )
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), *cmd[1:]], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", headers={"Host": HOST, "X-Forwarded-Proto": "https"}, timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not answer in 60 s"
                time.sleep(0.3)
        yield base, tmp_path / "gunicorn.log"
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


class Browser:
    """Requests as the TLS proxy forwards them: the cookies are Secure, so they are kept by hand."""

    def __init__(self, base: str):
        self.client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        headers = {"Host": HOST, "X-Forwarded-Proto": "https", "Referer": f"https://{HOST}/login/"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.client.request(method, url, headers=headers, **kwargs)
        for name, value in response.cookies.items():
            self.cookies[name] = value
        return response


def test_the_built_image_serves_login_and_every_page_in_production_mode(production, world, owner):  # noqa: F811
    base, log = production
    # The owner's password hashed as production hashes it (the suite uses a fast hasher).
    owner.password = make_password(PASSWORD, hasher=PBKDF2PasswordHasher())
    owner.save(update_fields=["password"])
    browser = Browser(base)

    # docker-compose.yml's healthcheck of web, run against this gunicorn: it passes.
    check = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    code = check[3].replace("127.0.0.1:8000", base.removeprefix("http://"))
    healthy = subprocess.run([sys.executable, "-c", code], env={"DJANGO_ALLOWED_HOSTS": HOST}, capture_output=True)
    assert healthy.returncode == 0, healthy.stderr.decode()

    # Plain http is sent to https: the redirect is on in production.
    plain = httpx.get(f"{base}/login/", headers={"Host": HOST})
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")

    login = browser.request("GET", "/login/")
    assert login.status_code == 200, log.read_text()[-3000:]
    assert "Set-Cookie" in login.headers and "Secure" in login.headers["Set-Cookie"]
    # The page's scripts and styles are the hashed names, and whitenoise serves them.
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', login.text)
    assert assets and all(re.search(r"\.[0-9a-f]{12}\.(js|css|svg|png|ico)$", a) for a in assets), assets
    for asset in assets:
        assert browser.request("GET", asset).status_code == 200, asset
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    form = {"username": owner.username, "password": PASSWORD, "csrfmiddlewaretoken": token}
    answer = browser.request("POST", "/login/", data=form)
    assert answer.status_code == 302, answer.text[:2000]
    assert "sessionid" in browser.cookies

    pages = all_pages(world)
    assert len(pages) >= 30
    statuses = {}
    for url in pages:
        response = browser.request("GET", url)
        statuses[url] = response.status_code
        assert response.status_code != 500, f"GET {url} answered 500:\n{log.read_text()[-3000:]}"
        if response.status_code == 302:
            # A step the object is not at sends to its page (never to the login: the session holds).
            location = response.headers["location"]
            assert location.startswith(("/", f"https://{HOST}/")) and "/login/" not in location, (url, location)
    # POST-only actions answer 405 to a GET; every page and download answers 200.
    pages_ok = [url for url, status in statuses.items() if status == 200]
    others = {url: status for url, status in statuses.items() if status not in (200, 302, 405)}
    assert sum(status == 302 for status in statuses.values()) <= 3, statuses
    assert not others, others
    assert len(pages_ok) >= 20, statuses
    # The dashboard and a page with a chart load the chart script by its hashed name.
    home = browser.request("GET", "/")
    assert home.status_code == 200 and "/static/" in home.text
