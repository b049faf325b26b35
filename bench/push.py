"""Wattics push: the portal's push path against raw HTTP loops, then serial against parallel.

    .venv/bin/python bench/push.py [--quick]

Part 1, 10,000 packets of one meter to the Wattics simulator (no added latency):
  (a) portal: a stored upload, its readings and a queued delivery; the Celery task
      function `delivery_push_task` called directly, in this process;
  (b) raw: one keep-alive http.client.HTTPConnection (TCP_NODELAY), the same packets,
      basic auth, prebuilt bodies: the floor of what HTTP to the simulator costs;
  (c) naive: requests.post per packet, a new connection each time.
  Targets: portal/raw >= 0.8, portal/naive >= 3.
Part 2, 16 meters x 200 packets with 20 ms simulated latency:
  serial: the 16 deliveries pushed one after another in this process;
  parallel: a real Celery worker (--pool threads --concurrency 16) on portal_bench and
  Redis, the 16 deliveries created and enqueued by deliveries_create_for_upload.
  Target: parallel at least 10x faster than serial.
Part 3, 200 streams x 300 packets with 50 ms simulated latency (the latency bound is
  200 / 50 ms = 4,000 packets/s): one real worker started exactly as `make run` starts it
  (core.worker.worker_command: pool and threads from the settings, which compose's worker
  reads too), on portal_bench and Redis. Timed from the enqueue of the 200 deliveries to all
  delivered. Checked: every stream holds its 300 packets at the simulator, none discarded
  (Wattics discards a packet older than the stream's latest: in order per stream), in time
  order; the exchange log holds one row per packet plus the GETs. CPU seconds per packet of
  the worker and of the simulator (from /proc/<pid>/stat) against the raw keep-alive loop's
  (this process and the simulator, no latency). Target: >= 0.5x the bound.
Each case pushes to streams that have no packet yet (the simulator is reset between
cases, and Wattics discards packets that are not newer than the latest). Every case runs
common.RUNS times; times, rates and ratios are reported as median and range (a ratio is
taken within one round, then summarised).
"""

import argparse
import base64
import http.client
import itertools
import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import common

START = datetime(2024, 1, 1, tzinfo=UTC)
USERNAME, PASSWORD = "demo", "demo-password"
PUSH_PATH = "/measurements/v2/unifiedjson/"
PARALLEL_METERS = 16
LATENCY_MS = 20
MANY_STREAMS, MANY_PACKETS, MANY_LATENCY_MS = 200, 300, 50
TARGETS = {"portal/raw": 0.8, "portal/naive": 3.0, "parallel speed-up": 10.0, "many streams / bound": 0.5}


def make_meter(site, name: str, stream: str):
    from sites.models import Meter

    return Meter.objects.create(
        organization=site.organization, site=site, name=name, wattics_stream_id=stream, unit="kWh", interval_minutes=15
    )


def store_readings(upload, meters, count: int) -> None:
    """count 15-minute readings per meter, linked to the upload (as upload_store leaves them)."""
    from uploads.models import Reading

    rows = [
        Reading(meter=m, ts=START + timedelta(minutes=15 * i), value=1.0 + (i % 96) / 100, upload=upload)
        for m in meters
        for i in range(count)
    ]
    Reading.objects.bulk_create(rows, batch_size=5000)


def queued_delivery(upload, meter, count: int):
    """What deliveries_create_for_upload creates, without enqueueing it."""
    from uploads.models import Delivery

    return Delivery.objects.create(
        organization=upload.organization,
        upload=upload,
        meter=meter,
        target="wattics",
        status="queued",
        total=count,
        first_ts=START,
        last_ts=START + timedelta(minutes=15 * (count - 1)),
    )


def push_in_process(delivery) -> None:
    from uploads.tasks import delivery_push_task

    delivery_push_task(delivery.pk)  # the task function itself, run here
    delivery.refresh_from_db()
    assert delivery.status == "delivered", (delivery.status, delivery.last_error)
    assert delivery.acknowledged == delivery.total, (delivery.acknowledged, delivery.total)


def bodies(meter, count: int) -> list[bytes]:
    """The packets the portal sends for these readings, built by its own PacketBuilder."""
    from uploads.models import Reading
    from uploads.services.push_wattics import wattics_stream
    from vendors.wattics import PacketBuilder

    builder = PacketBuilder(wattics_stream(meter))
    rows = Reading.objects.filter(meter=meter).order_by("ts").values_list("ts", "value", "extra")[:count]
    # The stream's opening packet (the register at the first interval's start), then one per reading.
    return [p.body for p in builder.packets(rows, opening=True)]


def raw_loop(url: str, packets: list[bytes]) -> None:
    parts = urlsplit(url)
    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for body in packets:
            conn.request("POST", PUSH_PATH, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
    finally:
        conn.close()


def naive_loop(url: str, packets: list[bytes]) -> None:
    import requests

    for body in packets:
        response = requests.post(
            url + PUSH_PATH,
            data=body,
            auth=(USERNAME, PASSWORD),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 200, response.status_code


def accepted(sim, stream: str) -> int:
    return sim.state()["streams"][stream]["accepted"]


# ----- a real worker ---------------------------------------------------------------------


class Worker:
    """A real worker process. With `concurrency`, a threads pool of that size (parts 1-2, as
    before); without, exactly as `make run` starts it (pool and threads from the settings)."""

    def __init__(self, concurrency: int | None = None):
        from core.worker import worker_command

        self.log_path = common.OUT / "push-worker.log"
        sizing = ["--pool", "threads", "--concurrency", str(concurrency)] if concurrency else []
        cmd = worker_command(
            *sizing, "-Q", common.bench_env()["CELERY_QUEUE"], "--hostname", f"bench-{time.time_ns()}@%h"
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=common.ROOT, env=common.child_env(), stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while b" ready." not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def wait_delivered(upload, expected: int, timeout: float) -> None:
    from uploads.models import Delivery

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = list(Delivery.objects.filter(upload=upload).values_list("status", flat=True))
        if len(statuses) == expected and all(s == "delivered" for s in statuses):
            return
        if any(s in ("failed", "partially_failed", "cancelled") for s in statuses):
            raise RuntimeError(f"a delivery ended {statuses}")
        time.sleep(0.05)
    raise RuntimeError(f"not all delivered after {timeout:.0f} s")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; utime, stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def check_stream(sim, stream: str, expected: int) -> None:
    """The stream holds `expected` packets, none discarded, in strictly increasing time."""
    got = sim.packets(stream)
    accepted = got["accepted"]
    assert len(accepted) == expected and not got["discarded"], (stream, len(accepted), len(got["discarded"]))
    instants = [datetime.fromisoformat(p["tsISO8601"]) for p in accepted]
    assert all(a < b for a, b in itertools.pairwise(instants)), f"{stream}: packets out of order"


def many_streams(sim, org, site, *, streams: int, packets: int, latency_ms: int) -> dict:
    """Part 3: `streams` meters x `packets` packets at `latency_ms`, one worker as make run starts it."""
    from django.conf import settings

    from uploads.models import Delivery, Upload
    from uploads.services.deliveries import deliveries_create_for_upload
    from vendors.models import HttpExchange

    readings = packets - 1  # the stream's opening packet, then one per reading
    meters = [make_meter(site, f"Many {i:03d}", f"bench-many-{i:03d}") for i in range(streams)]
    upload = Upload.objects.create(
        organization=org, original_name="many-streams.csv", status="stored", targets=["wattics"],
        rows_total=streams * readings, rows_valid=streams * readings,
    )  # fmt: skip
    store_readings(upload, meters, readings)
    exchanges = HttpExchange.objects.filter(meter__in=meters)

    # The raw keep-alive loop's CPU per packet, on loopback without latency: this process and the simulator.
    # Ten streams' packets, one stream after the other (each in its own order): enough packets
    # for /proc's 10 ms clock ticks.
    raw_packets = [b for m in meters[:10] for b in bodies(m, readings)]
    raw_client, raw_sim = [], []
    for _ in range(common.RUNS):
        sim.reset()
        client0, sim0 = time.process_time(), cpu_seconds(sim.proc.pid)
        raw_loop(sim.url, raw_packets)
        raw_client.append((time.process_time() - client0) / len(raw_packets))
        raw_sim.append((cpu_seconds(sim.proc.pid) - sim0) / len(raw_packets))

    total = streams * packets
    seconds, worker_cpu, sim_cpu, worker_cores = [], [], [], []
    worker = Worker()  # as make run starts it
    try:
        for _ in range(common.RUNS):
            sim.reset()
            sim.faults(latency_ms=latency_ms)
            Delivery.objects.filter(upload=upload).delete()
            exchanges.delete()
            w0, s0 = cpu_seconds(worker.proc.pid), cpu_seconds(sim.proc.pid)
            with common.Timer() as t:
                created = deliveries_create_for_upload(upload=upload)  # enqueued at once: no transaction is open
                wait_delivered(upload, len(created), timeout=900)
            w1, s1 = cpu_seconds(worker.proc.pid), cpu_seconds(sim.proc.pid)
            seconds.append(t.seconds)
            worker_cpu.append((w1 - w0) / total)
            sim_cpu.append((s1 - s0) / total)
            worker_cores.append((w1 - w0) / t.seconds)
            for m in meters:
                check_stream(sim, m.wattics_stream_id, packets)
            posts = exchanges.filter(method="POST", status_code=200).count()
            gets = exchanges.filter(method="GET").count()
            assert posts == total, f"exchange log: {posts} packet rows, expected {total}"
            assert gets >= streams, f"exchange log: {gets} GETs, expected at least {streams}"
            assert exchanges.count() == posts + gets, "exchange log: rows that are neither a packet nor a GET"
    finally:
        worker.stop()
    bound = streams / (latency_ms / 1000)
    rates = [total / x for x in seconds]
    return {
        "streams": streams,
        "packets_per_stream": packets,
        "latency_ms": latency_ms,
        "worker_pool": settings.CELERY_WORKER_POOL,
        "worker_concurrency": settings.CELERY_WORKER_CONCURRENCY,
        "bound_packets_per_s": bound,
        "seconds": common.spread(seconds),
        "packets_per_s": common.spread(rates),
        "ratio_to_bound": common.spread([r / bound for r in rates]),
        "exchange_rows": {"packets": total, "gets": gets},
        "cpu_ms_per_packet": {
            "worker": common.spread([x * 1000 for x in worker_cpu]),
            "simulator": common.spread([x * 1000 for x in sim_cpu]),
            "raw_client": common.spread([x * 1000 for x in raw_client]),
            "raw_simulator": common.spread([x * 1000 for x in raw_sim]),
        },
        "raw/worker cpu": common.spread([r / w for r, w in zip(raw_client, worker_cpu, strict=True)]),
        "worker_cores_busy": common.spread(worker_cores),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="1,000 packets; 16 meters x 50 packets; 50 streams x 60 packets"
    )
    parser.add_argument("--parts", default="1,2,3", help="which parts to run (default: 1,2,3)")
    args = parser.parse_args()
    parts = {int(p) for p in args.parts.split(",")}
    packets = 1_000 if args.quick else 10_000
    per_meter = 50 if args.quick else 200
    n_streams, many_packets = (50, 60) if args.quick else (MANY_STREAMS, MANY_PACKETS)

    common.recreate_database()
    common.setup_django()
    from accounts.models import Organization
    from accounts.services import credentials_update
    from simulators.testing import SimulatorProcess
    from sites.models import Site
    from uploads.models import Delivery, Upload
    from uploads.services.deliveries import deliveries_create_for_upload

    streams = ["bench-portal", "bench-raw", "bench-naive"] + [f"bench-par-{i:02d}" for i in range(PARALLEL_METERS)]
    streams += [f"bench-many-{i:03d}" for i in range(n_streams)]
    sim = SimulatorProcess("wattics", "--streams", ",".join(streams)).start()
    try:
        org = Organization.objects.create(name="Bench", slug="bench")
        credentials_update(
            organization=org, wattics_base_url=sim.url, wattics_username=USERNAME, wattics_password=PASSWORD
        )
        site = Site.objects.create(organization=org, name="Bench site", timezone="Europe/Dublin")

        part1 = part2 = part3 = None
        if 1 in parts:
            # --- part 1: one meter, three ways --------------------------------------------------
            meter = make_meter(site, "Single", "bench-portal")
            upload = Upload.objects.create(
                organization=org,
                original_name="single.csv",
                status="stored",
                targets=["wattics"],
                rows_total=packets,
                rows_valid=packets,
            )
            store_readings(upload, [meter], packets)
            prebuilt = bodies(meter, packets)
            raw_packets = [b.replace(b'"bench-portal"', b'"bench-raw"') for b in prebuilt]
            naive_packets = [b.replace(b'"bench-portal"', b'"bench-naive"') for b in prebuilt]
            seconds: dict[str, list[float]] = {"portal": [], "raw": [], "naive": []}
            for _ in range(common.RUNS):
                # Each round starts afresh: the vendor forgets the packets (the streams given at start
                # stay) and the portal its deliveries, so nothing counts as already at the vendor.
                sim.reset()
                Delivery.objects.filter(meter=meter).delete()
                with common.Timer() as t:
                    push_in_process(queued_delivery(upload, meter, packets))
                seconds["portal"].append(t.seconds)
                assert accepted(sim, "bench-portal") == packets + 1  # the opening packet, then one per reading
                with common.Timer() as t:
                    raw_loop(sim.url, raw_packets)
                seconds["raw"].append(t.seconds)
                assert accepted(sim, "bench-raw") == packets + 1
                with common.Timer() as t:
                    naive_loop(sim.url, naive_packets)
                seconds["naive"].append(t.seconds)
                assert accepted(sim, "bench-naive") == packets + 1

            rates = {name: [packets / x for x in xs] for name, xs in seconds.items()}
            part1 = {
                "packets": packets,
                "seconds": {name: common.spread(xs) for name, xs in seconds.items()},
                "packets_per_s": {name: common.spread(xs) for name, xs in rates.items()},
                "portal/raw": common.spread([p / r for p, r in zip(rates["portal"], rates["raw"], strict=True)]),
                "portal/naive": common.spread([p / n for p, n in zip(rates["portal"], rates["naive"], strict=True)]),
            }

        if 2 in parts:
            # --- part 2: 16 meters, 20 ms latency, serial vs a real worker ----------------------
            meters = [make_meter(site, f"Parallel {i:02d}", f"bench-par-{i:02d}") for i in range(PARALLEL_METERS)]
            parallel_upload = Upload.objects.create(
                organization=org,
                original_name="many.csv",
                status="stored",
                targets=["wattics"],
                rows_total=PARALLEL_METERS * per_meter,
                rows_valid=PARALLEL_METERS * per_meter,
            )
            store_readings(parallel_upload, meters, per_meter)
            serial_s: list[float] = []
            serial_upload = Upload.objects.create(
                organization=org, original_name="serial.csv", status="stored", targets=["wattics"]
            )
            for _ in range(common.RUNS):
                sim.reset()
                sim.faults(latency_ms=LATENCY_MS)
                Delivery.objects.filter(meter__in=meters).delete()
                with common.Timer() as t:
                    for m in meters:
                        push_in_process(queued_delivery(serial_upload, m, per_meter))
                serial_s.append(t.seconds)

            parallel_s: list[float] = []
            worker = Worker(concurrency=PARALLEL_METERS)
            try:
                for _ in range(common.RUNS):
                    sim.reset()
                    sim.faults(latency_ms=LATENCY_MS)
                    Delivery.objects.filter(meter__in=meters).delete()
                    # Enqueued at once: no transaction is open.
                    with common.Timer() as t:
                        created = deliveries_create_for_upload(upload=parallel_upload)
                        wait_delivered(parallel_upload, len(created), timeout=600)
                    parallel_s.append(t.seconds)
                    assert all(accepted(sim, m.wattics_stream_id) == per_meter + 1 for m in meters)
            finally:
                worker.stop()
            part2 = {
                "meters": PARALLEL_METERS,
                "packets_per_meter": per_meter,
                "latency_ms": LATENCY_MS,
                "serial_s": common.spread(serial_s),
                "parallel_s": common.spread(parallel_s),
                "speed-up": common.spread([a / b for a, b in zip(serial_s, parallel_s, strict=True)]),
                "ideal_parallel_s": per_meter * LATENCY_MS / 1000,
            }
        if 3 in parts:
            part3 = many_streams(sim, org, site, streams=n_streams, packets=many_packets, latency_ms=MANY_LATENCY_MS)
    finally:
        sim.stop()

    print(f"Wattics push; median (range) of {common.RUNS} runs; commit {common.commit()}")
    ratios = {}
    if part1:
        print(f"\n{packets:,} packets of one meter (simulator on loopback, no added latency)")
        print(
            common.table(
                ["path", "seconds", "packets/s"],
                [
                    [label, common.show(part1["seconds"][name], ".2f"), common.show(part1["packets_per_s"][name])]
                    for name, label in (
                        ("portal", "portal delivery_push_task (in-process)"),
                        ("raw", "raw http.client keep-alive"),
                        ("naive", "naive requests.post per packet"),
                    )
                ],
            )
        )
        ratios["portal/raw"] = part1["portal/raw"]
        ratios["portal/naive"] = part1["portal/naive"]
    if part2:
        print(f"\n{PARALLEL_METERS} meters x {per_meter} packets, {LATENCY_MS} ms latency per request")
        print(
            common.table(
                ["run", "seconds"],
                [
                    ["serial, in-process", common.show(part2["serial_s"], ".1f")],
                    [f"Celery worker, {PARALLEL_METERS} threads", common.show(part2["parallel_s"], ".1f")],
                ],
            )
        )
        ratios["parallel speed-up"] = part2["speed-up"]
    if part3:
        cpu = part3["cpu_ms_per_packet"]
        print(
            f"\n{part3['streams']} streams x {part3['packets_per_stream']} packets, {part3['latency_ms']} ms latency "
            f"per request; one worker as make run starts it ({part3['worker_pool']} pool, "
            f"{part3['worker_concurrency']} threads); bound {part3['bound_packets_per_s']:,.0f} packets/s"
        )
        print(
            common.table(
                ["figure", "value"],
                [
                    ["enqueue to all delivered (s)", common.show(part3["seconds"], ".1f")],
                    ["packets/s", common.show(part3["packets_per_s"])],
                    ["CPU ms per packet: worker", common.show(cpu["worker"], ".3f")],
                    ["CPU ms per packet: simulator (under the worker)", common.show(cpu["simulator"], ".3f")],
                    ["CPU ms per packet: raw keep-alive client", common.show(cpu["raw_client"], ".3f")],
                    ["CPU ms per packet: simulator (under the raw loop)", common.show(cpu["raw_simulator"], ".3f")],
                    ["raw client / worker CPU per packet", common.show(part3["raw/worker cpu"], ".2f", "x")],
                    ["worker CPU busy (cores)", common.show(part3["worker_cores_busy"], ".2f")],
                ],
            )
        )
        print(
            "in order per stream, nothing lost, exchange log complete: checked "
            f"({part3['exchange_rows']['packets']:,} packet rows + {part3['exchange_rows']['gets']} GETs)"
        )
        ratios["many streams / bound"] = part3["ratio_to_bound"]
    print()
    verdicts = {}
    for name, value in ratios.items():
        verdicts[name] = value["median"] >= TARGETS[name]
        print(
            f"{name:20} {common.show(value, '.2f', 'x')}  (target >= {TARGETS[name]}x): "
            f"{'met' if verdicts[name] else 'MISSED'}"
        )
    common.write_result(
        "push",
        {
            "quick": args.quick,
            "parts": sorted(parts),
            "single_meter": part1,
            "parallel": part2,
            "many_streams": part3,
            "ratios": ratios,
            "targets": TARGETS,
            "met": verdicts,
        },
    )


if __name__ == "__main__":
    main()
