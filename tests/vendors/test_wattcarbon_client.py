"""The WattCarbon client against the simulator, over real HTTP."""

import pytest

from accounts.selectors import wattcarbon_account
from tests.cachepeek import raw_cache_values
from vendors.http import ExchangeLog, VendorRefused, VendorRejected, VendorTransient, VendorUnreachable
from vendors.models import HttpExchange
from vendors.wattcarbon import WattCarbonClient, field_errors_from

LOCATION = {"street": "606 Ellis St", "city": "San Francisco", "state": "CA", "country": "US", "postalCode": "94109"}
METER = {"apiProvider": "manual", "meterType": "electricity", "location": LOCATION, "name": "Main"}


def device_payload(meter_id, **extra):
    payload = {
        "name": "Roof array",
        "customId": "SP123",
        "location": LOCATION,
        "utility": "ABC Utility",
        "deviceOwner": {"name": "Person Person"},
        "meterIds": [meter_id],
        "commencedOperationDate": "2022-08-01",
        "kind": "solar_direct",
        "nameplateCapacityKw": 123,
    }
    payload.update(extra)
    return payload


@pytest.fixture
def log(org):
    return ExchangeLog(organization_id=org.pk, vendor="wattcarbon", batch_size=1)


@pytest.fixture
def client_(vendor_credentials, log):
    return WattCarbonClient(wattcarbon_account(credentials=vendor_credentials), log)


def test_it_creates_and_reads_back_a_meter(client_, wattcarbon_sim):
    meter_id = client_.create_meter(METER)
    assert isinstance(meter_id, int)
    assert client_.get_meter(meter_id)["meterType"] == "electricity"
    assert wattcarbon_sim.state()["meters"][str(meter_id)]["account"] == "demo@example.com"


@pytest.mark.parametrize(
    "kind,fields,needs_meter",
    [
        ("solar_direct", {"nameplateCapacityKw": 123, "inverterDataSource": "enphase"}, False),
        ("storage_direct", {"nameplatePowerKw": 5, "energyCapacityKwh": 13.5}, False),
        (
            "electrification_eemetered",
            {"areaSqft": 1800, "previousFuel": "natural_gas", "buildingType": "single_family_detached",
             "replacesFurnace": True, "effectiveUsefulLifeYears": 15},
            True,
        ),
        ("energy_efficiency_eemetered", {"interventionDate": "2023-01-15"}, True),
        ("tracking_building", {"buildingType": "office"}, True),
        ("demand_response_eemetered", {}, True),
    ],
)  # fmt: skip
def test_it_creates_a_device_of_every_kind(client_, kind, fields, needs_meter):
    meter_id = client_.create_meter(METER)
    payload = device_payload(meter_id, kind=kind, customId=f"C-{kind}")
    payload.pop("nameplateCapacityKw")
    payload.update(fields)
    device_id = client_.create_asset(payload)
    remote = client_.get_asset(device_id)
    assert remote["kind"] == kind
    assert remote["meterIds"] == [meter_id]


def test_it_shares_one_token_through_the_cache(client_, vendor_credentials, org):
    client_.create_meter(METER)
    other = WattCarbonClient(
        wattcarbon_account(credentials=vendor_credentials), ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    )
    other.create_meter(METER)
    other.log.flush()
    token_calls = HttpExchange.objects.filter(url__endswith="/auth/token")
    assert token_calls.count() == 1


def test_it_reauthenticates_once_when_the_token_expired(client_, wattcarbon_sim):
    wattcarbon_sim.faults(token_ttl=2)
    client_.create_meter(METER)
    wattcarbon_sim.wait_tokens_expired()
    assert client_.create_meter(METER)
    calls = list(HttpExchange.objects.order_by("id").values_list("url", "status_code"))
    assert [c[1] for c in calls] == [200, 201, 401, 200, 201]
    assert calls[3][0].endswith("/auth/token")


def test_it_reports_rejected_credentials(vendor_credentials, log):
    vendor_credentials.wattcarbon_api_key = "wrong-key"
    with pytest.raises(VendorRefused) as exc:
        WattCarbonClient(wattcarbon_account(credentials=vendor_credentials), log).create_meter(METER)
    assert exc.value.status == 401
    assert "refused" in exc.value.message


def test_it_reports_missing_credentials_without_calling(org, log):
    from accounts.models import VendorCredentials

    with pytest.raises(VendorRefused):
        WattCarbonClient(wattcarbon_account(credentials=VendorCredentials(organization=org)), log).create_meter(METER)
    assert not HttpExchange.objects.exists()


def test_it_maps_a_422_to_field_errors(client_):
    meter_id = client_.create_meter(METER)
    payload = device_payload(meter_id)
    del payload["nameplateCapacityKw"]
    del payload["location"]
    with pytest.raises(VendorRejected) as exc:
        client_.create_asset(payload)
    assert exc.value.status == 422
    assert exc.value.field_errors == {"location": "Field required", "nameplateCapacityKw": "Field required"}


def test_it_reports_a_duplicate_custom_id(client_):
    meter_id = client_.create_meter(METER)
    client_.create_asset(device_payload(meter_id))
    with pytest.raises(VendorRejected) as exc:
        client_.create_asset(device_payload(meter_id))
    assert 400 <= exc.value.status < 500
    assert "SP123" in exc.value.message


def test_it_reports_an_unknown_object_clearly(client_):
    with pytest.raises(VendorRejected) as exc:
        client_.get_meter(999999)
    assert exc.value.status == 404
    assert "does not exist" in exc.value.message


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_it_reports_server_failures_as_transient(client_, wattcarbon_sim, code):
    client_.create_meter(METER)  # token first, so the fault hits the call itself
    wattcarbon_sim.faults(fail_next=[code])
    with pytest.raises(VendorTransient) as exc:
        client_.create_meter(METER)
    assert exc.value.status == code
    assert client_.create_meter(METER)


def test_it_reports_a_dropped_connection_as_unreachable(client_, wattcarbon_sim):
    client_.create_meter(METER)
    wattcarbon_sim.faults(fail_next=["drop"])
    with pytest.raises(VendorUnreachable):
        client_.create_meter(METER)


def test_it_uploads_intervals_and_bills(client_, wattcarbon_sim):
    meter_id = client_.create_meter(METER)
    intervals = b"start_datetime,energy_kwh\n2024-01-01T00:00:00+00:00,1.5\n2024-01-01T00:15:00+00:00,2.0\n"
    assert client_.upload_intervals(meter_id, intervals, "i.csv")["received"] == 2
    bills = b"start_date,end_date,energy_kwh\n2024-01-01,2024-01-31,900\n"
    assert client_.upload_bills(meter_id, bills, "b.csv")["received"] == 1
    assert len(wattcarbon_sim.intervals(meter_id)) == 2
    assert len(wattcarbon_sim.bills(meter_id)) == 1


def test_it_records_every_exchange_without_secrets(client_, vendor_credentials, wattcarbon_sim):
    client_.create_meter(METER)
    token = client_._cached_token()
    assert token
    rows = list(HttpExchange.objects.values("url", "error", "method"))
    assert len(rows) == 2
    text = repr(rows)
    assert token not in text and vendor_credentials.wattcarbon_api_key not in text


def test_it_parses_fastapi_detail_into_fields():
    body = {
        "detail": [
            {"loc": ["body", "meterIds", 0], "msg": "meter 9 not found"},
            {"loc": ["body", "meterIds", 1], "msg": "meter 8 not found"},
            {"loc": ["body"], "msg": "Field required"},
        ]
    }
    assert field_errors_from(body) == {
        "meterIds": "0: meter 9 not found; 1: meter 8 not found",
        "__all__": "Field required",
    }
    assert field_errors_from({"detail": "Not authenticated"}) == {}


def test_it_keeps_no_bearer_token_in_clear_in_the_cache(client_, wattcarbon_sim):
    client_.create_meter(METER)
    token = client_._cached_token()
    assert token and wattcarbon_sim.state()["tokens"] == 1
    raw = raw_cache_values()
    assert raw, "the token is cached (shared by the workers)"
    assert not any(token.encode() in value for value in raw)
    # And the cached form is what the client uses: a second client makes no token request.
    client_.log.flush()
    other = WattCarbonClient(
        client_.account, ExchangeLog(organization_id=client_.account.organization_id, vendor="wattcarbon", batch_size=1)
    )
    other.create_meter(METER)
    assert HttpExchange.objects.filter(url__endswith="/auth/token").count() == 1


def test_a_token_cached_under_another_key_is_replaced(client_, vendor_credentials, settings):
    client_.create_meter(METER)
    settings.FIELD_ENCRYPTION_KEY = "J6S6f3dvl0yNxqJCZy6QKNXmzW4xwbLvY0nzMk0fAqs="  # a rotated key
    rotated = WattCarbonClient(wattcarbon_account(credentials=vendor_credentials), client_.log)
    assert rotated._cached_token() is None
    rotated.create_meter(METER)  # authenticates anew instead of failing
    assert HttpExchange.objects.filter(url__endswith="/auth/token").count() == 2


def test_it_finds_meters_by_marker_and_assets_by_custom_id(client_):
    ours = client_.create_meter({**METER, "name": "Main [portal:abc123]"})
    client_.create_meter({**METER, "name": "Main [portal:zzz999]"})
    assert client_.find_meter_named("[portal:abc123]")["id"] == ours
    assert client_.find_meter_named("[portal:nope]") is None
    asset_id = client_.create_asset(device_payload(ours))
    assert client_.find_asset_by_custom_id("SP123")["id"] == asset_id
    assert client_.find_asset_by_custom_id("SP124") is None
    with pytest.raises(VendorRejected) as exc:
        client_.create_asset(device_payload(ours))
    assert client_.is_custom_id_taken(exc.value)


def test_it_uploads_an_asset_document(client_, wattcarbon_sim):
    meter_id = client_.create_meter(METER)
    payload = device_payload(meter_id, kind="demand_response_eemetered", customId="DR-1")
    for key in ("nameplateCapacityKw", "commencedOperationDate", "deviceOwner"):
        payload.pop(key)
    asset_id = client_.create_asset(payload)
    events = b"Event Start Time,Event End Time\n2021-01-01 17:00:00-05:00,2021-01-01 19:00:00-05:00\n"
    answer = client_.upload_asset_document(asset_id, "demand_response_events", events, "events.csv")
    assert answer["rowCount"] == 1
    [document] = wattcarbon_sim.documents(asset_id)
    assert document["type"] == "demand_response_events" and document["filename"] == "events.csv"


def test_a_bill_of_unusual_length_is_taken_with_a_warning(client_, wattcarbon_sim):
    meter_id = client_.create_meter(METER)
    answer = client_.upload_bills(meter_id, b"start_date,end_date,energy_kwh\n2024-01-01,2024-01-11,90\n")
    assert answer["received"] == 1 and "10 days" in answer["warnings"][0]
    assert len(wattcarbon_sim.bills(meter_id)) == 1
