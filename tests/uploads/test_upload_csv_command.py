"""manage.py upload_csv: the same services as the web form, from a shell."""

import pytest
from django.core.management import CommandError, call_command

from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import hourly
from uploads.models import Reading, Upload, UploadStatus

meter, ny_site, solar = support.meter, support.ny_site, support.solar


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("upload_csv", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_validates_stores_and_reports_counts(tmp_path, org, owner, meter):
    path = tmp_path / "r.csv"
    path.write_text(hourly(6) + "2024-01-20T00:00Z,oops\n")
    out = run("--org", org.slug, "--meter", "Main", "--to", "wattics,wattcarbon", "--user", "owner", str(path))
    assert "Rows: 7 read, 6 valid, 1 with errors" in out
    assert "Line 8: energy_kwh is not a number (energy_kwh='oops')" in out
    assert "Stored 6 rows" in out
    upload = Upload.objects.get()
    assert upload.status == UploadStatus.STORED and upload.uploaded_by == owner
    assert upload.targets == ["wattics", "wattcarbon_intervals"]
    assert Reading.objects.filter(meter=meter).count() == 6


def test_it_takes_a_meter_by_id_or_stream_and_files_with_a_meter_column(tmp_path, org, meter, solar):
    path = tmp_path / "r.csv"
    path.write_text(hourly(2))
    run("--org", org.slug, "--meter", str(meter.pk), "--to", "wattics", str(path))
    run("--org", org.slug, "--meter", "pv-stream", "--to", "wattics", str(path))
    path.write_text("ts,meter,kwh\n2024-02-01T00:00Z,Main,1\n2024-02-01T00:00Z,Roof PV,2\n")
    run("--org", org.slug, "--to", "wattics", str(path))
    assert Reading.objects.filter(meter=meter).count() == 3 and Reading.objects.filter(meter=solar).count() == 3


def test_it_exits_non_zero_with_the_errors_of_an_invalid_file(tmp_path, org, meter):
    path = tmp_path / "bad.csv"
    path.write_text("ts,value\n2024-03-10 02:30,1\n")
    from io import StringIO

    out = StringIO()
    with pytest.raises(CommandError, match="is invalid: No valid rows: all 1 rows have errors"):
        call_command("upload_csv", "--org", org.slug, "--meter", "Main", "--to", "wattics", str(path), stdout=out)
    assert "Line 2: ts 2024-03-10 02:30 does not exist in America/New_York (DST gap)" in out.getvalue()
    assert Reading.objects.count() == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--org", "nope", "--meter", "Main", "--to", "wattics"], "No organization"),
        (["--meter", "Ghost", "--to", "wattics"], "No meters of"),
        (["--meter", "Main", "--to", "fax"], "Unknown target"),
        (["--meter", "Main", "--to", "wattics", "--user", "viewer"], "is not an operator"),
    ],
)
def test_it_refuses_bad_arguments(tmp_path, org, meter, viewer, args, message):
    path = tmp_path / "r.csv"
    path.write_text(hourly(2))
    if "--org" not in args:
        args = ["--org", org.slug, *args]
    with pytest.raises(CommandError, match=message):
        run(*args, str(path))
    assert Upload.objects.count() == 0


def test_it_reads_naive_times_as_utc_when_told(tmp_path, org, owner, meter):
    path = tmp_path / "r.csv"
    path.write_text("timestamp,kwh\n2024-01-15 00:00,1\n")
    run("--org", org.slug, "--meter", "Main", "--to", "wattics", "--naive-times", "utc", str(path))
    run("--org", org.slug, "--meter", "Main", "--to", "wattics", str(path))
    utc, local = Upload.objects.order_by("pk")
    assert (utc.naive_times, local.naive_times) == ("utc", "local")
    assert utc.preview[0]["ts"] == "2024-01-15T00:00:00+00:00"
    assert local.preview[0]["ts"] == "2024-01-15T05:00:00+00:00"  # New York


def test_it_reads_the_named_sheet_of_a_workbook_and_converts_the_given_unit(tmp_path, org, owner, meter):
    from datetime import datetime

    from tests.uploads import formats_support as fs

    rows = [["timestamp", "value"], [datetime(2024, 1, 15, 0, 0), 1500], [datetime(2024, 1, 15, 1, 0), 2500]]
    path = tmp_path / "export.xlsx"
    path.write_bytes(fs.xlsx({"Notes": [["nothing here"]], "Readings": rows}))
    out = run("--org", org.slug, "--meter", "Main", "--to", "wattics", "--sheet", "Readings", "--unit", "wh", str(path))
    assert "Rows: 2 read, 2 valid, 0 with errors" in out
    upload = Upload.objects.get()
    assert upload.sheet == "Readings" and upload.source_unit == "Wh"
    assert list(Reading.objects.filter(meter=meter).order_by("ts").values_list("value", flat=True)) == [1.5, 2.5]


def test_an_unknown_unit_is_refused_before_anything_is_uploaded(tmp_path, org, meter):
    path = tmp_path / "r.csv"
    path.write_text(hourly(2))
    with pytest.raises(CommandError, match="Unknown unit 'furlongs'"):
        run("--org", org.slug, "--meter", "Main", "--to", "wattics", "--unit", "furlongs", str(path))
    assert Upload.objects.count() == 0
