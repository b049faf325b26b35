"""Wattics data push: packet building and the client for one data stream.

Contract: /work/shared/VENDORS.md and Wattics' data-push guide (seed 003). The guide hides
its URLs ("Refer to API documentation"), so every path, query parameter and body shape we
rely on beyond the guide is INFERRED and lives in the block below: one edit corrects it.
"""

import base64
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from zoneinfo import ZoneInfo

import requests
from requests.cookies import extract_cookies_to_jar

from sites.models import Meter, PacketFormat
from vendors.http import ExchangeLog, VendorUnreachable, error_text, safe_url, send, session, timeouts

# ----- Wattics API: paths and answers ---------------------------------------------------
PUSH_PATH = "/api/v1/push"  # INFERRED: the guide's single "point of entry", POST one packet
LATEST_PATH = "/api/v1/push/latest"  # INFERRED: "GET the latest processed packet"
LATEST_STREAM_PARAM = "id"  # INFERRED: query parameter naming the data stream
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


class PacketBuilder:
    """Turns a meter's readings (in ts order) into one-line JSON packets.

    `start_wh` is the meter's cumulative energy before the first reading given, so a
    second upload continues the count of the first."""

    def __init__(self, meter: Meter, *, start_wh: float = 0.0):
        self.stream_id = meter.wattics_stream_id
        self.tz = ZoneInfo(meter.site.timezone)
        self.single_value = meter.wattics_format == PacketFormat.SINGLE_VALUE
        if not self.single_value and meter.unit not in ELECTRICAL_UNITS:
            raise ValueError(
                f"Meter {meter} is in {meter.unit!r}, which has no electrical Wattics field: "
                f"use the single-value format or one of {', '.join(ELECTRICAL_UNITS)}"
            )
        self.field, self.factor, self.cumulative = ELECTRICAL_UNITS.get(meter.unit, ("value", 1.0, False))
        self.total = start_wh

    def build(self, ts: datetime, value: float, extra: dict | None) -> bytes:
        packet: dict = {"id": self.stream_id, "tsISO8601": format_local_ts(ts, self.tz)}
        if self.single_value:
            packet["value"] = value
        else:
            for key, measure in (extra or {}).items():
                if key in ELECTRICAL_FIELDS and _is_number(measure):
                    packet[key] = measure
            if self.cumulative:
                self.total += value * self.factor
                packet[self.field] = round(self.total, 3)
            else:
                packet[self.field] = round(value * self.factor, 3)
        return json.dumps(packet, separators=(",", ":")).encode()


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Outcome(Enum):
    ACKNOWLEDGED = "acknowledged"
    DISCARDED = "discarded"  # 200, but dropped as not chronological
    REJECTED = "rejected"  # 400: this packet will never pass as it is
    FATAL = "fatal"  # 401/403/404: no packet of this stream will pass
    TRANSIENT = "transient"  # 5xx, no answer: the same packet, later


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    message: str = ""
    retry_after: float | None = None
    vendor_last: datetime | None = None  # with DISCARDED: the stream's latest instant


class PacketChannel:
    """The push entry point, over this worker thread's requests.Session (keep-alive, and
    its cookie jar kept for the whole transmission, as Wattics asks).

    Thousands of one-packet POSTs make requests' per-call work (merging environment
    settings, proxies, hooks) cost more than the exchange itself on a fast link, so the
    request is prepared once and each packet is a copy with a new body, sent by the
    session's own adapter (its connection pool). Same contract as vendors.http.send():
    each exchange is recorded in the ExchangeLog, no answer is VendorUnreachable."""

    def __init__(self, url: str):
        self.url = url
        self._prepared: requests.PreparedRequest | None = None
        self._headers: dict[str, str] = {}

    def _template(self, s: requests.Session, headers: dict[str, str]) -> requests.PreparedRequest:
        if self._prepared is None or headers is not self._headers:
            self._prepared = s.prepare_request(requests.Request("POST", self.url, headers=headers, data=b"{}"))
            self._headers = headers
        return self._prepared

    def post(self, body: bytes, headers: dict[str, str], log: ExchangeLog) -> requests.Response:
        s = session()
        request = self._template(s, headers).copy()
        request.body = body
        request.headers["Content-Length"] = str(len(body))
        started = time.perf_counter()
        try:
            response = s.get_adapter(self.url).send(request, timeout=timeouts())
            response.content  # noqa: B018 - read the body so the connection goes back to the pool
        except requests.RequestException as exc:
            message = f"{type(exc).__name__}: no answer from {safe_url(self.url)}"
            log.add(method="POST", url=self.url, status_code=None, error=message, request_bytes=len(body),
                    duration_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
            raise VendorUnreachable(message) from exc
        if "Set-Cookie" in response.headers:
            extract_cookies_to_jar(s.cookies, request, response.raw)
            self._prepared = None  # the next packet carries the new cookies
        log.add(method="POST", url=self.url, status_code=response.status_code, request_bytes=len(body),
                error="" if response.status_code < 400 else error_text(response),
                duration_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
        return response


class WatticsClient:
    """One data stream at Wattics, over this thread's keep-alive session."""

    def __init__(self, *, base_url: str, username: str, password: str, stream_id: str, log: ExchangeLog):
        self.channel = PacketChannel(base_url.rstrip("/") + PUSH_PATH)
        self.latest_url = base_url.rstrip("/") + LATEST_PATH
        self.stream_id = stream_id
        self.log = log
        # Built once, not per packet.
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def push(self, body: bytes) -> Result:
        try:
            response = self.channel.post(body, self.headers, self.log)
        except VendorUnreachable as exc:
            return Result(Outcome.TRANSIENT, str(exc))
        if response.status_code == 200:
            if DISCARDED_STATUS.encode() in response.content:
                # Checked on the raw bytes first: parsing every "ok" answer costs time.
                try:
                    answer = response.json()
                except ValueError:
                    answer = {}
                if answer.get("status") == DISCARDED_STATUS:
                    return Result(Outcome.DISCARDED, "discarded by vendor: not chronological",
                                  vendor_last=_parse_or_none(answer.get("last")))  # fmt: skip
            return Result(Outcome.ACKNOWLEDGED)
        return self._failure(response)

    def latest(self) -> datetime | None:
        """The instant of the latest packet Wattics processed for the stream; None if none.
        Raises StreamError for a permanent failure, TransientError otherwise."""
        try:
            response = send(
                "GET", self.latest_url, log=self.log, params={LATEST_STREAM_PARAM: self.stream_id}, headers=self.headers
            )
        except VendorUnreachable as exc:
            raise TransientError(str(exc)) from exc
        if response.status_code == 200:
            try:
                return parse_ts(response.json()["tsISO8601"])
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise TransientError(f"Wattics latest packet unreadable: {response.text[:200]}") from exc
        if response.status_code == 404 and "no packet" in response.text:
            # INFERRED: a known stream that never received a packet answers 404 "no packet".
            return None
        result = self._failure(response)
        if result.outcome == Outcome.FATAL:
            raise StreamError(result.message)
        raise TransientError(f"Wattics latest packet: {result.message}", retry_after=result.retry_after)

    def _failure(self, response) -> Result:
        code = response.status_code
        detail = error_text(response, 300)
        if code == 400:
            return Result(Outcome.REJECTED, f"rejected by Wattics: {detail}")
        if code == 401:
            return Result(Outcome.FATAL, "Wattics credentials rejected: check the username and password")
        if code == 403:
            return Result(Outcome.FATAL, f"data stream id {self.stream_id} is not allowed for these credentials")
        if code == 404:
            return Result(Outcome.FATAL, f"data stream id {self.stream_id} unknown at Wattics")
        retry_after = _retry_after(response)
        if code in TRANSIENT_CODES or code >= 500:
            return Result(Outcome.TRANSIENT, f"Wattics HTTP {code}: {detail}", retry_after)
        return Result(Outcome.REJECTED, f"rejected by Wattics (HTTP {code}): {detail}")


def _parse_or_none(value) -> datetime | None:
    try:
        return parse_ts(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _retry_after(response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class StreamError(Exception):
    """The stream cannot be pushed to at all (credentials, unknown stream)."""


class TransientError(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after
