"""A demand-response device's events, uploaded from its page as a WattCarbon asset document."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from sites.documents import DocumentInvalid, check_document
from sites.models import DeviceDocument, DocumentStatus, SyncStatus
from sites.services import sync
from sites.tasks import device_document_upload_task, device_sync_task
from tests import factories
from vendors.models import HttpExchange

EVENTS = (
    "Event Start Time,Event End Time\n"
    "2021-01-01 17:00:00-05:00,2021-01-01 19:00:00-05:00\n"
    "2021-07-01T14:00:00-04:00,2021-07-01T18:00:00-04:00\n"
)


@pytest.fixture
def site(org):
    return factories.make_site(org, name="Depot")


@pytest.fixture
def dr_device(site):
    meter = factories.make_meter(site, name="Main meter")
    return factories.make_device(
        site, kind="demand_response_eemetered", fields={}, meters=[meter], custom_id="DR-1",
        commenced_operation_date=None,
    )  # fmt: skip


@pytest.fixture
def synced(dr_device, vendor_credentials, wattcarbon_sim):
    sync.device_sync_request(device=dr_device)
    device_sync_task.apply(args=[dr_device.pk])
    dr_device.refresh_from_db()
    assert dr_device.wattcarbon_status == SyncStatus.SYNCED, dr_device.wattcarbon_error
    return dr_device


def post_file(client, device, text=EVENTS, name="events.csv"):
    return client.post(
        reverse("sites:device_document_upload", args=[device.pk]),
        {"document_type": "demand_response_events", "file": SimpleUploadedFile(name, text.encode(), "text/csv")},
    )


def test_it_shows_the_events_card_only_for_demand_response(owner_client, synced, site):
    page = owner_client.get(reverse("sites:device_detail", args=[synced.pk])).content.decode()
    assert "Demand-response events" in page and "Upload to WattCarbon" in page
    solar = factories.make_device(site)
    other = owner_client.get(reverse("sites:device_detail", args=[solar.pk])).content.decode()
    assert "Demand-response events" not in other


def test_it_uploads_the_events_from_the_device_page(owner_client, synced, wattcarbon_sim):
    response = post_file(owner_client, synced)
    assert response.status_code == 302
    document = DeviceDocument.objects.get(device=synced)
    assert (document.status, document.rows) == (DocumentStatus.PENDING, 2)
    [event] = AuditEvent.objects.filter(action="upload", object_type="device", object_id=str(synced.pk))
    assert event.actor_label == "owner" and event.changes == {"demand_response_events": [None, "events.csv"]}
    assert device_document_upload_task.apply(args=[document.pk]).get() == DocumentStatus.UPLOADED
    document.refresh_from_db()
    assert document.status == DocumentStatus.UPLOADED and document.wattcarbon_id
    [remote] = wattcarbon_sim.documents(int(synced.wattcarbon_id))
    assert remote["type"] == "demand_response_events" and remote["filename"] == "events.csv"
    assert [r["Event Start Time"] for r in remote["rows"]] == ["2021-01-01 17:00:00-05:00", "2021-07-01T14:00:00-04:00"]
    assert HttpExchange.objects.filter(device=synced, url__endswith="/documents", status_code=201).count() == 1
    page = owner_client.get(reverse("sites:device_detail", args=[synced.pk])).content.decode()
    assert "events.csv" in page and "Uploaded" in page


@pytest.mark.parametrize(
    "text,message",
    [
        ("Start,End\n2021-01-01 17:00:00-05:00,2021-01-01 19:00:00-05:00\n", "header must be"),
        ("Event Start Time,Event End Time\n2021-01-01 17:00:00,2021-01-01 19:00:00\n", "with their offset"),
        ("Event Start Time,Event End Time\n2021-01-01 19:00:00-05:00,2021-01-01 17:00:00-05:00\n", "before it starts"),
        ("Event Start Time,Event End Time\n", "no events"),
    ],
)
def test_it_refuses_a_bad_events_file_with_a_message(owner_client, synced, wattcarbon_sim, text, message):
    response = post_file(owner_client, synced, text)
    assert response.status_code == 302
    page = owner_client.get(response.url).content.decode()
    assert message in page
    assert not DeviceDocument.objects.exists()
    assert wattcarbon_sim.documents(int(synced.wattcarbon_id)) == []


def test_it_wants_the_device_at_wattcarbon_first(owner_client, dr_device):
    response = post_file(owner_client, dr_device)
    assert "Sync the device to WattCarbon first" in owner_client.get(response.url).content.decode()
    assert not DeviceDocument.objects.exists()


def test_a_solar_device_takes_no_events(owner_client, site):
    solar = factories.make_device(site, wattcarbon_id="5001", wattcarbon_status=SyncStatus.SYNCED)
    post_file(owner_client, solar)
    assert not DeviceDocument.objects.exists()


@pytest.mark.parametrize("who,status", [("owner", 302), ("teammate", 302), ("viewer", 403), ("outsider", 404)])
def test_only_operators_upload_events(client, request, who, status, synced, django_capture_on_commit_callbacks):
    client.force_login(request.getfixturevalue(who))
    with django_capture_on_commit_callbacks(execute=False):
        assert post_file(client, synced).status_code == status
    assert DeviceDocument.objects.filter(device=synced).count() == (1 if status == 302 else 0)


def test_a_refused_document_is_failed_with_the_vendors_words(
    synced, wattcarbon_sim, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        document = sync.device_document_create(
            device=synced, document_type="demand_response_events", filename="e.csv", raw=EVENTS.encode()
        )
    # As if WattCarbon judged it differently from us: the stored CSV loses its header.
    DeviceDocument.objects.filter(pk=document.pk).update(content="a,b\n1,2\n")
    assert device_document_upload_task.apply(args=[document.pk]).get() == DocumentStatus.FAILED
    document.refresh_from_db()
    assert "422" in document.error and "header" in document.error


def test_it_retries_a_503(synced, wattcarbon_sim, settings, django_capture_on_commit_callbacks):
    settings.WATTCARBON_SYNC_RETRY_BASE_SECONDS = 0.01
    settings.WATTCARBON_SYNC_RETRY_MAX_SECONDS = 0.05
    with django_capture_on_commit_callbacks(execute=False):
        document = sync.device_document_create(
            device=synced, document_type="demand_response_events", filename="e.csv", raw=EVENTS.encode()
        )
    wattcarbon_sim.faults(fail_next=[503])
    device_document_upload_task.apply(args=[document.pk])
    document.refresh_from_db()
    assert document.status == DocumentStatus.UPLOADED
    assert len(wattcarbon_sim.documents(int(synced.wattcarbon_id))) == 1


def test_the_check_keeps_times_as_given_and_spells_the_header_as_documented():
    content, rows = check_document(
        "demand_response_events", ("event start time,EVENT END TIME\n" + EVENTS.split("\n", 1)[1]).encode()
    )
    assert rows == 2
    assert content.splitlines()[0] == "Event Start Time,Event End Time"
    assert content.splitlines()[1] == "2021-01-01 17:00:00-05:00,2021-01-01 19:00:00-05:00"
    with pytest.raises(DocumentInvalid):
        check_document("demand_response_events", b"\xff\xfe")


@pytest.mark.worker
def test_a_real_worker_uploads_the_events(celery_worker, owner_client, synced, wattcarbon_sim):
    assert post_file(owner_client, synced).status_code == 302  # on_commit runs now (transactional test)
    document = DeviceDocument.objects.get(device=synced)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        document.refresh_from_db()
        if document.status in (DocumentStatus.UPLOADED, DocumentStatus.FAILED):
            break
        time.sleep(0.2)
    assert document.status == DocumentStatus.UPLOADED, (document.error, celery_worker.log())
    assert len(wattcarbon_sim.documents(int(synced.wattcarbon_id))) == 1
