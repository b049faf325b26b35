"""A consumer process for the broker burst test: receives messages of one queue and
appends each message's number to a file (one line each), acknowledging it."""

import json
import sys

from kombu import Connection

import core.broker  # noqa: F401 - registers portalfs://


def main(url: str, options: str, queue: str, out: str) -> None:
    with Connection(url, transport_options=json.loads(options)) as conn, open(out, "a", buffering=1) as f:
        q = conn.SimpleQueue(queue)
        while True:
            try:
                message = q.get(timeout=0.5)
            except q.Empty:
                continue
            f.write(f"{message.payload['n']}\n")
            message.ack()


if __name__ == "__main__":
    main(*sys.argv[1:5])
