"""Settings of the test suite (pyproject.toml's pytest section selects them).

tests/envsetup.py runs first and gives each test run names of its own through the
environment (database suffix, queue, cache prefix, folders), so two runs on one
machine never meet; the worker processes the tests start inherit them.
"""

from portal.settings import *  # noqa: F403
from portal.settings import DATABASES, VAR_DIR, env

# The default hash is deliberately slow (about a second per user made); tests need no such cost.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_suffix = env.str("PORTAL_TEST_DB_SUFFIX", default="")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a Celery worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_portal{_suffix}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}{_suffix}"}
