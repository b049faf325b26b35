"""Drill: `make run` (manage.py runportal) keeps exactly one worker and one scheduler.

The worker is SIGKILLed three times and beat once; each comes back, beat is a process
of its own (not the worker's embedded `-B` scheduler) and no celery process is left
over. Then runportal itself is SIGKILLed: nothing it started outlives it (before, the
worker and its scheduler ran on, and each new `make run` added one more scheduler)."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KILLS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes(marker: str) -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, argv) of every live process started for this drill (found by its environment)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            stat = (entry / "stat").read_text()
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if state != "Z":
            found[int(entry.name)] = (int(ppid), argv)
    return found


def celery(marker: str, role: str | None = None) -> dict[int, tuple[int, list[str]]]:
    procs = {pid: p for pid, p in processes(marker).items() if "celery" in p[1]}
    return {pid: p for pid, p in procs.items() if role is None or role in p[1]}


def wait(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log.read_text()[-4000:]}")


def test_killed_worker_and_beat_come_back_and_exactly_one_scheduler_runs(tmp_path):
    tag = f"PORTAL_DRILL_RUN={uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG")}
    env.update(
        PORTAL_VAR_DIR=str(tmp_path / "var"),
        PORTAL_BROKER_DIR=str(tmp_path / "var" / "broker"),
        MEDIA_ROOT=str(tmp_path / "var" / "media"),
        CELERY_QUEUE=f"drill-{uuid.uuid4().hex[:8]}",
        WORKER_CONCURRENCY="2",
        PYTHONUNBUFFERED="1",
    )
    name, value = tag.split("=")
    env[name] = value
    log = tmp_path / "runportal.log"
    addr = f"127.0.0.1:{free_port()}"
    with open(log, "wb") as out:
        portal = subprocess.Popen(
            [sys.executable, "manage.py", "runportal", "--no-simulators", "--addr", addr],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait(lambda: len(celery(tag, "worker")) == 1, 180, "the worker", log)
        killed = set()
        for _ in range(KILLS):
            worker = next(pid for pid, (ppid, _) in celery(tag, "worker").items() if ppid == portal.pid)
            time.sleep(3)  # long enough for a worker's embedded scheduler to have started
            os.kill(worker, signal.SIGKILL)
            killed.add(worker)
            wait(lambda: set(celery(tag, "worker")) - killed, 60, "the worker to be started again", log)
        time.sleep(3)
        after_kills = celery(tag)
        assert len(celery(tag, "beat")) == 1, f"schedulers after {KILLS} worker kills: {after_kills}"
        assert len(after_kills) == 2, f"celery processes after {KILLS} worker kills: {after_kills}"

        (beat,) = celery(tag, "beat")
        os.kill(beat, signal.SIGKILL)
        wait(lambda: set(celery(tag, "beat")) - {beat}, 60, "beat to be started again", log)
        time.sleep(3)
        procs = celery(tag)
        assert len(celery(tag, "beat")) == 1 and len(procs) == 2, procs
        assert all(ppid == portal.pid for ppid, _ in procs.values()), "each is runportal's own child"
        assert portal.poll() is None
        assert log.read_text().count("The worker stopped; starting it again.") >= KILLS

        # runportal itself SIGKILLed (a closed terminal, an OOM kill): its children go with it,
        # so the next `make run` does not add a second scheduler beside an orphaned one.
        children = processes(tag)
        portal.kill()
        portal.wait(10)
        # wait() raises when they outlive the timeout; it returns as soon as none is left.
        wait(lambda: not processes(tag), 60, f"runportal's children {children} to stop after its SIGKILL", log)
    finally:
        portal.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            portal.wait(30)
        except subprocess.TimeoutExpired:
            portal.kill()
        deadline = time.monotonic() + 20
        while processes(tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        leftovers = processes(tag)
        for pid in leftovers:  # only this drill's processes, found by its marker
            os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"Ctrl-C left these running: {leftovers}"
