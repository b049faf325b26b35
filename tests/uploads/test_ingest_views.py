"""Ingest pages as owner, teammate (operator), viewer and outsider."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import hourly, submit
from uploads.models import Reading, Target, Upload, UploadStatus

meter, ny_site = support.meter, support.ny_site

FORMULA = "=CMD()|' /C calc'!A0"


def post_file(client, content: str, *, meter=None, name="readings.csv", targets=("wattics",)):
    data = {"file": SimpleUploadedFile(name, content.encode()), "targets": list(targets)}
    if meter is not None:
        data["meter"] = meter.pk
    return client.post("/uploads/new/", data)


@pytest.fixture
def validated(org, owner, meter):
    return submit(org, owner, hourly(3) + f"2024-01-16T00:00:00Z,{FORMULA}\n", meter=meter)


@pytest.mark.parametrize("who,status", [("owner", 200), ("teammate", 200), ("viewer", 403)])
def test_it_shows_the_upload_form_to_operators_only(client, request, org, meter, who, status):
    client.force_login(request.getfixturevalue(who))
    response = client.get("/uploads/new/")
    assert response.status_code == status
    if status == 200:
        assert b'<label for="id_file">CSV file' in response.content
        assert meter.name.encode() in response.content


def test_it_uploads_a_file_and_lands_on_the_review(teammate_client, teammate, meter):
    response = post_file(teammate_client, hourly(5), meter=meter, targets=[Target.WATTICS, Target.WATTCARBON_INTERVALS])
    upload = Upload.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/uploads/{upload.pk}/review/"
    assert upload.uploaded_by == teammate and upload.meter == meter
    assert upload.targets == ["wattics", "wattcarbon_intervals"] and upload.status == UploadStatus.VALIDATED
    page = teammate_client.get(response["Location"])
    assert b"Push 5 valid rows" in page.content


def test_it_refuses_uploads_from_viewers(viewer_client, meter):
    assert post_file(viewer_client, hourly(2), meter=meter).status_code == 403
    assert Upload.objects.count() == 0


def test_it_does_not_offer_another_organizations_meters(outsider_client, meter):
    response = post_file(outsider_client, hourly(2), meter=meter)
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert Upload.objects.count() == 0


def test_it_refuses_a_file_over_the_size_limit(owner_client, meter, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = post_file(owner_client, hourly(40), meter=meter)
    assert response.status_code == 200
    assert b"the limit is 1000" in response.content
    response = post_file(owner_client, "x" * 200_000, meter=meter)
    assert response.status_code == 413
    assert b"larger than the limit of 1000" in response.content
    assert Upload.objects.count() == 0


def test_it_needs_at_least_one_target(owner_client, meter):
    response = post_file(owner_client, hourly(2), meter=meter, targets=())
    assert b"This field is required." in response.content and Upload.objects.count() == 0


@pytest.mark.parametrize("who,status", [("owner", 200), ("teammate", 200), ("viewer", 200), ("outsider", 404)])
def test_it_shows_the_review_to_members_only(client, request, validated, who, status):
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/uploads/{validated.pk}/review/")
    assert response.status_code == status
    if status == 200:
        assert b"2024-01-15T00:00:00+00:00" in response.content  # the preview
        assert b"is not a number" in response.content  # the errors
        assert (b"Push 3 valid rows" in response.content) == (who != "viewer")


def test_the_review_warns_of_pushes_that_would_fail_for_want_of_meter_set_up(owner_client, org, owner, meter):
    # The meter has a Wattics stream id, no WattCarbon id.
    upload = submit(org, owner, hourly(2), meter=meter, targets=[Target.WATTICS, Target.WATTCARBON_INTERVALS])
    page = owner_client.get(f"/uploads/{upload.pk}/review/").content.decode()
    assert 'id="push-blockers"' in page and f'href="/meters/{meter.pk}/"' in page
    assert "is not synced to WattCarbon yet" in page and "no Wattics data stream id" not in page
    box = page.split('id="push-blockers"')[1].split("</div>")[0]
    assert "Sync it on its page first" in box and "Wattics" not in box
    meter.wattcarbon_id, meter.wattics_stream_id = "1001", ""
    meter.save(update_fields=["wattcarbon_id", "wattics_stream_id"])
    page = owner_client.get(f"/uploads/{upload.pk}/review/").content.decode()
    assert "is not synced to WattCarbon yet" not in page and "has no Wattics data stream id" in page
    meter.wattics_stream_id = "main-stream"
    meter.save(update_fields=["wattics_stream_id"])
    assert 'id="push-blockers"' not in owner_client.get(f"/uploads/{upload.pk}/review/").content.decode()
    # A target the upload does not push to is not a blocker.
    meter.wattcarbon_id = ""
    meter.save(update_fields=["wattcarbon_id"])
    wattics_only = submit(org, owner, hourly(2), meter=meter, targets=[Target.WATTICS])
    assert 'id="push-blockers"' not in owner_client.get(f"/uploads/{wattics_only.pk}/review/").content.decode()


def test_it_polls_while_the_file_is_parsed_then_reloads(owner_client, validated):
    Upload.objects.filter(pk=validated.pk).update(status=UploadStatus.PARSING)
    page = owner_client.get(f"/uploads/{validated.pk}/review/")
    assert b'hx-trigger="every 1s"' in page.content
    Upload.objects.filter(pk=validated.pk).update(status=UploadStatus.VALIDATED)
    partial = owner_client.get(f"/uploads/{validated.pk}/review/status/", HTTP_HX_REQUEST="true")
    assert partial["HX-Refresh"] == "true" and b"every 1s" not in partial.content


@pytest.mark.parametrize("who,status", [("viewer", 403), ("outsider", 404)])
def test_it_refuses_confirm_and_cancel_to_non_operators(client, request, validated, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.post(f"/uploads/{validated.pk}/confirm/").status_code == status
    assert client.post(f"/uploads/{validated.pk}/cancel/").status_code == status
    assert Upload.objects.get(pk=validated.pk).status == UploadStatus.VALIDATED and Reading.objects.count() == 0


def test_it_stores_the_valid_rows_on_confirm(teammate_client, validated):
    response = teammate_client.post(f"/uploads/{validated.pk}/confirm/")
    assert response.status_code == 302 and response["Location"] == f"/uploads/{validated.pk}/"
    validated.refresh_from_db()
    assert validated.status == UploadStatus.STORED and Reading.objects.count() == 3
    # A second click is refused with a message, not a second store.
    response = teammate_client.post(f"/uploads/{validated.pk}/confirm/", follow=True)
    assert b"only a validated upload is pushed" in response.content and Reading.objects.count() == 3


def test_it_cancels(owner_client, validated):
    response = owner_client.post(f"/uploads/{validated.pk}/cancel/")
    assert response.status_code == 302
    assert Upload.objects.get(pk=validated.pk).status == UploadStatus.CANCELLED


def test_it_maps_unrecognised_columns(owner_client, org, owner, meter):
    upload = submit(org, owner, "when,how much,note\n2024-01-01T00:00Z,1,a\n2024-01-01T01:00Z,2,b\n", meter=meter)
    review = owner_client.get(f"/uploads/{upload.pk}/review/")
    assert b"Map columns" in review.content
    page = owner_client.get(f"/uploads/{upload.pk}/mapping/")
    assert page.status_code == 200 and b'<label for="id_col_1">how much' in page.content
    assert b"2024-01-01T01:00Z" in page.content  # the sample rows
    bad = owner_client.post(f"/uploads/{upload.pk}/mapping/", {"col_0": "ts", "col_1": "", "col_2": ""})
    assert b"Choose a value column" in bad.content
    response = owner_client.post(f"/uploads/{upload.pk}/mapping/", {"col_0": "ts", "col_1": "value", "col_2": ""})
    assert response.status_code == 302
    upload.refresh_from_db()
    assert upload.status == UploadStatus.VALIDATED and upload.rows_valid == 2
    assert upload.column_mapping == {"when": "ts", "how much": "value"}


@pytest.mark.parametrize("who,status", [("owner", 200), ("teammate", 200), ("viewer", 403), ("outsider", 404)])
def test_it_lets_only_operators_map_columns(client, request, org, owner, meter, who, status):
    upload = submit(org, owner, "when,how much\n2024-01-01T00:00Z,1\n", meter=meter)
    client.force_login(request.getfixturevalue(who))
    assert client.get(f"/uploads/{upload.pk}/mapping/").status_code == status
    response = client.post(f"/uploads/{upload.pk}/mapping/", {"col_0": "ts", "col_1": "value"})
    assert response.status_code == (302 if status == 200 else status)


@pytest.mark.parametrize("who,status", [("owner", 200), ("teammate", 200), ("viewer", 200), ("outsider", 404)])
def test_it_serves_the_error_report_to_members_only(client, request, validated, who, status):
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/uploads/{validated.pk}/errors.csv")
    assert response.status_code == status
    if status == 200:
        body = b"".join(response.streaming_content).decode()
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert "attachment" in response["Content-Disposition"]
        assert f"'{FORMULA}" in body and f",{FORMULA}" not in body


def test_it_has_no_error_report_for_a_clean_file(owner_client, org, owner, meter):
    upload = submit(org, owner, hourly(2), meter=meter)
    assert owner_client.get(f"/uploads/{upload.pk}/errors.csv").status_code == 404


def test_it_sends_the_browser_to_the_deliveries_once_the_rows_are_stored(owner_client, org, owner):
    from tests import factories as f

    stored = f.make_upload(org, owner, status="stored")
    response = owner_client.get(f"/uploads/{stored.pk}/review/status/", headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == f"/uploads/{stored.pk}/"
    invalid = f.make_upload(org, owner, status="invalid")
    response = owner_client.get(f"/uploads/{invalid.pk}/review/status/", headers={"HX-Request": "true"})
    assert response["HX-Refresh"] == "true" and "HX-Redirect" not in response
