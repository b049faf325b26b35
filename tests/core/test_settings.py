"""Settings: .env is read before any value; importing them creates nothing; bootstrap does."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "VAR_DIR": str(settings.VAR_DIR),
    "DATABASE": str(settings.DATABASES["default"]["NAME"]),
    "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    "BROKER_DIR": str(settings.BROKER_DIR),
    "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
    "ADMIN": settings.DJANGO_SUPERUSER_USERNAME,
}))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the test run's folders, database and broker."""
    dropped = {"PORTAL_VAR_DIR", "MEDIA_ROOT", "PORTAL_BROKER_DIR", "DATABASE_URL", "REDIS_URL", "CELERY_QUEUE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("DJANGO_")}
    return env | {"DJANGO_SETTINGS_MODULE": "portal.settings"} | extra


def settings_in(env: dict[str, str]) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_it_reads_dotenv_before_any_value(tmp_path):
    var = tmp_path / "var-from-dotenv"
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"PORTAL_VAR_DIR={var}\nCELERY_QUEUE=from-dotenv\nDJANGO_SUPERUSER_USERNAME=dotenv-admin\n")
    seen = settings_in(clean_env(PORTAL_ENV_FILE=str(dotenv)))
    assert seen["VAR_DIR"] == str(var)
    # Values derived from the var folder follow it.
    assert seen["DATABASE"] == str(var / "portal.sqlite3")
    assert seen["MEDIA_ROOT"] == str(var / "media")
    assert seen["BROKER_DIR"] == str(var / "broker")
    assert seen["CELERY_QUEUE"] == "from-dotenv"
    assert seen["ADMIN"] == "dotenv-admin"


def test_the_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"PORTAL_VAR_DIR={tmp_path / 'a'}\nCELERY_QUEUE=from-dotenv\n")
    seen = settings_in(clean_env(PORTAL_ENV_FILE=str(dotenv), CELERY_QUEUE="from-environment"))
    assert seen["CELERY_QUEUE"] == "from-environment"


def test_importing_settings_creates_no_directory(tmp_path):
    var = tmp_path / "not-yet"
    seen = settings_in(clean_env(PORTAL_ENV_FILE=str(tmp_path / "none.env"), PORTAL_VAR_DIR=str(var)))
    assert seen["VAR_DIR"] == str(var)
    assert not var.exists()


def test_bootstrap_creates_the_folders_the_database_and_the_admin(tmp_path):
    var = tmp_path / "fresh"
    env = clean_env(
        PORTAL_ENV_FILE=str(tmp_path / "none.env"), PORTAL_VAR_DIR=str(var), DJANGO_SUPERUSER_USERNAME="boot-admin"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "bootstrap"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "Admin login 'boot-admin' ready" in result.stdout
    assert (var / "portal.sqlite3").is_file()
    for sub in ("queue", "processed", "control"):
        assert (var / "broker" / sub).is_dir()


def test_postgresql_connections_run_without_jit(db):
    """A page query whose estimate crosses jit_above_cost would spend far longer compiling
    than running: the portal's connections have JIT off."""
    import pytest
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL setting; CI runs the suite on PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
