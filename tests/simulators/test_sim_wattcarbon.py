"""WattCarbon simulator: the seed guide's own examples, auth, validation, CSV uploads."""

from __future__ import annotations

import time

import httpx
import pytest
import requests

from simulators.testing import SimulatorProcess

EMAIL_ADDRESS = "demo@example.com"
API_KEY = "demo-api-key"
ADDRESS = {
    "street": "606 Ellis St",
    "city": "San Francisco",
    "state": "CA",
    "country": "US",
    "postalCode": "94109",
}


def seed_client(base_url: str) -> httpx.Client:
    """Step 1 of the seed guide, verbatim but for the base URL."""
    # Create a client object
    client = httpx.Client(base_url=base_url)
    client.headers["User-Agent"] = "a unique name for your app"

    # Make the authentication request to the API
    token_response = client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": EMAIL_ADDRESS,
            "password": API_KEY,
        },
    )
    token_response.raise_for_status()

    # Extract the token from the response
    token_payload = token_response.json()
    token = token_payload["access_token"]

    # Add the token to the client's default headers
    # to authenticate future requests
    client.headers["Authorization"] = "Bearer " + token
    return client


def create_meter(client: httpx.Client, **overrides) -> int:
    payload = {"apiProvider": "manual", "meterType": "electricity", "location": ADDRESS}
    payload.update(overrides)
    resp = client.post("/meters", json=payload)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def upload(client: httpx.Client, meter_id: int, csv_text: str, what: str = "intervals"):
    return client.post(f"/meters/{meter_id}/{what}", files={"file": ("data.csv", csv_text, "text/csv")})


@pytest.fixture
def client(wattcarbon: SimulatorProcess):
    c = seed_client(wattcarbon.url)
    yield c
    c.close()


def solar_payload(meter_id: int) -> dict:
    return {
        "name": "My asset",
        "customId": "SP123",
        "location": "60 Greene St Riverside IA",
        "utility": "ABC Utility",
        "deviceOwner": {"name": "Person Person"},
        "meterIds": [meter_id],
        "commencedOperationDate": "2022-08-01",
        "kind": "solar",
        "nameplateCapacityKw": "123",
        "inverterDataId": "1234",
        "inverterDataSource": "enphase",
        "externalRegistryName": "GATS",
        "externalRegistryDeviceId": "45678",
    }


def test_it_runs_the_seed_solar_example(wattcarbon: SimulatorProcess):
    client = seed_client(wattcarbon.url)
    meter_id = create_meter(client)

    create_device_response = client.post("/devices", json=solar_payload(meter_id))
    create_device_response.raise_for_status()

    device = create_device_response.json()
    assert isinstance(device["id"], int)
    assert device["kind"] == "solar_direct"
    assert device["nameplateCapacityKw"] == 123.0
    assert device["meterIds"] == [meter_id]
    assert client.get(f"/devices/{device['id']}").json() == device
    assert wattcarbon.state()["devices"][str(device["id"])]["customId"] == "SP123"


def test_it_runs_the_seed_electrification_example(client: httpx.Client):
    create_device_response = client.post(
        "/devices",
        json={
            "name": "My device",
            "customId": "HP123",
            "location": "60 Greene St Riverside IA",
            "utility": "ABC Utility",
            "deviceOwner": {"name": "Person Person"},
            "meterId": "M123",
            "commencedOperationDate": "2022-08-01",
            "kind": "electrification",
            "areaSqft": "123",
            "previousFuel": "natural_gas",
            "replacesFurnace": True,
            "replacesWaterHeater": False,
            "coldClimate": False,
            "effectiveUsefulLifeYears": 10,
            "buildingType": "single_family_attached",
            "heatingBackupSystem": "electric_resistance",
            "heatPumpHspf": 5,
            "waterHeaterUef": 3,
        },
    )
    create_device_response.raise_for_status()
    device = create_device_response.json()
    assert device["kind"] == "electrification_eemetered"  # the seed's old name is an alias
    assert "meterId" not in device  # extras are ignored, as FastAPI does


def test_it_serves_the_seed_device_as_an_asset_with_todays_field_name(client: httpx.Client):
    meter_id = create_meter(client)
    device = client.post("/devices", json=solar_payload(meter_id)).json()
    assert device["externalRegistryDeviceId"] == "45678"  # the old route keeps the old field
    asset = client.get(f"/assets/{device['id']}").json()
    assert asset["externalRegistryAssetId"] == "45678" and "externalRegistryDeviceId" not in asset
    assert client.get("/assets").json() == [asset]


@pytest.mark.parametrize("kind", ["electrification_eemetered", "electrification_billing_metered", "electrification"])
def test_it_takes_todays_electrification_kind_and_both_old_names(client: httpx.Client, kind):
    payload = {
        "name": "Heat pump",
        "customId": f"HP-{kind}",
        "location": ADDRESS,
        "commencedOperationDate": "2023-01-01",
        "kind": kind,
        "areaSqft": 1500,
        "previousFuel": "natural_gas",
        "buildingType": "single_family_detached",
        "externalRegistryAssetId": "R-1",
    }
    resp = client.post("/assets", json=payload)
    assert resp.status_code == 201, resp.text
    assert resp.json()["kind"] == "electrification_eemetered"
    assert resp.json()["externalRegistryAssetId"] == "R-1"


def dr_asset(client: httpx.Client, meter_id: int, **extra) -> dict:
    payload = {
        "name": "Depot DR",
        "customId": "DR-1",
        "location": ADDRESS,
        "utility": "ABC Utility",
        "meterIds": [meter_id],
        "kind": "demand_response_eemetered",
        **extra,
    }
    resp = client.post("/assets", json=payload)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_it_creates_a_demand_response_asset_without_date_or_owner(client: httpx.Client):
    meter_id = create_meter(client)
    asset = dr_asset(client, meter_id)
    assert asset["kind"] == "demand_response_eemetered" and asset["meterIds"] == [meter_id]
    assert "commencedOperationDate" not in asset and asset["deviceOwner"] is None
    # Every other kind still needs its commenced operation date.
    resp = client.post(
        "/assets", json={"name": "S", "location": ADDRESS, "kind": "solar_direct", "nameplateCapacityKw": 5}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "commencedOperationDate"]


def test_a_demand_response_asset_needs_a_meter(client: httpx.Client):
    resp = client.post("/assets", json={"name": "DR", "location": ADDRESS, "kind": "demand_response_eemetered"})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "meterIds"]


DR_EVENTS = "Event Start Time,Event End Time\n2021-01-01 17:00:00-05:00,2021-01-01 19:00:00-05:00\n"


def upload_document(client, asset_id, text, doc_type="demand_response_events"):
    data = {"type": doc_type} if doc_type else {}
    return client.post(f"/assets/{asset_id}/documents", data=data, files={"file": ("events.csv", text, "text/csv")})


def test_it_stores_demand_response_events_as_an_asset_document(wattcarbon: SimulatorProcess, client: httpx.Client):
    asset = dr_asset(client, create_meter(client))
    resp = upload_document(client, asset["id"], DR_EVENTS + "2021-07-01T14:00:00-04:00,2021-07-01T18:00:00-04:00\n")
    assert resp.status_code == 201, resp.text
    assert resp.json()["rowCount"] == 2 and resp.json()["type"] == "demand_response_events"
    [document] = wattcarbon.documents(asset["id"])
    assert document["filename"] == "events.csv"
    assert document["rows"][0] == {
        "Event Start Time": "2021-01-01 17:00:00-05:00",
        "Event End Time": "2021-01-01 19:00:00-05:00",
    }
    assert wattcarbon.state()["devices"][str(asset["id"])]["documents"] == 1


@pytest.mark.parametrize(
    ("text", "doc_type", "loc"),
    [
        (DR_EVENTS, None, ["body", "type"]),
        (DR_EVENTS, "invoice", ["body", "type"]),
        ("Start,End\n2021-01-01 17:00:00-05:00,2021-01-01 19:00:00-05:00\n", "demand_response_events",
         ["body", "file", 0]),
        ("Event Start Time,Event End Time\n2021-01-01 17:00:00,2021-01-01 19:00:00-05:00\n",
         "demand_response_events", ["body", "file", 1, "Event Start Time"]),
        ("Event Start Time,Event End Time\n2021-01-01 17:00:00-05:00,2021-01-01 16:00:00-05:00\n",
         "demand_response_events", ["body", "file", 1, "Event End Time"]),
    ],
)  # fmt: skip
def test_it_rejects_bad_event_documents(wattcarbon: SimulatorProcess, client: httpx.Client, text, doc_type, loc):
    asset = dr_asset(client, create_meter(client))
    resp = upload_document(client, asset["id"], text, doc_type)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == loc
    assert wattcarbon.documents(asset["id"]) == []


def test_event_documents_belong_to_demand_response_assets(client: httpx.Client):
    meter_id = create_meter(client)
    solar = client.post("/assets", json={**solar_payload(meter_id), "kind": "solar_direct"}).json()
    resp = upload_document(client, solar["id"], DR_EVENTS)
    assert resp.status_code == 422 and "demand_response_eemetered" in resp.json()["detail"][0]["msg"]


def test_it_finds_an_asset_by_custom_id(client: httpx.Client):
    meter_id = create_meter(client)
    first = dr_asset(client, meter_id)
    dr_asset(client, meter_id, customId="DR-2")
    assert client.get("/assets", params={"customId": "DR-1"}).json() == [first]
    assert client.get("/assets", params={"customId": "nope"}).json() == []
    again = client.post("/assets", json={"name": "x", "customId": "DR-1", "location": ADDRESS,
                                         "kind": "demand_response_eemetered", "meterIds": [meter_id]})  # fmt: skip
    assert again.status_code == 409 and "DR-1" in again.json()["detail"]


def test_it_holds_a_created_answer_when_told(wattcarbon: SimulatorProcess, client: httpx.Client):
    wattcarbon.faults(hold_created_ms=600)
    started = time.monotonic()
    create_meter(client)
    assert time.monotonic() - started >= 0.55
    started = time.monotonic()
    assert client.get("/meters").status_code == 200
    assert time.monotonic() - started < 0.5  # only creations are held


def test_it_rejects_wrong_credentials(wattcarbon: SimulatorProcess):
    resp = httpx.post(
        wattcarbon.url + "/auth/token",
        data={"grant_type": "password", "username": EMAIL_ADDRESS, "password": "nope"},
    )
    assert resp.status_code == 401
    assert resp.json() == {"detail": "Incorrect username or password"}


def test_it_wants_form_fields_for_a_token(wattcarbon: SimulatorProcess):
    resp = httpx.post(wattcarbon.url + "/auth/token", data={"username": EMAIL_ADDRESS})
    assert resp.status_code == 422
    locs = [e["loc"] for e in resp.json()["detail"]]
    assert ["body", "password"] in locs and ["body", "grant_type"] in locs


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic ZGVtbzpkZW1v"])
def test_it_requires_a_valid_bearer_token(wattcarbon: SimulatorProcess, auth):
    headers = {"Authorization": auth} if auth else {}
    resp = httpx.get(wattcarbon.url + "/meters/1001", headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"detail": "Not authenticated"}
    assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_it_expires_tokens_and_accepts_a_new_one(wattcarbon: SimulatorProcess):
    wattcarbon.faults(token_ttl=2)
    client = seed_client(wattcarbon.url)
    assert client.get("/meters").status_code == 200
    wattcarbon.wait_tokens_expired()
    assert client.get("/meters").status_code == 401
    client = seed_client(wattcarbon.url)
    assert client.get("/meters").status_code == 200


def test_it_hides_other_accounts_objects(wattcarbon: SimulatorProcess, client: httpx.Client):
    meter_id = create_meter(client)
    wattcarbon.add_account(email="other@example.com", api_key="other-key")
    other = httpx.Client(base_url=wattcarbon.url)
    token = other.post(
        "/auth/token",
        data={"grant_type": "password", "username": "other@example.com", "password": "other-key"},
    ).json()["access_token"]
    other.headers["Authorization"] = f"Bearer {token}"
    assert other.get(f"/meters/{meter_id}").status_code == 404
    assert other.get(f"/meters/{meter_id}").json() == {"detail": "Not Found"}
    resp = other.post("/devices", json=solar_payload(meter_id))
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "meterIds", 0]


def test_it_validates_meters(client: httpx.Client):
    resp = client.post("/meters", json={"apiProvider": "green_button", "meterType": "water"})
    assert resp.status_code == 422
    by_field = {e["loc"][-1]: e for e in resp.json()["detail"]}
    assert by_field["apiProvider"]["type"] == "enum"
    assert by_field["meterType"]["type"] == "enum"
    assert by_field["location"]["type"] == "missing"
    assert by_field["location"]["msg"] == "Field required"


@pytest.mark.parametrize("location", [ADDRESS, {"latitude": 37.78, "longitude": -122.41}, "60 Greene St Riverside IA"])
def test_it_accepts_each_form_of_location(client: httpx.Client, location):
    meter_id = create_meter(client, location=location, meterType="gas", name="Main")
    meter = client.get(f"/meters/{meter_id}").json()
    assert meter["meterType"] == "gas"
    assert meter["intervalCount"] == 0 and meter["billCount"] == 0


KIND_PAYLOADS = {
    "solar_direct": {"nameplateCapacityKw": 5},
    "storage_direct": {"nameplatePowerKw": 5, "energyCapacityKwh": 13.5},
    "electrification_eemetered": {
        "areaSqft": 1800,
        "previousFuel": "natural_gas",
        "buildingType": "single_family_detached",
    },
    "energy_efficiency_eemetered": {"interventionDate": "2023-03-01", "meterIds": "METER"},
    "tracking_building": {"buildingType": "office", "meterIds": "METER"},
    "demand_response_eemetered": {"meterIds": "METER"},
}
CASES = [(kind, field) for kind, fields in KIND_PAYLOADS.items() for field in fields] + [
    ("solar_direct", common) for common in ("name", "location", "commencedOperationDate", "kind")
]


@pytest.mark.parametrize(("kind", "missing"), CASES)
def test_it_names_the_missing_field_per_kind(client: httpx.Client, kind, missing):
    meter_id = create_meter(client)
    payload = {
        "name": "Site",
        "location": ADDRESS,
        "commencedOperationDate": "2023-01-01",
        "kind": kind,
        **KIND_PAYLOADS[kind],
    }
    if payload.get("meterIds") == "METER":
        payload["meterIds"] = [meter_id]
    assert client.post("/devices", json=payload).status_code == 201, kind
    del payload[missing]
    resp = client.post("/devices", json=payload)
    assert resp.status_code == 422
    assert ["body", missing] in [e["loc"] for e in resp.json()["detail"]]


def test_it_wants_an_eia_plant_id_above_one_megawatt(client: httpx.Client):
    payload = {
        "name": "Farm",
        "location": {"latitude": 40.0, "longitude": -91.0},
        "commencedOperationDate": "2023-01-01",
        "kind": "solar_direct",
        "nameplateCapacityKw": 1500,
    }
    resp = client.post("/devices", json=payload)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "eiaPlantId"]
    assert client.post("/devices", json={**payload, "eiaPlantId": "61234"}).status_code == 201


def test_it_rejects_an_unknown_kind(client: httpx.Client):
    resp = client.post(
        "/devices",
        json={"name": "X", "location": "Y", "commencedOperationDate": "2023-01-01", "kind": "wind"},
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["type"] == "enum"


def test_it_rejects_a_duplicate_custom_id(client: httpx.Client):
    meter_id = create_meter(client)
    first = client.post("/devices", json=solar_payload(meter_id))
    assert first.status_code == 201
    again = client.post("/devices", json={**solar_payload(meter_id), "name": "Other"})
    assert again.status_code == 409
    assert again.json() == {"detail": f"customId 'SP123' is already used by device {first.json()['id']}"}


def test_it_stores_intervals(wattcarbon: SimulatorProcess, client: httpx.Client):
    meter_id = create_meter(client)
    csv_text = "start_datetime,energy_kwh\n2024-01-01T01:00:00Z,-0.5\n2024-01-01T00:00:00+00:00,1.25\n"
    resp = upload(client, meter_id, csv_text)
    assert resp.status_code == 200
    assert resp.json() == {"meterId": meter_id, "received": 2, "inserted": 2, "updated": 0}
    assert wattcarbon.intervals(meter_id) == [
        {"start_datetime": "2024-01-01T00:00:00+00:00", "energy_kwh": 1.25},
        {"start_datetime": "2024-01-01T01:00:00+00:00", "energy_kwh": -0.5},
    ]


def test_it_does_not_double_reuploaded_intervals(wattcarbon: SimulatorProcess, client: httpx.Client):
    meter_id = create_meter(client)
    rows = "".join(f"2024-01-01T{h:02d}:00:00+00:00,{h}.5\n" for h in range(24))
    upload(client, meter_id, "start_datetime,energy_kwh\n" + rows).raise_for_status()
    again = upload(client, meter_id, "start_datetime,energy_kwh\n" + rows)
    assert again.json() == {"meterId": meter_id, "received": 24, "inserted": 0, "updated": 24}
    assert len(wattcarbon.intervals(meter_id)) == 24
    assert client.get(f"/meters/{meter_id}").json()["intervalCount"] == 24


def test_it_rejects_a_non_utc_interval_naming_the_row(wattcarbon: SimulatorProcess, client: httpx.Client):
    meter_id = create_meter(client)
    csv_text = (
        "start_datetime,energy_kwh\n"
        "2024-01-01T00:00:00+00:00,1\n"
        "2024-01-01T01:00:00+00:00,1\n"
        "2024-01-01T02:00:00-05:00,1\n"
    )
    resp = upload(client, meter_id, csv_text)
    assert resp.status_code == 422
    [error] = resp.json()["detail"]
    assert error["loc"] == ["body", "file", 3, "start_datetime"]
    assert "row 3" in error["msg"] and "UTC" in error["msg"]
    assert wattcarbon.intervals(meter_id) == []  # atomic: the good rows were not kept


@pytest.mark.parametrize(
    ("csv_text", "loc"),
    [
        ("start,kwh\n2024-01-01T00:00:00Z,1\n", ["body", "file", 0]),
        (
            "start_datetime,energy_kwh\n2024-01-01T00:00:00,1\n",
            ["body", "file", 1, "start_datetime"],
        ),
        (
            "start_datetime,energy_kwh\n2024-01-01T00:00:00Z,abc\n",
            ["body", "file", 1, "energy_kwh"],
        ),
        (
            "start_datetime,energy_kwh\n2024-01-01T00:00:00Z,nan\n",
            ["body", "file", 1, "energy_kwh"],
        ),
        ("start_datetime,energy_kwh\n2024-01-01T00:00:00Z\n", ["body", "file", 1]),
        ("start_datetime,energy_kwh\n", ["body", "file"]),
    ],
)
def test_it_rejects_bad_interval_files(client: httpx.Client, csv_text, loc):
    meter_id = create_meter(client)
    resp = upload(client, meter_id, csv_text)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == loc


def test_it_wants_a_file(client: httpx.Client):
    meter_id = create_meter(client)
    resp = client.post(f"/meters/{meter_id}/intervals", json={"rows": []})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "file"]


def test_it_checks_bill_periods(wattcarbon: SimulatorProcess, client: httpx.Client):
    meter_id = create_meter(client, meterType="gas")
    good = "start_date,end_date,energy_kwh\n2024-01-01,2024-01-31,100\n2024-01-31,2024-03-01,90\n"
    assert upload(client, meter_id, good, "bills").json()["inserted"] == 2
    assert upload(client, meter_id, good, "bills").json()["warnings"] == []
    assert len(wattcarbon.bills(meter_id)) == 2
    bad = "start_date,end_date,energy_kwh\n2024-03-01,2024-03-31,1\n2024-04-10,2024-04-01,1\n"
    resp = upload(client, meter_id, bad, "bills")
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "file", 2, "end_date"]


def test_it_accepts_a_bill_of_unusual_length_with_a_warning(wattcarbon: SimulatorProcess, client: httpx.Client):
    # 25-35 days (70 bimonthly) is CalTRACK's analysis filter, not a reason to refuse a bill.
    meter_id = create_meter(client, meterType="gas")
    odd = "start_date,end_date,energy_kwh\n2024-04-01,2024-04-10,1\n2024-05-01,2024-08-01,7\n"
    resp = upload(client, meter_id, odd, "bills")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["inserted"] == 2
    assert len(body["warnings"]) == 2 and "9 days" in body["warnings"][0] and "92 days" in body["warnings"][1]
    assert [b["start_date"] for b in wattcarbon.bills(meter_id)] == ["2024-04-01", "2024-05-01"]


def test_it_keeps_one_connection_alive(wattcarbon: SimulatorProcess):
    with requests.Session() as session:
        before = session.get(wattcarbon.url + "/_sim/state").json()["connections"]
        for _ in range(100):
            assert session.get(wattcarbon.url + "/meters").status_code == 401
        after = session.get(wattcarbon.url + "/_sim/state").json()
    assert after["connections"] == before
    assert after["requests"] == 100


@pytest.mark.parametrize("bad", [-1, "soon", True])
def test_it_refuses_a_bad_hold(wattcarbon: SimulatorProcess, bad):
    resp = requests.post(wattcarbon.url + "/_sim/faults", json={"hold_created_ms": bad}, timeout=5)
    assert resp.status_code == 400 and "hold_created_ms" in resp.text
    assert requests.get(wattcarbon.url + "/_sim/faults", timeout=5).json()["hold_created_ms"] == 0
