"""Loaded with `-p tests.envsetup`, before Django's settings are read.

Each test run gets its own var folder, database name, Celery queue, broker folder, cache key
prefix and media folder, so two runs on one machine (or a run beside `make run`)
never see each other's messages or rows. Worker processes started by the tests
inherit these variables.
"""

import os
import tempfile
import uuid

_run = uuid.uuid4().hex[:8]
_tmp = tempfile.mkdtemp(prefix=f"portal-test-{_run}-")

os.environ.setdefault("PORTAL_TEST_DB_SUFFIX", f"_{_run}")
# The SQLite test database (and anything else under the var folder) lives in this run's folder.
os.environ.setdefault("PORTAL_VAR_DIR", _tmp)
os.environ.setdefault("CELERY_QUEUE", f"test-{_run}")
os.environ.setdefault("CACHE_KEY_PREFIX", f"test-{_run}")
os.environ.setdefault("PORTAL_BROKER_DIR", os.path.join(_tmp, "broker"))
os.environ.setdefault("MEDIA_ROOT", os.path.join(_tmp, "media"))
os.environ.setdefault("TEST_ARTIFACTS_DIR", os.path.join(os.getcwd(), "test-artifacts"))
for sub in ("broker/queue", "broker/processed", "broker/control", "media", "staticfiles"):
    os.makedirs(os.path.join(_tmp, sub), exist_ok=True)
