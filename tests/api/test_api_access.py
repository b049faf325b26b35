"""Every endpoint as owner (session), operator key, viewer key, outsider key and without a key."""

import pytest

from api.models import OrganizationAPIKey
from api.services import api_key_revoke
from sites.models import Device, Meter, Site
from uploads.models import Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db

READ = {"owner": 200, "operator": 200, "viewer": 200, "outsider": 404, "anonymous": 401}
WRITE = {"owner": 200, "operator": 200, "viewer": 403, "outsider": 404, "anonymous": 401}
ROLES = list(READ)


def _detail_urls(t) -> list[str]:
    return [
        f"/api/v1/sites/{t['site'].pk}/",
        f"/api/v1/meters/{t['meter'].pk}/",
        f"/api/v1/devices/{t['device'].pk}/",
        f"/api/v1/uploads/{t['upload'].pk}/",
        f"/api/v1/deliveries/{t['delivery'].pk}/",
    ]


@pytest.mark.parametrize("role", ROLES)
def test_it_reads_details_as_the_role_allows(callers, things, role):
    for url in _detail_urls(things):
        response = callers[role].get(url)
        assert response.status_code == READ[role], (url, response.content)


@pytest.mark.parametrize("role", ROLES)
def test_lists_show_only_the_callers_organization(callers, things, role):
    for name in ("sites", "meters", "devices", "uploads", "deliveries", "feeds"):
        response = callers[role].get(f"/api/v1/{name}/")
        if role == "anonymous":
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"] == "Api-Key"
            continue
        assert response.status_code == 200, (name, response.content)
        ids = {row.get("id", row.get("meter")) for row in response.json()["results"]}
        if role == "outsider":
            assert ids == set(), name
        elif name != "feeds":
            assert ids, name


@pytest.mark.parametrize("role", ROLES)
def test_it_creates_sites_as_the_role_allows(callers, things, role):
    data = {"name": f"New {role}", "timezone": "Europe/Dublin", "country": "IE"}
    response = callers[role].post("/api/v1/sites/", data)
    expected = {"owner": 201, "operator": 201, "viewer": 403, "outsider": 201, "anonymous": 401}[role]
    assert response.status_code == expected, response.content
    if expected == 201:
        site = Site.objects.get(pk=response.json()["id"])
        # The outsider's key creates in its own organization, never in ours.
        assert site.organization_id == (things["site"].organization_id if role != "outsider" else
                                        OrganizationAPIKey.objects.get(name="theirs").organization_id)  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_it_updates_and_deletes_meters_as_the_role_allows(callers, things, role):
    meter = things["meter"]
    response = callers[role].patch(f"/api/v1/meters/{meter.pk}/", {"live": True, "interval_minutes": 30})
    assert response.status_code == WRITE[role], response.content
    meter.refresh_from_db()
    assert (meter.live, meter.interval_minutes) == ((True, 30) if WRITE[role] == 200 else (False, 15))
    response = callers[role].delete(f"/api/v1/devices/{things['device'].pk}/")
    assert response.status_code == {**WRITE, "owner": 204, "operator": 204}[role]
    assert Device.objects.filter(pk=things["device"].pk).exists() == (WRITE[role] != 200)


def test_a_meter_cannot_be_put_on_another_organizations_site(callers, things, other_org):
    from tests import factories

    theirs = factories.make_site(other_org)
    response = callers["operator"].post("/api/v1/meters/", {"site": theirs.pk, "name": "Sneaky"})
    assert response.status_code == 400
    assert "site" in response.json()
    assert not Meter.objects.filter(name="Sneaky").exists()


def test_a_billing_meter_with_utc_times_can_be_made_and_read_through_the_api(callers, things):
    data = {"site": things["site"].pk, "name": "Gas bills", "meter_type": "gas", "unit": "kWh"}
    response = callers["operator"].post("/api/v1/meters/", {**data, "reading_kind": "billing", "naive_times": "utc"})
    assert response.status_code == 201, response.content
    meter = Meter.objects.get(pk=response.json()["id"])
    assert (meter.reading_kind, meter.naive_times) == ("billing", "utc")
    shown = callers["viewer"].get(f"/api/v1/meters/{meter.pk}/").json()
    assert (shown["reading_kind"], shown["naive_times"]) == ("billing", "utc")
    # Left out, they keep the model's defaults.
    response = callers["operator"].post("/api/v1/meters/", {**data, "name": "Defaults"})
    assert (response.json()["reading_kind"], response.json()["naive_times"]) == ("interval", "local")
    response = callers["operator"].post("/api/v1/meters/", {**data, "name": "Bad", "naive_times": "mars"})
    assert response.status_code == 400 and "naive_times" in response.json()


def test_service_validation_errors_are_400_with_fields(callers, things):
    response = callers["operator"].post("/api/v1/sites/", {"name": things["site"].name, "timezone": "Mars/Base"})
    assert response.status_code == 400
    assert "timezone" in response.json()


def test_devices_are_created_through_the_methodology_registry(callers, things):
    site = things["site"]
    data = {"site": site.pk, "name": "Roof PV", "custom_id": "PV-9", "kind": "solar_direct",
            "commenced_operation_date": "2023-01-01", "fields": {"nameplateCapacityKw": 50}}  # fmt: skip
    response = callers["operator"].post("/api/v1/devices/", data)
    assert response.status_code == 201, response.content
    assert Device.objects.get(custom_id="PV-9").fields["nameplateCapacityKw"] == 50
    bad = callers["operator"].post("/api/v1/devices/", {**data, "custom_id": "PV-10", "fields": {}})
    assert bad.status_code == 400
    assert "nameplateCapacityKw" in str(bad.json())


@pytest.mark.parametrize("role", ROLES)
def test_sync_is_requested_as_the_role_allows(callers, things, role):
    for name in ("meters", "devices"):
        obj = things[name[:-1]]
        response = callers[role].post(f"/api/v1/{name}/{obj.pk}/sync/")
        expected = {"owner": 202, "operator": 202, "viewer": 403, "outsider": 404, "anonymous": 401}[role]
        assert response.status_code == expected, (name, response.content)
        obj.refresh_from_db()
        assert (obj.wattcarbon_status == "pending") == (expected == 202)


@pytest.mark.parametrize("role", ROLES)
def test_deliveries_are_retried_and_cancelled_as_the_role_allows(callers, things, role):
    delivery = things["delivery"]
    response = callers[role].post(f"/api/v1/deliveries/{delivery.pk}/retry/")
    assert response.status_code == WRITE[role], response.content
    delivery.refresh_from_db()
    assert delivery.status == (DeliveryStatus.QUEUED if WRITE[role] == 200 else DeliveryStatus.FAILED)
    if WRITE[role] == 200:
        assert callers[role].post(f"/api/v1/deliveries/{delivery.pk}/cancel/").status_code == 200
        assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.CANCELLED
        # Cancelled: nothing left to cancel.
        again = callers[role].post(f"/api/v1/deliveries/{delivery.pk}/cancel/")
        assert again.status_code == 409
        assert "cannot be cancelled" in again.json()["detail"]


def test_deliveries_filter_by_upload_and_status(callers, things):
    from tests import factories

    other = factories.make_upload(things["upload"].organization, meter=things["meter"])
    factories.make_delivery(other, things["meter"], status="delivered")
    rows = callers["viewer"].get(f"/api/v1/deliveries/?upload={things['upload'].pk}").json()["results"]
    assert [r["id"] for r in rows] == [things["delivery"].pk]
    rows = callers["viewer"].get("/api/v1/deliveries/?status=delivered").json()["results"]
    assert [r["upload"] for r in rows] == [other.pk]


def test_a_revoked_key_is_refused(callers, things, org):
    key = OrganizationAPIKey.objects.get(organization=org, name="logger")
    assert callers["operator"].get("/api/v1/sites/").status_code == 200
    assert api_key_revoke(api_key=key)
    response = callers["operator"].get("/api/v1/sites/")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_a_wrong_key_is_refused(client, things):
    response = client.get("/api/v1/sites/", headers={"Authorization": "Api-Key abcdefgh.nonsense"})
    assert response.status_code == 401


def test_it_records_when_a_key_was_last_used(callers, org):
    key = OrganizationAPIKey.objects.get(organization=org, name="viewer" if False else "dashboard")
    assert key.last_used_at is None
    callers["viewer"].get("/api/v1/sites/")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_a_browser_session_needs_its_csrf_token(owner, things):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    data = {"name": "By browser", "timezone": "UTC"}
    refused = client.post("/api/v1/sites/", data, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.get("/sites/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/v1/sites/", data, content_type="application/json", headers={"X-CSRFToken": token})
    assert accepted.status_code == 201, accepted.content


def test_beyond_the_rate_it_answers_429_with_retry_after(callers, things, settings):
    settings.API_THROTTLE_RATE = "3/min"
    answers = [callers["viewer"].get("/api/v1/sites/").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    response = callers["viewer"].get("/api/v1/sites/")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 60
    # The budget is per key: another key still gets through.
    assert callers["operator"].get("/api/v1/sites/").status_code == 200


def _matrix(t) -> list[tuple[str, str, dict | None, int]]:
    """(method, url, body, status for an allowed writer). Reads are 200 for every member."""
    site, meter, device, upload = t["site"], t["meter"], t["device"], t["upload"]
    return [
        ("patch", f"/api/v1/sites/{site.pk}/", {"city": "Cork"}, 200),
        ("post", "/api/v1/meters/", {"site": site.pk, "name": "Sub-meter", "interval_minutes": 30}, 201),
        ("patch", f"/api/v1/devices/{device.pk}/", {"owner_name": "Someone Else"}, 200),
        ("post", f"/api/v1/uploads/{upload.pk}/confirm/", None, 409),  # stored already: nothing to confirm
        ("delete", f"/api/v1/meters/{meter.pk}/", None, 204),
        ("delete", f"/api/v1/sites/{site.pk}/", None, 204),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_remaining_write_answers_as_the_role_allows(callers, things, role):
    caller = callers[role]
    for method, url, body, allowed in _matrix(things):
        response = getattr(caller, method)(url, body) if body is not None else getattr(caller, method)(url)
        if role in ("owner", "operator"):
            expected = allowed
        elif role == "outsider":
            expected = 201 if method == "post" and url.endswith("/meters/") else 404
            if expected == 201:
                expected = 400  # our site does not exist for them
        else:
            expected = {"viewer": 403, "anonymous": 401}[role]
        assert response.status_code == expected, (role, method, url, response.content)
    site_exists = Site.objects.filter(pk=things["site"].pk).exists()
    assert site_exists == (role not in ("owner", "operator"))


@pytest.mark.parametrize("role", ROLES)
def test_the_error_report_schema_and_docs_answer_as_the_role_allows(callers, things, role):
    from django.core.files.base import ContentFile

    things["upload"].error_report.save("e.csv", ContentFile(b"line,column,value,problem\n3,kwh,x,bad\n"))
    expected = READ[role]
    assert callers[role].get(f"/api/v1/uploads/{things['upload'].pk}/errors.csv").status_code == expected
    schema = 401 if role == "anonymous" else 200  # the schema names no object
    assert callers[role].get("/api/v1/schema/").status_code == schema
    assert callers[role].get("/api/v1/docs/").status_code == schema


def test_keys_and_what_they_change_are_in_the_audit_trail(callers, things, org, owner):
    from audit.models import AuditEvent

    created = AuditEvent.objects.get(object_type="api_key", action="create", object_label="logger")
    assert created.organization_id == org.pk
    callers["operator"].patch(f"/api/v1/sites/{things['site'].pk}/", {"city": "Galway"})
    key = OrganizationAPIKey.objects.get(organization=org, name="logger")
    changed = AuditEvent.objects.get(object_type="site", action="update")
    assert changed.actor_label == f"API key logger ({key.prefix})" and changed.actor_id is None
    api_key_revoke(api_key=key, user=owner)
    revoked = AuditEvent.objects.get(object_type="api_key", action="disable")
    assert (revoked.actor_id, revoked.object_id) == (owner.pk, key.prefix)
