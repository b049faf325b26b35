"""HTTP plumbing shared by both simulators: server, handler, routing, fault injection.

A vendor simulator is a :class:`SimApp` subclass that registers routes and keeps its own
state behind ``self.lock``. The handler here reads each request fully, applies the fault
knobs to non-``/_sim`` requests *before* the app sees them (so an injected 500/503 never
changes state), then writes status line, headers and body in a single ``write`` so that
keep-alive clients are not slowed down by Nagle/delayed-ACK interplay.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SIM_PREFIX = "/_sim"
MAX_BODY_BYTES = 64 * 1024 * 1024
# Idle keep-alive connections are closed after this many seconds.
IDLE_TIMEOUT_S = 300

FAULT_SHARES = ("fail_500", "fail_503", "drop")


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # Headers: a dict with case-insensitive get()
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    def query_one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def dumps(obj: Any) -> bytes:
    # Compact, like FastAPI/Starlette's JSONResponse.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, dumps(obj), "application/json", headers or [])


def text_response(status: int, text: str) -> Response:
    return Response(status, text.encode(), "text/plain; charset=utf-8")


class BadFaults(ValueError):
    pass


class SimApp:
    """Base of a vendor simulator: routes, counters, fault knobs, optional state file."""

    name = "sim"
    server_version = "Simulator/1.0"

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        fail_500: float = 0.0,
        fail_503: float = 0.0,
        drop: float = 0.0,
        seed: int = 0,
        state_file: str | None = None,
        verbose: bool = False,
    ) -> None:
        # One lock around every state mutation (and around reads that must be consistent).
        self.lock = threading.Lock()
        self.verbose = verbose
        self.seed = seed
        self.rng = random.Random(seed)
        self.state_file = state_file
        self._dirty = False
        self.requests = 0
        self.connections = 0
        self.baseline_faults = self.default_faults()
        self.baseline_faults.update(latency_ms=latency_ms, fail_500=fail_500, fail_503=fail_503, drop=drop)
        self.validate_faults(self.baseline_faults)
        self.faults: dict[str, Any] = {}
        self.maintenance_until = 0.0
        self._restore_faults()
        self._routes: list[tuple[str, re.Pattern[str], Callable[[Request], Response]]] = []
        self.register_routes()
        self.add_route("GET", "/_sim/state", self.sim_state)
        self.add_route("GET", "/_sim/health", lambda req: json_response(200, {"ok": True}))
        self.add_route("GET", "/_sim/faults", self.sim_get_faults)
        self.add_route("POST", "/_sim/faults", self.sim_post_faults)
        self.add_route("POST", "/_sim/reset", self.sim_reset)

    # ----- to override -------------------------------------------------------------------
    def register_routes(self) -> None:
        raise NotImplementedError

    def error_response(self, status: int) -> Response:
        """Body of an injected error (fault knob) in the vendor's own style."""
        return json_response(status, {"error": HTTPStatus(status).phrase})

    def not_found(self) -> Response:
        return json_response(404, {"error": "not found"})

    def method_not_allowed(self) -> Response:
        return json_response(405, {"error": "method not allowed"})

    def summary(self) -> dict[str, Any]:
        """Vendor part of GET /_sim/state; called with the lock held."""
        return {}

    def reset_data(self) -> None:
        """Forget data, keep configured accounts; called with the lock held."""

    def snapshot(self) -> dict[str, Any]:
        """JSON-able persistent state for --state-file; called with the lock held."""
        return {}

    def restore(self, data: dict[str, Any]) -> None:
        """Load what :meth:`snapshot` produced."""

    def default_faults(self) -> dict[str, Any]:
        return {
            "latency_ms": 0,
            "fail_500": 0.0,
            "fail_503": 0.0,
            "drop": 0.0,
            "maintenance": False,
            "fail_next": [],
        }

    # ----- routing -----------------------------------------------------------------------
    def add_route(self, method: str, pattern: str, fn: Callable[[Request], Response]) -> None:
        # "{name}" in a pattern matches one path segment.
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self._routes.append((method, re.compile(regex), fn))

    def handle(self, req: Request) -> Response:
        path_matched = False
        for method, regex, fn in self._routes:
            m = regex.match(req.path)
            if m is None:
                continue
            if method != req.method:
                path_matched = True
                continue
            req.params = m.groupdict()
            return fn(req)
        return self.method_not_allowed() if path_matched else self.not_found()

    # ----- faults ------------------------------------------------------------------------
    def validate_faults(self, knobs: dict[str, Any]) -> None:
        allowed = set(self.default_faults()) | {"maintenance_seconds"}
        for key, value in knobs.items():
            if key not in allowed:
                raise BadFaults(f"unknown fault knob: {key}")
            if key in FAULT_SHARES:
                if not _is_number(value) or not 0 <= value <= 1:
                    raise BadFaults(f"{key} must be a number between 0 and 1")
            elif key in ("latency_ms", "maintenance_seconds"):
                if not _is_number(value) or value < 0:
                    raise BadFaults(f"{key} must be a number >= 0")
            elif key == "token_ttl":
                if not _is_number(value) or value <= 0:
                    raise BadFaults("token_ttl must be a number > 0")
            elif key == "maintenance":
                if not isinstance(value, bool):
                    raise BadFaults("maintenance must be a boolean")
            elif key == "fail_next" and (not isinstance(value, list) or not all(map(_is_fail_next_item, value))):
                raise BadFaults('fail_next must be a list of status codes or "drop"')

    def _restore_faults(self) -> None:
        self.faults = {k: (list(v) if isinstance(v, list) else v) for k, v in self.baseline_faults.items()}
        self.maintenance_until = 0.0

    def faults_view(self) -> dict[str, Any]:
        view = dict(self.faults)
        view["fail_next"] = list(self.faults["fail_next"])
        view["maintenance_seconds"] = round(max(0.0, self.maintenance_until - time.time()), 3)
        return view

    def before_request(self) -> tuple[float, Any]:
        """Count a vendor request and decide its fate: (delay in s, None|"drop"|status|"maint")."""
        with self.lock:
            self.requests += 1
            f = self.faults
            delay = f["latency_ms"] / 1000.0
            if f["fail_next"]:
                return delay, f["fail_next"].pop(0)
            if f["maintenance"] or (self.maintenance_until and time.time() < self.maintenance_until):
                return delay, "maint"
            if f["drop"] and self.rng.random() < f["drop"]:
                return delay, "drop"
            if f["fail_500"] and self.rng.random() < f["fail_500"]:
                return delay, 500
            if f["fail_503"] and self.rng.random() < f["fail_503"]:
                return delay, 503
            return delay, None

    def fault_response(self, action: Any) -> Response:
        if action == "maint":
            resp = self.error_response(503)
            left = self.maintenance_until - time.time()
            retry = max(1, math.ceil(left)) if left > 0 and not self.faults["maintenance"] else 1
            resp.headers.append(("Retry-After", str(retry)))
            return resp
        resp = self.error_response(action)
        if action in (429, 503):
            resp.headers.append(("Retry-After", "1"))
        return resp

    # ----- /_sim endpoints -----------------------------------------------------------------
    def sim_state(self, req: Request) -> Response:
        with self.lock:
            data = self.summary()
            data["requests"] = self.requests
            data["connections"] = self.connections
            data["faults"] = self.faults_view()
            return json_response(200, data)

    def sim_get_faults(self, req: Request) -> Response:
        with self.lock:
            return json_response(200, self.faults_view())

    def sim_post_faults(self, req: Request) -> Response:
        try:
            knobs = json.loads(req.body or b"{}")
        except ValueError:
            return json_response(400, {"error": "body must be a JSON object"})
        if not isinstance(knobs, dict):
            return json_response(400, {"error": "body must be a JSON object"})
        try:
            self.validate_faults(knobs)
        except BadFaults as exc:
            return json_response(400, {"error": str(exc)})
        with self.lock:
            for key, value in knobs.items():
                if key == "maintenance_seconds":
                    self.maintenance_until = time.time() + value if value > 0 else 0.0
                elif key == "fail_next":
                    self.faults["fail_next"] = list(value)
                else:
                    self.faults[key] = value
                    if key == "maintenance" and not value:
                        self.maintenance_until = 0.0
            return json_response(200, self.faults_view())

    def sim_reset(self, req: Request) -> Response:
        with self.lock:
            self.reset_data()
            self._restore_faults()
            self.rng = random.Random(self.seed)
            self.requests = 0
            self.mark_dirty()
            return json_response(200, {"ok": True})

    # ----- persistence -------------------------------------------------------------------
    def mark_dirty(self) -> None:
        # Called with the lock held; a background thread writes the file (see start_persister)
        # so that persisting does not slow every request down.
        self._dirty = True

    def load_state_file(self) -> None:
        if not self.state_file or not os.path.exists(self.state_file):
            return
        with open(self.state_file, encoding="utf-8") as fh:
            text = fh.read()
        if text.strip():
            self.restore(json.loads(text))

    def flush_state_file(self) -> None:
        if not self.state_file:
            return
        with self.lock:
            if not self._dirty:
                return
            data = dumps(self.snapshot())
            self._dirty = False
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, self.state_file)

    def start_persister(self, interval: float = 0.2) -> None:
        if not self.state_file:
            return

        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    self.flush_state_file()
                except OSError as exc:  # keep serving even if the disk is unhappy
                    print(f"{self.name}: cannot write state file: {exc}", file=sys.stderr)

        threading.Thread(target=loop, name="state-file", daemon=True).start()


def _is_fail_next_item(value: Any) -> bool:
    if value == "drop":
        return True
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Headers(dict):
    """Request headers, keyed by lower-cased name (first occurrence wins, like Message.get)."""

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> Any:
        return dict.get(self, name.lower())


MAX_HEADERS = 100
MAX_LINE = 65536


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S
    server: SimServer

    def setup(self) -> None:
        super().setup()
        app = self.server.app
        with app.lock:
            app.connections += 1

    def parse_request(self) -> bool:
        """BaseHTTPRequestHandler.parse_request, minus the email-package header parser.

        The stdlib builds an email.message.Message per request, which costs more than all
        of a simulator's own work; a benchmark compares clients against this server, so
        headers are read into a plain dict instead. Same rules for versions, keep-alive
        and "Expect: 100-continue".
        """
        self.command = None
        self.request_version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if len(words) != 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path, version = words
        try:
            if not version.startswith("HTTP/"):
                raise ValueError
            major, minor = (int(n) for n in version[5:].split(".", 1))
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
            return False
        if major >= 2:
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version})")
            return False
        if (major, minor) >= (1, 1):
            self.close_connection = False
        self.command, self.path, self.request_version = command, path, version
        if path.startswith("//"):
            self.path = "/" + path.lstrip("/")  # as the stdlib does: not a scheme-relative URL
        headers = Headers()
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, sep, value = line.decode("iso-8859-1").partition(":")
            if not sep or not name or name[0] in " \t":
                self.send_error(HTTPStatus.BAD_REQUEST, "Bad header line")
                return False
            headers.setdefault(name.strip().lower(), value.strip())
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]
        conntype = headers.get("connection", "").lower()
        if "close" in conntype:
            self.close_connection = True
        elif "keep-alive" in conntype:
            self.close_connection = False
        if headers.get("expect", "").lower() == "100-continue" and (major, minor) >= (1, 1):
            return self.handle_expect_100()
        return True

    def version_string(self) -> str:
        return self.server.app.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.app.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BodyError(400, "bad chunked encoding") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise _BodyError(413, "request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        raw = self.headers.get("Content-Length")
        if not raw:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise _BodyError(400, "bad Content-Length") from None
        if length < 0:
            raise _BodyError(400, "bad Content-Length")
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, "request body too large")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        app = self.server.app
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._send(json_response(exc.status, {"error": str(exc)}))
            return
        path, _, query = self.path.partition("?")
        if "://" in path:  # absolute-form request target (via a proxy)
            path = urlsplit(path).path or "/"
        path, _, _ = path.partition("#")
        if not (path == SIM_PREFIX or path.startswith(SIM_PREFIX + "/")):
            delay, action = app.before_request()
            if delay:
                time.sleep(delay)
            if action == "drop":
                # The request has been read in full; close without a single byte of answer.
                self.close_connection = True
                if app.verbose:
                    self.log_message('"%s" dropped', self.requestline)
                return
            if action is not None:
                self._send(app.fault_response(action))
                return
        req = Request(self.command, path, parse_qs(query) if query else {}, self.headers, body)
        try:
            resp = app.handle(req)
        except Exception:  # a simulator bug must not look like a dropped connection
            traceback.print_exc()
            resp = text_response(500, "Internal Server Error")
        self._send(resp)

    def _send(self, resp: Response) -> None:
        try:
            phrase = HTTPStatus(resp.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {resp.status} {phrase}",
            f"Server: {self.server.app.server_version}",
            f"Date: {_http_date()}",
            f"Content-Type: {resp.content_type}",
            f"Content-Length: {len(resp.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in resp.headers)
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + resp.body)
        if self.server.app.verbose:
            self.log_request(resp.status, len(resp.body))


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SimApp) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, SimHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request is routine for a test server, not worth a traceback.
        if self.app.verbose:
            super().handle_error(request, client_address)
