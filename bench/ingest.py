"""Ingest: the portal's validate + store of a CSV, against a plain COPY of the same rows.

    .venv/bin/python bench/ingest.py [--quick]

A CSV of 15-minute readings for 30 meters (columns meter, ts, value) is generated at
each size (10k, 100k, 1M rows). Each size is ingested in a fresh subprocess through
the services an upload goes through, called synchronously:
    upload_create(run_now=True)   store the file, parse + validate it (counts, preview, report),
                                  stage the valid readings
    upload_confirm(run_now=True)  store the staged readings into Reading (and its roll-ups)
then the same file again (a re-upload: every row a conflict). The subprocess reports its
times and its peak RSS above the baseline it had before the first upload (memory must not
grow with the file). The reference, measured in the same run: a plain COPY of the same
rows, typed, into an empty table keyed like Reading:
    CREATE TABLE ref (meter_id bigint, ts timestamptz, value double precision, PRIMARY KEY (meter_id, ts))
    COPY ref FROM STDIN WITH CSV HEADER      -- the file with meter ids instead of names
Each size runs common.RUNS times (a fresh process each); times are reported as median
and range, and each run's ratio is taken against the COPY of the same run.
Target: the portal's rows/s (validate + store) at least 0.5x the reference's.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common

METERS = 30
START = datetime(2023, 1, 1, tzinfo=UTC)
TARGET_RATIO = 0.5
MAX_RSS_GROWTH_MB = 100


def meter_name(i: int) -> str:
    return f"Bench meter {i:02d}"


def write_csv(path: Path, rows: int) -> None:
    """rows readings, every meter at each 15-minute instant, in time order."""
    with path.open("w", newline="") as f:
        f.write("meter,ts,value\n")
        names = [meter_name(m) for m in range(METERS)]
        step = 0
        written = 0
        while written < rows:
            ts = (START + timedelta(minutes=15 * step)).isoformat()
            for m in range(min(METERS, rows - written)):
                f.write(f"{names[m]},{ts},{(step * 7 + m) % 1000 / 100:.2f}\n")
            written += min(METERS, rows - written)
            step += 1


def write_typed_csv(path: Path, typed: Path, meter_ids: dict[str, int]) -> None:
    """The same rows with each meter's id instead of its name (what the reference COPYs)."""
    with path.open() as src, typed.open("w") as out:
        out.write("meter_id,ts,value\n")
        next(src)
        for line in src:
            name, rest = line.split(",", 1)
            out.write(f"{meter_ids[name]},{rest}")


def reference_copy(typed: Path) -> float:
    """Seconds to COPY the typed rows into a fresh table keyed (meter_id, ts) (committed)."""
    import psycopg

    with psycopg.connect(common.DATABASE_URL) as conn:
        conn.execute("DROP TABLE IF EXISTS ref")
        conn.execute(
            "CREATE TABLE ref (meter_id bigint, ts timestamptz, value double precision, PRIMARY KEY (meter_id, ts))"
        )
        conn.commit()
        with common.Timer() as t:
            sql = "COPY ref (meter_id, ts, value) FROM STDIN WITH CSV HEADER"
            with conn.cursor() as cur, cur.copy(sql) as copy, typed.open("rb") as f:
                while chunk := f.read(1024 * 1024):
                    copy.write(chunk)
            conn.commit()
        count = conn.execute("SELECT count(*) FROM ref").fetchone()[0]
        conn.execute("DROP TABLE ref")
        conn.commit()
    assert count > 0
    return t.seconds


def bench_meter_ids() -> dict[str, int]:
    """The bench meters' ids (created by the first child), by name."""
    import psycopg

    with psycopg.connect(common.DATABASE_URL) as conn:
        rows = conn.execute("SELECT name, id FROM sites_meter WHERE name LIKE 'Bench meter %%'").fetchall()
    return dict(rows)


# ----- the child: one size, one fresh process -------------------------------------------


def child(rows: int, path: Path) -> None:
    common.setup_django()
    from django.contrib.auth import get_user_model
    from django.core.files import File
    from django.db import connection

    from accounts.models import Organization
    from sites.models import Meter, Site
    from uploads.models import Reading
    from uploads.services.ingest import upload_confirm, upload_create

    with connection.cursor() as cursor:
        # A clean slate: the previous size's rows must not turn inserts into updates.
        cursor.execute("TRUNCATE uploads_reading, uploads_readingrollup, uploads_delivery, uploads_upload CASCADE")
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_user("bench")
    site, _ = Site.objects.get_or_create(organization=org, name="Bench site", defaults={"timezone": "UTC"})
    for m in range(METERS):
        Meter.objects.get_or_create(organization=org, site=site, name=meter_name(m))
    baseline = common.maxrss_mb()

    def ingest() -> tuple[float, float]:
        with path.open("rb") as f, common.Timer() as validate:
            upload = upload_create(
                organization=org, user=user, file=File(f, name=path.name), meter=None, targets=[], run_now=True
            )
        assert upload.status == "validated", (upload.status, upload.error)
        with common.Timer() as store:
            upload = upload_confirm(upload=upload, user=user, run_now=True)
        assert upload.status == "stored", (upload.status, upload.error)
        stored = Reading.objects.filter(upload=upload).count()
        assert stored == rows, (stored, rows)
        upload.file.delete(save=False)  # the stored copy of the CSV: runs must not pile them up
        return validate.seconds, store.seconds

    validate_s, store_s = ingest()
    peak = common.maxrss_mb()
    # The same file again: every row is already stored (the upsert path).
    again_validate_s, again_store_s = ingest()
    print(
        json.dumps(
            {
                "rows": rows,
                "validate_s": validate_s,
                "store_s": store_s,
                "again_validate_s": again_validate_s,
                "again_store_s": again_store_s,
                "baseline_rss_mb": baseline,
                "peak_rss_mb": peak,
                "peak_rss_again_mb": common.maxrss_mb(),
            }
        )
    )


def run_child(rows: int, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(rows), str(path)],
        env=common.child_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"ingest of {rows} rows failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 50k rows instead of up to 1M")
    parser.add_argument("--child", nargs=2, metavar=("ROWS", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), Path(args.child[1]))
        return

    sizes = [10_000, 50_000] if args.quick else [10_000, 100_000, 1_000_000]
    common.recreate_database()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for rows in sizes:
            path, typed = Path(tmp) / f"readings-{rows}.csv", Path(tmp) / f"typed-{rows}.csv"
            write_csv(path, rows)
            runs = []
            for _ in range(common.RUNS):
                run = run_child(rows, path)
                if not typed.exists():
                    write_typed_csv(path, typed, bench_meter_ids())
                run["copy_s"] = reference_copy(typed)
                runs.append(run)
            portal = [rows / (r["validate_s"] + r["store_s"]) for r in runs]
            copy = [rows / r["copy_s"] for r in runs]
            results.append(
                {
                    "rows": rows,
                    "file_mb": round(path.stat().st_size / 2**20, 1),
                    "validate_s": common.spread([r["validate_s"] for r in runs]),
                    "store_s": common.spread([r["store_s"] for r in runs]),
                    "again_validate_s": common.spread([r["again_validate_s"] for r in runs]),
                    "again_store_s": common.spread([r["again_store_s"] for r in runs]),
                    "copy_s": common.spread([r["copy_s"] for r in runs]),
                    "portal_rows_s": common.spread(portal),
                    "copy_rows_s": common.spread(copy),
                    # Each run's portal rate over the same run's COPY rate.
                    "ratio": common.spread([p / c for p, c in zip(portal, copy, strict=True)]),
                    "store_ratio": common.spread([r["copy_s"] / r["store_s"] for r in runs]),
                    "rss_growth_mb": max(r["peak_rss_mb"] - r["baseline_rss_mb"] for r in runs),
                    "rss_growth_again_mb": max(r["peak_rss_again_mb"] - r["baseline_rss_mb"] for r in runs),
                    "runs": runs,
                }
            )
            path.unlink()
            typed.unlink()

    print(
        f"Ingest: validate + store ({METERS} meters, 15-minute readings) vs a plain COPY of the same rows into an "
        f"empty table keyed (meter_id, ts), PostgreSQL; median (range) of {common.RUNS} runs; commit {common.commit()}"
    )
    print(
        common.table(
            [
                "rows",
                "MB",
                "validate s",
                "store s",
                "portal rows/s",
                "COPY s",
                "COPY rows/s",
                "ratio",
                "store alone / COPY",
                "re-upload validate s",
                "re-upload store s",
                "peak RSS +MB",
            ],
            [
                [
                    f"{r['rows']:,}",
                    r["file_mb"],
                    common.show(r["validate_s"], ".2f"),
                    common.show(r["store_s"], ".2f"),
                    common.show(r["portal_rows_s"]),
                    common.show(r["copy_s"], ".2f"),
                    common.show(r["copy_rows_s"]),
                    common.show(r["ratio"], ".3f"),
                    common.show(r["store_ratio"], ".3f"),
                    common.show(r["again_validate_s"], ".2f"),
                    common.show(r["again_store_s"], ".2f"),
                    f"{r['rss_growth_mb']:.0f} ({r['rss_growth_again_mb']:.0f} with the re-upload)",
                ]
                for r in results
            ],
        )  # fmt: skip
    )
    largest = results[-1]
    growth = [r["rss_growth_mb"] for r in results]
    bounded = max(growth) < MAX_RSS_GROWTH_MB
    met = largest["ratio"]["median"] >= TARGET_RATIO
    print(
        f"ratio at {largest['rows']:,} rows: {common.show(largest['ratio'], '.3f')}x the reference COPY "
        f"(target >= {TARGET_RATIO}x): {'met' if met else 'MISSED'}"
    )
    print(
        f"peak RSS growth {min(growth):.0f}-{max(growth):.0f} MB across sizes "
        f"(target < {MAX_RSS_GROWTH_MB} MB): {'met' if bounded else 'MISSED'}"
    )
    common.write_result(
        "ingest",
        {
            "quick": args.quick,
            "meters": METERS,
            "sizes": results,
            "target_ratio": TARGET_RATIO,
            "ratio_met": met,
            "memory_bounded": bounded,
        },
    )


if __name__ == "__main__":
    main()
