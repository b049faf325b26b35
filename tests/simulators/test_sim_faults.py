"""Fault knobs of both simulators, the command line, and the state file."""

from __future__ import annotations

import itertools
import json
import time

import pytest
import requests

from simulators.testing import SimulatorProcess

_minutes = itertools.count()


def vendor_call(sim: SimulatorProcess, session=requests) -> requests.Response:
    """One ordinary, successful vendor request (a token, or a packet later than the last)."""
    if sim.kind == "wattcarbon":
        return session.post(
            sim.url + "/auth/token",
            data={"grant_type": "password", "username": "demo@example.com",
                  "password": "demo-api-key"},
            timeout=10,
        )  # fmt: skip
    minute = next(_minutes)
    ts = f"2030-01-{1 + minute // 1440:02d}T{minute // 60 % 24:02d}:{minute % 60:02d}:00+00:00"
    return session.post(
        sim.url + "/measurements/v2/unifiedjson/",
        data=json.dumps({"id": "demo-gas-1", "tsISO8601": ts, "value": minute}),
        auth=("demo", "demo-password"),
        timeout=10,
    )


def stored(sim: SimulatorProcess) -> int:
    state = sim.state()
    if sim.kind == "wattcarbon":
        return state["tokens"]
    return state["streams"]["demo-gas-1"]["accepted"]


@pytest.fixture(params=["wattcarbon", "wattics"])
def sim(request) -> SimulatorProcess:
    return request.getfixturevalue(request.param)


def test_it_adds_latency(sim: SimulatorProcess):
    sim.faults(latency_ms=300)
    started = time.monotonic()
    assert vendor_call(sim).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    sim.state()  # /_sim is never delayed
    assert time.monotonic() - started < 0.3


@pytest.mark.parametrize(("knob", "status"), [("fail_500", 500), ("fail_503", 503)])
def test_it_fails_without_touching_state(sim: SimulatorProcess, knob, status):
    sim.faults(**{knob: 1})
    resp = vendor_call(sim)
    assert resp.status_code == status
    if status == 503:
        assert resp.headers["Retry-After"] == "1"
    assert stored(sim) == 0
    sim.faults(**{knob: 0})
    assert vendor_call(sim).status_code == 200
    assert stored(sim) == 1


def test_it_has_a_maintenance_window(sim: SimulatorProcess):
    sim.faults(maintenance=True)
    for _ in range(3):
        resp = vendor_call(sim)
        assert resp.status_code == 503
        assert "Retry-After" in resp.headers
    assert sim.faults()["maintenance"] is True  # /_sim still answers
    sim.faults(maintenance=False)
    assert vendor_call(sim).status_code == 200


def test_it_ends_a_timed_maintenance_by_itself(sim: SimulatorProcess):
    sim.faults(maintenance_seconds=0.5)
    assert vendor_call(sim).status_code == 503
    assert 0 < sim.faults()["maintenance_seconds"] <= 0.5
    # It ends by itself, within seconds of the half-second asked for.
    sim.wait_until(lambda: vendor_call(sim).status_code == 200, what="the maintenance window ended", timeout=10)


def test_it_drops_connections(sim: SimulatorProcess):
    sim.faults(drop=1)
    with pytest.raises(requests.ConnectionError):
        vendor_call(sim)
    assert stored(sim) == 0
    sim.faults(drop=0)
    assert vendor_call(sim).status_code == 200


def test_it_plays_fail_next_in_order(sim: SimulatorProcess):
    sim.faults(fail_next=[503, 503, 500])
    assert [vendor_call(sim).status_code for _ in range(4)] == [503, 503, 500, 200]
    assert stored(sim) == 1
    sim.faults(fail_next=["drop", 429])
    with pytest.raises(requests.ConnectionError):
        vendor_call(sim)
    assert vendor_call(sim).status_code == 429


def test_it_rolls_the_same_dice_after_a_reset(sim: SimulatorProcess):
    def pattern() -> list[int]:
        sim.faults(fail_500=0.5)
        return [vendor_call(sim).status_code for _ in range(20)]

    first = pattern()
    assert set(first) == {200, 500}
    sim.reset()
    assert pattern() == first


def test_it_resets_data_and_faults(sim: SimulatorProcess):
    vendor_call(sim)
    sim.faults(latency_ms=5, fail_next=[500])
    sim.reset()
    faults = sim.faults()
    assert faults["latency_ms"] == 0 and faults["fail_next"] == []
    assert stored(sim) == 0 and sim.state()["requests"] == 0


@pytest.mark.parametrize("knobs", [{"nope": 1}, {"fail_500": 2}, {"maintenance": "yes"},
                                   {"fail_next": [700]}])  # fmt: skip
def test_it_refuses_bad_knobs(sim: SimulatorProcess, knobs):
    resp = requests.post(sim.url + "/_sim/faults", json=knobs)
    assert resp.status_code == 400


def test_it_takes_faults_and_accounts_from_the_command_line(tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"wattics": [{"username": "acme", "password": "s3cret", "streams": ["a-1"]}]}))
    with SimulatorProcess("wattics", "--accounts", str(accounts), "--fail-503", "1") as sim:
        body = '{"id":"a-1","tsISO8601":"2024-01-01T00:00:00+00:00","value":1}'
        resp = requests.post(sim.url + "/measurements/v2/unifiedjson/", data=body, auth=("acme", "s3cret"))
        assert resp.status_code == 503
        sim.faults(fail_503=0)
        resp = requests.post(sim.url + "/measurements/v2/unifiedjson/", data=body, auth=("acme", "s3cret"))
        assert resp.json() == {"status": "ok"}
        assert sim.packets("a-1")["accepted"] == [json.loads(body)]


def test_it_keeps_state_in_a_file_across_restarts(tmp_path):
    state_file = tmp_path / "wattcarbon.json"
    with SimulatorProcess("wattcarbon", "--state-file", str(state_file), "--token-ttl", "60") as sim:
        client = requests.Session()
        token = client.post(
            sim.url + "/auth/token",
            data={"grant_type": "password", "username": "demo@example.com",
                  "password": "demo-api-key"},
        ).json()  # fmt: skip
        assert token["expires_in"] == 60
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        meter = client.post(
            sim.url + "/meters",
            json={"apiProvider": "manual", "meterType": "gas", "location": "Somewhere"},
        ).json()
    with SimulatorProcess("wattcarbon", "--state-file", str(state_file)) as sim:
        assert client.get(f"{sim.url}/meters/{meter['id']}").json()["id"] == meter["id"]
