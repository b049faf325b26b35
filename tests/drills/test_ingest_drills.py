"""Drills of ingest with real workers: a worker SIGKILLed while it checks a big file, and
a user who cancels a file while a worker checks it.

The workers here run with a short heartbeat (and a beat process for the stale sweep),
so the bound that holds in production (a dead worker noticed within two minutes:
heartbeat stale after 90 s, sweep every 30 s) is exercised in seconds."""

import gzip
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests import factories
from tests.conftest import ROOT, worker_environment
from tests.drills.support import wait_for
from uploads.models import Target, Upload, UploadStatus
from uploads.services.ingest import upload_create

FAST = {"INGEST_HEARTBEAT_SECONDS": "0.25", "INGEST_STALE_SECONDS": "2", "INGEST_SWEEP_SECONDS": "0.5"}
ROWS = 1_200_000


def quarter_hours(count: int) -> bytes:
    """A file checked row by row (its unit column keeps it off the arrays, which check 1.2M rows in
    about a second, less than the stale bound): the drills need a parse that lasts."""
    start = datetime(1990, 1, 1, tzinfo=UTC)  # 1.2M quarter hours end in 2024
    step = timedelta(minutes=15)
    lines = ["timestamp,energy_kwh,unit"]
    lines += [f"{(start + i * step).isoformat()},{i % 97 / 4},kWh" for i in range(count)]
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)


@pytest.fixture
def big_upload_of(org, owner):
    site = factories.make_site(org, name="Depot", timezone="UTC")
    meter = factories.make_meter(site, name="Main", interval_minutes=15)
    data = quarter_hours(ROWS)

    def make() -> Upload:
        return upload_create(
            organization=org,
            user=owner,
            file=SimpleUploadedFile("big.csv.gz", data, content_type="application/gzip"),
            meter=meter,
            targets=[Target.WATTICS],
            run_now=False,
        )

    return make


@pytest.fixture
def fast_workers(_session_worker, worker_factory, transactional_db, tmp_path):
    """Workers with a short heartbeat, and one beat process sending the stale sweep (as compose and
    `make run` run beat: its own process, never a worker's `-B` child that a killed worker would
    orphan). The session worker is stopped so that the worker killed is the one that parses."""
    _session_worker.stop()
    env = worker_environment() | FAST
    with open(tmp_path / "beat.log", "wb") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "beat", "--schedule", str(tmp_path / "beat-schedule")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    started = []

    def start():
        started.append(worker_factory(concurrency=2, env=FAST))
        return started[-1]

    yield start
    for worker in started:  # their fast sweep must not run beside later tests
        worker.stop()
    beat.terminate()
    beat.wait(20)


def parsing(upload: Upload) -> Upload | None:
    upload.refresh_from_db()
    return upload if upload.status == UploadStatus.PARSING and upload.rows_total else None


@pytest.mark.worker
def test_a_worker_killed_mid_parse_is_noticed_and_the_upload_completes(fast_workers, big_upload_of):
    worker = fast_workers()
    upload = big_upload_of()
    first = wait_for(lambda: parsing(upload), timeout=120, what="the worker to be parsing", worker=worker)
    claim = first.claimed_at
    # A live worker that parses longer than the stale bound is left alone: its heartbeat is fresh.
    bound = timedelta(seconds=float(FAST["INGEST_STALE_SECONDS"]) + 2 * float(FAST["INGEST_SWEEP_SECONDS"]))
    while True:
        upload.refresh_from_db()
        assert upload.status == UploadStatus.PARSING, f"the file was parsed too fast to kill mid-parse: {upload.status}"
        if upload.heartbeat_at - claim > bound:
            break
        time.sleep(0.1)
    assert upload.claimed_at == claim, "a live parse was taken away from its worker"
    assert upload.heartbeat_at > claim

    worker.kill()
    killed_at = time.monotonic()
    rows_at_kill = upload.rows_total
    worker = fast_workers()  # a deployment restarts its workers; the sweep comes with it

    def taken_up_again():
        upload.refresh_from_db()
        return upload.claimed_at != claim

    wait_for(taken_up_again, timeout=120, what="the sweep to take the upload up again", worker=worker)
    noticed = time.monotonic() - killed_at
    done = wait_for(
        lambda: (u := Upload.objects.get(pk=upload.pk)).status == UploadStatus.VALIDATED and u,
        timeout=300,
        what="the upload to be validated",
        worker=worker,
    )
    assert done.rows_valid == ROWS and done.rows_invalid == 0
    assert rows_at_kill < ROWS
    # Detection bound of the drill: heartbeat stale bound + one sweep + a worker start, with margin.
    assert noticed < 60, f"the dead worker was noticed after {noticed:.0f} s"
    print(f"\nworker killed at {rows_at_kill} rows read; taken up again after {noticed:.1f} s")


@pytest.mark.worker
def test_a_parsing_upload_is_cancelled_and_its_worker_stops(fast_workers, big_upload_of, owner_client):
    worker = fast_workers()
    upload = big_upload_of()
    wait_for(lambda: parsing(upload), timeout=120, what="the worker to be parsing", worker=worker)
    page = owner_client.get(f"/uploads/{upload.pk}/review/")
    assert b"Stop checking and cancel" in page.content
    response = owner_client.post(f"/uploads/{upload.pk}/cancel/")
    assert response.status_code == 302
    upload.refresh_from_db()
    assert upload.status == UploadStatus.CANCELLED
    # The worker sees the cancel at its next heartbeat and stops parsing.
    stopped = f"upload {upload.pk}: parsing stopped"
    wait_for(lambda: stopped in worker.log_path.read_text(), timeout=30, what="the worker to stop", worker=worker)
    upload.refresh_from_db()
    rows, beat = upload.rows_total, upload.heartbeat_at
    time.sleep(2)
    upload.refresh_from_db()
    assert upload.status == UploadStatus.CANCELLED and upload.validated_at is None
    assert (upload.rows_total, upload.heartbeat_at) == (rows, beat), "the worker went on after the cancel"


def test_production_settings_notice_a_dead_worker_within_two_minutes(settings):
    from django.conf import settings as defaults

    # Stale bound plus one sweep period: the longest a dead worker's upload waits.
    assert defaults.INGEST_STALE_SECONDS + defaults.INGEST_SWEEP_SECONDS <= 120
    # A live run beats several times within the stale bound.
    assert defaults.INGEST_HEARTBEAT_SECONDS * 3 <= defaults.INGEST_STALE_SECONDS
    entry = next(
        e for e in defaults.CELERY_BEAT_SCHEDULE.values() if e["task"] == "uploads.tasks.uploads_requeue_stale_task"
    )
    assert entry["schedule"] == defaults.INGEST_SWEEP_SECONDS


def test_the_sweep_goes_by_the_heartbeat_not_the_claim(org, owner):
    from uploads.services.ingest import uploads_requeue_stale

    long_ago = timezone.now() - timedelta(hours=1)
    live = factories.make_upload(org, owner, status="parsing", claimed_at=long_ago, heartbeat_at=timezone.now())
    dead = factories.make_upload(
        org, owner, status="parsing", claimed_at=long_ago, heartbeat_at=timezone.now() - timedelta(seconds=200)
    )
    assert uploads_requeue_stale(stale_seconds=90) == [dead.pk]
    live.refresh_from_db()
    dead.refresh_from_db()
    assert live.status == UploadStatus.PARSING and live.claimed_at == long_ago
    assert dead.status == UploadStatus.RECEIVED and dead.claimed_at > long_ago
