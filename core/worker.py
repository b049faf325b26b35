"""How a Celery worker is started, in one place for `make run` (runportal) and the bench.

The pool and its size are not on the command line: they come from settings
(CELERY_WORKER_POOL, CELERY_WORKER_CONCURRENCY from WORKER_CONCURRENCY), which compose's
worker reads too, so every way of starting a worker gets the same ones."""

import sys


def worker_command(*extra: str) -> list[str]:
    """`celery worker` as `make run` starts it; `extra` arguments are added at the end."""
    return [sys.executable, "-m", "celery", "-A", "portal", "worker", "--without-mingle", "--without-gossip",
            "--loglevel", "INFO", *extra]  # fmt: skip
