"""Wattics simulator: the seed guide's packets, auth, one-line packets, chronological order."""

from __future__ import annotations

import json

import pytest
import requests

from simulators.testing import SimulatorProcess

AUTH = ("demo", "demo-password")
# The published routes: one for the push, the same with ?stream= for the latest packet.
PUSH = "/measurements/v2/unifiedjson/"
LATEST = "/measurements/v2/unifiedjson/"

# The guide's examples, with straight quotes and the id replaced by a registered stream.
SEED_ELECTRICAL = (
    '{"id":"demo-elec-1","tsISO8601":"2017-12-01T12:00:00.000+00:00", "aP_1":123,"aP_2":123,'
    '"aP_3":123, "rP_1":123, "rP_2":123, "rP_3":123, "apP_1":123,"apP_2":123,"apP_3":123, '
    '"v_1":123,"v_2":123, "v_3":123, "c_1":123, "c_2":123,"c_3":123, "pC_1":123, '
    '"pC_2":123,"pC_3":123, "v_12":123, "v_13":123,"v_23":123 }'
)
SEED_NUMERIC = '{"id":"demo-gas-1","tsISO8601":"2017-12-01T12:00:00.000+00:00", "value":123}'


def push(sim: SimulatorProcess, body, auth=AUTH, session=requests) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return session.post(sim.url + PUSH, data=data, auth=auth, headers={"Content-Type": "application/json"})


def packet(ts: str, stream: str = "demo-gas-1", **fields) -> dict:
    return {"id": stream, "tsISO8601": ts, **(fields or {"value": 1.5})}


def test_it_accepts_the_seed_electrical_packet(wattics: SimulatorProcess):
    resp = push(wattics, SEED_ELECTRICAL)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
    assert wattics.packets("demo-elec-1")["accepted"] == [json.loads(SEED_ELECTRICAL)]


def test_it_accepts_the_seed_numeric_packet(wattics: SimulatorProcess):
    assert push(wattics, SEED_NUMERIC).json() == {"status": "ok"}
    latest = requests.get(wattics.url + LATEST, params={"stream": "demo-gas-1"}, auth=AUTH)
    assert latest.status_code == 200
    assert latest.text == SEED_NUMERIC  # exactly as received
    assert wattics.state()["streams"]["demo-gas-1"]["accepted"] == 1


def test_it_discards_and_counts_out_of_order_packets(wattics: SimulatorProcess):
    assert push(wattics, packet("2024-05-01T10:15:00.000+02:00")).json()["status"] == "ok"
    # Same instant written with another offset, then an earlier one: both not chronological.
    for ts in ("2024-05-01T08:15:00.000+00:00", "2024-05-01T10:00:00.000+02:00"):
        resp = push(wattics, packet(ts))
        assert resp.status_code == 200
        assert resp.json() == {
            "status": "discarded",
            "reason": "not chronological",
            "last": "2024-05-01T10:15:00.000+02:00",
        }
    assert push(wattics, packet("2024-05-01T08:30:00.000+00:00")).json() == {"status": "ok"}
    packets = wattics.packets("demo-gas-1")
    assert [p["tsISO8601"] for p in packets["accepted"]] == [
        "2024-05-01T10:15:00.000+02:00",
        "2024-05-01T08:30:00.000+00:00",
    ]
    assert packets["discarded_count"] == 2
    assert wattics.state()["streams"]["demo-gas-1"]["discarded"] == 2


@pytest.mark.parametrize("auth", [None, ("demo", "wrong"), ("nobody", "demo-password")])
def test_it_requires_basic_auth(wattics: SimulatorProcess, auth):
    resp = push(wattics, SEED_NUMERIC, auth=auth)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    # Like Wattics' Spring server: an HTML page, not JSON.
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "HTTP Status 401 - Full authentication is required to access this resource" in resp.text
    with pytest.raises(ValueError):
        resp.json()
    latest = requests.get(wattics.url + LATEST, params={"stream": "demo-gas-1"}, auth=auth)
    assert latest.status_code == 401
    assert wattics.state()["streams"]["demo-gas-1"]["accepted"] == 0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('{"id":"demo-gas-1",\n"tsISO8601":"2024-01-01T00:00:00+00:00","value":1}', "one line"),
        ('[{"id":"demo-gas-1","tsISO8601":"2024-01-01T00:00:00+00:00","value":1}]', "one packet"),
        (
            '{"id":"demo-gas-1","tsISO8601":"2024-01-01T00:00:00+00:00","value":1}'
            '{"id":"demo-gas-1","tsISO8601":"2024-01-01T00:01:00+00:00","value":1}',
            "one packet",
        ),
        ('{"id":"demo-gas-1",', "invalid JSON"),
        ('{"tsISO8601":"2024-01-01T00:00:00+00:00","value":1}', "id"),
    ],
)
def test_it_rejects_malformed_bodies(wattics: SimulatorProcess, body, error):
    resp = push(wattics, body)
    assert resp.status_code == 400
    assert error in resp.json()["error"]


def test_it_accepts_one_trailing_newline(wattics: SimulatorProcess):
    assert push(wattics, SEED_NUMERIC + "\n").status_code == 200


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"tsISO8601": "2024-01-01T00:00:00"}, "tsISO8601"),  # no offset
        ({"tsISO8601": "2024-01-01 00:00:00+00:00"}, "tsISO8601"),
        ({"tsISO8601": "2024-02-30T00:00:00+00:00"}, "tsISO8601"),
        ({"tsISO8601": None}, "tsISO8601"),
        ({"tsISO8601": "2024-01-01T00:00:00+00:00", "value": 1, "aP_1": 2}, "mixed"),
        ({"tsISO8601": "2024-01-01T00:00:00+00:00", "aP_4": 2}, "unknown field"),
        ({"tsISO8601": "2024-01-01T00:00:00+00:00"}, "no measurement"),
        ({"tsISO8601": "2024-01-01T00:00:00+00:00", "value": "12"}, "number"),
        ({"tsISO8601": "2024-01-01T00:00:00+00:00", "pC_1": True}, "number"),
    ],
)
def test_it_rejects_bad_packets(wattics: SimulatorProcess, fields, error):
    body = json.dumps({"id": "demo-gas-1", **{k: v for k, v in fields.items()}})
    resp = push(wattics, body)
    assert resp.status_code == 400
    assert error in resp.json()["error"]
    assert wattics.state()["streams"]["demo-gas-1"]["rejected"] == 1


def test_it_rejects_non_finite_numbers(wattics: SimulatorProcess):
    body = '{"id":"demo-gas-1","tsISO8601":"2024-01-01T00:00:00+00:00","value":NaN}'
    assert push(wattics, body).status_code == 400


@pytest.mark.parametrize("ts", ["2024-01-01T00:00:00Z", "2016-02-10T21:45:31.070+11:00",
                                "2024-01-01T00:00:00-05:30"])  # fmt: skip
def test_it_accepts_timestamps_with_an_offset(wattics: SimulatorProcess, ts):
    assert push(wattics, packet(ts)).json() == {"status": "ok"}


def test_it_answers_404_for_an_unknown_stream(wattics: SimulatorProcess):
    assert push(wattics, packet("2024-01-01T00:00:00Z", stream="nope")).status_code == 404
    assert requests.get(wattics.url + LATEST, params={"stream": "nope"}, auth=AUTH).status_code == 404


def test_it_answers_403_for_another_accounts_stream(wattics: SimulatorProcess):
    wattics.add_account(username="partner", password="pw", streams=["partner-1"])
    resp = push(wattics, packet("2024-01-01T00:00:00Z", stream="partner-1"))
    assert resp.status_code == 403
    assert push(wattics, packet("2024-01-01T00:00:00Z", stream="partner-1"), auth=("partner", "pw")).ok
    assert push(wattics, packet("2024-01-01T00:00:00Z"), auth=("partner", "pw")).status_code == 403


def test_it_has_no_latest_packet_before_the_first(wattics: SimulatorProcess):
    resp = requests.get(wattics.url + LATEST, params={"stream": "demo-env-1"}, auth=AUTH)
    assert resp.status_code == 404
    assert resp.json() == {"error": "no packet"}


def test_it_registers_streams_at_run_time(wattics: SimulatorProcess):
    assert push(wattics, packet("2024-01-01T00:00:00Z", stream="site-9")).status_code == 404
    wattics.register_stream("site-9")
    assert push(wattics, packet("2024-01-01T00:00:00Z", stream="site-9")).status_code == 200
    wattics.reset()  # back to the configured streams
    assert "site-9" not in wattics.state()["streams"]


def test_it_knows_streams_given_on_the_command_line(wattics: SimulatorProcess):
    streams = wattics.state()["streams"]
    assert {"demo-elec-1", "demo-gas-1", "demo-env-1", "extra-1", "extra-2"} <= set(streams)
    assert push(wattics, packet("2024-01-01T00:00:00Z", stream="extra-2")).ok


def test_it_keeps_one_connection_alive(wattics: SimulatorProcess):
    with requests.Session() as session:
        before = session.get(wattics.url + "/_sim/state").json()["connections"]
        for minute in range(100):
            ts = f"2024-01-01T{minute // 60:02d}:{minute % 60:02d}:00.000+01:00"
            assert push(wattics, packet(ts), session=session).json() == {"status": "ok"}
        after = session.get(wattics.url + "/_sim/state").json()
    assert after["connections"] == before
    assert after["requests"] == 100
    assert after["streams"]["demo-gas-1"]["accepted"] == 100


@pytest.mark.parametrize("content_type", ["text/json", "application/json", None, "text/plain"])
def test_it_reads_the_body_whatever_the_content_type(wattics: SimulatorProcess, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    # requests sends no Content-Type for a bytes body unless told: None really sends none.
    resp = requests.post(wattics.url + PUSH, data=SEED_NUMERIC.encode(), auth=AUTH, headers=headers)
    assert resp.status_code == 200, resp.text
    assert wattics.packets("demo-gas-1")["accepted"] == [json.loads(SEED_NUMERIC)]


def test_it_serves_only_the_published_routes(wattics: SimulatorProcess):
    old = requests.post(wattics.url + "/api/v1/push", data=SEED_NUMERIC, auth=AUTH)
    assert old.status_code == 404
    no_slash = requests.post(wattics.url + PUSH.rstrip("/"), data=SEED_NUMERIC, auth=AUTH)
    assert no_slash.status_code == 404
    assert wattics.packets("demo-gas-1")["accepted"] == []


def test_its_injected_errors_are_html_pages_and_503_says_when_to_retry(wattics: SimulatorProcess):
    wattics.faults(fail_next=[401, 503, 500], retry_after=3)
    unauthorized = push(wattics, SEED_NUMERIC)
    assert unauthorized.status_code == 401 and unauthorized.headers["WWW-Authenticate"].startswith("Basic")
    assert "Full authentication is required to access this resource" in unauthorized.text
    busy = push(wattics, SEED_NUMERIC)
    assert (busy.status_code, busy.headers["Retry-After"]) == (503, "3")
    assert busy.text.startswith("<!doctype html>")
    assert push(wattics, SEED_NUMERIC).headers["Content-Type"].startswith("text/html")
    assert push(wattics, SEED_NUMERIC).status_code == 200


def test_it_keeps_one_session_cookie_per_account_and_counts_foreign_ones(wattics: SimulatorProcess):
    wattics.add_account(username="partner", password="pw", streams=["partner-1"])
    with requests.Session() as demo, requests.Session() as partner:
        first = push(wattics, packet("2024-01-01T00:00:00Z"), session=demo)
        assert "JSESSIONID" in first.cookies
        # Kept by the session: no new cookie on the next answer.
        assert "Set-Cookie" not in push(wattics, packet("2024-01-01T00:15:00Z"), session=demo).headers
        push(wattics, packet("2024-01-01T00:00:00Z", stream="partner-1"), auth=("partner", "pw"), session=partner)
        assert wattics.state()["foreign_cookies"] == 0
        # A client that carries demo's cookie into partner's requests is caught.
        push(wattics, packet("2024-01-01T00:30:00Z", stream="partner-1"), auth=("partner", "pw"), session=demo)
    assert wattics.state()["foreign_cookies"] == 1
    assert requests.get(wattics.url + "/_sim/cookies").json()["foreign"] == [{"user": "partner", "cookie_of": "demo"}]


def test_it_can_answer_the_latest_packet_in_another_shape(wattics: SimulatorProcess):
    push(wattics, SEED_NUMERIC)
    wattics.faults(other_latest_shape=True)
    latest = requests.get(wattics.url + LATEST, params={"stream": "demo-gas-1"}, auth=AUTH)
    assert latest.json() == {"content": [json.loads(SEED_NUMERIC)], "totalElements": 1}
