"""`make run`: the whole portal in one terminal.

Starts both vendor simulators, a Celery worker, Celery beat (the periodic sweeps)
and Django's server, prints the URL and the login, and stops every process it
started on Ctrl-C.

The worker and beat are supervised: either one that dies is started again. Beat is
its own process, not the worker's embedded `-B` child: a killed worker would leave
that child running, and each restart would add one more scheduler (every sweep then
runs several times). Each child runs in its own process group, and a stop ends the
whole group, so nothing a child started outlives it.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from core.worker import worker_command


class Command(BaseCommand):
    help = "Run the portal, a Celery worker and both vendor simulators."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=settings.PORTAL_ADDR)
        parser.add_argument("--no-simulators", action="store_true", help="Talk to the configured vendor URLs.")

    def handle(self, *args, addr: str, no_simulators: bool, **options):
        call_command("bootstrap")  # folders, migrations, the admin login
        py = sys.executable
        commands: list[tuple[str, list[str]]] = []
        if not no_simulators:
            commands += [
                ("wattcarbon-sim", [py, "-m", "simulators", "wattcarbon", "--port", "8101"]),
                ("wattics-sim", [py, "-m", "simulators", "wattics", "--port", "8102"]),
            ]
        commands += [
            ("worker", worker_command()),  # pool and concurrency from settings (core/worker.py)
            (
                "beat",
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "beat",
                    "--schedule",
                    str(settings.VAR_DIR / "celerybeat-schedule"),
                    "--loglevel",
                    "INFO",
                ],
            ),
            ("web", [py, "manage.py", "runserver", addr, "--noreload"]),
        ]
        procs: list[tuple[str, subprocess.Popen]] = []
        try:
            for name, cmd in commands:
                procs.append((name, _start(cmd)))
            username = settings.DJANGO_SUPERUSER_USERNAME
            password = settings.DJANGO_SUPERUSER_PASSWORD
            time.sleep(1.5)
            self.stdout.write(
                self.style.SUCCESS(
                    f"\n  Energy Data Portal: http://{addr}/\n  Login: {username} / {password}\n"
                    + (
                        ""
                        if no_simulators
                        else "  Simulators: WattCarbon http://127.0.0.1:8101/_sim/state, "
                        "Wattics http://127.0.0.1:8102/_sim/state\n"
                    )
                    + "  Ctrl-C stops everything.\n"
                )
            )
            while True:
                time.sleep(0.5)
                dead = [name for name, p in procs if p.poll() is not None]
                if dead and set(dead) <= SUPERVISED:
                    # Supervise the worker and beat as a deployment would (a worker can die when
                    # its broker restarts); the stale sweeps then resume the work it held.
                    for i, (name, p) in enumerate(procs):
                        if name in dead:
                            self.stderr.write(f"The {name} stopped; starting it again.")
                            _stop_group(p)  # anything it left behind goes with it
                            procs[i] = (name, _start(dict(commands)[name]))
                elif dead:
                    break
            self.stderr.write(f"{', '.join(dead)} stopped; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            for _, p in procs:
                _signal_group(p, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for _, p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=max(deadline - time.monotonic(), 0.1))
                _stop_group(p)


PR_SET_PDEATHSIG = 1  # linux/prctl.h

# Started again when they die; any other process ending stops `make run`.
SUPERVISED = {"worker", "beat"}


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=os.environ.copy(), preexec_fn=_child_setup)


def _child_setup() -> None:
    """In the child, before it runs: its own process group (a stop reaches every process
    it starts), and, on Linux, SIGTERM when runportal itself dies, even by SIGKILL, so a
    killed `make run` leaves no worker or scheduler behind for the next one to double."""
    parent = os.getppid()
    os.setsid()
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # runportal died before the request took effect
            os._exit(1)


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone
        os.killpg(p.pid, sig)


def _stop_group(p: subprocess.Popen) -> None:
    """SIGKILL whatever is left of the child's process group, and reap the child."""
    _signal_group(p, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(timeout=5)
