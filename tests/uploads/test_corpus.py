"""The bad-input corpus (tests/data/bad, written by tests/data/make_corpus.py) and the
accepted variants (tests/data/good): every bad file gets a sentence and stores nothing."""

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import submit
from uploads.models import Bill, Reading, Target, Upload, UploadStatus
from uploads.services.ingest import IngestError, upload_confirm

meter, ny_site, solar, no_deliveries = support.meter, support.ny_site, support.solar, support.no_deliveries

DATA = Path(__file__).resolve().parent.parent / "data"
BAD = json.loads((DATA / "bad" / "MANIFEST.json").read_text())
GOOD = json.loads((DATA / "good" / "MANIFEST.json").read_text())


def dangerous(cell: str) -> bool:
    """A cell a spreadsheet would evaluate."""
    if cell[:1] in ("=", "@", "\t", "\r"):
        return True
    if cell[:1] in ("+", "-"):
        try:
            float(cell)
        except ValueError:
            return True
    return False


def assert_refused(upload: Upload, owner, expected: str, client=None) -> None:
    assert upload.status in (UploadStatus.INVALID, UploadStatus.NEEDS_MAPPING), upload.error
    # A sentence for a person: capitalised, ends with a full stop.
    assert upload.error[:1].isupper() and upload.error.endswith("."), upload.error
    report = ""
    if upload.error_report:
        with upload.error_report.open("rb") as f:
            report = f.read().decode()
    assert expected in upload.error + report
    with pytest.raises(IngestError):
        upload_confirm(upload=upload, user=owner, run_now=True)
    assert Reading.objects.count() == 0 and Bill.objects.count() == 0
    if client is not None and upload.error_report:
        response = client.get(f"/uploads/{upload.pk}/errors.csv")
        cells = [c for row in csv.reader(io.StringIO(b"".join(response.streaming_content).decode())) for c in row]
        assert cells and not [c for c in cells if dangerous(c)]


def test_the_corpus_has_at_least_fifty_malformed_files():
    files = {p.name for p in (DATA / "bad").iterdir()} - {"MANIFEST.json"}
    assert files == set(BAD) and len(files) >= 50


@pytest.mark.parametrize("name", sorted(BAD))
def test_it_refuses_each_malformed_file_with_a_clear_message(name, owner_client, org, owner, meter, solar):
    expected, meter_column = BAD[name]
    data = (DATA / "bad" / name).read_bytes()
    if name.endswith(".zip"):
        # A zip is sent as a batch (what the upload form does with it): refused as a whole.
        from django.core.files.uploadedfile import SimpleUploadedFile

        from uploads.services.formats import batch_create

        with pytest.raises(IngestError) as refused:
            batch_create(organization=org, user=owner, files=[SimpleUploadedFile(name, data)], meter=meter,
                         targets=[Target.WATTICS], run_now=True)  # fmt: skip
        message = str(refused.value)
        assert expected in message and message[:1].isupper() and message.endswith("."), message
        assert Upload.objects.count() == 0 and Reading.objects.count() == 0
        return
    upload = submit(org, owner, data, meter=None if meter_column else meter, name=name)
    assert_refused(upload, owner, expected, owner_client)


def test_it_neutralises_formula_cells_in_the_error_report(owner_client, org, owner, meter):
    upload = submit(org, owner, (DATA / "bad" / "formula_values.csv").read_bytes(), meter=meter)
    body = b"".join(owner_client.get(f"/uploads/{upload.pk}/errors.csv").streaming_content).decode()
    values = [row[2] for row in csv.reader(io.StringIO(body))][1:]
    assert values == [
        "'=CMD()|' /C calc'!A0",
        "'@SUM(1+1)*cmd|' /C calc'!A0",
        "'+cmd|' /C calc'!A0",
        "'-2+3+cmd|' /C calc'!A0",
    ]


def test_it_refuses_a_10_mb_single_line(tmp_path, org, owner, meter):
    for data in (b"timestamp,value\n" + b"1" * 10 * 1024 * 1024, b"x" * 10 * 1024 * 1024):
        upload = submit(org, owner, data, meter=meter)
        assert_refused(upload, owner, "is longer than 64 KB")


def test_it_refuses_a_file_over_the_size_limit(owner_client, org, owner, meter, settings):
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    data = b"timestamp,value\n" + b"2024-01-15T00:00:00Z,1\n" * 100_000  # 2.3 MB
    with pytest.raises(IngestError, match="larger than the limit of 1 MB"):
        submit(org, owner, data, meter=meter)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = owner_client.post(
        "/uploads/new/", {"file": SimpleUploadedFile("huge.csv", data), "meter": meter.pk, "targets": ["wattics"]}
    )
    assert response.status_code == 413 and b"larger than the limit of 1.0" in response.content
    assert Upload.objects.count() == 0 and Reading.objects.count() == 0


def test_it_refuses_a_gzip_bomb(tmp_path, org, owner, meter, settings):
    settings.UPLOAD_MAX_DECOMPRESSED_BYTES = 5 * 1024 * 1024
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(b"timestamp,value\n")
        line = b"2024-01-15T00:00:00Z,1\n" * 10_000
        for _ in range(250):  # 57 MB of text
            f.write(line)
    assert path.stat().st_size < 1024 * 1024
    upload = submit(org, owner, path.read_bytes(), meter=meter, name="bomb.csv.gz")
    assert_refused(upload, owner, "decompresses to more than 5 MB")


@pytest.mark.parametrize("name", sorted(GOOD))
def test_it_accepts_each_variant(name, org, owner, meter, solar, no_deliveries):
    count, first, value, meter_column = GOOD[name]
    bills = name.startswith("bills")
    targets = [Target.WATTCARBON_BILLS] if bills else [Target.WATTICS]
    data = (DATA / "good" / name).read_bytes()
    upload = submit(org, owner, data, meter=None if meter_column else meter, name=name, targets=targets)
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert upload.rows_invalid == 0 and not upload.error_report
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == count
    if bills:
        stored = Bill.objects.order_by("start_date").first()
        assert (stored.start_date.isoformat(), stored.energy_kwh) == (first, value)
    else:
        stored = Reading.objects.filter(meter=meter).order_by("ts").first()
        assert (stored.ts.isoformat(), stored.value) == (first, value)


def test_it_keeps_wattics_electrical_fields_and_fold_order(org, owner, meter, no_deliveries):
    upload = submit(org, owner, (DATA / "good" / "wattics_electrical.csv").read_bytes(), meter=meter)
    upload_confirm(upload=upload, user=owner, run_now=True)
    first = Reading.objects.order_by("ts").first()
    assert first.extra == {
        "aP_1": 1000.0,
        "aP_2": 1000.0,
        "aP_3": 2000.0,
        "v_1": 230.1,
        "c_1": 4.2,
        "pC_1": 123456.0,
        "v_12": 400.0,
    }  # noqa: E501
    Reading.objects.all().delete()
    upload = submit(org, owner, (DATA / "good" / "naive_local_fold.csv").read_bytes(), meter=meter)
    assert [w["code"] for w in upload.warnings] == ["dst_fold"]
    upload_confirm(upload=upload, user=owner, run_now=True)
    stored = [(r.ts.hour, r.value) for r in Reading.objects.order_by("ts")]
    assert stored == [(4, 1.0), (5, 2.0), (6, 3.0), (7, 4.0)]
