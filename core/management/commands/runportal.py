"""`make run`: the whole portal in one terminal.

Starts both vendor simulators, a Celery worker (with an embedded beat for the
stale-delivery sweep) and Django's server, prints the URL and the login, and
stops every process it started on Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from portal.settings import env


class Command(BaseCommand):
    help = "Run the portal, a Celery worker and both vendor simulators."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=env.str("PORTAL_ADDR", default="127.0.0.1:8000"))
        parser.add_argument("--no-simulators", action="store_true", help="Talk to the configured vendor URLs.")

    def handle(self, *args, addr: str, no_simulators: bool, **options):
        call_command("bootstrap")
        settings.BROKER_DIR.mkdir(parents=True, exist_ok=True)
        for sub in ("queue", "processed", "control"):
            (settings.BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
        py = sys.executable
        commands: list[tuple[str, list[str]]] = []
        if not no_simulators:
            commands += [
                ("wattcarbon-sim", [py, "-m", "simulators", "wattcarbon", "--port", "8101"]),
                ("wattics-sim", [py, "-m", "simulators", "wattics", "--port", "8102"]),
            ]
        commands += [
            (
                "worker",
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "-B",
                    "--pool",
                    "threads",
                    "--concurrency",
                    str(env.int("WORKER_CONCURRENCY", default=8)),
                    "--schedule",
                    str(settings.VAR_DIR / "celerybeat-schedule"),
                    "--without-mingle",
                    "--without-gossip",
                    "--loglevel",
                    "INFO",
                ],
            ),
            ("web", [py, "manage.py", "runserver", addr, "--noreload"]),
        ]
        procs: list[tuple[str, subprocess.Popen]] = []
        try:
            for name, cmd in commands:
                procs.append((name, subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=os.environ.copy())))
            username = env.str("DJANGO_SUPERUSER_USERNAME", default="admin")
            password = env.str("DJANGO_SUPERUSER_PASSWORD", default="portal-admin")
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
                if dead == ["worker"]:
                    # Supervise the worker as a deployment would (it can die when its broker
                    # restarts); the stale-delivery sweep then resumes its pushes.
                    self.stderr.write("The worker stopped; starting it again.")
                    i = next(i for i, (name, _) in enumerate(procs) if name == "worker")
                    procs[i] = ("worker", subprocess.Popen(dict(commands)["worker"], cwd=settings.BASE_DIR))
                elif dead:
                    break
            self.stderr.write(f"{', '.join(dead)} stopped; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            for _, p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for _, p in procs:
                try:
                    p.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    p.kill()
