"""Pages on a big organization: server time and query count of the status pages.

    .venv/bin/python bench/dashboard.py [--quick]

One organization with 50 meters gets 10,000 uploads (one a ~50 minutes over the last
year), one Wattics delivery each (mostly delivered; some failed, some in progress),
50 HTTP exchanges per delivery (500 for the upload whose page is measured), and
5,000,000 15-minute readings (100,000 per meter, ~2.9 years; Meter 01 lacks 880 of them: HOLES).
All of it is generated
in PostgreSQL with INSERT ... SELECT generate_series; the readings' hourly and daily
roll-ups are then built as the backfill migration does (rollups_rebuild), and timed.

Each page is requested with Django's test Client as a logged-in owner: twice to warm
up, once under CaptureQueriesContext for the query count, then REQUESTS times for the
median server time and its range. DEBUG is turned off for the timed requests (no query log).
Targets: a bounded number of queries, median under 100 ms (the meter page over the whole
history included: it reads daily roll-ups, see dashboard.selectors.series_source).
"""

import argparse
import statistics
import time

import common

METERS = 50
REQUESTS = 20
TARGET_MS = 100.0
# Readings per upload: 100,000 per meter / 200 uploads per meter.
READINGS_PER_UPLOAD = 500
# Meter 01's holes (reading i of the meter left out): one interval every ~3.4 days, ten intervals
# every ~104 days, a whole day every ~208 days, so ~30% of its days hold a hole.
HOLES = "i %% 331 = 7 OR i %% 9973 < 10 OR i %% 20011 < 96"


def generate(uploads: int, readings_per_meter: int, exchanges_per_delivery: int) -> dict:
    """The organization, its owner and meters (ORM), then the bulk rows (SQL)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from accounts.models import Membership, Organization
    from sites.models import Meter, Site

    user = get_user_model().objects.create_user("bench-owner", password="bench-password-123")
    org = Organization.objects.create(name="Bench Energy", slug="bench")
    Membership.objects.create(user=user, organization=org, role="owner")
    site = Site.objects.create(organization=org, name="Bench site", timezone="Europe/Dublin")
    meters = Meter.objects.bulk_create(
        [
            Meter(organization=org, site=site, name=f"Meter {i:02d}", wattics_stream_id=f"bench-{i:02d}")
            for i in range(METERS)
        ]
    )
    m0 = meters[0].pk
    assert [m.pk for m in meters] == list(range(m0, m0 + METERS))

    timings = {}
    with connection.cursor() as cur:
        # The readings end at the last whole quarter hour; upload g (0-based) holds readings
        # [c*500, (c+1)*500) of meter g % 50, where c = g / 50.
        cur.execute("SELECT date_trunc('hour', now()) - %s * interval '15 minutes'", [readings_per_meter])
        start = cur.fetchone()[0]
        preview = '[{"line": 2, "meter": "Meter 00", "ts": "2024-01-01T00:00:00+00:00", "value": 1.25}]'
        began = time.perf_counter()
        cur.execute(
            """
            INSERT INTO uploads_upload (organization_id, uploaded_by_id, meter_id, file, original_name, size_bytes,
                sha256, status, targets, column_mapping, options, rows_total, rows_valid, rows_invalid, rows_stored,
                period_start, period_end, preview, warnings, error_report, error, created_at, validated_at, stored_at,
                sheet, source_unit, unit_conversions, naive_times)
            SELECT %(org)s, %(user)s, %(m0)s + g %% %(meters)s, 'uploads/bench/readings-' || g || '.csv',
                'readings-' || g || '.csv', 25000, md5(g::text) || md5(g::text),
                CASE WHEN g %% 97 = 0 THEN 'invalid' WHEN g %% 89 = 0 THEN 'validated' ELSE 'stored' END,
                '["wattics"]', '{"ts": "ts", "value": "value"}', '{"delimiter": "comma"}',
                %(per)s, %(per)s, 0, %(per)s,
                %(start)s + ((g / %(meters)s) * %(per)s) * interval '15 minutes',
                %(start)s + ((g / %(meters)s + 1) * %(per)s - 1) * interval '15 minutes',
                %(preview)s::jsonb, '[]', '', '',
                now() - (%(uploads)s - g) * interval '50 minutes', now(), now(), '', '', '[]', 'utc'
            FROM generate_series(0, %(uploads)s - 1) g ORDER BY g
            """,
            {
                "org": org.pk,
                "user": user.pk,
                "m0": m0,
                "meters": METERS,
                "per": READINGS_PER_UPLOAD,
                "start": start,
                "preview": preview,
                "uploads": uploads,
            },
        )
        cur.execute("SELECT min(id) FROM uploads_upload")
        u0 = cur.fetchone()[0]
        cur.execute(
            """
            INSERT INTO uploads_delivery (organization_id, upload_id, meter_id, target, status, total, sent,
                acknowledged, rejected, attempts, last_error, first_ts, last_ts, cursor_ts, started_at, finished_at,
                heartbeat_at, created_at, updated_at, already_at_vendor, not_sendable, note, rows_digest)
            SELECT u.organization_id, u.id, u.meter_id, 'wattics', s.status, u.rows_valid,
                CASE s.status WHEN 'pushing' THEN u.rows_valid / 2 WHEN 'queued' THEN 0 ELSE u.rows_valid END,
                CASE s.status WHEN 'delivered' THEN u.rows_valid WHEN 'partially_failed' THEN u.rows_valid - 3
                     WHEN 'pushing' THEN u.rows_valid / 2 ELSE 0 END,
                CASE s.status WHEN 'partially_failed' THEN 3 ELSE 0 END, 1,
                CASE WHEN s.status IN ('failed', 'partially_failed') THEN 'Wattics HTTP 503: maintenance' ELSE '' END,
                u.period_start, u.period_end,
                CASE s.status WHEN 'delivered' THEN u.period_end END,
                u.created_at, u.created_at + interval '2 minutes', u.created_at + interval '2 minutes',
                u.created_at, u.created_at + interval '2 minutes', 0, 0, '', ''
            FROM uploads_upload u
            CROSS JOIN LATERAL (SELECT CASE
                WHEN u.id >= %(last)s - 3 THEN 'pushing' WHEN u.id >= %(last)s - 8 THEN 'queued'
                WHEN u.id %% 53 = 0 THEN 'failed' WHEN u.id %% 59 = 0 THEN 'partially_failed'
                ELSE 'delivered' END AS status) s
            WHERE u.status = 'stored'
            """,
            {"last": u0 + uploads - 1},
        )
        timings["uploads_and_deliveries_s"] = time.perf_counter() - began

        began = time.perf_counter()
        for m in range(METERS):  # one statement per meter: progress, and smaller transactions
            cur.execute(
                """
                INSERT INTO uploads_reading (meter_id, ts, value, extra, upload_id)
                SELECT %(meter)s, %(start)s + i * interval '15 minutes',
                    round((2 + sin(i / 16.0) + (i %% 7) / 10.0)::numeric, 3), NULL,
                    %(u0)s + (i / %(per)s) * %(meters)s + %(m)s
                FROM generate_series(0, %(n)s - 1) i
                WHERE %(m)s <> 1 OR NOT ("""
                + HOLES
                + """)
                """,
                {
                    "meter": m0 + m,
                    "start": start,
                    "u0": u0,
                    "per": READINGS_PER_UPLOAD,
                    "meters": METERS,
                    "m": m,
                    "n": readings_per_meter,
                },
            )
        timings["readings_s"] = time.perf_counter() - began

        from uploads.services import rollups

        began = time.perf_counter()
        rollups.rollups_rebuild()
        timings["rollups_s"] = time.perf_counter() - began

        began = time.perf_counter()
        cur.execute(
            """
            INSERT INTO vendors_httpexchange (organization_id, vendor, method, url, status_code, duration_ms, error,
                request_bytes, delivery_id, meter_id, created_at)
            SELECT d.organization_id, 'wattics', 'POST', 'http://127.0.0.1:8102/measurements/v2/unifiedjson/',
                200, 3.5, '', 90,
                d.id, d.meter_id, d.started_at + i * interval '10 milliseconds'
            FROM uploads_delivery d, generate_series(1, %s) i
            """,
            [exchanges_per_delivery],
        )
        timings["exchanges_s"] = time.perf_counter() - began
        # The measured upload: a recent stored one, with a full push's exchanges.
        cur.execute("SELECT max(upload_id) FROM uploads_delivery WHERE status = 'delivered'")
        detail_upload = cur.fetchone()[0]
        cur.execute(
            """
            INSERT INTO vendors_httpexchange (organization_id, vendor, method, url, status_code, duration_ms, error,
                request_bytes, delivery_id, meter_id, created_at)
            SELECT d.organization_id, 'wattics', 'POST', 'http://127.0.0.1:8102/measurements/v2/unifiedjson/',
                200, 3.5, '', 90,
                d.id, d.meter_id, d.started_at + i * interval '10 milliseconds'
            FROM uploads_delivery d, generate_series(%s + 1, %s) i WHERE d.upload_id = %s
            """,
            [exchanges_per_delivery, READINGS_PER_UPLOAD, detail_upload],
        )
        cur.execute("ANALYZE")
        counts = {}
        tables = (
            "uploads_upload",
            "uploads_delivery",
            "uploads_reading",
            "uploads_readingrollup",
            "vendors_httpexchange",
        )
        for table in tables:
            cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - our table names
            counts[table] = cur.fetchone()[0]
    return {
        "user": user,
        "meter": meters[0],
        "holey_meter": meters[1],
        "detail_upload": detail_upload,
        "counts": counts,
        "timings": timings,
    }


def measure(client, url: str, headers: dict | None = None) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    headers = headers or {}
    for _ in range(2):
        assert client.get(url, headers=headers).status_code == 200, url
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, headers=headers)
    # Read now: the next request empties the connection's query log.
    queries = len(ctx.captured_queries)
    assert response.status_code == 200, url
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        client.get(url, headers=headers)
        samples.append(time.perf_counter() - started)
    samples.sort()
    return {
        "url": url,
        "queries": queries,
        "median_ms": common.median_ms(samples),
        "min_ms": round(samples[0] * 1000, 1),
        "p90_ms": round(samples[int(len(samples) * 0.9) - 1] * 1000, 1),
        "max_ms": round(samples[-1] * 1000, 1),
        "bytes": len(response.content),
    }


def measure_holes(meters: list, start, end) -> list[dict]:
    """dashboard.selectors' two ways to find a meter's holes over [start, end), timed in turn."""
    from dashboard import selectors as dash

    rows = []
    for meter in meters:
        ways = {"scan": dash.meter_gaps_scan, "rollups": dash.meter_gaps_from_rollups}
        samples: dict[str, list[float]] = {name: [] for name in ways}
        results = {}
        for i in range(REQUESTS + 2):
            for name, way in ways.items():
                started = time.perf_counter()
                results[name] = way(meter=meter, start=start, end=end)
                if i >= 2:  # two to warm up
                    samples[name].append(time.perf_counter() - started)
        assert results["scan"] == results["rollups"], meter.name
        scan, rolled = (common.spread([x * 1000 for x in samples[name]]) for name in ways)
        rows.append(
            {
                "meter": meter.name,
                "holes": results["scan"].count,
                "scan_ms": common.show(scan, ".1f"),
                "rollups_ms": common.show(rolled, ".1f"),
                "ratio": f"{scan['median'] / rolled['median']:.1f}x",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 uploads and 500,000 readings")
    args = parser.parse_args()
    uploads = 1_000 if args.quick else 10_000
    readings_per_meter = 10_000 if args.quick else 100_000
    exchanges = 10 if args.quick else 50

    common.recreate_database()
    common.setup_django()
    from django.conf import settings
    from django.test import Client

    with common.Timer() as gen:
        data = generate(uploads, readings_per_meter, exchanges)
    print(f"generated in {gen.seconds:.0f} s: " + ", ".join(f"{t} {n:,}" for t, n in data["counts"].items()))

    settings.DEBUG = False  # as in production: no per-query log
    client = Client()
    client.force_login(data["user"])
    meter = data["meter"]
    days = meter.readings.order_by("ts").values_list("ts", flat=True)
    first_day, last_day = days.first().date(), days.last().date()
    pages = [
        ("dashboard", "/", None),
        ("dashboard active partial (polled)", "/dashboard/active/", None),
        ("uploads list", "/uploads/", None),
        ("uploads list, page 200", "/uploads/?page=200", None),
        ("uploads list, filtered by meter", f"/uploads/?meter={meter.pk}", None),
        ("upload detail", f"/uploads/{data['detail_upload']}/", None),
        ("meter data, default 30 days", f"/meters/{meter.pk}/data/", None),
        ("meter data partial (htmx)", f"/meters/{meter.pk}/data/", {"HX-Request": "true"}),
        ("meter data, whole history", f"/meters/{meter.pk}/data/?from={first_day}&to={last_day}", None),
        (
            "meter data, whole history, meter with holes",
            f"/meters/{data['holey_meter'].pk}/data/?from={first_day}&to={last_day}",
            None,
        ),
    ]
    from datetime import UTC, datetime, timedelta
    from datetime import time as midnight

    from dashboard import selectors as dash

    whole = (
        datetime.combine(first_day, midnight.min, UTC),
        datetime.combine(last_day + timedelta(days=1), midnight.min, UTC),
    )
    source = dash.series_source(start=whole[0], end=whole[1], interval_minutes=meter.interval_minutes)
    print(f"meter data over the whole history ({first_day} to {last_day}) reads: {source}")
    results = []
    for name, url, headers in pages:
        r = measure(client, url, headers)
        r["page"] = name
        r["met"] = r["median_ms"] < TARGET_MS
        results.append(r)

    holes = measure_holes([meter, data["holey_meter"]], *whole)

    counts = data["counts"]
    print(
        f"\nPages with {counts['uploads_upload']:,} uploads and {counts['uploads_reading']:,} readings "
        f"(median and range of {REQUESTS} requests, test Client, DEBUG off; commit {common.commit()})"
    )
    print(
        common.table(
            ["page", "url", "queries", "median ms", "min ms", "p90 ms", "max ms", f"< {TARGET_MS:.0f} ms"],
            [
                [
                    r["page"],
                    r["url"],
                    r["queries"],
                    r["median_ms"],
                    r["min_ms"],
                    r["p90_ms"],
                    r["max_ms"],
                    "met" if r["met"] else "MISSED",
                ]
                for r in results
            ],
        )
    )
    print(
        f"\nHoles over the whole history ({first_day} to {last_day}): the full scan and the roll-ups, "
        f"median (lowest-highest) of {REQUESTS} calls each, taken in turn"
    )
    print(
        common.table(
            ["meter", "holes", "scan ms", "roll-ups ms", "scan / roll-ups"],
            [[h["meter"], h["holes"], h["scan_ms"], h["rollups_ms"], h["ratio"]] for h in holes],
        )
    )
    common.write_result(
        "dashboard",
        {
            "quick": args.quick,
            "rows": counts,
            "generation": data["timings"],
            "pages": results,
            "whole_history_source": source,
            "holes": holes,
            "target_median_ms": TARGET_MS,
            "median_of_all_ms": statistics.median(r["median_ms"] for r in results),
        },
    )


if __name__ == "__main__":
    main()
