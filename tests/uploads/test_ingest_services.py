"""Ingest services: validate, map, confirm, store."""

import csv
import hashlib
import threading

import pytest
from django.db import connection

from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import hourly, submit
from uploads.models import Bill, Reading, Target, Upload, UploadStatus
from uploads.services.ingest import (
    IngestError,
    upload_cancel,
    upload_confirm,
    upload_set_mapping,
    upload_store,
    upload_validate,
)

# The shared fixtures of the ingest tests.
meter, ny_site, solar, no_deliveries = support.meter, support.ny_site, support.solar, support.no_deliveries


def report_rows(upload: Upload) -> list[list[str]]:
    with upload.error_report.open("rb") as f:
        return list(csv.reader(f.read().decode().splitlines()))


def test_it_validates_a_small_file_in_the_request(org, owner, meter):
    content = hourly(30)
    upload = submit(org, owner, content, meter=meter)
    assert upload.status == UploadStatus.VALIDATED
    assert (upload.rows_total, upload.rows_valid, upload.rows_invalid) == (30, 30, 0)
    assert len(upload.preview) == 20
    assert upload.preview[0] == {
        "line": 2,
        "meter": "Brooklyn Depot / Main",
        "ts": "2024-01-15T00:00:00+00:00",
        "local": "2024-01-14T19:00:00-05:00",
        "value": 0.5,
        "extra": None,
    }
    assert upload.period_start.isoformat() == "2024-01-15T00:00:00+00:00"
    assert upload.period_end.isoformat() == "2024-01-16T05:00:00+00:00"
    assert upload.sha256 == hashlib.sha256(content.encode()).hexdigest()
    assert upload.size_bytes == len(content)
    assert upload.column_mapping == {"timestamp": "ts", "energy_kwh": "value"}
    assert upload.options["delimiter"] == "comma" and upload.options["header"] == ["timestamp", "energy_kwh"]
    assert not upload.error_report
    assert Reading.objects.count() == 0


def test_it_writes_a_neutralised_error_report(org, owner, meter):
    content = hourly(3) + "2024-01-16T00:00:00+00:00,=CMD()|' /C calc'!A0\n2024-01-16T01:00:00+00:00,@SUM(1)\n"
    upload = submit(org, owner, content, meter=meter)
    assert upload.status == UploadStatus.VALIDATED
    assert (upload.rows_valid, upload.rows_invalid) == (3, 2)
    rows = report_rows(upload)
    assert rows[0] == ["line", "column", "value", "problem"]
    assert rows[1] == ["5", "energy_kwh", "'=CMD()|' /C calc'!A0", "energy_kwh is not a number"]
    assert rows[2][2] == "'@SUM(1)"


def test_it_marks_a_file_without_valid_rows_invalid(org, owner, meter):
    upload = submit(org, owner, "ts,value\n2024-01-01T00:00Z,abc\n", meter=meter)
    assert upload.status == UploadStatus.INVALID
    assert upload.error == "No valid rows: all 1 rows have errors (see the error report)."
    assert report_rows(upload)[1][0] == "2"


def test_it_asks_for_a_mapping_then_validates_with_it(org, owner, meter):
    upload = submit(org, owner, "when,how much\n2024-01-01T00:00Z,1\n2024-01-01T01:00Z,2\n", meter=meter)
    assert upload.status == UploadStatus.NEEDS_MAPPING
    assert "Choose a timestamp column" in upload.error
    assert upload.options["header"] == ["when", "how much"]
    assert upload.options["sample"] == [["2024-01-01T00:00Z", "1"], ["2024-01-01T01:00Z", "2"]]
    upload = upload_set_mapping(upload=upload, mapping={"when": "ts", "how much": "value"}, user=owner, run_now=True)
    assert upload.status == UploadStatus.VALIDATED and upload.rows_valid == 2 and upload.error == ""


def test_it_keeps_the_first_row_of_a_file_without_header(org, owner, meter):
    upload = submit(org, owner, "2024-01-01T00:00Z,1\n2024-01-01T01:00Z,2\n", meter=meter)
    assert upload.status == UploadStatus.NEEDS_MAPPING
    assert upload.options["header"] == ["column_1", "column_2"]
    assert upload.options["sample"][0] == ["2024-01-01T00:00Z", "1"]
    upload = upload_set_mapping(
        upload=upload, mapping={"column_1": "ts", "column_2": "value"}, user=owner, run_now=True
    )
    assert upload.status == UploadStatus.VALIDATED and upload.rows_valid == 2 and upload.rows_invalid == 0


def test_it_stores_valid_rows_on_confirm_and_asks_for_deliveries(org, owner, meter, no_deliveries):
    upload = submit(org, owner, hourly(10) + "2024-01-20T00:00Z,bad\n", meter=meter)
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 10 and upload.stored_at
    assert Reading.objects.filter(meter=meter, upload=upload).count() == 10
    assert no_deliveries == [upload.pk]


def test_it_does_not_double_a_re_uploaded_file(org, owner, meter, no_deliveries):
    first = upload_confirm(upload=submit(org, owner, hourly(24), meter=meter), user=owner, run_now=True)
    second = submit(org, owner, hourly(24, value=lambda i: 100 + i), meter=meter)
    second = upload_confirm(upload=second, user=owner, run_now=True)
    assert Reading.objects.filter(meter=meter).count() == 24
    assert set(Reading.objects.values_list("upload", flat=True)) == {second.pk}
    assert Reading.objects.get(meter=meter, ts="2024-01-15T00:00:00Z").value == 100
    assert first.rows_stored == 24 and second.rows_stored == 24


def test_it_keeps_the_last_of_duplicate_rows_out_of_order(org, owner, meter, no_deliveries):
    content = "ts,value\n2024-01-01T00:00Z,1\n2024-01-01T02:00Z,2\n2024-01-01T00:00Z,3\n"
    upload = upload_confirm(upload=submit(org, owner, content, meter=meter), user=owner, run_now=True)
    assert upload.warnings[0]["code"] == "out_of_order"
    assert sorted(Reading.objects.values_list("value", flat=True)) == [2.0, 3.0]


def test_it_refuses_to_confirm_twice(org, owner, meter, no_deliveries):
    upload = upload_confirm(upload=submit(org, owner, hourly(2), meter=meter), user=owner, run_now=True)
    with pytest.raises(IngestError, match="only a validated upload is pushed"):
        upload_confirm(upload=upload, user=owner, run_now=True)
    assert Reading.objects.count() == 2


def test_it_cancels_a_validated_upload(org, owner, meter):
    upload = upload_cancel(upload=submit(org, owner, hourly(2), meter=meter), user=owner)
    assert upload.status == UploadStatus.CANCELLED
    with pytest.raises(IngestError):
        upload_confirm(upload=upload, user=owner, run_now=True)
    assert Reading.objects.count() == 0


def test_it_records_when_deliveries_cannot_be_created(org, owner, meter, monkeypatch):
    def broken(*, upload):
        raise RuntimeError("push side down")

    monkeypatch.setattr("uploads.services.deliveries.deliveries_create_for_upload", broken)
    upload = upload_confirm(upload=submit(org, owner, hourly(2), meter=meter), user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and Reading.objects.count() == 2
    assert upload.error == "The rows are stored, but the pushes could not be queued (RuntimeError)."


def test_it_stores_a_file_with_a_meter_column_for_two_meters(org, owner, meter, solar, no_deliveries):
    content = (
        "ts,meter_name,kwh\n"
        "2024-01-01 00:00,Main,1\n2024-01-01 00:00,pv-stream,-2\n"
        "2024-01-01 01:00,main,3\n2024-01-01 01:00,Roof PV,-4\n2024-01-01 01:00,Ghost,5\n"
    )
    upload = submit(org, owner, content)
    assert upload.status == UploadStatus.VALIDATED and upload.meter is None
    assert (upload.rows_valid, upload.rows_invalid) == (4, 1)
    assert upload.warnings == []  # negative values on a production meter are expected
    assert report_rows(upload)[1][:3] == ["6", "meter_name", "Ghost"]
    upload_confirm(upload=upload, user=owner, run_now=True)
    assert list(Reading.objects.filter(meter=meter).order_by("ts").values_list("value", flat=True)) == [1.0, 3.0]
    assert list(Reading.objects.filter(meter=solar).order_by("ts").values_list("value", flat=True)) == [-2.0, -4.0]
    # Naive local times of a New York site: midnight EST is 05:00 UTC.
    assert Reading.objects.filter(meter=meter).order_by("ts").first().ts.hour == 5


def test_it_stores_bills(org, owner, meter, no_deliveries):
    content = "start_date,end_date,energy_kwh\n2024-01-01,2024-02-01,500\n2024-02-01,2024-03-01,450\n"
    upload = submit(org, owner, content, meter=meter, targets=[Target.WATTCARBON_BILLS])
    assert upload.status == UploadStatus.VALIDATED and upload.options["kind"] == "bills"
    assert upload.preview[0]["start_date"] == "2024-01-01"
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.rows_stored == 2
    assert list(Bill.objects.order_by("start_date").values_list("energy_kwh", flat=True)) == [500.0, 450.0]


def test_it_stops_a_file_a_target_does_not_take(org, owner, meter):
    upload = submit(org, owner, hourly(2), meter=meter, targets=[Target.WATTICS, Target.WATTCARBON_BILLS])
    assert upload.status == UploadStatus.INVALID
    assert "WattCarbon bills takes billing periods" in upload.error


def test_it_validates_only_once_when_the_task_runs_twice(org, owner, meter):
    upload = submit(org, owner, hourly(3), meter=meter)
    Upload.objects.filter(pk=upload.pk).update(rows_valid=999)
    assert upload_validate(upload_id=upload.pk).rows_valid == 999


def test_it_stores_nothing_for_an_upload_not_confirmed(org, owner, meter):
    upload = submit(org, owner, hourly(3), meter=meter)
    assert upload_store(upload_id=upload.pk).status == UploadStatus.VALIDATED
    assert Reading.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_it_never_doubles_rows_when_two_uploads_of_one_file_store_at_once(org, owner, meter, no_deliveries):
    content = hourly(3000)
    uploads = [submit(org, owner, content, meter=meter) for _ in range(2)]
    for upload in uploads:
        Upload.objects.filter(pk=upload.pk).update(status=UploadStatus.STORING)
    barrier, errors = threading.Barrier(2), []

    def store(pk: int) -> None:
        try:
            barrier.wait()
            upload_store(upload_id=pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=store, args=(u.pk,)) for u in uploads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert [Upload.objects.get(pk=u.pk).status for u in uploads] == [UploadStatus.STORED] * 2
    assert Reading.objects.filter(meter=meter).count() == 3000


def test_it_restarts_parsing_and_storing_whose_worker_died(org, owner, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from tests import factories as f
    from uploads import tasks as ingest_tasks
    from uploads.services.ingest import uploads_requeue_stale

    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(ingest_tasks.upload_validate_task, "delay", lambda pk: sent.append(("validate", pk)))
    monkeypatch.setattr(ingest_tasks.upload_store_task, "delay", lambda pk: sent.append(("store", pk)))
    long_ago = timezone.now() - timedelta(hours=1)
    dead_parse = f.make_upload(org, owner, status="parsing", claimed_at=long_ago)
    dead_store = f.make_upload(org, owner, status="storing", claimed_at=long_ago)
    live_parse = f.make_upload(org, owner, status="parsing", claimed_at=timezone.now())
    assert sorted(uploads_requeue_stale(stale_seconds=600)) == sorted([dead_parse.pk, dead_store.pk])
    assert sorted(sent) == sorted([("validate", dead_parse.pk), ("store", dead_store.pk)])
    dead_parse.refresh_from_db()
    live_parse.refresh_from_db()
    assert dead_parse.status == "received" and live_parse.status == "parsing"
    # Claimed again just now: a second sweep leaves them alone.
    assert uploads_requeue_stale(stale_seconds=600) == []


def test_an_upload_whose_validate_message_was_lost_gets_it_again_once(org, owner, monkeypatch, settings):
    """A RECEIVED upload is waiting for its validate task; if the broker lost the message it
    would wait forever. Past INGEST_RESEND_SECONDS the sweep sends the task again, once per
    period, and leaves recently sent ones alone."""
    from datetime import timedelta

    from django.utils import timezone

    from tests import factories as f
    from uploads import tasks as ingest_tasks
    from uploads.services.ingest import uploads_requeue_stale

    settings.INGEST_RESEND_SECONDS = 600
    sent: list[int] = []
    monkeypatch.setattr(ingest_tasks.upload_validate_task, "delay", sent.append)
    long_ago = timezone.now() - timedelta(hours=1)
    lost = f.make_upload(org, owner, status="received", claimed_at=long_ago)
    lost_never_claimed = f.make_upload(org, owner, status="received")
    Upload.objects.filter(pk=lost_never_claimed.pk).update(created_at=long_ago)
    just_sent = f.make_upload(org, owner, status="received", claimed_at=timezone.now())
    validated_long_ago = f.make_upload(org, owner, status="validated", claimed_at=long_ago)

    assert sorted(uploads_requeue_stale(stale_seconds=90)) == sorted([lost.pk, lost_never_claimed.pk])
    assert sorted(sent) == sorted([lost.pk, lost_never_claimed.pk])
    assert just_sent.pk not in sent and validated_long_ago.pk not in sent
    lost.refresh_from_db()
    assert lost.status == "received" and lost.claimed_at > long_ago
    # Sent again just now: the next sweep does not send it a third time.
    assert uploads_requeue_stale(stale_seconds=90) == []
    assert len(sent) == 2


def test_it_reports_progress_while_it_checks_a_big_file(org, owner, meter, monkeypatch):
    from uploads.services import ingest

    seen: list[tuple[int, int]] = []
    real = ingest._parse_progress

    def spy(upload, claim, *, rows, raw):
        real(upload, claim, rows=rows, raw=raw)
        row = Upload.objects.get(pk=upload.pk)
        seen.append((row.rows_total, row.options["progress_percent"]))

    monkeypatch.setattr(ingest, "PROGRESS_EVERY_ROWS", 100)
    monkeypatch.setattr(ingest, "_parse_progress", spy)
    upload = submit(org, owner, hourly(450), meter=meter)
    assert [rows for rows, _ in seen] == [100, 200, 300, 400]
    percents = [pct for _, pct in seen]
    assert percents == sorted(percents) and percents[0] > 0 and percents[-1] <= 99
    assert upload.status == UploadStatus.VALIDATED and upload.rows_total == 450
    assert "progress_percent" not in upload.options  # the final options replace the progress
