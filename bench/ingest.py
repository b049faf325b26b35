"""Ingest: the portal's parse + validate + store of a CSV, against PostgreSQL's raw COPY.

    .venv/bin/python bench/ingest.py [--quick]

A CSV of 15-minute readings for 30 meters (columns meter, ts, value) is generated at
each size (10k, 100k, 1M rows). Each size is ingested in a fresh subprocess through
the services an upload goes through, called synchronously:
    upload_create(run_now=True)   store the file, parse + validate it (counts, preview, report)
    upload_confirm(run_now=True)  parse again and upsert the valid rows into Reading
The subprocess reports its times and its peak RSS above the baseline it had before the
upload (memory must not grow with the file). The same raw file is then COPYed into a
plain text table: `COPY raw(meter text, ts text, value text) FROM STDIN WITH CSV HEADER`.
A third line is the ceiling of a validated store with no Python per row at all: COPY into
a temporary table, then one INSERT ... SELECT ... ON CONFLICT into Reading (its unique
index and foreign keys as migrated). Each size runs common.RUNS times (a fresh process
each); times are reported as median and range.
Target: the portal's rows/s at least 0.5x raw COPY's.
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


def raw_copy(path: Path) -> float:
    """Seconds to COPY the file into a fresh plain table (committed)."""
    import psycopg

    with psycopg.connect(common.DATABASE_URL) as conn:
        conn.execute("DROP TABLE IF EXISTS raw")
        conn.execute("CREATE TABLE raw (meter text, ts text, value text)")
        conn.commit()
        with common.Timer() as t:
            sql = "COPY raw (meter, ts, value) FROM STDIN WITH CSV HEADER"
            with conn.cursor() as cur, cur.copy(sql) as copy, path.open("rb") as f:
                while chunk := f.read(1024 * 1024):
                    copy.write(chunk)
            conn.commit()
        count = conn.execute("SELECT count(*) FROM raw").fetchone()[0]
        conn.execute("DROP TABLE raw")
        conn.commit()
    assert count > 0
    return t.seconds


def sql_ceiling(path: Path, upload_id: int) -> float:
    """Seconds to store the file into Reading with SQL alone (an empty table, as the portal had)."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE uploads_reading")
    with common.Timer() as t, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE raw_in (meter text, ts text, value text) ON COMMIT DROP")
        with cursor.cursor.copy("COPY raw_in FROM STDIN WITH CSV HEADER") as copy, path.open("rb") as f:
            while chunk := f.read(1024 * 1024):
                copy.write(chunk)
        cursor.execute(
            """
            INSERT INTO uploads_reading (meter_id, ts, value, extra, upload_id)
            SELECT m.id, r.ts::timestamptz, r.value::double precision, NULL, %s
            FROM raw_in r JOIN sites_meter m ON m.name = r.meter
            ORDER BY 1, 2
            ON CONFLICT (meter_id, ts) DO UPDATE SET value = EXCLUDED.value, upload_id = EXCLUDED.upload_id
            """,
            [upload_id],
        )
    return t.seconds


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
        cursor.execute("TRUNCATE uploads_reading, uploads_delivery, uploads_upload CASCADE")
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_user("bench")
    site, _ = Site.objects.get_or_create(organization=org, name="Bench site", defaults={"timezone": "UTC"})
    for m in range(METERS):
        Meter.objects.get_or_create(organization=org, site=site, name=meter_name(m))
    baseline = common.maxrss_mb()

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
    peak = common.maxrss_mb()
    ceiling = sql_ceiling(path, upload.pk)
    print(
        json.dumps(
            {
                "rows": rows,
                "validate_s": validate.seconds,
                "store_s": store.seconds,
                "ceiling_s": ceiling,
                "baseline_rss_mb": baseline,
                "peak_rss_mb": peak,
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
            path = Path(tmp) / f"readings-{rows}.csv"
            write_csv(path, rows)
            runs = []
            for _ in range(common.RUNS):
                run = run_child(rows, path)
                run["copy_s"] = raw_copy(path)
                runs.append(run)
            portal = [rows / (r["validate_s"] + r["store_s"]) for r in runs]
            copy = [rows / r["copy_s"] for r in runs]
            ceiling = [rows / r["ceiling_s"] for r in runs]
            results.append(
                {
                    "rows": rows,
                    "file_mb": round(path.stat().st_size / 2**20, 1),
                    "validate_s": common.spread([r["validate_s"] for r in runs]),
                    "store_s": common.spread([r["store_s"] for r in runs]),
                    "portal_rows_s": common.spread(portal),
                    "copy_rows_s": common.spread(copy),
                    "ceiling_rows_s": common.spread(ceiling),
                    # Each run's portal rate over the same run's COPY rate.
                    "ratio": common.spread([p / c for p, c in zip(portal, copy, strict=True)]),
                    "ceiling_ratio": common.spread([x / c for x, c in zip(ceiling, copy, strict=True)]),
                    "rss_growth_mb": max(r["peak_rss_mb"] - r["baseline_rss_mb"] for r in runs),
                    "runs": runs,
                }
            )
            path.unlink()

    print(
        f"Ingest: parse + validate + store ({METERS} meters, 15-minute readings) vs raw COPY on PostgreSQL; "
        f"median (range) of {common.RUNS} runs; commit {common.commit()}"
    )
    print(
        common.table(
            [
                "rows",
                "MB",
                "validate s",
                "store s",
                "portal rows/s",
                "COPY rows/s",
                "ratio",
                "SQL-only store / COPY",
                "peak RSS +MB",
            ],
            [
                [
                    f"{r['rows']:,}",
                    r["file_mb"],
                    common.show(r["validate_s"], ".1f"),
                    common.show(r["store_s"], ".1f"),
                    common.show(r["portal_rows_s"]),
                    common.show(r["copy_rows_s"]),
                    common.show(r["ratio"], ".3f"),
                    common.show(r["ceiling_ratio"], ".3f"),
                    f"{r['rss_growth_mb']:.0f}",
                ]
                for r in results
            ],
        )  # fmt: skip
    )
    largest = results[-1]
    growth = [r["rss_growth_mb"] for r in results]
    flat = max(growth) - min(growth) < 50
    met = largest["ratio"]["median"] >= TARGET_RATIO
    print(
        f"ratio at {largest['rows']:,} rows: {common.show(largest['ratio'], '.3f')}x raw COPY "
        f"(target >= {TARGET_RATIO}x): {'met' if met else 'MISSED'}"
    )
    print(f"peak RSS growth {min(growth):.0f}-{max(growth):.0f} MB across sizes: {'flat' if flat else 'NOT flat'}")
    common.write_result(
        "ingest",
        {
            "quick": args.quick,
            "meters": METERS,
            "sizes": results,
            "target_ratio": TARGET_RATIO,
            "ratio_met": met,
            "memory_flat": flat,
        },
    )


if __name__ == "__main__":
    main()
