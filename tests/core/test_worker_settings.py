"""The worker's pool and size live in the settings only: `make run`, compose and the bench
start `celery worker` without them on the command line, so all three get the same."""

from pathlib import Path

import yaml
from django.conf import settings

from core.worker import worker_command
from portal.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_the_settings_give_the_worker_its_pool_and_threads():
    assert settings.CELERY_WORKER_POOL == "threads"
    assert app.conf.worker_pool == "threads"
    assert app.conf.worker_concurrency == settings.WORKER_CONCURRENCY == settings.CELERY_WORKER_CONCURRENCY


def test_make_run_and_compose_start_the_worker_without_a_pool_or_size_of_their_own():
    command = worker_command()
    assert command[1:6] == ["-m", "celery", "-A", "portal", "worker"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for argv in (command, compose["services"]["worker"]["command"]):
        assert not {"--pool", "-P", "--concurrency", "-c"} & set(argv), argv
