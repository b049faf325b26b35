"""Wattics simulator: the data-push entry point, one JSON packet per POST, basic auth.

Contract: /work/shared/VENDORS.md and Wattics' data-push guide (seed 003). The routes are
the published ones: POST /measurements/v2/unifiedjson/ takes one packet, GET on the same
route with ?stream=<data stream id> answers the latest processed packet. The body is read
whatever the Content-Type says (the docs send text/json, the Java client
application/json, the CSV uploader none). Errors come from a Java/Spring server: a 401 is
an HTML page with ``WWW-Authenticate: Basic``, injected faults are HTML pages too. What is
not published is INFERRED and marked: the GET answer's shape (``latest_answer``), the
404 "no packet" of a stream that never got one, the 200 ``{"status": "discarded"}`` for
a packet that is not chronological, and the 400 ``{"error": ...}`` bodies.

Like the real service, the first authenticated answer sets a session cookie (JSESSIONID)
per account; the state counts requests of one account that carried another's cookie.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any

from . import WATTICS_DEMO_PASSWORD, WATTICS_DEMO_STREAMS, WATTICS_DEMO_USERNAME
from .core import BadFaults, Request, Response, SimApp, dumps, json_response

# ----- API paths: published (developers.wattics.com, Wattics' own clients) --------------------
PUSH_PATH = "/measurements/v2/unifiedjson/"
LATEST_PATH = PUSH_PATH  # GET ?stream=<data stream id>
LATEST_STREAM_PARAM = "stream"
REALM = "Wattics"
SESSION_COOKIE = "JSESSIONID"


def latest_answer(stream: Stream) -> Response:
    """INFERRED: the shape of the GET answer is not published; we answer the latest packet
    as it was stored (its exact bytes). Change it here, and only here."""
    return Response(200, stream.last_raw, "application/json;charset=UTF-8")


def html_error(status: int, message: str) -> bytes:
    """A Tomcat/Spring error page, as Wattics answers its errors."""
    phrase = HTTPStatus(status).phrase
    return (
        f'<!doctype html><html lang="en"><head><title>HTTP Status {status} - {message}</title></head>'
        f"<body><h1>HTTP Status {status} - {message}</h1><hr><p><b>type</b> Status report</p>"
        f"<p><b>message</b> {message}</p><p><b>description</b> {phrase}</p></body></html>"
    ).encode()


ELECTRICAL_FIELDS = frozenset(
    [f"{name}_{phase}" for name in ("aP", "rP", "apP", "v", "c", "pC") for phase in (1, 2, 3)]
    + ["v_12", "v_13", "v_23"]
)
VALUE_FIELD = "value"
ALLOWED_FIELDS = ELECTRICAL_FIELDS | {"id", "tsISO8601", VALUE_FIELD}
# yyyy-mm-ddThh:mm:ss(.sss)?±hh:mm; "Z" is accepted too (documented in docs/simulators.md).
TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2}):(\d{2})|Z)$")

OK_BODY = dumps({"status": "ok"})


class PacketError(ValueError):
    pass


def parse_ts(value: Any) -> datetime:
    """The packet's instant (aware datetime) or PacketError."""
    if not isinstance(value, str):
        raise PacketError("tsISO8601 must be a string")
    m = TS_RE.match(value)
    if m is None:
        raise PacketError(f"tsISO8601 {value!r} must look like yyyy-mm-ddThh:mm:ss.sss+hh:mm (offset required)")
    year, month, day, hour, minute, second, frac, sign, oh, om = m.groups()
    try:
        if sign is None:
            tz = UTC
        else:
            if int(oh) > 23 or int(om) > 59:
                raise ValueError
            offset = timedelta(hours=int(oh), minutes=int(om))
            tz = timezone(-offset if sign == "-" else offset)
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((frac or "0").ljust(6, "0")), tzinfo=tz,
        )  # fmt: skip
    except ValueError:
        raise PacketError(f"tsISO8601 {value!r} is not a valid date and time") from None


def validate_packet(packet: dict[str, Any]) -> datetime:
    """Check fields and values (not the stream); return the packet's instant."""
    unknown = sorted(k for k in packet if k not in ALLOWED_FIELDS)
    if unknown:
        raise PacketError(f"unknown field: {', '.join(unknown)}")
    if "tsISO8601" not in packet:
        raise PacketError("missing field: tsISO8601")
    instant = parse_ts(packet["tsISO8601"])
    measures = [k for k in packet if k in ELECTRICAL_FIELDS]
    if VALUE_FIELD in packet:
        if measures:
            raise PacketError("value cannot be mixed with electrical fields")
        measures = [VALUE_FIELD]
    if not measures:
        raise PacketError("packet has no measurement")
    for key in measures:
        value = packet[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PacketError(f"{key} must be a number")
        if not math.isfinite(value):
            raise PacketError(f"{key} must be a finite number")
    return instant


class Stream:
    __slots__ = ("id", "owner", "accepted", "discarded", "rejected", "last", "last_raw",
                 "last_instant", "last_error")  # fmt: skip

    def __init__(self, stream_id: str, owner: str) -> None:
        self.id = stream_id
        self.owner = owner
        self.clear()

    def clear(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.discarded: list[dict[str, Any]] = []
        self.rejected = 0
        self.last: dict[str, Any] | None = None
        self.last_raw = b""
        self.last_instant: datetime | None = None
        self.last_error: str | None = None


class WatticsApp(SimApp):
    name = "wattics"
    server_version = "Apache"

    def __init__(
        self,
        *,
        accounts: list[dict[str, Any]] | None = None,
        streams: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.passwords: dict[str, str] = {WATTICS_DEMO_USERNAME: WATTICS_DEMO_PASSWORD}
        owners: dict[str, str] = {s: WATTICS_DEMO_USERNAME for s in WATTICS_DEMO_STREAMS}
        owners.update({s: WATTICS_DEMO_USERNAME for s in streams or []})
        for acc in accounts or []:
            self.passwords[acc["username"]] = acc["password"]
            owners.update({s: acc["username"] for s in acc.get("streams", [])})
        self.configured_passwords = dict(self.passwords)
        self.configured_streams = owners
        self.rejected_unattributed = 0
        self.reset_data()
        self.load_state_file()

    def register_routes(self) -> None:
        self.add_route("POST", PUSH_PATH, self.push)
        self.add_route("GET", LATEST_PATH, self.latest)
        self.add_route("GET", "/_sim/cookies", self.sim_cookies)
        self.add_route("GET", "/_sim/streams/{stream_id}/packets", self.sim_packets)
        self.add_route("POST", "/_sim/streams", self.sim_add_stream)
        self.add_route("POST", "/_sim/accounts", self.sim_add_account)

    def error_response(self, status: int) -> Response:
        if status == 401:
            return self.unauthorized()
        return Response(status, html_error(status, HTTPStatus(status).phrase), "text/html;charset=utf-8")

    def not_found(self) -> Response:
        return Response(404, html_error(404, "Not Found"), "text/html;charset=utf-8")

    def default_faults(self) -> dict[str, Any]:
        # retry_after: the Retry-After (whole seconds) sent with an injected 503.
        # other_latest_shape: the GET answers its packet in another shape than the inferred one
        # (the real shape is not published), so a client's fallback can be tested.
        return {**super().default_faults(), "retry_after": 1, "other_latest_shape": False}

    def validate_faults(self, knobs: dict[str, Any]) -> None:
        after = knobs.get("retry_after", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise BadFaults("retry_after must be a whole number of seconds >= 0")
        if not isinstance(knobs.get("other_latest_shape", False), bool):
            raise BadFaults("other_latest_shape must be a boolean")
        own = ("retry_after", "other_latest_shape")
        super().validate_faults({k: v for k, v in knobs.items() if k not in own})

    def fault_response(self, action: Any) -> Response:
        resp = super().fault_response(action)
        if action in (429, 503):
            resp.headers = [h for h in resp.headers if h[0] != "Retry-After"]
            resp.headers.append(("Retry-After", str(self.faults["retry_after"])))
        return resp

    # ----- state -------------------------------------------------------------------------
    def reset_data(self) -> None:
        self.passwords = dict(self.configured_passwords)
        self.streams = {sid: Stream(sid, owner) for sid, owner in self.configured_streams.items()}
        self.rejected_unattributed = 0
        # Decoded "Authorization: Basic ..." values -> username; keeps per-request work small.
        self._auth_cache: dict[str, str | None] = {}
        # One session cookie per account; requests that carried another account's cookie.
        self.session_ids: dict[str, str] = {}
        self.cookie_owner: dict[str, str] = {}
        self.foreign_cookies: list[dict[str, str]] = []

    def summary(self) -> dict[str, Any]:
        return {
            "accounts": sorted(self.passwords),
            "streams": {
                sid: {
                    "owner": s.owner,
                    "accepted": len(s.accepted),
                    "discarded": len(s.discarded),
                    "rejected": s.rejected,
                    "last": s.last,
                    "last_error": s.last_error,
                }
                for sid, s in self.streams.items()
            },
            "rejected_unattributed": self.rejected_unattributed,
            "foreign_cookies": len(self.foreign_cookies),
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "accounts": self.passwords,
            "streams": {
                sid: {
                    "owner": s.owner,
                    "accepted": s.accepted,
                    "discarded": s.discarded,
                    "rejected": s.rejected,
                    "last_raw": s.last_raw.decode(),
                }
                for sid, s in self.streams.items()
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.passwords.update(data.get("accounts", {}))
        for sid, saved in data.get("streams", {}).items():
            stream = self.streams.get(sid) or Stream(sid, saved["owner"])
            stream.accepted = saved.get("accepted", [])
            stream.discarded = saved.get("discarded", [])
            stream.rejected = saved.get("rejected", 0)
            if stream.accepted:
                stream.last = stream.accepted[-1]
                stream.last_raw = saved.get("last_raw", "").encode() or dumps(stream.last)
                stream.last_instant = parse_ts(stream.last["tsISO8601"])
            self.streams[sid] = stream

    # ----- auth ----------------------------------------------------------------------------
    def user_for(self, req: Request) -> str | None:
        header = req.header("Authorization")
        if not header:
            return None
        cache = self._auth_cache
        if header in cache:
            return cache[header]
        user = None
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                username, sep, password = (
                    base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                sep = ""
            if sep and self.passwords.get(username) == password:
                user = username
        if len(cache) < 10_000:
            cache[header] = user
        return user

    @staticmethod
    def unauthorized() -> Response:
        return Response(
            401,
            html_error(401, "Full authentication is required to access this resource"),
            "text/html;charset=utf-8",
            [("WWW-Authenticate", f'Basic realm="{REALM}"')],
        )

    def session_cookie(self, req: Request, user: str) -> list[tuple[str, str]]:
        """The account's session cookie: set when missing; a request that carries another
        account's is counted (it must never happen)."""
        sid = None
        for part in req.header("Cookie").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                sid = value
        with self.lock:
            owner = self.cookie_owner.get(sid) if sid else None
            if owner is not None and owner != user:
                self.foreign_cookies.append({"user": user, "cookie_of": owner})
            mine = self.session_ids.get(user)
            if mine is None:
                mine = self.session_ids[user] = secrets.token_hex(16).upper()
                self.cookie_owner[mine] = user
        if sid == mine:
            return []
        return [("Set-Cookie", f"{SESSION_COOKIE}={mine}; Path=/; HttpOnly")]

    def bad_request(self, message: str, stream: Stream | None = None) -> Response:
        with self.lock:
            if stream is None:
                self.rejected_unattributed += 1
            else:
                stream.rejected += 1
                stream.last_error = message
        return json_response(400, {"error": message})

    # ----- push ----------------------------------------------------------------------------
    def push(self, req: Request) -> Response:
        user = self.user_for(req)
        if user is None:
            return self.unauthorized()
        resp = self.push_packet(req, user)
        resp.headers.extend(self.session_cookie(req, user))
        return resp

    def push_packet(self, req: Request, user: str) -> Response:
        body = req.body
        if body.endswith(b"\r\n"):
            body = body[:-2]
        elif body.endswith(b"\n"):
            body = body[:-1]
        if b"\n" in body or b"\r" in body:
            return self.bad_request("packet must be one line")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return self.bad_request("packet must be UTF-8 JSON")
        stripped = text.strip()
        if stripped.startswith("["):
            return self.bad_request("one packet per request")
        try:
            packet, end = json.JSONDecoder().raw_decode(stripped)
        except ValueError as exc:
            return self.bad_request(f"invalid JSON: {exc}")
        if stripped[end:].strip():
            return self.bad_request("one packet per request")
        if not isinstance(packet, dict):
            return self.bad_request("packet must be a JSON object")
        stream_id = packet.get("id")
        if not isinstance(stream_id, str) or not stream_id:
            return self.bad_request("missing field: id")
        stream = self.streams.get(stream_id)
        if stream is None:
            return json_response(404, {"error": f"unknown data stream id: {stream_id}"})
        if stream.owner != user:
            return json_response(403, {"error": f"data stream {stream_id} is not yours"})
        try:
            instant = validate_packet(packet)
        except PacketError as exc:
            return self.bad_request(str(exc), stream)
        with self.lock:
            if stream.last_instant is not None and instant <= stream.last_instant:
                # The real service drops these silently; our answer says so, for tests.
                stream.discarded.append(packet)
                self.mark_dirty()
                return json_response(
                    200,
                    {
                        "status": "discarded",
                        "reason": "not chronological",
                        "last": stream.last["tsISO8601"],
                    },
                )
            stream.accepted.append(packet)
            stream.last = packet
            stream.last_raw = body
            stream.last_instant = instant
            self.mark_dirty()
        return Response(200, OK_BODY)

    def latest(self, req: Request) -> Response:
        user = self.user_for(req)
        if user is None:
            return self.unauthorized()
        resp = self.latest_packet(req, user)
        resp.headers.extend(self.session_cookie(req, user))
        return resp

    def latest_packet(self, req: Request, user: str) -> Response:
        stream_id = req.query_one(LATEST_STREAM_PARAM)
        if not stream_id:
            return json_response(400, {"error": f"missing query parameter: {LATEST_STREAM_PARAM}"})
        with self.lock:
            stream = self.streams.get(stream_id)
            if stream is None:
                return json_response(404, {"error": f"unknown data stream id: {stream_id}"})
            if stream.owner != user:
                return json_response(403, {"error": f"data stream {stream_id} is not yours"})
            if stream.last is None:
                return json_response(404, {"error": "no packet"})  # INFERRED
            if self.faults["other_latest_shape"]:
                return json_response(200, {"content": [stream.last], "totalElements": 1})
            return latest_answer(stream)

    # ----- /_sim ---------------------------------------------------------------------------
    def sim_packets(self, req: Request) -> Response:
        with self.lock:
            stream = self.streams.get(req.params["stream_id"])
            if stream is None:
                return json_response(404, {"error": "unknown data stream id"})
            return json_response(
                200,
                {
                    "id": stream.id,
                    "owner": stream.owner,
                    "accepted": stream.accepted,
                    "discarded": stream.discarded,
                    "discarded_count": len(stream.discarded),
                    "rejected_count": stream.rejected,
                },
            )

    def sim_cookies(self, req: Request) -> Response:
        with self.lock:
            return json_response(200, {"foreign": list(self.foreign_cookies), "accounts": sorted(self.session_ids)})

    def sim_add_stream(self, req: Request) -> Response:
        try:
            data = json.loads(req.body)
            stream_id = data["id"]
            username = data.get("username", WATTICS_DEMO_USERNAME)
            if not isinstance(stream_id, str) or not stream_id or not isinstance(username, str):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            return json_response(400, {"error": 'body must be {"id": str, "username": str}'})
        with self.lock:
            if username not in self.passwords:
                return json_response(400, {"error": f"unknown account: {username}"})
            existing = self.streams.get(stream_id)
            if existing is not None:
                existing.owner = username
            else:
                self.streams[stream_id] = Stream(stream_id, username)
            self.mark_dirty()
        return json_response(201, {"id": stream_id, "username": username})

    def sim_add_account(self, req: Request) -> Response:
        try:
            data = json.loads(req.body)
            username, password = data["username"], data["password"]
            streams = data.get("streams", [])
            if not isinstance(username, str) or not username or not isinstance(password, str):
                raise TypeError
            if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            return json_response(400, {"error": 'body must be {"username": str, "password": str, "streams": [str]}'})
        with self.lock:
            self.passwords[username] = password
            self._auth_cache = {}
            for sid in streams:
                if sid in self.streams:
                    self.streams[sid].owner = username
                else:
                    self.streams[sid] = Stream(sid, username)
            self.mark_dirty()
        return json_response(201, {"username": username, "streams": streams})
