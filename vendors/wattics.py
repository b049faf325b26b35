"""Wattics data push: packet building and the client for one data stream.

Contract: /work/shared/VENDORS.md and Wattics' data-push guide (seed 003). The routes are
the published ones (developers.wattics.com and Wattics' own clients); what is not published
(the GET answer's shape, how a stream with no packet answers, how a discarded packet is
told) is INFERRED and lives in the block below: one edit corrects it.
"""

import base64
import email.message
import html
import json
import math
import re
import ssl
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from functools import lru_cache
from types import SimpleNamespace
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict

from vendors import pump
from vendors.http import (
    ExchangeLog,
    VendorError,
    VendorRefused,
    VendorRejected,
    VendorTransient,
    VendorUnreachable,
    no_answer,
    retry_after_seconds,
    send,
    session,
    session_key,
    timeouts,
)
from vendors.safety import guarded_socket, vendor_text

# ----- Wattics API: paths and answers ---------------------------------------------------
# Published: push is POST {base}/measurements/v2/unifiedjson/ (trailing slash), the latest
# processed packet of a stream is GET on the same route with ?stream=<data stream id>.
PUSH_PATH = "/measurements/v2/unifiedjson/"
LATEST_PATH = PUSH_PATH
LATEST_STREAM_PARAM = "stream"
# The docs send text/json, Wattics' Java client application/json; the server reads either.
CONTENT_TYPE = "application/json"


def read_latest_answer(body: bytes) -> dict | None:
    """INFERRED (the GET answer's shape is not published): the latest packet as stored, a
    JSON object with its tsISO8601; an empty body or JSON null means no packet yet.
    Raises ValueError when the answer cannot be read."""
    if not body.strip():
        return None
    answer = json.loads(body)
    if answer is None:
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("tsISO8601"), str):
        raise ValueError("no tsISO8601 in the answer")
    return answer


# INFERRED: a known stream that never received a packet answers 404 saying "no packet".
NO_PACKET_TEXT = "no packet"
# INFERRED: the real service drops out-of-order packets silently; the simulator (and, we
# assume, a test entry point) answers 200 with this status so we can count them.
DISCARDED_STATUS = "discarded"
# Transient answers: retry the same packet later. 400 is permanent for that packet,
# 401/403/404 are permanent for the whole stream.
TRANSIENT_CODES = frozenset({408, 429, 500, 502, 503, 504})
# -----------------------------------------------------------------------------------------

ELECTRICAL_FIELDS = frozenset(
    [f"{name}_{phase}" for name in ("aP", "rP", "apP", "v", "c", "pC") for phase in (1, 2, 3)]
    + ["v_12", "v_13", "v_23"]
)
# pC_* are registers (Wh consumed since the beginning); the others are instantaneous values.
REGISTER_FIELDS = frozenset({"pC_1", "pC_2", "pC_3"})

# How a meter's own value goes into an electrical packet: unit -> (field, factor, cumulative).
# Energy becomes pC_1, "Wh consumed since the beginning": a running total, not the interval.
ELECTRICAL_UNITS: dict[str, tuple[str, float, bool]] = {
    "Wh": ("pC_1", 1.0, True),
    "kWh": ("pC_1", 1e3, True),
    "MWh": ("pC_1", 1e6, True),
    "W": ("aP_1", 1.0, False),
    "kW": ("aP_1", 1e3, False),
    "MW": ("aP_1", 1e6, False),
}


def format_local_ts(instant: datetime, tz: ZoneInfo) -> str:
    """`yyyy-mm-ddThh:mm:ss.sss±hh:mm`: the meter's local time with the offset in force
    at that instant (so the two 01:30 of a DST fall-back differ by their offsets)."""
    return instant.astimezone(tz).isoformat(timespec="milliseconds")


def parse_ts(value: str) -> datetime:
    """A packet's tsISO8601 as an aware datetime (offset kept)."""
    instant = datetime.fromisoformat(value)
    if instant.tzinfo is None:
        raise ValueError(f"tsISO8601 {value!r} has no offset")
    return instant


@dataclass
class Packet:
    """One packet to send: its body, its instant, and the reading it completes (None for
    the opening packet of a stream or a packet of instantaneous values only)."""

    body: bytes
    instant: datetime
    row_ts: datetime | None


@dataclass(frozen=True)
class Stream:
    """A meter's Wattics data stream, as its packets need it (plain values, no model)."""

    stream_id: str
    timezone: str  # IANA name: packets are stamped in the site's local time
    unit: str
    interval_minutes: int
    single_value: bool  # the single-value packet format, else electrical (pC_1 ...)
    label: str = ""  # the meter, in messages


class PacketBuilder:
    """Turns a meter's readings (in ts order) into one-line JSON packets of its `Stream`.

    Energy meters: `pC_1` is the register, the energy consumed up to `tsISO8601`. The reading
    of the interval [t, t+Δ) therefore goes in the packet stamped t+Δ with the running total
    including it; instantaneous values (aP, rP, apP, v, c) keep the instant the file gives,
    and share a packet with the register when the instants meet. A stream's first packet
    ever opens the count at the first interval's start with the total before it.
    Other meters: one packet per reading, at its instant.

    `start_wh` is the meter's register before the first reading given, so a second upload
    continues the count of the first."""

    def __init__(self, stream: Stream, *, start_wh: float = 0.0):
        self.stream_id = stream.stream_id
        self.tz = ZoneInfo(stream.timezone)
        self.single_value = stream.single_value
        if not self.single_value and stream.unit not in ELECTRICAL_UNITS:
            raise ValueError(
                f"Meter {stream.label} is in {stream.unit!r}, which has no electrical Wattics field: "
                f"use the single-value format or one of {', '.join(ELECTRICAL_UNITS)}"
            )
        self.field, self.factor, self.cumulative = ELECTRICAL_UNITS.get(stream.unit, ("value", 1.0, False))
        if self.single_value:
            self.field, self.factor, self.cumulative = "value", 1.0, False
        self.interval = timedelta(minutes=stream.interval_minutes)
        self.total = start_wh

    def stamp(self, ts: datetime) -> datetime:
        """The instant of the packet that carries the reading of `ts`."""
        return ts + self.interval if self.cumulative else ts

    def reading_ts(self, instant: datetime) -> datetime:
        """The reading a packet at `instant` would carry (inverse of stamp)."""
        return instant - self.interval if self.cumulative else instant

    def expected(self, value: float, register_wh: float) -> float:
        """What the packet of a reading carries in its own field (for checking the vendor's copy)."""
        return round(register_wh, 3) if self.cumulative else self._own(value)

    def _own(self, value: float) -> float:
        return value if self.single_value else round(value * self.factor, 3)

    def _body(self, instant: datetime, fields: dict) -> bytes:
        packet = {"id": self.stream_id, "tsISO8601": format_local_ts(instant, self.tz), **fields}
        return _COMPACT_JSON.encode(packet).encode()

    def build(self, ts: datetime, value: float, extra: dict | None) -> bytes:
        """The packet of one reading on its own (the register moves on for energy meters)."""
        (packet,) = [p for p in self.packets([(ts, value, extra)]) if p.row_ts is not None]
        return packet.body

    def packets(self, rows: Iterable[tuple[datetime, float, dict | None]], *, opening: bool = False,
                after: datetime | None = None) -> Iterator[Packet]:  # fmt: skip
        """The packets of `rows` in time order. `opening`: the stream has no packet yet, open
        the register at the first reading's start. Instantaneous values at or before
        `after` (the vendor's latest) are left out: they could not be placed."""
        if not self.cumulative:
            for ts, value, extra in rows:
                fields = {} if self.single_value else _measures(extra, ELECTRICAL_FIELDS)
                fields[self.field] = self._own(value)
                yield Packet(self._body(ts, fields), ts, ts)
            return
        pending: tuple[datetime, dict, datetime | None] | None = None  # (instant, fields, row_ts)
        for ts, value, extra in rows:
            if pending is not None and pending[0] < ts:  # a gap: the last register goes alone
                yield Packet(self._body(*pending[:2]), pending[0], pending[2])
                pending = None
            instant_fields = _measures(extra, ELECTRICAL_FIELDS - REGISTER_FIELDS)
            wanted = opening or (instant_fields and (after is None or ts > after))
            # (With readings closer than the meter's interval, instants would go backwards: left out.)
            if wanted and (pending is None or pending[0] == ts):
                if pending is None:
                    pending = (ts, {}, None)
                pending[1].update(instant_fields)
                if opening:
                    pending[1][self.field] = round(self.total, 3)
            opening = False
            if pending is not None:
                yield Packet(self._body(*pending[:2]), pending[0], pending[2])
            self.total += value * self.factor
            fields = _measures(extra, REGISTER_FIELDS)
            fields[self.field] = round(self.total, 3)
            pending = (ts + self.interval, fields, ts)
        if pending is not None:
            yield Packet(self._body(*pending[:2]), pending[0], pending[2])


# One encoder for every packet: json.dumps with separators builds a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def _measures(extra: dict | None, allowed: frozenset[str]) -> dict:
    return {k: v for k, v in (extra or {}).items() if k in allowed and _is_number(v)}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Outcome(Enum):
    ACKNOWLEDGED = "acknowledged"
    DISCARDED = "discarded"  # 200, but dropped as not chronological
    REJECTED = "rejected"  # 400: this packet will never pass as it is (VendorRejected)
    FATAL = "fatal"  # 401/403/404: no packet of this stream will pass (VendorRefused)
    TRANSIENT = "transient"  # 5xx, no answer: the same packet, later (VendorTransient)


@dataclass(frozen=True)
class Result:
    """A packet's answer. A push returns it rather than raising: a discarded packet is an
    answer like an acknowledged one, and a failure is the `VendorError` `latest()` raises."""

    outcome: Outcome
    message: str = ""
    retry_after: float | None = None
    vendor_last: datetime | None = None  # with DISCARDED: the stream's latest instant

    @classmethod
    def failed(cls, error: VendorError) -> "Result":
        if isinstance(error, VendorRefused):
            outcome = Outcome.FATAL
        elif isinstance(error, VendorTransient):
            outcome = Outcome.TRANSIENT
        else:
            outcome = Outcome.REJECTED
        return cls(outcome, str(error), error.retry_after)


@dataclass(frozen=True)
class LatestPacket:
    """The latest packet Wattics processed for a stream, as it answered it."""

    instant: datetime
    fields: dict = field(default_factory=dict)

    def measure(self, name: str) -> float | None:
        value = self.fields.get(name)
        return float(value) if _is_number(value) else None


_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")


def error_words(response: requests.Response, limit: int = 300) -> str:
    """A Wattics error answer in words. Wattics' errors come from a Java/Spring server as
    HTML pages: never parsed as JSON, the tags are stripped and the text kept short."""
    text = response.text
    if "<" in text:
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else _TAGS.sub(" ", text)
    return vendor_text(_SPACES.sub(" ", html.unescape(text)).strip(), limit)


class PacketChannel:
    """The push entry point: one keep-alive connection for a run's packets, with the
    cookies of the worker thread's requests.Session for this credential set (its cookie jar
    kept for the whole transmission, as Wattics asks, and never shared with another
    organization's credentials).

    The request is prepared once by the session (headers, credentials, cookies) and kept
    as bytes; each packet is that head, its length and its body, written in one send. The
    connection is opened here through the vendor-address guard
    (vendors.safety.guarded_socket: allowed host, checked addresses; TLS verified against
    requests' CA bundle) and carried by the process's packet loop (vendors.pump), which
    writes a batch of packets and reads their answers while the run's thread waits once.
    Same contract as vendors.http.send(): each exchange is recorded in the ExchangeLog, no
    answer is VendorUnreachable (and the connection is dropped)."""

    def __init__(self, url: str, key: str):
        self.url = url
        self.key = key
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._target = parts.path + (f"?{parts.query}" if parts.query else "")
        self._host_header = parts.netloc.rpartition("@")[2]
        self._conn: pump.Connection | None = None
        self._prepared: requests.PreparedRequest | None = None
        self._head = b""
        self._headers: dict[str, str] = {}
        self._session: requests.Session | None = None

    def _template(self, s: requests.Session, headers: dict[str, str]) -> requests.PreparedRequest:
        if self._prepared is None or headers is not self._headers or s is not self._session:
            self._prepared = s.prepare_request(requests.Request("POST", self.url, headers=headers, data=b"{}"))
            self._headers = headers
            self._session = s
            sent = {k: v for k, v in self._prepared.headers.items() if k.lower() not in _NOT_SENT_HEADERS}
            # A body that is not compressed is read as it is.
            lines = [f"POST {self._target} HTTP/1.1", f"Host: {self._host_header}", "Accept-Encoding: identity"]
            for name, value in sent.items():
                if not _HEADER_NAME.fullmatch(name) or _ILLEGAL_HEADER_VALUE.search(value):
                    raise requests.exceptions.InvalidHeader(f"Invalid header {name!r}")
                lines.append(f"{name}: {value}")
            self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        return self._prepared

    def _connection(self) -> pump.Connection:
        if self._conn is not None and not self._conn.is_open:
            self.close()  # closed by the vendor meanwhile (the loop saw it)
        if self._conn is None:
            connect, _ = timeouts()
            sock = guarded_socket(self.url, connect_timeout=connect)
            tls = _tls_context() if self._https else None
            self._conn = pump.pump.connect(sock, tls=tls, server_hostname=self._host, timeout=connect)
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def post(self, body: bytes, headers: dict[str, str], log: ExchangeLog) -> requests.Response:
        """One packet's answer; raises VendorUnreachable when it got none."""
        (answered, failure) = self.post_many([body], headers, log, until=0.0)
        if failure is not None:
            raise failure
        return answered[0]

    def post_many(self, bodies: Sequence[bytes], headers: dict[str, str], log: ExchangeLog, *,
                  until: float) -> tuple[list[requests.Response], VendorUnreachable | None]:  # fmt: skip
        """POST `bodies` in order, one request each, and the answers of those sent: all of
        them, or up to the first answer the caller must look at before the next (not a
        2xx, a cookie set, the connection closing), or up to `until` (time.monotonic(),
        after the first). The second item is the VendorUnreachable of the body after the
        last answered one when that exchange got no answer."""
        s = session(self.key)
        started = time.perf_counter()
        try:
            request = self._template(s, headers)
            conn = self._connection()
        except (OSError, requests.RequestException) as exc:
            self._dropped()
            return [], no_answer(_as_request_error(exc, connected=False), method="POST", url=self.url, log=log,
                                 session_key=self.key, started=started, request_bytes=len(bodies[0]))  # fmt: skip
        _, read = timeouts()
        answered: list[requests.Response] = []
        answers = conn.exchange_many(self._head, bodies, until=until, read_timeout=read)
        for body, answer in zip(bodies, answers, strict=False):  # the answers: a prefix
            if isinstance(answer, pump.NoAnswer):
                self._dropped()
                return answered, no_answer(_as_request_error(answer.error, connected=True), method="POST",
                                           url=self.url, log=log, session_key=self.key,
                                           started=time.perf_counter() - answer.seconds,
                                           request_bytes=len(body))  # fmt: skip
            answered.append(self._response(answer, request, s, body, log))
        if not conn.is_open:
            self.close()
        return answered, None

    def _dropped(self) -> None:
        self.close()
        self._prepared = None  # made for the session that no_answer drops

    def _response(self, answer: pump.Answer, request: requests.PreparedRequest, s: requests.Session, body: bytes,
                  log: ExchangeLog) -> requests.Response:  # fmt: skip
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason
        response._content = answer.body
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url = self.url
        response.request = request
        if "Set-Cookie" in response.headers:
            extract_cookies_to_jar(s.cookies, request, _CookieSource(answer.headers))
            self._prepared = None  # the next packet carries the new cookies
        log.add(method="POST", url=self.url, status_code=answer.status, request_bytes=len(body),
                error="" if answer.status < 400 else error_words(response),
                duration_ms=answer.seconds * 1000, at=answer.at)  # fmt: skip
        return response


# What http.client refuses in a header (a name that is not a token; a line break in a value).
_HEADER_NAME = re.compile(r"[^:\s][^:\r\n]*")
_ILLEGAL_HEADER_VALUE = re.compile(r"\n(?![ \t])|\r(?![ \t\n])")
# Headers of the prepared request that the channel sets itself, or that do not apply.
_NOT_SENT_HEADERS = frozenset({"host", "content-length", "accept-encoding", "transfer-encoding"})


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Verified against the same CA bundle as requests.
    return ssl.create_default_context(cafile=requests.certs.where())


class _CookieSource:
    """What requests' extract_cookies_to_jar reads from a response: `_original_response.msg`,
    the headers with every Set-Cookie line (http.cookiejar calls get_all)."""

    def __init__(self, headers: list[tuple[str, str]]):
        msg = email.message.Message()
        for name, value in headers:
            msg[name] = value
        self._original_response = SimpleNamespace(msg=msg)


def _as_request_error(exc: BaseException, *, connected: bool) -> requests.RequestException:
    """The requests exception this failure would have been, for the same words in the log."""
    if isinstance(exc, requests.RequestException):
        return exc
    if isinstance(exc, TimeoutError):
        return requests.ReadTimeout(str(exc)) if connected else requests.ConnectTimeout(str(exc))
    return requests.ConnectionError(str(exc))


class WatticsClient:
    """One data stream at Wattics, over this thread's keep-alive session for these credentials."""

    def __init__(self, *, base_url: str, username: str, password: str, stream_id: str, log: ExchangeLog):
        base = base_url.rstrip("/")
        self.key = session_key(base, username)
        self.channel = PacketChannel(base + PUSH_PATH, self.key)
        self.latest_url = base + LATEST_PATH
        self.stream_id = stream_id
        self.log = log
        # Built once, not per packet.
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": CONTENT_TYPE}

    def close(self) -> None:
        """Close the packet connection (the session and its cookies stay for the next run)."""
        self.channel.close()

    def push(self, body: bytes) -> Result:
        try:
            response = self.channel.post(body, self.headers, self.log)
        except VendorUnreachable as exc:
            return Result.failed(exc)
        return self._result(response)

    def push_many(self, bodies: Sequence[bytes], *, until: float) -> list[Result]:
        """The results of `bodies` pushed in order on the stream's connection: one per
        packet sent, a prefix of `bodies`. It stops after a packet that was not
        acknowledged at the HTTP level (an error, no answer, a new cookie) or once `until`
        (time.monotonic()) has passed: the caller acts on the last result, then goes on."""
        answered, failure = self.channel.post_many(bodies, self.headers, self.log, until=until)
        results = [self._result(response) for response in answered]
        if failure is not None:
            results.append(Result.failed(failure))
        return results

    def _result(self, response: requests.Response) -> Result:
        if response.status_code == 200:
            if DISCARDED_STATUS.encode() in response.content:
                # Checked on the raw bytes first: parsing every "ok" answer costs time.
                try:
                    answer = response.json()
                except ValueError:
                    answer = {}
                if isinstance(answer, dict) and answer.get("status") == DISCARDED_STATUS:
                    return Result(Outcome.DISCARDED, "discarded by vendor: not chronological",
                                  vendor_last=_parse_or_none(answer.get("last")))  # fmt: skip
            return Result(Outcome.ACKNOWLEDGED)
        return Result.failed(self._error(response))

    def latest(self) -> LatestPacket | None:
        """The latest packet Wattics processed for the stream; None if it has none.
        Raises VendorRefused when the stream cannot be pushed to at all, LatestUnreadable
        when the answer cannot be read, VendorTransient (or VendorUnreachable) otherwise."""
        response = send("GET", self.latest_url, log=self.log, params={LATEST_STREAM_PARAM: self.stream_id},
                        headers=self.headers, session_key=self.key, error_reader=error_words)  # fmt: skip
        if response.status_code == 200:
            try:
                answer = read_latest_answer(response.content)
                if answer is None:
                    return None
                return LatestPacket(parse_ts(answer["tsISO8601"]), answer)
            except (ValueError, KeyError, TypeError) as exc:
                raise LatestUnreadable(
                    response.status_code, f"Wattics' latest packet could not be read ({exc})"
                ) from exc
        if response.status_code == 404 and NO_PACKET_TEXT in response.text:
            return None
        error = self._error(response)
        if isinstance(error, VendorRefused):
            raise error
        if isinstance(error, VendorTransient):
            message = f"{error.message} (asking for the latest packet)"
            raise VendorTransient(error.status, message, retry_after=error.retry_after)
        raise LatestUnreadable(error.status, f"Wattics' latest packet could not be read: {error.message}")

    def _error(self, response: requests.Response) -> VendorError:
        """A failed answer as the error of its kind. Wattics' messages name Wattics themselves."""
        code = response.status_code
        detail = error_words(response)
        if code == 400:
            return VendorRejected(code, f"rejected by Wattics: {detail}")
        if code == 401:
            return VendorRefused(code, "Wattics credentials rejected: check the username and password")
        if code == 403:
            return VendorRefused(code, f"data stream id {self.stream_id} is not allowed for these credentials")
        if code == 404:
            return VendorRefused(code, f"data stream id {self.stream_id} unknown at Wattics")
        if code in TRANSIENT_CODES or code >= 500:
            return VendorTransient(code, f"Wattics HTTP {code}: {detail}", retry_after=retry_after_seconds(response))
        return VendorRejected(code, f"rejected by Wattics (HTTP {code}): {detail}")


def _parse_or_none(value) -> datetime | None:
    try:
        return parse_ts(value) if isinstance(value, str) else None
    except ValueError:
        return None


class LatestUnreadable(VendorRejected):
    """Wattics answered the GET, but not in a form we can read: go on from our own record."""
