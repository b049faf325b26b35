"""Storing from the staging file: one parse, binary COPY where nothing is stored yet, upserts
where something is, exact roll-ups, and the readings table's integrity kept without foreign keys."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sites.services.crud import meter_delete, site_delete
from tests import factories
from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import hourly, submit
from uploads.models import Reading, ReadingRollup, Upload, UploadStatus
from uploads.services import ingest, readings_store, rollups, staging
from uploads.services.ingest import upload_confirm, upload_store
from uploads.services.readings_store import last_per_key, readings_store_staged
from uploads.services.staging import StagingWriter

meter, ny_site, solar, no_deliveries = support.meter, support.ny_site, support.solar, support.no_deliveries

DAY = "2024-01-15"
START = datetime(2024, 1, 15, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def on_postgres() -> bool:
    """The COPY paths are PostgreSQL's (SQLite upserts with bulk_create): they are asserted there."""
    return connection.vendor == "postgresql"


def readings(meter_obj) -> list[tuple[datetime, float, int | None]]:
    return list(Reading.objects.filter(meter=meter_obj).order_by("ts").values_list("ts", "value", "upload_id"))


def rollup_rows() -> list[tuple]:
    return list(
        ReadingRollup.objects.order_by("meter_id", "granularity", "bucket").values_list(
            "meter_id", "granularity", "bucket", "count", "total", "low", "high"
        )
    )


def assert_rollups_exact() -> None:
    """The roll-ups equal a recomputation from the stored readings (sums to rounding)."""
    kept = rollup_rows()
    ReadingRollup.objects.all().delete()
    rollups.rollups_rebuild()
    rebuilt = rollup_rows()
    assert [r[:4] + r[5:] for r in kept] == [r[:4] + r[5:] for r in rebuilt]
    assert [r[4] for r in kept] == pytest.approx([r[4] for r in rebuilt])


@pytest.fixture
def calls(monkeypatch):
    """Which write paths the store took: COPY into Reading, and upserts."""
    seen: dict[str, int] = {"copy": 0, "upsert": 0}
    copy, upsert = readings_store._copy_readings, readings_store._upsert

    def spy_copy(cursor, table, rows, upload_id):
        seen["copy"] += table == Reading._meta.db_table
        return copy(cursor, table, rows, upload_id)

    def spy_upsert(cursor, rows, upload_id):
        seen["upsert"] += 1
        return upsert(cursor, rows, upload_id)

    monkeypatch.setattr(readings_store, "_copy_readings", spy_copy)
    monkeypatch.setattr(readings_store, "_upsert", spy_upsert)
    return seen


def no_second_parse(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the file was parsed a second time")

    monkeypatch.setattr(ingest, "_open", refuse)


# --- The staging file in an upload's life ---------------------------------------------


def test_it_stores_the_staged_rows_without_parsing_the_file_again(org, owner, meter, no_deliveries, monkeypatch):
    upload = submit(org, owner, hourly(72, value=lambda i: i * 0.5), meter=meter)
    assert upload.status == UploadStatus.VALIDATED
    assert staging.staging_path(upload).exists()
    no_second_parse(monkeypatch)
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 72
    stored = readings(meter)
    assert [v for _, v, _ in stored] == [i * 0.5 for i in range(72)]
    assert stored[0][0] == START and stored[-1][0] == START + timedelta(hours=71)
    assert {u for _, _, u in stored} == {upload.pk}
    assert not staging.staging_path(upload).exists()  # deleted once stored
    assert_rollups_exact()


def test_no_staging_file_is_left_by_an_invalid_or_cancelled_upload(org, owner, meter):
    bad = submit(org, owner, "timestamp,energy_kwh\n2024-01-15T00:00:00+00:00,abc\n", meter=meter)
    assert bad.status == UploadStatus.INVALID and not staging.staging_path(bad).exists()
    good = submit(org, owner, hourly(5), meter=meter)
    assert staging.staging_path(good).exists()
    ingest.upload_cancel(upload=good, user=owner)
    assert not staging.staging_path(good).exists()


def test_a_validation_handed_over_to_a_worker_leaves_no_staging_file(org, owner, meter, settings):
    settings.INGEST_INLINE_MAX_ROWS = 1000
    upload = submit(org, owner, hourly(3000), meter=meter, run_now=None)
    upload.refresh_from_db()
    assert upload.status == UploadStatus.RECEIVED  # queued for a worker
    assert not staging.staging_path(upload).exists()
    assert not list(staging.staging_path(upload).parent.glob("*.part"))


def test_an_upload_validated_before_staging_is_stored_by_parsing_it(org, owner, meter, no_deliveries):
    upload = submit(org, owner, hourly(30), meter=meter)
    staging.staging_delete(upload)  # as an upload validated by the previous release
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 30
    assert [v for _, v, _ in readings(meter)] == [i + 0.5 for i in range(30)]
    assert_rollups_exact()


# --- De-duplication ---------------------------------------------------------------------


def test_last_per_key_keeps_the_last_row_in_file_order_sorted_by_key():
    meter_id = np.array([2, 1, 2, 1, 2], dtype=np.int64)
    ts = np.array([10, 5, 10, 5, 7], dtype=np.int64)
    kept = last_per_key(meter_id, ts)
    assert kept.tolist() == [3, 4, 2]  # (1, 5) last at 3; (2, 7) at 4; (2, 10) last at 2


def test_the_store_keeps_the_last_staged_row_of_a_key(org, owner, meter, tmp_path):
    path = tmp_path / "staged.arrows"
    writer = StagingWriter(path)
    base = (START - EPOCH) // timedelta(microseconds=1)
    hour = 3_600_000_000
    writer.add_arrays(
        meter_id=np.array([meter.pk] * 4, dtype=np.int64),
        ts_us=np.array([base + hour, base, base + hour, base + 2 * hour], dtype=np.int64),
        value=np.array([1.0, 2.0, 3.0, 4.0]),
        extra=[None, '{"aP_1": 1.5}', None, None],
    )
    writer.close()
    upload = factories.make_upload(org, owner, meter=meter)
    assert readings_store_staged(path=path, upload_id=upload.pk, organization_id=org.pk) == 3
    assert [v for _, v, _ in readings(meter)] == [2.0, 3.0, 4.0]
    assert Reading.objects.get(meter=meter, ts=START).extra == {"aP_1": 1.5}
    assert_rollups_exact()


# --- The two write paths ------------------------------------------------------------------


def test_new_rows_are_copied_straight_into_the_table(org, owner, meter, solar, no_deliveries, calls):
    # Readings earlier on the first day and later on the last day (outside the file's span):
    # those days' roll-ups must count them too.
    factories.make_readings(meter, START, 3, 60, value=lambda i: 100.0)
    factories.make_readings(meter, START + timedelta(hours=70), 2, 60, value=lambda i: 200.0)
    content = "timestamp,meter,energy_kwh\n" + "".join(
        f"{(START + timedelta(hours=5 + i)).isoformat()},{name},{i}\n"
        for i in range(60)
        for name in ("Main", "Roof PV")
    )
    upload = submit(org, owner, content)
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 120
    if on_postgres():
        assert calls == {"copy": 1, "upsert": 0}
    assert len(readings(meter)) == 65 and len(readings(solar)) == 60
    assert_rollups_exact()


def test_rows_over_stored_ones_are_upserted(org, owner, meter, no_deliveries, calls):
    factories.make_readings(meter, START + timedelta(hours=10), 5, 60, value=lambda i: -1.0)
    upload = submit(org, owner, hourly(48), meter=meter)
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 48
    if on_postgres():
        assert calls == {"copy": 0, "upsert": 1}
    assert [v for _, v, _ in readings(meter)] == [i + 0.5 for i in range(48)]
    assert_rollups_exact()


def test_a_re_upload_rewrites_every_row_in_place(org, owner, meter, no_deliveries, calls):
    first = upload_confirm(upload=submit(org, owner, hourly(50), meter=meter), user=owner, run_now=True)
    second = submit(org, owner, hourly(50, value=lambda i: i * 2.0), meter=meter)
    second = upload_confirm(upload=second, user=owner, run_now=True)
    assert (first.status, second.status, second.rows_stored) == (UploadStatus.STORED, UploadStatus.STORED, 50)
    if on_postgres():
        assert calls == {"copy": 1, "upsert": 1}
    assert [(v, u) for _, v, u in readings(meter)] == [(i * 2.0, second.pk) for i in range(50)]
    assert Upload.objects.get(pk=first.pk).readings.count() == 0
    assert_rollups_exact()


def test_a_store_run_again_after_a_crash_writes_the_same_rows(org, owner, meter, no_deliveries):
    upload = submit(org, owner, hourly(40), meter=meter)
    ingest.Upload.objects.filter(pk=upload.pk).update(status=UploadStatus.STORING)
    # The first run wrote every row, then its worker died before marking the upload stored.
    readings_store_staged(path=staging.staging_path(upload), upload_id=upload.pk, organization_id=org.pk)
    upload = upload_store(upload_id=upload.pk)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 40
    assert [(v, u) for _, v, u in readings(meter)] == [(i + 0.5, upload.pk) for i in range(40)]
    assert_rollups_exact()


def test_rows_found_while_copying_fall_back_to_the_upsert(org, owner, meter, no_deliveries, calls, monkeypatch):
    upload = submit(org, owner, hourly(40), meter=meter)
    factories.make_readings(meter, START + timedelta(hours=3), 2, 60, value=lambda i: -1.0)
    # Rows appear between the check and the COPY (another store of the same rows, a first try's commit).
    monkeypatch.setattr(readings_store, "_stored_in_span", lambda rows: set())
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 40
    if on_postgres():
        assert calls == {"copy": 1, "upsert": 1}  # the COPY failed on the unique key, then the upsert
    assert [v for _, v, _ in readings(meter)] == [i + 0.5 for i in range(40)]
    assert_rollups_exact()


def test_big_files_are_stored_in_chunks_and_windows(org, owner, meter, solar, no_deliveries, monkeypatch):
    monkeypatch.setattr(readings_store, "CHUNK_ROWS", 30)
    monkeypatch.setattr(readings_store, "UPSERT_ROWS", 7)
    monkeypatch.setattr(readings_store, "SQLITE_ROWS", 7)
    factories.make_readings(solar, START + timedelta(hours=30), 4, 60, value=lambda i: -1.0)
    content = "timestamp,meter,energy_kwh\n" + "".join(
        f"{(START + timedelta(hours=i)).isoformat()},{name},{i}\n" for i in range(100) for name in ("Main", "Roof PV")
    )
    upload = upload_confirm(upload=submit(org, owner, content), user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 200
    assert [v for _, v, _ in readings(meter)] == [float(i) for i in range(100)]
    assert [v for _, v, _ in readings(solar)] == [float(i) for i in range(100)]
    assert_rollups_exact()


def test_rows_of_a_meter_deleted_since_validation_are_not_stored(org, owner, meter, solar, no_deliveries):
    content = "timestamp,meter,energy_kwh\n" + "".join(
        f"{(START + timedelta(hours=i)).isoformat()},{name},{i}\n" for i in range(10) for name in ("Main", "Roof PV")
    )
    upload = submit(org, owner, content)
    solar_id = solar.pk
    meter_delete(meter=solar)
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 10
    assert not Reading.objects.filter(meter_id=solar_id).exists()
    assert not ReadingRollup.objects.filter(meter_id=solar_id).exists()


def test_staged_rows_of_a_meter_of_another_organization_are_not_stored(org, owner, meter, tmp_path):
    other = factories.make_meter(factories.make_site(factories.make_org("Other")), name="Theirs")
    path = tmp_path / "staged.arrows"
    writer = StagingWriter(path)
    writer.add_arrays(
        meter_id=np.array([meter.pk, other.pk], dtype=np.int64),
        ts_us=np.array([0, 0], dtype=np.int64),
        value=np.array([1.0, 2.0]),
    )
    writer.close()
    upload = factories.make_upload(org, owner, meter=meter)
    assert readings_store_staged(path=path, upload_id=upload.pk, organization_id=org.pk) == 1
    assert not Reading.objects.filter(meter=other).exists()


# --- Integrity without foreign keys ----------------------------------------------------------


def reading_statements(queries) -> list[str]:
    return [q["sql"] for q in queries if "uploads_reading" in q["sql"] and "uploads_readingrollup" not in q["sql"]]


def test_deleting_a_meter_deletes_its_readings_in_one_statement(org, meter, solar):
    factories.make_readings(meter, START, 500, 60)
    factories.make_readings(solar, START, 10, 60)
    with CaptureQueriesContext(connection) as ctx:
        meter_delete(meter=meter)
    statements = reading_statements(ctx.captured_queries)
    assert len(statements) == 1 and statements[0].startswith("DELETE FROM")
    assert not Reading.objects.filter(meter_id=meter.pk).exists()
    assert not ReadingRollup.objects.filter(meter_id=meter.pk).exists()
    assert Reading.objects.filter(meter=solar).count() == 10


def test_deleting_a_site_or_an_organization_deletes_their_readings_in_one_statement(org, ny_site, meter, solar):
    factories.make_readings(meter, START, 50, 60)
    factories.make_readings(solar, START, 50, 60)
    other = factories.make_meter(factories.make_site(org, name="Elsewhere"), name="Kept")
    factories.make_readings(other, START, 5, 60)
    with CaptureQueriesContext(connection) as ctx:
        site_delete(site=ny_site)
    statements = reading_statements(ctx.captured_queries)
    assert len(statements) == 1 and statements[0].startswith("DELETE FROM")
    assert list(Reading.objects.values_list("meter_id", flat=True).distinct()) == [other.pk]
    with CaptureQueriesContext(connection) as ctx:
        org.delete()
    assert len(reading_statements(ctx.captured_queries)) == 1
    assert not Reading.objects.exists()


def test_deleting_an_upload_unlinks_its_readings_in_one_statement(org, owner, meter):
    upload = factories.make_stored_upload(meter, START, 300)
    with CaptureQueriesContext(connection) as ctx:
        upload.delete()
    statements = reading_statements(ctx.captured_queries)
    assert len(statements) == 1 and statements[0].startswith("UPDATE")
    assert Reading.objects.filter(meter=meter, upload__isnull=True).count() == 300


def test_the_retention_sweep_deletes_a_staging_file_left_behind(org, owner, meter):
    upload = submit(org, owner, hourly(5), meter=meter)
    Upload.objects.filter(pk=upload.pk).update(status=UploadStatus.CANCELLED)  # as if cancelled mid-run
    assert staging.staging_path(upload).exists()
    assert ingest.uploads_purge_expired(days=-1) == [upload.pk]
    assert not staging.staging_path(upload).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: SQLite has one writer at a time")
@pytest.mark.django_db(transaction=True)
def test_a_meter_deleted_while_a_store_writes_its_readings_leaves_no_reading_behind(org, meter, solar):
    """The readings table has no foreign key: without the meter lock, a deletion's readings
    DELETE would miss the rows of a store that commits after it (orphans). The deletion
    waits for the store's lock on the meter, then deletes what the store wrote."""
    import threading
    import time

    from django.db import connections, transaction

    store_wrote, errors = threading.Event(), []
    meter_id = meter.pk  # meter.delete() sets meter.pk to None

    def store() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                one = readings_store.Rows(np.array([meter_id]), np.array([0]), np.array([1.0]), None)
                assert len(readings_store._lock_meters(cursor, one).meter_id) == 1  # the store's own lock
                cursor.execute(
                    "INSERT INTO uploads_reading (meter_id, ts, value) "
                    "SELECT %s, %s + n * interval '1 hour', 1.0 FROM generate_series(0, 99) AS n",
                    [meter_id, START],
                )
                store_wrote.set()
                time.sleep(1.0)  # the deletion starts meanwhile and must wait for this commit
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            store_wrote.set()
        finally:
            connections.close_all()

    writer = threading.Thread(target=store)
    writer.start()
    assert store_wrote.wait(30)
    started = time.monotonic()
    meter_delete(meter=meter)
    waited = time.monotonic() - started
    writer.join(30)
    assert errors == []
    assert waited > 0.5  # it did wait for the store's commit
    assert not Reading.objects.filter(meter_id=meter_id).exists()
    assert Reading.objects.filter(meter_id=solar.pk).count() == 0  # nothing else was touched
