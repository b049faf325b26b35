"""Benchmark of the two ways to upsert readings on PostgreSQL.

    createdb -h 127.0.0.1 -U postgres portal_bench_ingest
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_ingest .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_ingest .venv/bin/python bench/ingest_storage.py [ROWS]

Each method inserts ROWS new readings, then upserts the same ROWS again (the
re-upload case, every row a conflict).
"""

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from accounts.models import Organization  # noqa: E402
from sites.models import Meter, Site  # noqa: E402
from uploads.models import Reading, Upload  # noqa: E402
from uploads.parsing import MeterInfo, ReadingRow  # noqa: E402
from uploads.services import ingest_storage  # noqa: E402


def rows(info: MeterInfo, n: int):
    start = datetime(2000, 1, 1, tzinfo=UTC)
    for i in range(n):
        yield ReadingRow(i + 2, info, start + timedelta(minutes=15 * i), float(i % 97), None)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    assert connection.vendor == "postgresql", "run against PostgreSQL"
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    site, _ = Site.objects.get_or_create(organization=org, name="Bench", defaults={"timezone": "UTC"})
    meter, _ = Meter.objects.get_or_create(organization=org, site=site, name="Bench meter")
    upload = Upload.objects.create(organization=org, original_name="bench.csv")
    info = MeterInfo(meter.pk, "Bench meter", ZoneInfo("UTC"), 15, False)
    methods = {
        "bulk_create ON CONFLICT, 5,000/batch": (False, ingest_storage.BATCH_ROWS),
        "COPY + INSERT…SELECT ON CONFLICT, 50,000/batch": (True, ingest_storage.COPY_BATCH_ROWS),
    }
    for name, (use_copy, batch) in methods.items():
        Reading.objects.filter(meter=meter).delete()
        ingest_storage._use_copy = lambda use_copy=use_copy: use_copy
        ingest_storage.COPY_BATCH_ROWS = batch
        for phase in ("insert", "re-upload"):
            started = time.perf_counter()
            ingest_storage.readings_upsert(rows=rows(info, n), upload_id=upload.pk)
            seconds = time.perf_counter() - started
            count = Reading.objects.filter(meter=meter).count()
            print(f"{name:50} {phase:10} {n:>9,} rows {seconds:7.1f} s {n / seconds:>9,.0f} rows/s (stored {count:,})")
    Reading.objects.filter(meter=meter).delete()


if __name__ == "__main__":
    main()
