"""The audit trail: who created, changed or deleted sites, meters, devices and vendor
credentials, and who uploaded, confirmed, cancelled, retried and re-pushed; when, in which
organization, on which object, with fields before and after (secrets masked). Owners read
it, filtered; nobody edits it."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.urls import reverse

from audit.admin import AuditEventAdmin
from audit.models import AuditEvent, ImmutableError
from audit.services import audit_record
from sites.models import Site
from tests import factories
from uploads.models import DeliveryStatus, UploadStatus
from uploads.services.ingest import upload_cancel, upload_confirm, upload_create

pytestmark = pytest.mark.django_db
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def events(**lookup) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**lookup).order_by("pk"))


def test_it_records_who_created_changed_and_deleted_a_site(client, org, owner, teammate):
    client.force_login(owner)
    client.post(reverse("sites:site_create"), {"name": "Depot", "country": "US", "timezone": "UTC"})
    site = Site.objects.get(name="Depot")
    created = events(object_type="site", action="create")
    assert len(created) == 1
    e = created[0]
    assert (e.organization_id, e.actor_id, e.actor_label, e.object_id) == (org.pk, owner.pk, "owner", str(site.pk))
    assert e.changes["name"] == [None, "Depot"] and e.ip_address == "127.0.0.1"
    # Fields left blank are not listed as changes ("custom_id: — → ").
    assert "street" not in e.changes and "custom_id" not in e.changes and e.changes["country"] == [None, "US"]

    client.force_login(teammate)
    data = {"name": "Depot North", "country": "US", "timezone": "Europe/Dublin"}
    assert client.post(reverse("sites:site_edit", args=[site.pk]), data).status_code == 302
    (changed,) = events(object_type="site", action="update")
    assert changed.actor_label == "teammate"
    # Only what changed, before and after (the form had already set the new values on the instance).
    assert changed.changes == {"name": ["Depot", "Depot North"], "timezone": ["UTC", "Europe/Dublin"]}

    client.post(reverse("sites:site_delete", args=[site.pk]))
    (deleted,) = events(object_type="site", action="delete")
    assert deleted.object_id == str(site.pk) and deleted.object_label == "Depot North"
    assert deleted.changes["name"] == ["Depot North", None]
    assert "street" not in deleted.changes


def test_meter_secrets_are_masked_and_a_new_secret_shows_as_new(owner_client, org):
    site = factories.make_site(org)
    post = {"site": site.pk, "name": "Main", "meter_type": "electricity", "unit": "kWh", "interval_minutes": "15",
            "wattics_stream_id": "s-1", "wattics_format": "electrical", "wattics_username": "u",
            "wattics_password": "first-secret-123"}  # fmt: skip
    owner_client.post(reverse("sites:meter_create"), post)
    meter = site.meters.get()
    owner_client.post(reverse("sites:meter_edit", args=[meter.pk]), {**post, "wattics_password": "second-secret-456"})
    owner_client.post(reverse("sites:meter_delete", args=[meter.pk]))
    trail = events(object_type="meter")
    assert [e.action for e in trail] == ["create", "update", "delete"]
    dumped = json.dumps([e.changes for e in trail])
    assert "first-secret" not in dumped and "second-secret" not in dumped and "123" not in dumped
    assert trail[0].changes["wattics_password"] == [None, "••••••••"]
    assert trail[1].changes == {"wattics_password": ["••••••••", "•••••••• (new)"]}


def test_it_records_device_changes_with_their_meters(owner_client, org):
    site = factories.make_site(org)
    meter = factories.make_meter(site)
    device = factories.make_device(site)
    from sites.services.crud import device_update

    device_update(device=device, kind=device.kind, fields=device.fields, meters=[meter], name="Renamed")
    (e,) = events(object_type="device")
    assert e.action == "update" and e.actor_id is None and e.actor_label == ""  # no request: the system
    assert e.changes["meters"] == [[], [meter.pk]] and e.changes["name"][1] == "Renamed"


def test_credentials_changes_are_recorded_without_secrets(owner_client, org, owner):
    data = {"wattcarbon_email": "ops@example.com", "wattcarbon_api_key": "wc-key-SECRET-1",
            "wattics_username": "ops", "wattics_password": "wt-pass-SECRET-2"}  # fmt: skip
    assert owner_client.post(reverse("accounts:credentials"), data).status_code == 302
    (e,) = events(object_type="credentials")
    assert (e.action, e.actor_id, e.organization_id) == ("update", owner.pk, org.pk)
    assert e.changes["wattcarbon_email"] == [None, "ops@example.com"]  # no credentials before
    assert e.changes["wattcarbon_api_key"] == [None, "••••••••"]
    assert "SECRET" not in json.dumps(e.changes)


def test_it_records_upload_confirm_and_cancel(org, owner, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    meter = factories.make_meter(factories.make_site(org, timezone="UTC"))
    csv = b"timestamp,kwh\n2024-01-01T00:00:00Z,1\n2024-01-01T00:15:00Z,2\n"
    first = upload_create(organization=org, user=owner, file=SimpleUploadedFile("a.csv", csv), meter=meter,
                          targets=["wattics"], run_now=True)  # fmt: skip
    assert first.status == UploadStatus.VALIDATED
    upload_confirm(upload=first, user=owner, run_now=False)
    second = upload_create(organization=org, user=owner, file=SimpleUploadedFile("b.csv", csv), meter=meter,
                           targets=["wattics"], run_now=True)  # fmt: skip
    upload_cancel(upload=second, user=owner)
    trail = [(e.action, e.object_id, e.actor_label) for e in events(object_type="upload")]
    assert trail == [("upload", str(first.pk), "owner"), ("confirm", str(first.pk), "owner"),
                     ("upload", str(second.pk), "owner"), ("cancel", str(second.pk), "owner")]  # fmt: skip
    (confirm,) = events(action="confirm")
    assert confirm.changes == {"status": ["validated", "storing"]}


def test_it_records_retry_cancel_and_repush_by_whom(owner_client, org, owner):
    meter = factories.make_meter(factories.make_site(org), wattics_stream_id="demo-elec-1")
    upload = factories.make_upload(org)
    delivery = factories.make_delivery(upload, meter, status=DeliveryStatus.FAILED, total=3, first_ts=T0, last_ts=T0)
    for action in ("retry", "cancel", "repush"):
        assert owner_client.post(f"/uploads/deliveries/{delivery.pk}/{action}/").status_code == 302
    trail = events(object_type="delivery")
    assert [(e.action, e.actor_id) for e in trail] == [("retry", owner.pk), ("cancel", owner.pk), ("repush", owner.pk)]
    assert trail[0].changes == {"status": ["failed", "queued"]}
    assert trail[1].changes == {"status": ["queued", "cancelled"]}
    assert trail[0].object_label == f"{delivery.get_target_display()} → {meter.site.name} / {meter.name}"


def test_a_refused_action_records_nothing(owner_client, org):
    meter = factories.make_meter(factories.make_site(org))
    delivery = factories.make_delivery(factories.make_upload(org), meter, status=DeliveryStatus.DELIVERED)
    owner_client.post(f"/uploads/deliveries/{delivery.pk}/retry/")
    assert not events(object_type="delivery")


def test_api_keys_can_be_recorded_by_their_service(org, owner):
    e = audit_record(organization_id=org.pk, action="create", object_type="api_key", object_id=7,
                     object_label="CI key", after={"name": "CI key", "token": "abc123"}, user=owner)  # fmt: skip
    assert e.changes == {"name": [None, "CI key"], "token": [None, "••••••••"]} and e.actor_label == "owner"


# ----- nobody edits it --------------------------------------------------------------------------


def test_events_cannot_be_changed_or_deleted(org, owner):
    e = audit_record(organization_id=org.pk, action="delete", object_type="site", object_id=1, user=owner)
    e.actor_label = "someone else"
    with pytest.raises(ImmutableError):
        e.save()
    with pytest.raises(ImmutableError):
        e.delete()
    with pytest.raises(ImmutableError):
        AuditEvent.objects.filter(pk=e.pk).update(actor_label="x")
    with pytest.raises(ImmutableError):
        AuditEvent.objects.filter(pk=e.pk).delete()
    if connection.vendor == "postgresql":  # the database refuses raw SQL too
        for sql in ("UPDATE audit_auditevent SET actor_label = 'x'", "DELETE FROM audit_auditevent"):
            with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cur:
                cur.execute(sql)
    assert AuditEvent.objects.get(pk=e.pk).actor_label == "owner"


def test_the_admin_is_read_only(rf, admin_user, org):
    e = audit_record(organization_id=org.pk, action="create", object_type="site", object_id=1)
    request = rf.get("/")
    request.user = admin_user
    from django.contrib import admin

    model_admin = AuditEventAdmin(AuditEvent, admin.site)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, e)
    assert not model_admin.has_delete_permission(request, e)


def test_no_url_edits_or_deletes_events():
    from audit.urls import urlpatterns

    assert [p.name for p in urlpatterns] == ["events"]


# ----- the owners' page -------------------------------------------------------------------------


@pytest.fixture
def trail(org, other_org, owner, teammate):
    site = factories.make_site(org, name="Depot")
    audit_record(organization_id=org.pk, action="create", object_type="site", object_id=site.pk,
                 object_label="Depot", after={"name": "Depot"}, user=owner)  # fmt: skip
    audit_record(organization_id=org.pk, action="retry", object_type="delivery", object_id=9, user=teammate)
    old = audit_record(organization_id=org.pk, action="update", object_type="meter", object_id=3, user=teammate)
    # created_at is set on insert; an old event is made with raw SQL where the guard allows (not PostgreSQL).
    audit_record(organization_id=other_org.pk, action="create", object_type="site", object_label="Secret Plant")
    return {"old": old}


def test_owners_see_their_trail_filtered(owner_client, trail, teammate):
    page = owner_client.get(reverse("audit:events"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Depot" in html and "Secret Plant" not in html  # one organization only
    rows = lambda response: list(response.context["page"].object_list)  # noqa: E731
    assert len(rows(page)) == 3
    assert {e.action for e in rows(owner_client.get(reverse("audit:events"), {"actor": teammate.pk}))} == {
        "retry",
        "update",
    }
    assert [e.action for e in rows(owner_client.get(reverse("audit:events"), {"action": "retry"}))] == ["retry"]
    assert [e.object_type for e in rows(owner_client.get(reverse("audit:events"), {"object_type": "site"}))] == ["site"]
    today = datetime.now(UTC).date()
    assert len(rows(owner_client.get(reverse("audit:events"), {"date_from": today, "date_to": today}))) == 3
    tomorrow = today + timedelta(days=1)
    assert rows(owner_client.get(reverse("audit:events"), {"date_from": tomorrow})) == []


def test_bad_filters_are_a_form_error_not_a_500(owner_client, trail):
    for query in ({"date_from": "2026-02-31"}, {"actor": "abc"}, {"action": "hack"}, {"date_to": "9999-99-99"}):
        response = owner_client.get(reverse("audit:events"), query)
        assert response.status_code == 400, query
        assert response.context["filter"].form.errors


def test_only_owners_see_the_trail(teammate_client, viewer, client, trail):
    assert teammate_client.get(reverse("audit:events")).status_code == 403
    client.force_login(viewer)
    assert client.get(reverse("audit:events")).status_code == 403


def test_an_outsider_sees_only_their_own_organization(outsider_client, trail):
    response = outsider_client.get(reverse("audit:events"))
    html = response.content.decode()
    assert response.status_code == 200 and "Secret Plant" in html and "Depot" not in html


def test_behind_a_trusted_proxy_it_records_the_client_address_the_proxy_reports(client, org, owner, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client.force_login(owner)
    client.post(
        reverse("sites:site_create"),
        {"name": "Depot", "country": "US", "timezone": "UTC"},
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    (created,) = events(object_type="site", action="create")
    assert created.ip_address == "203.0.113.7"
