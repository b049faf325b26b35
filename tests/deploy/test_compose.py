"""docker-compose.yml cannot be run here (no Docker engine); it is kept correct by
reading it, and by `docker compose config` wherever that client exists."""

import os
import shutil
import subprocess
from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
PORTAL_SERVICES = {"migrate", "web", "worker", "beat"}


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_it_defines_every_service_of_the_deployment():
    services = load()["services"]
    assert set(services) == PORTAL_SERVICES | {"db", "redis", "wattcarbon-sim", "wattics-sim", "proxy"}


def test_it_builds_one_image_shared_through_the_anchor():
    services = load()["services"]
    images = {services[name]["image"] for name in PORTAL_SERVICES | {"wattcarbon-sim", "wattics-sim"}}
    assert images == {"energy-data-portal:latest"}


def test_portal_services_use_postgres_and_redis_and_refuse_to_start_without_secrets():
    services = load()["services"]
    for name in PORTAL_SERVICES:
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["DJANGO_DEBUG"] == "False"
        assert ":?" in env["DJANGO_SECRET_KEY"] and ":?" in env["FIELD_ENCRYPTION_KEY"]
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"


def test_worker_and_beat_run_celery_and_web_runs_gunicorn():
    services = load()["services"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "portal", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "portal", "beat"]
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    assert "gunicorn" in dockerfile and "portal.wsgi:application" in dockerfile


def test_simulators_run_the_simulator_package_on_their_ports():
    services = load()["services"]
    assert services["wattcarbon-sim"]["command"][-4:] == ["wattcarbon", "--host", "0.0.0.0", "--port", "8101"][-4:]
    assert services["wattics-sim"]["command"][-1] == "8102"


def test_docker_compose_config_accepts_it_where_the_client_exists():
    docker = shutil.which("docker")
    has_compose = docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    if not has_compose:
        # The structural tests above are what holds here; nothing more can be checked.
        assert load()["services"]
        return
    env = {**os.environ, "DJANGO_SECRET_KEY": "x", "FIELD_ENCRYPTION_KEY": "y"}
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
