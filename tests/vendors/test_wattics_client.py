"""Wattics packets and client: packet format, local time with offsets, answers over real HTTP."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests import factories
from uploads.services.push_wattics import wattics_stream
from vendors.http import ExchangeLog, VendorRefused
from vendors.models import HttpExchange
from vendors.wattics import Outcome, PacketBuilder, WatticsClient, format_local_ts, parse_ts


def test_it_formats_local_time_with_the_offset_in_force_across_dst():
    dublin = ZoneInfo("Europe/Dublin")
    # 2024-03-31 01:00 UTC: Ireland goes from GMT (+00:00) to IST (+01:00).
    before = datetime(2024, 3, 31, 0, 45, tzinfo=UTC)
    after = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    assert format_local_ts(before, dublin) == "2024-03-31T00:45:00.000+00:00"
    assert format_local_ts(after, dublin) == "2024-03-31T02:00:00.000+01:00"
    # Fall back in Los Angeles: the two 01:30 differ by their offsets.
    la = ZoneInfo("America/Los_Angeles")
    first = datetime(2024, 11, 3, 8, 30, tzinfo=UTC)
    second = first + timedelta(hours=1)
    assert format_local_ts(first, la) == "2024-11-03T01:30:00.000-07:00"
    assert format_local_ts(second, la) == "2024-11-03T01:30:00.000-08:00"
    assert parse_ts(format_local_ts(second, la)) == second


def test_it_keeps_milliseconds_and_positive_offsets():
    ts = datetime(2016, 2, 10, 10, 45, 31, 70000, tzinfo=UTC)
    assert format_local_ts(ts, ZoneInfo("Australia/Sydney")) == "2016-02-10T21:45:31.070+11:00"


@pytest.mark.django_db
def test_it_builds_cumulative_wh_packets_on_one_line(org):
    site = factories.make_site(org, timezone="Europe/Dublin")
    meter = factories.make_meter(site, wattics_stream_id="demo-elec-1", unit="kWh")
    builder = PacketBuilder(wattics_stream(meter), start_wh=1000.0)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    first = builder.build(t0, 1.5, None)
    second = builder.build(t0 + timedelta(minutes=15), 0.25, None)
    assert b"\n" not in first and b" " not in first
    # The reading of [00:00, 00:15) is the register at 00:15.
    assert json.loads(first) == {"id": "demo-elec-1", "tsISO8601": "2024-01-01T00:15:00.000+00:00", "pC_1": 2500.0}
    assert json.loads(second) == {"id": "demo-elec-1", "tsISO8601": "2024-01-01T00:30:00.000+00:00", "pC_1": 2750.0}


@pytest.mark.django_db
def test_it_builds_single_value_packets(org):
    site = factories.make_site(org, timezone="America/New_York")
    meter = factories.make_meter(site, wattics_stream_id="demo-gas-1", meter_type="gas", unit="m3",
                                 wattics_format="single_value")  # fmt: skip
    packet = json.loads(PacketBuilder(wattics_stream(meter)).build(datetime(2024, 7, 1, 12, tzinfo=UTC), 3.25, None))
    assert packet == {"id": "demo-gas-1", "tsISO8601": "2024-07-01T08:00:00.000-04:00", "value": 3.25}


@pytest.mark.django_db
def test_it_refuses_an_electrical_packet_for_a_non_energy_unit(org):
    meter = factories.make_meter(factories.make_site(org), wattics_stream_id="x", unit="m3")
    with pytest.raises(ValueError, match="single-value"):
        PacketBuilder(wattics_stream(meter))


def _client(sim, org, *, stream="demo-elec-1", password="demo-password"):
    log = ExchangeLog(organization_id=org.pk, vendor="wattics")
    return WatticsClient(base_url=sim.url, username="demo", password=password, stream_id=stream, log=log), log


def _body(stream, ts, wh):
    return json.dumps({"id": stream, "tsISO8601": ts, "pC_1": wh}, separators=(",", ":")).encode()


@pytest.mark.django_db
def test_it_reads_every_answer_of_the_push_entry_point(org, wattics_sim):
    client, log = _client(wattics_sim, org)
    assert client.latest() is None
    assert client.push(_body("demo-elec-1", "2024-01-01T00:00:00.000+00:00", 1)).outcome is Outcome.ACKNOWLEDGED
    discarded = client.push(_body("demo-elec-1", "2023-12-31T23:00:00.000+00:00", 1))
    assert discarded.outcome is Outcome.DISCARDED
    assert discarded.vendor_last == datetime(2024, 1, 1, tzinfo=UTC)
    rejected = client.push(b'{"id":"demo-elec-1","tsISO8601":"yesterday","pC_1":1}')
    assert rejected.outcome is Outcome.REJECTED and "tsISO8601" in rejected.message
    assert client.latest().instant == datetime(2024, 1, 1, tzinfo=UTC)
    log.flush()
    assert HttpExchange.objects.filter(vendor="wattics").count() == 5
    assert not HttpExchange.objects.filter(url__contains="demo-password").exists()


@pytest.mark.django_db
def test_it_tells_credentials_and_unknown_streams_apart(org, wattics_sim):
    bad, _ = _client(wattics_sim, org, password="wrong")
    result = bad.push(_body("demo-elec-1", "2024-01-01T00:00:00.000+00:00", 1))
    assert result.outcome is Outcome.FATAL and "credentials rejected" in result.message
    unknown, _ = _client(wattics_sim, org, stream="nope-1")
    result = unknown.push(_body("nope-1", "2024-01-01T00:00:00.000+00:00", 1))
    assert result.outcome is Outcome.FATAL and "data stream id nope-1 unknown at Wattics" in result.message
    with pytest.raises(VendorRefused, match="unknown at Wattics"):
        unknown.latest()


@pytest.mark.django_db
def test_it_treats_5xx_and_dropped_connections_as_transient(org, wattics_sim):
    client, _ = _client(wattics_sim, org)
    wattics_sim.faults(fail_next=[503, 500, "drop"])
    body = _body("demo-elec-1", "2024-01-01T00:00:00.000+00:00", 1)
    assert [client.push(body).outcome for _ in range(3)] == [Outcome.TRANSIENT] * 3
    assert client.push(body).outcome is Outcome.ACKNOWLEDGED
    assert len(wattics_sim.packets("demo-elec-1")["accepted"]) == 1


@pytest.mark.django_db
def test_pc_1_is_a_register_and_instantaneous_values_keep_their_instant(org):
    site = factories.make_site(org, timezone="Europe/Dublin")
    meter = factories.make_meter(site, wattics_stream_id="demo-elec-1", unit="kWh", interval_minutes=15)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (t0, 1.0, {"aP_1": 4000.0, "v_1": 230.0}),
        (t0 + timedelta(minutes=15), 2.0, {"aP_1": 8000.0}),
        # A gap: the next reading starts an hour later.
        (t0 + timedelta(minutes=75), 0.5, None),
    ]
    packets = list(PacketBuilder(wattics_stream(meter), start_wh=10_000.0).packets(rows, opening=True))
    assert [(json.loads(p.body), p.row_ts) for p in packets] == [
        # The stream's first packet: the register at the first interval's start, with the instant values of then.
        ({"id": "demo-elec-1", "tsISO8601": "2024-01-01T00:00:00.000+00:00", "aP_1": 4000.0, "v_1": 230.0,
          "pC_1": 10000.0}, None),
        # [00:00, 00:15) ends at 00:15, where the second reading's instant values are.
        ({"id": "demo-elec-1", "tsISO8601": "2024-01-01T00:15:00.000+00:00", "pC_1": 11000.0, "aP_1": 8000.0},
         t0),
        ({"id": "demo-elec-1", "tsISO8601": "2024-01-01T00:30:00.000+00:00", "pC_1": 13000.0},
         t0 + timedelta(minutes=15)),
        ({"id": "demo-elec-1", "tsISO8601": "2024-01-01T01:30:00.000+00:00", "pC_1": 13500.0},
         t0 + timedelta(minutes=75)),
    ]  # fmt: skip
    # Without the opening (the stream has packets), instant values at or before the vendor's latest are left out.
    later = list(PacketBuilder(wattics_stream(meter)).packets(rows[:1], after=t0))
    assert [json.loads(p.body) for p in later] == [
        {"id": "demo-elec-1", "tsISO8601": "2024-01-01T00:15:00.000+00:00", "pC_1": 1000.0}
    ]


@pytest.mark.django_db
def test_single_value_and_power_meters_keep_the_instant_of_the_file(org):
    site = factories.make_site(org, timezone="UTC")
    power = factories.make_meter(site, wattics_stream_id="demo-elec-1", unit="kW")
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    (packet,) = PacketBuilder(wattics_stream(power)).packets([(t0, 1.5, {"v_1": 231.0})], opening=True)
    assert json.loads(packet.body) == {"id": "demo-elec-1", "tsISO8601": "2024-01-01T00:00:00.000+00:00",
                                       "v_1": 231.0, "aP_1": 1500.0}  # fmt: skip


@pytest.mark.django_db
def test_it_never_reads_a_wattics_error_as_json_and_falls_back_on_an_unreadable_latest_packet(org, wattics_sim):
    from vendors.wattics import LatestUnreadable

    client, log = _client(wattics_sim, org)
    wattics_sim.faults(fail_next=[503], retry_after=7)
    result = client.push(_body("demo-elec-1", "2024-01-01T00:00:00.000+00:00", 1))
    assert (result.outcome, result.retry_after) == (Outcome.TRANSIENT, 7.0)
    assert result.message == "Wattics HTTP 503: HTTP Status 503 - Service Unavailable"
    client.push(_body("demo-elec-1", "2024-01-01T00:00:00.000+00:00", 1))
    wattics_sim.faults(other_latest_shape=True)
    with pytest.raises(LatestUnreadable, match="could not be read"):
        client.latest()
    log.flush()
    assert HttpExchange.objects.filter(status_code=503).get().error == "HTTP Status 503 - Service Unavailable"


def test_each_credential_set_has_its_own_session_on_a_thread():
    from vendors import http

    a = http.session(http.session_key("https://web-collector.wattics.com/", "acme"))
    b = http.session(http.session_key("https://web-collector.wattics.com", "globex"))
    assert a is not b and a is http.session(http.session_key("https://web-collector.wattics.com", "acme"))
    a.cookies.set("JSESSIONID", "acme-session")
    assert "JSESSIONID" not in b.cookies
    # Without an explicit key, the origin and the request's credentials name the session.
    bearer = {"headers": {"Authorization": "Bearer t-1"}}
    assert http._derived_key("https://api.wattcarbon.com/meters", bearer) != http._derived_key(
        "https://api.wattcarbon.com/meters", {"headers": {"Authorization": "Bearer t-2"}}
    )
    assert "t-1" not in http._derived_key("https://api.wattcarbon.com/meters", bearer)
    assert http._derived_key("https://x.example/token", {"data": {"username": "a@x"}}).endswith("|a@x")
    # A thread keeps a bounded number of sessions.
    for i in range(http.SESSIONS_PER_THREAD + 5):
        http.session(f"k{i}")
    assert len(http._local.sessions) == http.SESSIONS_PER_THREAD
