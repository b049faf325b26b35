"""The compose deployment is production-shaped: TLS at a reverse proxy in front of
gunicorn, secure cookies and the https redirect on, X-Forwarded-Proto trusted only
because a proxy is configured, and `check --deploy` clean in the web service's environment."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SECRETS = {
    "DJANGO_SECRET_KEY": "k" + Fernet.generate_key().decode() + "-Zq9$x!7",
    "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
}


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, as `docker compose` does."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if variables.get(name):
            return variables[name]
        if op == ":?":
            raise AssertionError(f"compose requires {name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, str(value))


def service_env(service: str, variables: dict[str, str]) -> dict[str, str]:
    env = COMPOSE["services"][service]["environment"]
    return {key: interpolate(value, variables) for key, value in env.items()}


def run_env(service: str = "web", **variables: str) -> dict[str, str]:
    """This machine's environment without any DJANGO_ variable, then the service's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k != "DATABASE_URL"}
    return base | service_env(service, SECRETS | variables)


def settings_in(env: dict[str, str]) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
        "'cookie': s.SESSION_COOKIE_SECURE, 'csrf': s.CSRF_COOKIE_SECURE, 'redirect': s.SECURE_SSL_REDIRECT,"
        "'hsts': s.SECURE_HSTS_SECONDS, 'proxy': s.SECURE_PROXY_SSL_HEADER, 'debug': s.DEBUG}))"
    )
    env = env | {"DJANGO_SETTINGS_MODULE": "portal.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_in_the_compose_web_environment():
    env = run_env("web")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_compose_runs_with_secure_cookies_https_redirect_and_the_proxy_header():
    found = settings_in(run_env("web"))
    assert found == {
        "cookie": True,
        "csrf": True,
        "redirect": True,
        "hsts": 31536000,
        "proxy": ["HTTP_X_FORWARDED_PROTO", "https"],
        "debug": False,
    }


def test_forwarded_proto_is_not_trusted_without_a_configured_proxy():
    env = run_env("web")
    del env["DJANGO_BEHIND_PROXY"]
    found = settings_in(env)
    assert found["proxy"] is None
    # Production defaults hold without compose saying anything.
    assert found["cookie"] and found["csrf"] and found["redirect"]


def test_a_tls_proxy_fronts_gunicorn_and_web_is_not_published():
    services = COMPOSE["services"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy")
    assert {"80:80", "443:443"} <= set(proxy["ports"])
    mount = next(v for v in proxy["volumes"] if v.endswith("/etc/caddy/Caddyfile:ro"))
    caddyfile = (ROOT / mount.split(":")[0]).read_text()
    assert re.search(r"reverse_proxy\s+web:8000", caddyfile)
    assert "ports" not in services["web"], "gunicorn must be reached only through the proxy"
    assert services["web"]["expose"] == ["8000"]
    for name in ("web", "worker", "beat", "migrate"):
        env = service_env(name, SECRETS | {"DJANGO_SUPERUSER_PASSWORD": "x"})
        assert env["DJANGO_BEHIND_PROXY"] == "True" and env["TRUSTED_PROXY_COUNT"] == "1"
        assert "DJANGO_SECURE_COOKIES" not in env and "DJANGO_SECURE_SSL_REDIRECT" not in env


def test_the_compose_worker_may_reach_the_simulators_it_is_shipped_with():
    # Production's vendor-address guard would otherwise refuse http://wattics-sim:8102.
    env = run_env("worker") | {"DJANGO_SETTINGS_MODULE": "portal.settings"}
    code = (
        "import django, os; django.setup(); from vendors.safety import check_base_url;"
        "check_base_url(os.environ['WATTCARBON_BASE_URL']); check_base_url(os.environ['WATTICS_BASE_URL']);"
        "print('allowed')"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("allowed")
