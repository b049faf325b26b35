"""Reliability drills run against one real worker restarted with fast retries.

The worker reads its settings from the environment, so the fast values are put in
os.environ (for the rest of the session: a worker restarted later keeps them, which
only makes its retries quicker) and the session worker is restarted once with them.
"""

import os

import pytest

FAST_ENV = {
    "DELIVERY_RETRY_BASE_SECONDS": "0.05",
    "DELIVERY_RETRY_MAX_SECONDS": "1",
    "DELIVERY_RETRY_DEADLINE_SECONDS": "120",
    "WATTCARBON_INTERVAL_CHUNK_ROWS": "500",
}


@pytest.fixture
def drill_worker(_session_worker, transactional_db):
    stale_env = any(os.environ.get(k) != v for k, v in FAST_ENV.items())
    if stale_env or _session_worker.proc.poll() is not None:
        os.environ.update(FAST_ENV)
        _session_worker.stop()
        _session_worker.start()
    return _session_worker
