"""HTTP to the vendors: one keep-alive session per worker thread, explicit timeouts,
and a record of every exchange (status, time, error; never a secret).

Both vendor clients send through `send()`. It never raises on an HTTP status: the
caller decides what a 401 or a 503 means for its vendor. A connection error or a
timeout comes back as `VendorUnreachable`. Both clients fail in one style: the
`VendorError` classes below.
"""

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone

from vendors.models import HttpExchange
from vendors.safety import GuardedAdapter, VendorURLRefused, vendor_text

_local = threading.local()
# Sessions one thread keeps open at once (one per credential set it served lately).
SESSIONS_PER_THREAD = 16


def session_key(base_url: str, username: str) -> str:
    """The key of one credential set: a vendor base URL and the account name used on it."""
    return f"{base_url.rstrip('/')}|{username}"


def session(key: str = "") -> requests.Session:
    """This thread's session for one credential set (`session_key`). Celery's thread pool
    runs one task per thread, so a session is never shared between two requests in
    flight, and its connections stay open (keep-alive) for the whole transmission.

    One session per credential set, not per thread: a vendor's cookie (Wattics keeps its
    HTTPS session in one) set on one organization's requests must never travel with
    another organization's."""
    sessions: dict[str, requests.Session] | None = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    s = sessions.pop(key, None)
    if s is None:
        s = requests.Session()
        # No retries inside urllib3: retry policy belongs to the delivery, which records each try.
        # Only allowed vendor hosts, only public addresses (vendors/safety.py).
        adapter = GuardedAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers["User-Agent"] = settings.VENDOR_USER_AGENT
        while len(sessions) >= SESSIONS_PER_THREAD:  # the least recently used goes
            sessions.pop(next(iter(sessions))).close()
    sessions[key] = s  # (re)inserted last: the dict's order is the order of use
    return s


def _drop_session(key: str) -> None:
    sessions = getattr(_local, "sessions", None)
    if sessions and key in sessions:
        sessions.pop(key).close()


def timeouts() -> tuple[float, float]:
    return (settings.VENDOR_CONNECT_TIMEOUT, settings.VENDOR_READ_TIMEOUT)


class VendorError(Exception):
    """A vendor's failure, in one style for both clients. The kind is the class:

    - `VendorTransient`: busy or failing for now (5xx, 429): the same request, later;
      `VendorUnreachable` is the transient failure with no HTTP answer at all;
    - `VendorRejected`: this request, as sent, will never pass (a 4xx): fix the data;
      `VendorRefused` is the rejection of everything: credentials refused, an unknown or
      forbidden data stream; nothing passes until a person fixes the settings.

    `message` is what happened, in words a person can act on; `status` the HTTP status
    (None: no answer, or nothing sent); `retry_after` the seconds the vendor asked to wait;
    `field_errors` maps the vendor's field name to its message ("__all__" for the rest).
    `str()` is the message, after "<vendor> <status>: " when the client names its vendor."""

    def __init__(self, status: int | None, message: str, *, retry_after: float | None = None,
                 field_errors: dict[str, str] | None = None, vendor: str = "") -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.field_errors = field_errors or {}
        self.vendor = vendor

    def __str__(self) -> str:
        if not self.vendor:
            return self.message
        return f"{self.vendor} {self.status}: {self.message}" if self.status else f"{self.vendor}: {self.message}"


class VendorTransient(VendorError):
    """Busy or failing for now (5xx, 429): retry later, after `retry_after` if the vendor said."""


class VendorUnreachable(VendorTransient):
    """No HTTP answer: connection refused or dropped, DNS, timeout, or a URL refused before sending."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class VendorRejected(VendorError):
    """A 4xx: the request as sent will never succeed (retrying it as is will not help)."""


class VendorRefused(VendorRejected):
    """Nothing will pass until a person acts: credentials refused or missing, a data
    stream unknown or not allowed for these credentials."""


def safe_url(url: str) -> str:
    """The URL as it may be stored: no user:password, no query string (tokens hide there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def error_text(response: requests.Response, limit: int = 500) -> str:
    """The vendor's own words for a failed request, short: FastAPI's `detail` or the body,
    cut and without tags or control characters (vendors/safety.py)."""
    return vendor_text(_error_text(response, limit), limit)


def _error_text(response: requests.Response, limit: int) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:limit]
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if key in body:
                detail = body[key]
                if isinstance(detail, list):
                    return "; ".join(_format_fastapi_error(d) for d in detail)[:limit]
                return str(detail)[:limit]
    return str(body)[:limit]


def _format_fastapi_error(item) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = ".".join(str(part) for part in item.get("loc", []) if part != "body")
    return f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", item))


_LOG_FIELDS = ("organization_id", "vendor", "method", "url", "status_code", "duration_ms", "error", "request_bytes",
               "delivery_id", "meter_id", "device_id", "created_at")  # fmt: skip


@dataclass
class ExchangeLog:
    """Collects exchanges and writes them in batches: a push of 35,000 packets must not
    pay one INSERT per packet. Call flush() at the end and at checkpoints.

    Rows are kept as tuples and written with COPY on PostgreSQL (executemany elsewhere):
    building and saving one model instance per packet cost about as much as the exchange
    itself on a fast link."""

    organization_id: int
    vendor: str
    delivery_id: int | None = None
    meter_id: int | None = None
    device_id: int | None = None
    batch_size: int = 500
    rows: list[tuple] = field(default_factory=list)
    _urls: dict[str, str] = field(default_factory=dict)  # url -> its stored form, computed once

    def add(self, *, method: str, url: str, status_code: int | None, duration_ms: float, error: str = "",
            request_bytes: int = 0, at: datetime | None = None) -> None:  # fmt: skip
        """One exchange; `at` is when its answer came (default: now)."""
        shown = self._urls.get(url)
        if shown is None:
            shown = self._urls[url] = safe_url(url)[:500]
        self.rows.append((self.organization_id, self.vendor, method, shown, status_code, round(duration_ms, 2), error,
                          request_bytes, self.delivery_id, self.meter_id, self.device_id,
                          at or timezone.now()))  # fmt: skip
        if len(self.rows) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        rows, self.rows = self.rows, []
        opts = HttpExchange._meta
        # Names from the model, values as parameters: nothing here comes from outside.
        table = connection.ops.quote_name(opts.db_table)
        columns = ", ".join(connection.ops.quote_name(opts.get_field(name).column) for name in _LOG_FIELDS)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                return
            created = opts.get_field("created_at")
            marks = ", ".join(["%s"] * len(_LOG_FIELDS))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
            cursor.executemany(sql, [(*row[:-1], created.get_db_prep_value(row[-1], connection)) for row in rows])


def send(method: str, url: str, *, log: ExchangeLog, session_key: str | None = None, error_reader=None,
         **kwargs) -> requests.Response:  # fmt: skip
    """Send one request on this thread's session for the credential set `session_key`
    and record it in `log`.

    Without a `session_key` the session is keyed by the URL's origin and the request's
    credentials (its Authorization header or `auth` user), so two organizations never
    share a cookie jar. `error_reader(response) -> str` puts a failed answer in words
    (default: `error_text`). kwargs go to requests (auth, headers, data, json, files).
    A timeout is always set.
    """
    kwargs.setdefault("timeout", timeouts())
    kwargs.setdefault("allow_redirects", False)  # a redirect could lead anywhere: it is an answer, not followed
    if session_key is None:
        session_key = _derived_key(url, kwargs)
    body = kwargs.get("data")
    request_bytes = len(body) if isinstance(body, bytes | str) else 0
    started = time.perf_counter()
    try:
        response = session(session_key).request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise no_answer(exc, method=method, url=url, log=log, session_key=session_key, started=started,
                        request_bytes=request_bytes) from exc  # fmt: skip
    elapsed = (time.perf_counter() - started) * 1000
    error = "" if response.ok else (error_reader or error_text)(response)
    log.add(method=method, url=url, status_code=response.status_code, duration_ms=elapsed, error=error,
            request_bytes=request_bytes)  # fmt: skip
    return response


def no_answer(
    exc: requests.RequestException,
    *,
    method: str,
    url: str,
    log: ExchangeLog,
    session_key: str,
    started: float,
    request_bytes: int,
) -> VendorUnreachable:
    """A request that got no answer: recorded, its session dropped (a broken pooled connection
    must not poison the next request), and the error to raise."""
    message = f"{type(exc).__name__}: no answer from {safe_url(url)}"
    if isinstance(exc, VendorURLRefused):
        message = f"Refused: {exc}"
    log.add(method=method, url=url, status_code=None, duration_ms=(time.perf_counter() - started) * 1000,
            error=message, request_bytes=request_bytes)  # fmt: skip
    _drop_session(session_key)
    return VendorUnreachable(message)


def retry_after_seconds(response: requests.Response) -> float | None:
    """The answer's Retry-After in seconds (a number or an HTTP date); None if absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _derived_key(url: str, kwargs: dict) -> str:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    auth = kwargs.get("auth")
    if isinstance(auth, tuple) and auth:
        return session_key(origin, str(auth[0]))
    data = kwargs.get("data")
    if isinstance(data, dict) and data.get("username"):  # a token request (OAuth2 password form)
        return session_key(origin, str(data["username"]))
    headers = kwargs.get("headers") or {}
    credential = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if credential:
        # A digest, not the secret itself, names the session.
        return session_key(origin, "h:" + hashlib.sha256(str(credential).encode()).hexdigest()[:16])
    return session_key(origin, "")
