"""Sync to WattCarbon: the tasks against the simulator over real HTTP.

Units call the task (task.apply runs it here, retries included, without a broker);
one test goes through a real worker process.
"""

import importlib
import time
import uuid
from datetime import date

import pytest
import requests
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.selectors import wattcarbon_account
from sites.models import Device, Meter, SyncStatus
from sites.services import crud, sync
from sites.tasks import backoff_seconds, device_sync_task, meter_sync_task
from tests import factories
from tests.cachepeek import raw_cache_values
from vendors.http import ExchangeLog
from vendors.models import HttpExchange
from vendors.wattcarbon import WattCarbonClient


@pytest.fixture
def site(org):
    return factories.make_site(org, name="Ellis Street")


@pytest.fixture
def meter(site):
    return factories.make_meter(site, name="Main meter")


def sync_meter(meter: Meter) -> Meter:
    sync.meter_sync_request(meter=meter)
    meter_sync_task.apply(args=[meter.pk])
    meter.refresh_from_db()
    return meter


def sync_device(device: Device) -> Device:
    sync.device_sync_request(device=device)
    device_sync_task.apply(args=[device.pk])
    device.refresh_from_db()
    return device


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.WATTCARBON_SYNC_RETRY_BASE_SECONDS = 0.01
    settings.WATTCARBON_SYNC_RETRY_MAX_SECONDS = 0.05


def test_it_creates_a_meter_at_wattcarbon(vendor_credentials, meter, wattcarbon_sim):
    meter = sync_meter(meter)
    assert meter.wattcarbon_status == SyncStatus.SYNCED and meter.wattcarbon_synced_at
    remote = wattcarbon_sim.state()["meters"][meter.wattcarbon_id]
    # Our marker rides in the name: a sync after a crash finds the meter by it.
    assert meter.wattcarbon_marker
    assert remote["meterType"] == "electricity" and remote["name"] == f"Main meter [portal:{meter.wattcarbon_marker}]"
    assert remote["location"] == {
        "street": "606 Ellis St",
        "city": "San Francisco",
        "state": "CA",
        "country": "US",
        "postalCode": "94109",
    }
    assert HttpExchange.objects.filter(meter=meter, url__endswith="/meters", status_code=201).count() == 1


def test_it_sends_coordinates_when_the_site_has_no_address(vendor_credentials, org, wattcarbon_sim):
    site = factories.make_site(org, street="", city="", postal_code="", latitude="37.7850", longitude="-122.4140")
    meter = sync_meter(factories.make_meter(site, meter_type="gas"))
    remote = wattcarbon_sim.state()["meters"][meter.wattcarbon_id]
    assert remote["location"] == {"latitude": 37.785, "longitude": -122.414}
    assert remote["meterType"] == "gas"


def test_it_refuses_meter_types_wattcarbon_does_not_take(vendor_credentials, site, wattcarbon_sim):
    meter = sync_meter(factories.make_meter(site, meter_type="water"))
    assert meter.wattcarbon_status == SyncStatus.FAILED
    assert "electricity and gas meters only" in meter.wattcarbon_error
    assert not wattcarbon_sim.state()["meters"]


def test_it_never_creates_a_second_remote_meter(vendor_credentials, meter, wattcarbon_sim):
    first = sync_meter(meter).wattcarbon_id
    # A second press and a duplicated message: both only read the meter back.
    meter_sync_task.apply(args=[meter.pk])  # not pending: does nothing
    again = sync_meter(meter)
    assert again.wattcarbon_id == first and again.wattcarbon_status == SyncStatus.SYNCED
    assert len(wattcarbon_sim.state()["meters"]) == 1
    assert HttpExchange.objects.filter(meter=meter, method="GET", status_code=200).count() == 1


def test_it_does_nothing_for_a_row_it_cannot_claim(vendor_credentials, meter):
    Meter.objects.filter(pk=meter.pk).update(wattcarbon_status=SyncStatus.SYNCED)
    assert sync.meter_sync(meter_id=meter.pk) is None
    assert not HttpExchange.objects.exists()


@pytest.mark.parametrize(
    "kind,fields",
    [
        ("solar_direct", {"nameplateCapacityKw": 1500.5, "eiaPlantId": "60123", "inverterDataSource": "enphase"}),
        ("storage_direct", {"nameplatePowerKw": 5, "energyCapacityKwh": 13.5}),
        ("electrification_eemetered", {"areaSqft": 1800, "previousFuel": "natural_gas",
         "buildingType": "single_family_attached", "replacesFurnace": True, "heatPumpHspf": 9.5}),
        ("energy_efficiency_eemetered", {"interventionDate": "2024-03-01"}),
        ("tracking_building", {"buildingType": "office", "interventionDate": "2024-03-01"}),
        ("demand_response_eemetered", {}),
    ],
)  # fmt: skip
def test_it_creates_a_device_of_every_kind_after_its_meters(
    vendor_credentials, site, meter, wattcarbon_sim, kind, fields
):
    device = factories.make_device(
        site, kind=kind, fields=fields, meters=[meter], custom_id=f"C-{kind}", external_registry_name="GATS"
    )
    device = sync_device(device)
    assert device.wattcarbon_status == SyncStatus.SYNCED, device.wattcarbon_error
    meter.refresh_from_db()
    assert meter.wattcarbon_status == SyncStatus.SYNCED
    remote = wattcarbon_sim.state()["devices"][device.wattcarbon_id]
    assert remote["kind"] == kind
    assert remote["meterIds"] == [int(meter.wattcarbon_id)]
    assert remote["customId"] == f"C-{kind}" and remote["deviceOwner"] == {"name": "Person Person"}
    assert remote["utility"] == "PG&E"
    # Demand response takes no commenced operation date; every other kind sends it.
    assert remote.get("commencedOperationDate") == (None if kind == "demand_response_eemetered" else "2022-08-01")
    for key, value in fields.items():
        assert remote[key] == value or float(remote[key]) == float(value)
    # The meter's exchange is logged against the meter, the device's against the device.
    assert HttpExchange.objects.filter(meter=meter, url__endswith="/meters").exists()
    assert HttpExchange.objects.filter(device=device, url__endswith="/assets", status_code=201).exists()


def test_it_stores_wattcarbon_field_errors_and_shows_them(vendor_credentials, site, owner_client, monkeypatch):
    # WattCarbon is the last judge: make the portal send a payload without the kind's required
    # field, as if the registry were behind the vendor, and check the 422 lands on the page.
    device = factories.make_device(site, kind="solar_direct", fields={"nameplateCapacityKw": 10})
    build = sync.device_payload

    def without_capacity(device, meter_ids):
        return {k: v for k, v in build(device, meter_ids).items() if k != "nameplateCapacityKw"}

    monkeypatch.setattr(sync, "device_payload", without_capacity)
    sync.device_sync_request(device=device)
    device_sync_task.apply(args=[device.pk])
    device.refresh_from_db()
    assert device.wattcarbon_status == SyncStatus.FAILED
    assert device.wattcarbon_field_errors == {"nameplateCapacityKw": "Field required"}
    assert "422" in device.wattcarbon_error
    html = owner_client.get(reverse("sites:device_detail", args=[device.pk])).content.decode()
    block = html.split('id="kind-field-nameplateCapacityKw"', 1)[1].split("</dd>", 1)[0]
    assert "Field required" in block


def test_it_fails_before_calling_when_the_stored_fields_are_invalid(vendor_credentials, site):
    device = factories.make_device(site, kind="energy_efficiency_eemetered", fields={})
    device = sync_device(device)
    assert device.wattcarbon_status == SyncStatus.FAILED
    assert device.wattcarbon_field_errors == {"interventionDate": "This field is required."}
    assert not HttpExchange.objects.filter(device=device).exists()


def test_it_stores_the_vendors_message_for_a_duplicate_custom_id(vendor_credentials, site, wattcarbon_sim):
    first = sync_device(factories.make_device(site, custom_id="SP123"))
    assert first.wattcarbon_status == SyncStatus.SYNCED
    # The same custom id already used in the WattCarbon account (e.g. by another tool).
    Device.objects.filter(pk=first.pk).update(custom_id="SP123-old")
    second = sync_device(factories.make_device(site, custom_id="SP123"))
    assert second.wattcarbon_status == SyncStatus.FAILED
    assert "409" in second.wattcarbon_error and "SP123" in second.wattcarbon_error
    assert not second.wattcarbon_id
    assert len(wattcarbon_sim.state()["devices"]) == 1


def test_it_reauthenticates_after_the_token_expired(vendor_credentials, site, wattcarbon_sim):
    wattcarbon_sim.faults(token_ttl=2)
    assert sync_meter(factories.make_meter(site)).wattcarbon_status == SyncStatus.SYNCED
    wattcarbon_sim.wait_tokens_expired()
    meter = sync_meter(factories.make_meter(site))
    assert meter.wattcarbon_status == SyncStatus.SYNCED
    statuses = list(HttpExchange.objects.filter(meter=meter).order_by("id").values_list("status_code", flat=True))
    assert statuses == [401, 200, 201]


def test_it_fails_clearly_when_the_credentials_are_wrong(vendor_credentials, meter):
    vendor_credentials.wattcarbon_api_key = "not-the-key"
    vendor_credentials.save()
    meter = sync_meter(meter)
    assert meter.wattcarbon_status == SyncStatus.FAILED
    assert "refused the account's email or API key" in meter.wattcarbon_error


def test_it_retries_a_503_then_succeeds(vendor_credentials, meter, wattcarbon_sim):
    wattcarbon_sim.faults(fail_next=[503])
    meter = sync_meter(meter)
    assert meter.wattcarbon_status == SyncStatus.SYNCED and meter.wattcarbon_error == ""
    statuses = list(HttpExchange.objects.filter(meter=meter).order_by("id").values_list("status_code", flat=True))
    assert statuses == [503, 200, 201]  # the token request got the 503, then token, then create


def test_it_gives_up_after_its_retries_and_a_person_can_retry(vendor_credentials, meter, wattcarbon_sim):
    wattcarbon_sim.faults(fail_next=[500] * 6)
    meter = sync_meter(meter)
    assert meter.wattcarbon_status == SyncStatus.FAILED
    assert "Gave up after 6 attempts" in meter.wattcarbon_error and "500" in meter.wattcarbon_error
    assert HttpExchange.objects.filter(meter=meter, status_code=500).count() == 6
    meter = sync_meter(meter)
    assert meter.wattcarbon_status == SyncStatus.SYNCED


def test_it_retries_when_wattcarbon_is_unreachable(vendor_credentials, meter, wattcarbon_sim):
    wattcarbon_sim.faults(fail_next=["drop", "drop"])
    meter = sync_meter(meter)
    assert meter.wattcarbon_status == SyncStatus.SYNCED
    assert HttpExchange.objects.filter(meter=meter, status_code__isnull=True).count() == 2


def test_it_confirms_an_existing_device_without_creating_another(vendor_credentials, site, meter, wattcarbon_sim):
    device = sync_device(factories.make_device(site, meters=[meter]))
    again = sync_device(device)
    assert again.wattcarbon_status == SyncStatus.SYNCED and again.wattcarbon_id == device.wattcarbon_id
    assert len(wattcarbon_sim.state()["devices"]) == 1 and len(wattcarbon_sim.state()["meters"]) == 1


def test_it_forgets_a_remote_object_that_no_longer_exists(vendor_credentials, meter, wattcarbon_sim):
    Meter.objects.filter(pk=meter.pk).update(wattcarbon_id="424242", wattcarbon_status=SyncStatus.SYNCED)
    meter = sync_meter(meter)
    assert meter.wattcarbon_status == SyncStatus.FAILED and meter.wattcarbon_id == ""
    assert "no longer exists" in meter.wattcarbon_error
    assert sync_meter(meter).wattcarbon_status == SyncStatus.SYNCED


def test_it_fails_the_device_when_an_attached_meter_cannot_sync(vendor_credentials, site, wattcarbon_sim):
    water = factories.make_meter(site, meter_type="water")
    device = sync_device(factories.make_device(site, kind="tracking_building", fields={"buildingType": "office"},
                                               meters=[water]))  # fmt: skip
    assert device.wattcarbon_status == SyncStatus.FAILED
    assert "could not be synced" in device.wattcarbon_error
    assert not wattcarbon_sim.state()["devices"]


def test_it_shows_the_last_ten_exchanges_on_the_page(vendor_credentials, meter, owner_client, wattcarbon_sim):
    for _ in range(12):
        sync_meter(meter)  # 1 token + 1 create, then a GET each time: 13 exchanges
    made = list(HttpExchange.objects.filter(meter=meter).order_by("-id").values_list("id", flat=True))
    assert len(made) == 13
    response = owner_client.get(reverse("sites:meter_detail", args=[meter.pk]))
    shown = [e.id for e in response.context["exchanges"]]
    assert shown == made[:10]  # the newest ten, newest first; the token call and the create are older


def test_it_reclaims_a_sync_whose_worker_died(vendor_credentials, meter):
    from datetime import timedelta

    from django.utils import timezone

    Meter.objects.filter(pk=meter.pk).update(wattcarbon_status=SyncStatus.SYNCING, wattcarbon_claimed_at=timezone.now())
    assert not sync.meter_sync_request(meter=meter)
    Meter.objects.filter(pk=meter.pk).update(wattcarbon_claimed_at=timezone.now() - timedelta(hours=1))
    assert sync_meter(meter).wattcarbon_status == SyncStatus.SYNCED


def test_backoff_grows_with_jitter_and_honours_retry_after(settings):
    settings.WATTCARBON_SYNC_RETRY_BASE_SECONDS = 2
    settings.WATTCARBON_SYNC_RETRY_MAX_SECONDS = 60
    samples = {backoff_seconds(3) for _ in range(20)}
    assert len(samples) > 1 and all(0.5 <= s <= 16 for s in samples)
    assert backoff_seconds(0, retry_after=30) == 30


@pytest.mark.worker
def test_it_syncs_a_device_through_a_real_worker(celery_worker, vendor_credentials, site, meter, wattcarbon_sim):
    device = factories.make_device(site, meters=[meter], fields={"nameplateCapacityKw": 42})
    wattcarbon_sim.faults(fail_next=[503])
    sync.device_sync_request(device=device)  # on_commit: the test is transactional, it runs now
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        device.refresh_from_db()
        if device.wattcarbon_status in (SyncStatus.SYNCED, SyncStatus.FAILED):
            break
        time.sleep(0.2)
    assert device.wattcarbon_status == SyncStatus.SYNCED, (device.wattcarbon_error, celery_worker.log())
    meter.refresh_from_db()
    assert meter.wattcarbon_status == SyncStatus.SYNCED
    assert wattcarbon_sim.state()["devices"][device.wattcarbon_id]["meterIds"] == [int(meter.wattcarbon_id)]
    assert HttpExchange.objects.filter(status_code=503).count() == 1
    # The worker left its bearer token in the shared cache for the next task, encrypted only.
    token = _remote_client(device.organization)._cached_token()
    answer = requests.get(wattcarbon_sim.url + "/meters", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert token and answer.status_code == 200
    assert not any(token.encode() in value for value in raw_cache_values())


# ----- Today's WattCarbon: assets, kinds and their old names -----------------------------------


def test_it_sends_the_external_registry_id_under_todays_name(vendor_credentials, site, meter, wattcarbon_sim):
    device = sync_device(
        factories.make_device(site, meters=[meter], external_registry_name="GATS", external_registry_id="NON1234")
    )
    remote = wattcarbon_sim.state()["devices"][device.wattcarbon_id]
    assert remote["externalRegistryAssetId"] == "NON1234" and remote["externalRegistryName"] == "GATS"
    assert HttpExchange.objects.filter(device=device, method="POST", url__endswith="/assets").count() == 1
    assert not HttpExchange.objects.filter(url__contains="/devices").exists()


@pytest.mark.parametrize("old", ["electrification_billing_metered", "electrification"])
def test_it_takes_the_old_electrification_names_and_stores_todays(org, site, meter, old):
    fields = {"areaSqft": 1800, "previousFuel": "natural_gas", "buildingType": "office"}
    device = crud.device_create(
        organization=org, site=site, kind=old, fields=fields, meters=[meter], name="HP", custom_id="HP-1",
        commenced_operation_date=date(2023, 1, 1),
    )  # fmt: skip
    assert device.kind == "electrification_eemetered"
    assert device.fields["effectiveUsefulLifeYears"] == 15  # the registry's default: the kind was found


@pytest.mark.django_db(transaction=True)  # the schema editor needs no open transaction (SQLite)
def test_the_migration_renames_stored_electrification_devices(site, meter):
    from django.apps import apps
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    migration = importlib.import_module("sites.migrations.0003_wattcarbon_assets")
    device = factories.make_device(site, kind="electrification_eemetered", fields={}, meters=[meter])
    other = factories.make_device(site, kind="solar_direct")
    # The old name, as a database from before 0003 held it (a later migration refuses unknown kinds).
    known_kinds = next(c for c in Device._meta.constraints if c.name == "device_kind_known")
    # The model as of 0003, without the constraint (SQLite rebuilds the table from the model given).
    loader = MigrationLoader(connection)
    device_0003 = loader.project_state(("sites", "0003_wattcarbon_assets")).apps.get_model("sites", "Device")
    with connection.schema_editor() as editor:
        editor.remove_constraint(device_0003, known_kinds)
    try:
        Device.objects.filter(pk=device.pk).update(kind="electrification_billing_metered")
        migration.rename_kinds(apps, None)
        kinds = dict(Device.objects.values_list("pk", "kind"))
    finally:
        # Whatever happened, leave no old name behind for the constraint to trip on.
        Device.objects.filter(kind="electrification_billing_metered").update(kind="electrification_eemetered")
        with connection.schema_editor() as editor:
            editor.add_constraint(Device, known_kinds)
    assert (kinds[device.pk], kinds[other.pk]) == ("electrification_eemetered", "solar_direct")


def test_the_database_refuses_a_kind_the_registry_does_not_know(site):
    from django.db import IntegrityError, transaction

    device = factories.make_device(site, kind="solar_direct")
    with pytest.raises(IntegrityError), transaction.atomic():
        Device.objects.filter(pk=device.pk).update(kind="electrification_billing_metered")


def test_a_demand_response_device_needs_no_commenced_date_but_others_do(org, site, meter):
    common = {"organization": org, "site": site, "meters": [meter], "commenced_operation_date": None}
    device = crud.device_create(kind="demand_response_eemetered", fields={}, name="DR", custom_id="DR-1", **common)
    assert device.commenced_operation_date is None
    with pytest.raises(ValidationError) as exc:
        crud.device_create(kind="tracking_building", fields={"buildingType": "office"}, name="TB",
                               custom_id="TB-1", **common)  # fmt: skip
    assert "commenced_operation_date" in exc.value.message_dict


# ----- Crash-safe creation ----------------------------------------------------------------------


def _remote_client(org):
    return WattCarbonClient(
        wattcarbon_account(credentials=org.credentials), ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    )


def test_it_records_the_intent_and_finds_nothing_to_adopt_when_the_post_never_arrived(
    vendor_credentials, meter, wattcarbon_sim
):
    # The create is dropped before the simulator touches anything.
    _remote_client(meter.organization)._token()  # a token first, so the drop hits the create
    wattcarbon_sim.faults(fail_next=["drop"])
    meter = sync_meter(meter)
    assert meter.wattcarbon_status == SyncStatus.SYNCED
    calls = list(HttpExchange.objects.filter(meter=meter).order_by("id").values_list("method", "status_code"))
    # POST (no answer; the marker was saved before it), then the retry looks before posting again.
    assert calls == [("POST", None), ("GET", 200), ("POST", 201)]
    [remote] = wattcarbon_sim.state()["meters"].values()
    assert remote["name"] == f"Main meter [portal:{meter.wattcarbon_marker}]"


def test_it_adopts_a_meter_an_interrupted_attempt_created(vendor_credentials, meter, wattcarbon_sim):
    # As a worker that died after WattCarbon created the meter, before our save: the marker
    # was saved, the meter exists remotely under it, the id is not saved.
    marker = uuid.uuid4().hex
    Meter.objects.filter(pk=meter.pk).update(wattcarbon_marker=marker)
    created = _remote_client(meter.organization).create_meter(
        {**sync.meter_payload(meter, marker), "name": f"Main meter [portal:{marker}]"}
    )
    _remote_client(meter.organization).create_meter(sync.meter_payload(meter, uuid.uuid4().hex))  # not ours
    meter = sync_meter(meter)
    assert meter.wattcarbon_status == SyncStatus.SYNCED and meter.wattcarbon_id == str(created)
    assert len(wattcarbon_sim.state()["meters"]) == 2  # nothing created by the sync
    assert not HttpExchange.objects.filter(meter=meter, method="POST").exists()


def _remote_asset(org, device, meter_ids, **extra):
    return _remote_client(org).create_asset({**sync.device_payload(device, meter_ids), **extra})


def test_it_adopts_an_asset_an_interrupted_attempt_created(vendor_credentials, site, meter, wattcarbon_sim):
    meter = sync_meter(meter)
    device = factories.make_device(site, meters=[meter], custom_id="SP-9")
    Device.objects.filter(pk=device.pk).update(wattcarbon_marker=uuid.uuid4().hex)  # the intent, saved
    created = _remote_asset(site.organization, device, [meter.wattcarbon_id])
    device = sync_device(device)
    assert device.wattcarbon_status == SyncStatus.SYNCED, device.wattcarbon_error
    assert device.wattcarbon_id == str(created)
    assert len(wattcarbon_sim.state()["devices"]) == 1
    calls = list(HttpExchange.objects.filter(device=device).order_by("id").values_list("method", "status_code"))
    assert calls == [("POST", 409), ("GET", 200)]


def test_it_does_not_adopt_an_asset_that_is_not_the_one_it_sent(vendor_credentials, site, meter, wattcarbon_sim):
    meter = sync_meter(meter)
    device = factories.make_device(site, meters=[meter], custom_id="SP-9")
    Device.objects.filter(pk=device.pk).update(wattcarbon_marker=uuid.uuid4().hex)
    _remote_asset(site.organization, device, [], kind="storage_direct", nameplatePowerKw=5, energyCapacityKwh=9)
    device = sync_device(device)
    assert device.wattcarbon_status == SyncStatus.FAILED and not device.wattcarbon_id
    assert "not ours to adopt" in device.wattcarbon_error


def test_a_first_attempt_never_adopts_a_custom_id_used_elsewhere(vendor_credentials, site, meter, wattcarbon_sim):
    meter = sync_meter(meter)
    device = factories.make_device(site, meters=[meter], custom_id="SP-9")
    _remote_asset(site.organization, device, [meter.wattcarbon_id])  # the same asset, made by another tool
    device = sync_device(device)
    assert device.wattcarbon_status == SyncStatus.FAILED and "409" in device.wattcarbon_error
    assert not HttpExchange.objects.filter(device=device, method="GET").exists()


def test_it_sends_no_device_owner_when_none_is_set(vendor_credentials, site, meter, wattcarbon_sim):
    device = sync_device(factories.make_device(site, meters=[meter], owner_name=""))
    assert device.wattcarbon_status == SyncStatus.SYNCED, device.wattcarbon_error
    assert wattcarbon_sim.state()["devices"][device.wattcarbon_id]["deviceOwner"] is None
