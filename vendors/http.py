"""HTTP to the vendors: one keep-alive session per worker thread, explicit timeouts,
and a record of every exchange (status, time, error; never a secret).

Both vendor clients send through `send()`. It never raises on an HTTP status: the
caller decides what a 401 or a 503 means for its vendor. A connection error or a
timeout comes back as `VendorUnreachable`.
"""

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.utils import timezone
from requests.adapters import HTTPAdapter

from vendors.models import HttpExchange

_local = threading.local()


def session() -> requests.Session:
    """This thread's session. Celery's thread pool runs one task per thread, so a
    session is never shared between two requests in flight, and its connections
    stay open (keep-alive) for the whole transmission."""
    s = getattr(_local, "session", None)
    if s is None:
        s = requests.Session()
        # No retries inside urllib3: retry policy belongs to the delivery, which records each try.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers["User-Agent"] = settings.VENDOR_USER_AGENT
        _local.session = s
    return s


def timeouts() -> tuple[float, float]:
    return (settings.VENDOR_CONNECT_TIMEOUT, settings.VENDOR_READ_TIMEOUT)


class VendorUnreachable(Exception):
    """No HTTP answer: connection refused or dropped, DNS, timeout."""


def safe_url(url: str) -> str:
    """The URL as it may be stored: no user:password, no query string (tokens hide there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def error_text(response: requests.Response, limit: int = 500) -> str:
    """The vendor's own words for a failed request, short: FastAPI's `detail` or the body."""
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


@dataclass
class ExchangeLog:
    """Collects exchanges and writes them in batches: a push of 35,000 packets must
    not pay one INSERT per packet. Call flush() at the end and at checkpoints."""

    organization_id: int
    vendor: str
    delivery_id: int | None = None
    meter_id: int | None = None
    device_id: int | None = None
    batch_size: int = 500
    pending: list[HttpExchange] = field(default_factory=list)

    def add(self, *, method: str, url: str, status_code: int | None, duration_ms: float, error: str = "",
            request_bytes: int = 0) -> None:  # fmt: skip
        self.pending.append(
            HttpExchange(
                organization_id=self.organization_id,
                vendor=self.vendor,
                method=method,
                url=safe_url(url)[:500],
                status_code=status_code,
                duration_ms=round(duration_ms, 2),
                error=error,
                request_bytes=request_bytes,
                delivery_id=self.delivery_id,
                meter_id=self.meter_id,
                device_id=self.device_id,
                created_at=timezone.now(),
            )
        )
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            rows, self.pending = self.pending, []
            HttpExchange.objects.bulk_create(rows)


def send(method: str, url: str, *, log: ExchangeLog, **kwargs) -> requests.Response:
    """Send one request on this thread's session and record it in `log`.

    kwargs go to requests (auth, headers, data, json, files). A timeout is always set.
    """
    kwargs.setdefault("timeout", timeouts())
    body = kwargs.get("data")
    request_bytes = len(body) if isinstance(body, bytes | str) else 0
    started = time.perf_counter()
    try:
        response = session().request(method, url, **kwargs)
    except requests.RequestException as exc:
        elapsed = (time.perf_counter() - started) * 1000
        message = f"{type(exc).__name__}: no answer from {safe_url(url)}"
        log.add(method=method, url=url, status_code=None, duration_ms=elapsed, error=message,
                request_bytes=request_bytes)  # fmt: skip
        # A broken pooled connection must not poison the next request.
        _local.session = None
        raise VendorUnreachable(message) from exc
    elapsed = (time.perf_counter() - started) * 1000
    error = "" if response.ok else error_text(response)
    log.add(method=method, url=url, status_code=response.status_code, duration_ms=elapsed, error=error,
            request_bytes=request_bytes)  # fmt: skip
    return response
