"""Where ingest time goes, and what three small changes to the portal would gain.

    .venv/bin/python bench/ingest_prototype.py [--quick]

Not part of `make bench`: a companion to bench/ingest.py, for the report. Nothing in
the portal is edited; the changes are tried by patching in this process only:
  1. parse: one pass of ParsedFile over the file (the upload path makes two: validate,
     then store), as is and with two hot spots removed: `Layout.electrical` rebuilt for
     every row (a sort and a list), and a regular-expression substitution of every
     timestamp (for "2024/01/31" dates) run even when the text has no "/".
  2. store: readings_upsert of the pre-parsed rows into an empty Reading table, with
     its indexes as migrated, and without whichever single-column foreign-key indexes
     (meter_id, upload_id) it still has: the (meter, ts) and (upload, meter, ts) indexes cover them.
  3. the ceiling: no Python per row at all, COPY into a temporary text table then one
     INSERT ... SELECT with casts ON CONFLICT into Reading.
Each is reported in rows/s and as a ratio to raw COPY of the same file.
"""

import argparse
import tempfile
import time
from pathlib import Path

import common
from ingest import METERS, meter_name, raw_copy, write_csv

REDUNDANT_INDEXES = ("meter_id", "upload_id")


def parse_rows(path: Path, org, *, patched: bool) -> tuple[float, list]:
    from uploads.parsing import ParsedFile, RowError, columns, rows, values
    from uploads.services.ingest import MeterLookup

    saved = (columns.Layout.electrical, rows.parse_naive_or_aware)
    if patched:
        cache: dict[int, list] = {}

        def electrical(layout):  # computed once per layout, not once per row
            key = id(layout)
            if key not in cache:
                cache[key] = saved[0].fget(layout)
            return cache[key]

        def parse_naive_or_aware(text: str):
            s = text.strip()
            if "/" in s or not s:
                return values.parse_naive_or_aware(s)
            try:
                return values.datetime.fromisoformat(s)
            except ValueError:
                return values.parse_naive_or_aware(s)

        columns.Layout.electrical = property(electrical)
        rows.parse_naive_or_aware = parse_naive_or_aware
    try:
        with path.open("rb") as f:
            started = time.perf_counter()
            parsed = ParsedFile(
                f, column_mapping=None, fixed_meter=None, resolve_meter=MeterLookup(org), max_decompressed_bytes=2**34
            )
            good = [row for row in parsed if not isinstance(row, RowError)]
            seconds = time.perf_counter() - started
    finally:
        columns.Layout.electrical, rows.parse_naive_or_aware = saved
    return seconds, good


def store(good: list, upload_id: int) -> float:
    from django.db import connection

    from uploads.services import ingest_storage

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE uploads_reading")
    started = time.perf_counter()
    ingest_storage.readings_upsert(rows=iter(good), upload_id=upload_id)
    return time.perf_counter() - started


def fk_indexes() -> dict[str, str]:
    """column -> (name, definition) of the single-column indexes on Reading's foreign keys."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'uploads_reading'")
        found = {}
        for name, definition in cursor.fetchall():
            for column in REDUNDANT_INDEXES:
                if definition.endswith(f"btree ({column})"):
                    found[column] = (name, definition)
    return found


def sql_ceiling(path: Path, upload_id: int) -> float:
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE uploads_reading")
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
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
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows instead of 300,000")
    args = parser.parse_args()
    n = 50_000 if args.quick else 300_000

    common.recreate_database()
    common.setup_django()
    from django.db import connection

    from accounts.models import Organization
    from sites.models import Meter, Site
    from uploads.models import Upload

    org = Organization.objects.create(name="Bench", slug="bench")
    site = Site.objects.create(organization=org, name="Bench site", timezone="UTC")
    for m in range(METERS):
        Meter.objects.create(organization=org, site=site, name=meter_name(m))
    upload = Upload.objects.create(organization=org, original_name="bench.csv")

    with tempfile.TemporaryDirectory(prefix="bench-proto-") as tmp:
        path = Path(tmp) / "readings.csv"
        write_csv(path, n)
        copy_s = raw_copy(path)
        parse_s, good = parse_rows(path, org, patched=False)
        fast_parse_s, fast_good = parse_rows(path, org, patched=True)
        assert len(good) == len(fast_good) == n and good[-1] == fast_good[-1]
        store_s = store(good, upload.pk)
        dropped = fk_indexes()
        with connection.cursor() as cursor:
            for name, _ in dropped.values():
                cursor.execute(f'DROP INDEX "{name}"')
        lean_store_s = store(good, upload.pk)
        ceiling_s = sql_ceiling(path, upload.pk)
        with connection.cursor() as cursor:  # put the schema back as migrated
            cursor.execute("TRUNCATE uploads_reading")
            for _, definition in dropped.values():
                cursor.execute(definition)

    cases = [
        ("raw COPY into a plain text table", copy_s),
        ("parse + validate, one pass, as is", parse_s),
        ("parse + validate, one pass, 2 hot spots removed", fast_parse_s),
        ("store (readings_upsert), indexes as migrated", store_s),
        ("store, without the single-column FK index(es)", lean_store_s),
        ("upload path today: 2 parses + store", 2 * parse_s + store_s),
        ("1 fast parse + lean store", fast_parse_s + lean_store_s),
        ("ceiling: COPY + INSERT...SELECT casts ON CONFLICT (no Python per row)", ceiling_s),
    ]
    print(f"Ingest prototype, {n:,} rows, {METERS} meters")
    print(
        common.table(
            ["step", "seconds", "rows/s", "vs raw COPY"],
            [[name, f"{s:.2f}", f"{n / s:,.0f}", f"{copy_s / s:.3f}"] for name, s in cases],
        )
    )
    common.write_result(
        "ingest_prototype",
        {"quick": args.quick, "rows": n, "seconds": dict(cases), "dropped_indexes": list(dropped)},
    )


if __name__ == "__main__":
    main()
