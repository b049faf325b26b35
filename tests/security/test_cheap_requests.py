"""16.5: cheap requests stay cheap, and bad input is a 400 or a form error, never a 500.

A 64 KB upload whose header is 32,000 commas once made the mapping page 51 MB of HTML
in 70 s. Columns are capped (UPLOAD_MAX_COLUMNS, said plainly); duplicate names are
refused; empty names are named by position so the mapping step still works."""

import time

import pytest

from tests import factories
from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import submit
from uploads.models import Reading, Upload, UploadStatus

meter, ny_site = support.meter, support.ny_site


def test_a_header_of_32000_commas_is_refused_quickly_and_plainly(owner_client, org, owner, meter, settings):
    assert settings.UPLOAD_MAX_COLUMNS == 200
    content = "," * 32000 + "\n" + "," * 32000 + "\n"
    started = time.monotonic()
    upload = submit(org, owner, content, meter=meter)
    pages = [owner_client.get(f"/uploads/{upload.pk}/{page}") for page in ("review/", "mapping/", "")]
    elapsed = time.monotonic() - started
    upload.refresh_from_db()
    assert upload.status == UploadStatus.INVALID
    assert "32,001 columns; at most 200 are accepted" in upload.error
    assert elapsed < 10, f"{elapsed:.1f} s"
    for page in pages:
        assert page.status_code in (200, 302, 404)
        assert len(page.content) < 200_000
    assert b"at most 200 are accepted" in pages[0].content


def test_the_column_cap_follows_the_setting(org, owner, meter, settings):
    settings.UPLOAD_MAX_COLUMNS = 3
    upload = submit(org, owner, "timestamp,kwh,a,b\n2024-01-01T00:00Z,1,2,3\n", meter=meter)
    assert upload.status == UploadStatus.INVALID and "4 columns; at most 3" in upload.error


def test_duplicate_column_names_are_refused(org, owner, meter):
    upload = submit(org, owner, "timestamp,kwh,KWH\n2024-01-01T00:00Z,1,2\n", meter=meter)
    assert upload.status == UploadStatus.INVALID
    assert "appears twice in the header" in upload.error


def test_empty_column_names_can_still_be_mapped(owner_client, org, owner, meter):
    upload = submit(org, owner, "when,,\n2024-01-01T00:00Z,1,99\n2024-01-01T01:00Z,2,99\n", meter=meter)
    assert upload.status == UploadStatus.NEEDS_MAPPING
    page = owner_client.get(f"/uploads/{upload.pk}/mapping/")
    assert b'<label for="id_col_1">column_2' in page.content and b'<label for="id_col_2">column_3' in page.content
    response = owner_client.post(f"/uploads/{upload.pk}/mapping/", {"col_0": "ts", "col_1": "value", "col_2": ""})
    assert response.status_code == 302
    upload.refresh_from_db()
    assert upload.status == UploadStatus.VALIDATED and upload.rows_valid == 2
    assert upload.column_mapping == {"when": "ts", "column_2": "value"}
    assert [row["value"] for row in upload.preview] == [1.0, 2.0]  # the second column, not the third


# ----- query parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["from=2026-02-31", "to=9999-12-31", "from=9999-12-31", "from=0001-01-01&to=0001-01-02"]
)
def test_bad_meter_data_dates_are_a_400(owner_client, org, query):
    meter = factories.make_meter(factories.make_site(org))
    response = owner_client.get(f"/meters/{meter.pk}/data/?{query}")
    assert response.status_code == 400


def test_good_meter_data_dates_still_work(owner_client, org):
    meter = factories.make_meter(factories.make_site(org))
    assert owner_client.get(f"/meters/{meter.pk}/data/?from=2026-02-01&to=2026-02-28").status_code == 200


@pytest.mark.parametrize("path", ["/meters/", "/devices/"])
@pytest.mark.parametrize("site", ["abc", "1.5", "²", "99999999999999999999999"])
def test_a_bad_site_filter_is_a_400(owner_client, org, path, site):
    assert owner_client.get(path, {"site": site}).status_code == 400


@pytest.mark.parametrize("path", ["/meters/", "/devices/"])
def test_a_good_site_filter_still_works(owner_client, org, path):
    site = factories.make_site(org)
    assert owner_client.get(path, {"site": site.pk}).status_code == 200


def test_no_reading_was_stored_by_the_refused_upload(org, owner, meter):
    submit(org, owner, "," * 500 + "\n", meter=meter)
    assert Reading.objects.count() == 0 and Upload.objects.get().status == UploadStatus.INVALID


def test_a_workbook_as_wide_is_refused_the_same_way(org, owner, meter, settings):
    import io

    import openpyxl

    settings.UPLOAD_MAX_COLUMNS = 50
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["timestamp", "kwh"] + [f"c{n}" for n in range(100)])
    sheet.append(["2024-01-01T00:00Z", 1] + [0] * 100)
    data = io.BytesIO()
    book.save(data)
    upload = submit(org, owner, data.getvalue(), meter=meter, name="readings.xlsx")
    assert upload.status == UploadStatus.INVALID
    assert "102 columns; at most 50 are accepted" in upload.error
