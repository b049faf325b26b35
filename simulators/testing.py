"""Start a simulator as a subprocess from tests (stdlib + requests; no Django).

Stable API, used by the portal's own fixtures::

    from simulators.testing import SimulatorProcess

    with SimulatorProcess("wattics", "--streams", "m-1,m-2") as sim:
        requests.post(sim.url + "/measurements/v2/unifiedjson/", auth=("demo", "demo-password"), data=...)
        assert sim.packets("m-1")["accepted"] == [...]

``SimulatorProcess(kind, *args)``: ``kind`` is "wattcarbon" or "wattics", ``args`` are extra
command-line options (``--port`` defaults to 0, i.e. a free port, ``--host`` to 127.0.0.1).

- ``start()`` / ``stop()`` (also a context manager); ``url``, ``host``, ``port``
- ``state()``: GET /_sim/state
- ``faults(**knobs)``: POST /_sim/faults with the knobs (GET when none); returns the faults
- ``reset()``: POST /_sim/reset (data and faults back to the start-up configuration)
- ``packets(stream_id)``: Wattics, GET /_sim/streams/{id}/packets
- ``register_stream(stream_id, username="demo")``: Wattics, POST /_sim/streams
- ``intervals(meter_id)`` / ``bills(meter_id)``: WattCarbon, the stored rows, sorted
- ``add_account(**fields)``: POST /_sim/accounts (email/api_key or username/password/streams)
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from . import KINDS

PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
READY_MARKER = " simulator listening on "


class SimulatorProcess:
    def __init__(
        self,
        kind: str,
        *args: str,
        host: str = "127.0.0.1",
        port: int = 0,
        python: str = sys.executable,
        startup_timeout: float = 15.0,
        env: dict[str, str] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.kind = kind
        self.args = [str(a) for a in args]
        self.host = host
        self.port = port
        self.python = python
        self.startup_timeout = startup_timeout
        self.env = env
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    # ----- lifecycle ---------------------------------------------------------------------
    def start(self) -> SimulatorProcess:
        if self.proc is not None:
            raise RuntimeError("simulator already started")
        env = dict(os.environ if self.env is None else self.env)
        # Make "python -m simulators" importable whatever the current directory is.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_PARENT, env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [self.python, "-m", "simulators", self.kind, "--host", self.host,
               "--port", str(self.port), *self.args]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=None, stdin=subprocess.DEVNULL, text=True, env=env
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream: Any) -> None:
            # Keep draining stdout so the child can never block on a full pipe.
            for line in stream:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True).start()
        try:
            while True:
                line = lines.get(timeout=self.startup_timeout)
                if line is None:
                    code = self.proc.wait(timeout=5)
                    raise RuntimeError(f"{self.kind} simulator exited with {code} before ready")
                if READY_MARKER in line:
                    self.url = line.rsplit(" ", 1)[-1].strip()
                    self.port = int(self.url.rsplit(":", 1)[-1])
                    return self
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"{self.kind} simulator not ready after {self.startup_timeout}s") from None
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SimulatorProcess {self.kind} {self.url or 'not started'}>"

    # ----- inspection helpers ------------------------------------------------------------
    def _get(self, path: str) -> Any:
        resp = requests.get(self.url + path, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        resp = requests.post(self.url + path, json=payload, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def state(self) -> dict[str, Any]:
        return self._get("/_sim/state")

    def faults(self, **knobs: Any) -> dict[str, Any]:
        """Merge knobs into the current faults (GET them when called without knobs).

        Knobs: latency_ms, fail_500, fail_503, drop (shares 0..1), maintenance (bool),
        maintenance_seconds, token_ttl (WattCarbon), fail_next (list of codes or "drop").
        """
        if not knobs:
            return self._get("/_sim/faults")
        return self._post("/_sim/faults", knobs)

    def reset(self) -> None:
        self._post("/_sim/reset", {})

    def wait_until(self, condition: Callable[[], bool], *, what: str, timeout: float = 30) -> None:
        """Poll until condition() holds, rather than sleeping for a guessed time."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.kind} simulator: timed out after {timeout}s waiting until {what}")
            time.sleep(0.05)

    def wait_tokens_expired(self, timeout: float = 30) -> None:
        """Until every bearer token the (WattCarbon) simulator issued has expired."""
        self.wait_until(lambda: self.state()["tokens"] == 0, what="no token is live", timeout=timeout)

    def packets(self, stream_id: str) -> dict[str, Any]:
        return self._get(f"/_sim/streams/{stream_id}/packets")

    def register_stream(self, stream_id: str, username: str = "demo") -> None:
        self._post("/_sim/streams", {"id": stream_id, "username": username})

    def intervals(self, meter_id: int) -> list[dict[str, Any]]:
        return self._get(f"/_sim/meters/{meter_id}/intervals")["intervals"]

    def bills(self, meter_id: int) -> list[dict[str, Any]]:
        return self._get(f"/_sim/meters/{meter_id}/bills")["bills"]

    def documents(self, asset_id: int) -> list[dict[str, Any]]:
        return self._get(f"/_sim/assets/{asset_id}/documents")["documents"]

    def add_account(self, **fields: Any) -> None:
        self._post("/_sim/accounts", fields)
