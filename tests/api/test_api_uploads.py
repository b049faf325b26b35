"""Uploads and readings through the API: validation, confirm, error CSV, idempotency, schema, docs."""

import io

import pytest
from django.core.management import call_command

from api.models import OrganizationAPIKey
from tests import factories
from uploads.models import Delivery, Reading, Upload

pytestmark = pytest.mark.django_db

GOOD = "timestamp,kwh\n2024-01-01T00:00:00Z,1.5\n2024-01-01T00:15:00Z,1.25\n2024-01-01T00:30:00Z,oops\n"


def _file(text: str = GOOD, name: str = "readings.csv"):
    f = io.BytesIO(text.encode())
    f.name = name
    return f


@pytest.fixture
def meter(org):
    return factories.make_meter(factories.make_site(org, timezone="UTC"), wattics_stream_id="demo-elec-1")


@pytest.mark.parametrize("role", ["owner", "operator", "viewer", "outsider", "anonymous"])
def test_it_takes_uploads_as_the_role_allows(callers, meter, role):
    data = {"file": _file(), "meter": meter.pk, "targets": "wattics"}
    response = callers[role].post("/api/v1/uploads/", data, json=False)
    expected = {"owner": 201, "operator": 201, "viewer": 403, "outsider": 400, "anonymous": 401}[role]
    assert response.status_code == expected, response.content
    if role == "outsider":
        # Our meter does not exist for them.
        assert "meter" in response.json()
    assert Upload.objects.filter(organization=meter.organization).count() == (1 if expected == 201 else 0)


def test_an_upload_without_confirm_waits_for_review(callers, meter):
    response = callers["operator"].post(
        "/api/v1/uploads/", {"file": _file(), "meter": meter.pk, "targets": ["wattics"]}, json=False
    )
    body = response.json()
    assert response["Location"].endswith(f"/api/v1/uploads/{body['id']}/")
    assert (body["status"], body["rows_valid"], body["rows_invalid"]) == ("validated", 2, 1)
    assert body["deliveries"] == [] and body["finished"] is True and body["delivered"] is False
    assert not Reading.objects.filter(meter=meter).exists()
    csv = callers["viewer"].get(f"/api/v1/uploads/{body['id']}/errors.csv")
    assert csv.status_code == 200
    assert csv["Content-Type"].startswith("text/csv")
    assert b"oops" in b"".join(csv.streaming_content)
    assert body["error_report_url"].endswith(f"/api/v1/uploads/{body['id']}/errors.csv")
    # Confirmed later through the API.
    confirmed = callers["operator"].post(f"/api/v1/uploads/{body['id']}/confirm/")
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "stored"
    assert callers["operator"].post(f"/api/v1/uploads/{body['id']}/confirm/").status_code == 409


def test_confirm_true_stores_and_queues_the_pushes_without_review(callers, meter):
    data = {"file": _file(), "meter": meter.pk, "targets": "wattics,wattcarbon_intervals", "confirm": "true"}
    body = callers["operator"].post("/api/v1/uploads/", data, json=False).json()
    assert body["status"] == "stored"
    assert Reading.objects.filter(meter=meter).count() == 2
    assert sorted(d["target"] for d in body["deliveries"]) == ["wattcarbon_intervals", "wattics"]
    wattics = next(d for d in body["deliveries"] if d["target"] == "wattics")
    assert (wattics["status"], wattics["total"]) == ("queued", 2)
    # The meter has no WattCarbon id: that delivery failed at once, with the fix.
    wattcarbon = next(d for d in body["deliveries"] if d["target"] == "wattcarbon_intervals")
    assert wattcarbon["status"] == "failed" and "sync the meter" in wattcarbon["last_error"]
    assert {"acknowledged", "rejected", "already_at_vendor", "last_error"} <= set(wattics)


def test_an_invalid_upload_says_why(callers, meter):
    body = callers["operator"].post(
        "/api/v1/uploads/", {"file": _file("timestamp,kwh\nnope,1\n"), "meter": meter.pk, "targets": "wattics",
                             "confirm": "true"}, json=False,
    ).json()  # fmt: skip
    assert body["status"] == "invalid"
    assert "No valid rows" in body["error"]
    assert body["finished"] is True


def test_unknown_targets_are_refused(callers, meter):
    response = callers["operator"].post(
        "/api/v1/uploads/", {"file": _file(), "meter": meter.pk, "targets": "fax"}, json=False
    )
    assert response.status_code == 400
    assert "targets" in response.json()


def test_a_repeat_with_the_same_idempotency_key_creates_nothing(callers, meter):
    headers = {"Idempotency-Key": "nightly-2024-01-01"}
    data = lambda: {"file": _file(), "meter": meter.pk, "targets": "wattics", "confirm": "true"}  # noqa: E731
    first = callers["operator"].post("/api/v1/uploads/", data(), json=False, headers=headers)
    second = callers["operator"].post("/api/v1/uploads/", data(), json=False, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Upload.objects.count() == 1 and Delivery.objects.count() == 1
    # Another key is another request.
    third = callers["operator"].post("/api/v1/uploads/", data(), json=False, headers={"Idempotency-Key": "other"})
    assert third.json()["id"] != first.json()["id"]
    # The same key on another endpoint is a mistake, said so.
    rows = {"rows": [{"ts": "2024-02-01T00:00:00Z", "value": 1}], "targets": ["wattics"]}
    reused = callers["operator"].post(f"/api/v1/meters/{meter.pk}/readings/", rows, headers=headers)
    assert reused.status_code == 422


def test_idempotency_keys_are_private_to_their_caller(callers, meter, org):
    from django.test import Client

    from api.models import KeyRole
    from api.services import api_key_create
    from tests.api.conftest import Caller

    other = Caller(Client(), api_key_create(organization=org, name="second", role=KeyRole.OPERATOR)[1])
    headers = {"Idempotency-Key": "same"}
    a = callers["operator"].post("/api/v1/uploads/", {"file": _file(), "meter": meter.pk, "targets": "wattics"},
                                 json=False, headers=headers)  # fmt: skip
    b = other.post("/api/v1/uploads/", {"file": _file(), "meter": meter.pk, "targets": "wattics"}, json=False,
                   headers=headers)  # fmt: skip
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.parametrize("role", ["owner", "operator", "viewer", "outsider", "anonymous"])
def test_readings_are_posted_as_the_role_allows(callers, meter, role):
    rows = [{"ts": f"2024-01-01T{h:02d}:00:00Z", "value": h / 2} for h in range(4)]
    response = callers[role].post(f"/api/v1/meters/{meter.pk}/readings/", {"rows": rows, "targets": ["wattics"]})
    expected = {"owner": 201, "operator": 201, "viewer": 403, "outsider": 404, "anonymous": 401}[role]
    assert response.status_code == expected, response.content
    stored = sorted(Reading.objects.filter(meter=meter).values_list("value", flat=True))
    assert stored == ([0.0, 0.5, 1.0, 1.5] if expected == 201 else [])


def test_json_readings_go_through_the_file_validation(callers, meter):
    rows = [{"ts": "2024-01-01T00:00:00Z", "value": 1}, {"ts": "yesterday", "value": 2},
            {"ts": "2024-01-01T00:15:00Z", "value": -3}]  # fmt: skip
    body = callers["operator"].post(f"/api/v1/meters/{meter.pk}/readings/", {"rows": rows, "targets": "wattics"}).json()
    assert (body["status"], body["rows_valid"], body["rows_invalid"]) == ("stored", 2, 1)
    assert any(w["code"] for w in body["warnings"])  # the negative value is flagged as on a file
    csv = b"".join(callers["operator"].get(f"/api/v1/uploads/{body['id']}/errors.csv").streaming_content)
    assert b"yesterday" in csv
    assert body["deliveries"][0]["total"] == 2


def test_readings_without_confirm_stop_at_review(callers, meter):
    rows = [{"ts": "2024-01-01T00:00:00Z", "value": 1}]
    body = (
        callers["operator"]
        .post(f"/api/v1/meters/{meter.pk}/readings/", {"rows": rows, "targets": "wattics", "confirm": False})
        .json()
    )
    assert body["status"] == "validated"
    assert not Reading.objects.exists()


def test_more_than_ten_thousand_rows_are_refused(callers, meter):
    rows = [{"ts": "2024-01-01T00:00:00Z", "value": 1}] * 10_001
    response = callers["operator"].post(f"/api/v1/meters/{meter.pk}/readings/", {"rows": rows, "targets": "wattics"})
    assert response.status_code == 400
    assert "rows" in response.json()
    assert not Upload.objects.exists()


def test_the_schema_is_generated_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/uploads/", "/api/v1/meters/{id}/readings/", "/api/v1/deliveries/{id}/retry/"):
        assert path in text
    assert "Idempotency-Key" in text and "ApiKeyAuth" in text


def test_the_schema_and_docs_are_served_with_local_assets(callers):
    schema = callers["viewer"].get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/uploads/" in schema.content
    docs = callers["owner"].get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "<script>" not in html and "<style>" not in html
    assert docs._csp_update == {"img-src": ["data:"]}  # Swagger UI's icons, for django-csp
    assert callers["anonymous"].get("/api/v1/schema/").status_code == 401


def test_create_api_key_prints_a_working_key_once(org, client, capsys):
    call_command("create_api_key", "--org", org.slug, "--name", "cli", "--role", "operator")
    key = capsys.readouterr().out.strip()
    stored = OrganizationAPIKey.objects.get(name="cli")
    assert stored.role == "operator" and key.startswith(stored.prefix + ".")
    assert key not in stored.hashed_key  # only a hash is kept
    assert client.get("/api/v1/sites/", headers={"Authorization": f"Api-Key {key}"}).status_code == 200


def test_a_file_over_the_limit_is_refused_before_it_is_read(callers, meter, settings):
    settings.UPLOAD_MAX_BYTES = 10
    big = _file("timestamp,kwh\n" + "2024-01-01T00:00:00Z,1\n" * 4000)
    response = callers["operator"].post("/api/v1/uploads/", {"file": big, "meter": meter.pk, "targets": "wattics"},
                                        json=False)  # fmt: skip
    assert response.status_code == 413
    assert not Upload.objects.exists()


def test_naive_times_go_to_the_ingest_service_or_utc_is_refused(callers, meter):
    import inspect

    from uploads.services.ingest import upload_create

    data = {"file": _file("timestamp,kwh\n2024-01-01 00:00,1\n"), "meter": meter.pk, "targets": "wattics",
            "naive_times": "utc"}  # fmt: skip
    response = callers["operator"].post("/api/v1/uploads/", data, json=False)
    if "naive_times" in inspect.signature(upload_create).parameters:
        assert response.status_code == 201
        assert Upload.objects.get().naive_times == "utc"
    else:
        # This portal reads naive times in the site's zone only: "utc" is refused, not ignored.
        assert response.status_code == 400
        assert "naive_times=utc is not supported" in response.json()["detail"]
        assert not Upload.objects.exists()
    local = callers["operator"].post("/api/v1/uploads/", {**data, "file": _file(), "naive_times": "local"}, json=False)
    assert local.status_code == 201
