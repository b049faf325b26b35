"""Shared fixtures: users in their roles, a real Celery worker, the vendor simulators."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Role
from tests import factories

ROOT = Path(__file__).resolve().parent.parent


# --- People ---------------------------------------------------------------------
# Every view is tested as owner, teammate (an operator of the same organization),
# viewer (read-only member) and outsider (member of another organization only).


@pytest.fixture
def owner(db):
    return factories.make_user("owner")


@pytest.fixture
def org(owner):
    return factories.make_org("Acme Energy", owner=owner)


@pytest.fixture
def teammate(org):
    user = factories.make_user("teammate")
    factories.make_membership(user, org, Role.OPERATOR)
    return user


@pytest.fixture
def viewer(org):
    user = factories.make_user("viewer")
    factories.make_membership(user, org, Role.VIEWER)
    return user


@pytest.fixture
def other_org(db):
    return factories.make_org("Other Power")


@pytest.fixture
def outsider(other_org):
    user = factories.make_user("outsider")
    factories.make_membership(user, other_org, Role.OWNER)
    return user


def _client_for(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(client, owner, org):
    return _client_for(client, owner)


@pytest.fixture
def teammate_client(client, teammate):
    return _client_for(client, teammate)


@pytest.fixture
def viewer_client(client, viewer):
    return _client_for(client, viewer)


@pytest.fixture
def outsider_client(client, outsider):
    return _client_for(client, outsider)


# --- A real Celery worker ----------------------------------------------------------


def worker_environment() -> dict[str, str]:
    """The environment for a worker process: the test database, the test queue."""
    env = os.environ.copy()
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """`celery worker` as a separate process, which a test may kill and restart."""

    def __init__(self, log_dir: Path, concurrency: int = 4, extra_args: tuple[str, ...] = (), env: dict | None = None):
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.extra_args = extra_args
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> "WorkerProcess":
        self.starts += 1
        self.log_path = self.log_dir / f"worker-{os.getpid()}-{self.starts}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the process owns it until stop()
        cmd = [
            sys.executable, "-m", "celery", "-A", "portal", "worker",
            "--pool", "threads", "--concurrency", str(self.concurrency),
            "-Q", settings.CELERY_TASK_DEFAULT_QUEUE,
            "--without-mingle", "--without-gossip", "--loglevel", "INFO",
            "--hostname", f"test-{os.getpid()}-{self.starts}@%h", *self.extra_args,
        ]  # fmt: skip
        env = worker_environment() | self.env
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited at start:\n{self.log()}")
            if b" ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-task, as in a crash or an OOM kill."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def worker_factory(django_db_setup, tmp_path_factory):
    """Start worker processes against the test database; all are stopped at the end."""
    started: list[WorkerProcess] = []
    log_dir = tmp_path_factory.mktemp("workers")

    def start(concurrency: int = 4, **kwargs) -> WorkerProcess:
        worker = WorkerProcess(log_dir, concurrency, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def _session_worker(worker_factory, _wattcarbon_process, _wattics_process):
    # Workers read the simulators' URLs as their default vendor URLs.
    os.environ["WATTCARBON_BASE_URL"] = _wattcarbon_process.url
    os.environ["WATTICS_BASE_URL"] = _wattics_process.url
    return worker_factory()


@pytest.fixture
def celery_worker(_session_worker, transactional_db):
    """A running worker; the test's rows must be committed for it to see them."""
    if _session_worker.proc.poll() is not None:
        _session_worker.start()
    return _session_worker


# --- Vendor simulators, over real HTTP ------------------------------------------------


@pytest.fixture(scope="session")
def _wattcarbon_process():
    from simulators.testing import SimulatorProcess

    sim = SimulatorProcess("wattcarbon")
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def _wattics_process():
    from simulators.testing import SimulatorProcess

    sim = SimulatorProcess("wattics")
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def wattcarbon_sim(_wattcarbon_process, settings):
    """The WattCarbon simulator, reset, and the portal's default URL pointed at it."""
    _wattcarbon_process.reset()
    settings.WATTCARBON_BASE_URL = _wattcarbon_process.url
    return _wattcarbon_process


@pytest.fixture
def wattics_sim(_wattics_process, settings):
    _wattics_process.reset()
    settings.WATTICS_BASE_URL = _wattics_process.url
    return _wattics_process


@pytest.fixture
def vendor_credentials(org, wattcarbon_sim, wattics_sim):
    """The organization's credentials: the simulators' demo accounts."""
    from accounts.services import credentials_update

    return credentials_update(
        organization=org,
        wattcarbon_base_url=wattcarbon_sim.url,
        wattcarbon_email="demo@example.com",
        wattcarbon_api_key="demo-api-key",
        wattics_base_url=wattics_sim.url,
        wattics_username="demo",
        wattics_password="demo-password",
    )


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache (only this run's keys: Redis is shared)."""
    from django.core.cache import cache, caches

    yield
    if not settings.CACHES["throttle"]["BACKEND"].endswith("RedisCache"):
        caches["throttle"].clear()  # this process's memory: nothing shared to spare
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(f"{settings.CACHES['default']['KEY_PREFIX']}:*", count=1000))
        if keys:
            client.delete(*keys)
