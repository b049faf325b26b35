"""The embedded broker (`make run` without Redis) loses no message and delivers none twice.

A burst of 20,000 tiny messages is published from two processes while two consumer
processes receive them: every message arrives exactly once. kombu's own filesystem
transport fails this (a reader takes a file before it is written: JSONDecodeError, the
message gone), which is what crashed a worker under `make run`."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kombu import Connection

import core.broker  # noqa: F401 - registers portalfs://
from core.broker import ensure_folders

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 20_000
PRODUCERS = 2
CONSUMERS = 2

PRODUCER = """
import json, sys
from kombu import Connection
import core.broker
url, options, queue, first, count = sys.argv[1:6]
with Connection(url, transport_options=json.loads(options)) as conn:
    q = conn.SimpleQueue(queue)
    for n in range(int(first), int(first) + int(count)):
        q.put({"n": n})
"""


def burst(url: str, tmp_path: Path) -> tuple[list[int], float, list[str]]:
    folder = tmp_path / "broker"
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
    ensure_folders(options)
    queue = "burst"
    # Declare the queue (and its binding) once before anyone publishes.
    with Connection(url, transport_options=options) as conn:
        conn.SimpleQueue(queue).close()
    outs = [tmp_path / f"received-{i}.txt" for i in range(CONSUMERS)]
    consumers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.core.broker_consumer", url, json.dumps(options), queue, str(out)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for out in outs
    ]
    start = time.monotonic()
    per = MESSAGES // PRODUCERS
    producers = [
        subprocess.Popen(
            [sys.executable, "-c", PRODUCER, url, json.dumps(options), queue, str(i * per), str(per)], cwd=ROOT
        )
        for i in range(PRODUCERS)
    ]
    for p in producers:
        assert p.wait(120) == 0
    received: list[int] = []
    # About 50 s on the shared 2-core machine under load; the margin is for a busier one.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and any(c.poll() is None for c in consumers):
        received = [int(line) for out in outs if out.exists() for line in out.read_text().split()]
        if len(received) >= MESSAGES:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - start
    time.sleep(1.0)  # a duplicate would arrive now
    errors = []
    for c in consumers:
        if c.poll() is None:
            c.terminate()
            c.wait(10)
        else:
            errors.append(c.stderr.read().decode()[-2000:])
    received = [int(line) for out in outs if out.exists() for line in out.read_text().split()]
    return received, elapsed, errors


@pytest.mark.worker
def test_a_burst_of_20000_messages_arrives_exactly_once(tmp_path):
    received, elapsed, errors = burst("portalfs://", tmp_path)
    assert not errors, errors
    assert len(received) == MESSAGES, f"{MESSAGES - len(received)} messages lost"
    assert sorted(received) == list(range(MESSAGES)), "a message was delivered twice or lost"
    assert elapsed < 240
    print(f"\n{MESSAGES} messages, {PRODUCERS} producers, {CONSUMERS} consumers: {elapsed:.1f} s, 0 lost")
    assert not list((tmp_path / "broker" / "queue").glob("*.msg")), "messages left behind"


def test_a_message_file_still_being_written_is_left_for_later_not_lost(tmp_path):
    """A file that does not decode yet (a writer without rename, mid-write) is put back and read once whole."""
    folder = tmp_path / "broker"
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    ensure_folders(options)
    with Connection("portalfs://", transport_options=options) as conn:
        q = conn.SimpleQueue("partial")
        q.put({"n": 1})
        (whole,) = (folder / "queue").glob("*.partial.msg")
        body = whole.read_bytes()
        whole.write_bytes(body[: len(body) // 2])  # caught mid-write
        with pytest.raises(q.Empty):
            q.get(timeout=0.3)
        assert whole.exists(), "the half-written message was dropped"
        whole.write_bytes(body)  # the writer finished
        message = q.get(timeout=2)
        assert message.payload == {"n": 1}
        message.ack()
        assert not list((folder / "queue").glob("*.msg"))
