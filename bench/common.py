"""What the benchmarks share: the bench database, Django set-up, timing, results.

Every benchmark runs against its own PostgreSQL database, `portal_bench`, which it
drops and creates again (then migrates) so runs never see each other's rows. Files,
the Celery queue and cache keys get names of their own too: the machine is shared.
"""

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DB_NAME = os.environ.get("BENCH_DB_NAME", "portal_bench")
PG = "postgres://postgres@127.0.0.1:5432"
DATABASE_URL = f"{PG}/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def bench_env() -> dict[str, str]:
    """The environment of the portal under benchmark (also given to worker subprocesses)."""
    var = OUT / "var"
    return {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "CELERY_QUEUE": f"portal-bench-{os.getpid()}",
        "CACHE_KEY_PREFIX": f"portal-bench-{os.getpid()}",
        "PORTAL_VAR_DIR": str(var),
        "MEDIA_ROOT": str(var / "media"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def recreate_database() -> None:
    """Drop and create portal_bench, then `manage.py migrate` it in a subprocess."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    env = os.environ | bench_env()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True, timeout=300
    )


def setup_django() -> None:
    """Point this process at portal_bench, then django.setup() (env first: settings read it at import)."""
    if os.environ.get("BENCH_CHILD") != "1":
        # A child inherits its parent's names (same queue, same cache prefix).
        os.environ.update(bench_env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def child_env() -> dict[str, str]:
    return os.environ | bench_env() | {"BENCH_CHILD": "1"}


def maxrss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    def __enter__(self) -> "Timer":
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


# Timings vary from run to run on a shared machine: each is taken RUNS times and reported
# as the median and the range (lowest to highest), never as one lucky number.
RUNS = 3


def spread(samples: list[float]) -> dict:
    """{"median", "low", "high", "runs"} of the samples."""
    return {"median": statistics.median(samples), "low": min(samples), "high": max(samples), "runs": len(samples)}


def show(s: dict, fmt: str = ",.0f", unit: str = "") -> str:
    """A spread as text: `median (low–high)`."""
    return f"{s['median']:{fmt}}{unit} ({s['low']:{fmt}}–{s['high']:{fmt}})"


def commit() -> str:
    """The code under benchmark: the commit, and whether the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} + uncommitted changes" if dirty else head


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    pg = "unknown"
    try:
        import psycopg

        with psycopg.connect(f"{PG}/postgres") as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - the machine line is informative only
        pg = f"unreachable ({type(exc).__name__})"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "postgresql": pg,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_result(name: str, result: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    result = {
        "benchmark": name,
        "commit": commit(),
        "machine": machine(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **result,
    }
    path.write_text(json.dumps(result, indent=2, default=str))
    return path
