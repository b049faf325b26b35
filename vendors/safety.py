"""Where the worker may send vendor requests (no server-side request forgery).

An organization's owner chooses the vendor base URLs, and the worker sends that
organization's secrets there and shows the answer back. So:

- a base URL names a host of VENDOR_ALLOWED_HOSTS (the vendors' published hosts; the
  simulators' loopback addresses in development), with no query, fragment or user
  info, over https when VENDOR_REQUIRE_HTTPS (production);
- at connect time, after DNS resolution, an address that is not public (loopback,
  private, link-local, cloud metadata, ...) is refused unless it is in
  VENDOR_ALLOWED_NETWORKS or listed literally in VENDOR_ALLOWED_HOSTS. The check runs
  on the very address the socket connects to, so a name that resolves to a public
  address when the form is saved and to 127.0.0.1 later (DNS rebinding) still fails;
- redirects are not followed (vendors.http.send), and a vendor's error text is cut,
  stripped of tags and control characters before it is stored or shown.

`GuardedAdapter` is the requests adapter that enforces the host rules on every
request of a session and the address rules on every new connection.
"""

import ipaddress
import re
import socket
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils.html import strip_tags
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class VendorURLRefused(requests.exceptions.InvalidURL):
    """A vendor URL or address the portal will not talk to. A RequestException, so the
    vendor clients record it as an exchange without an answer."""


# ----- URLs and hosts -------------------------------------------------------------------


def _split_entry(entry: str) -> tuple[str, int | None]:
    entry = entry.strip().lower()
    parts = urlsplit(f"//{entry}")
    return (parts.hostname or "", parts.port)


def host_allowed(host: str, port: int | None) -> bool:
    host = host.lower().rstrip(".")
    for entry in settings.VENDOR_ALLOWED_HOSTS:
        allowed_host, allowed_port = _split_entry(entry)
        if allowed_host == host and (allowed_port is None or allowed_port == port):
            return True
    return False


def check_base_url(url: str, *, resolve: bool = False) -> None:
    """Raise VendorURLRefused (with a message for the user) unless `url` may be a vendor base URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise VendorURLRefused("A vendor URL must start with https://.")
    if settings.VENDOR_REQUIRE_HTTPS and parts.scheme != "https":
        raise VendorURLRefused("A vendor URL must use https.")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise VendorURLRefused("A vendor base URL cannot have a query string (?) or a fragment (#).")
    if parts.username or parts.password:
        raise VendorURLRefused("A vendor base URL cannot carry a user name or password.")
    try:
        port = parts.port
    except ValueError as exc:
        raise VendorURLRefused("The port of this URL is not valid.") from exc
    host = parts.hostname or ""
    if not host_allowed(host, port):
        shown = ", ".join(settings.VENDOR_ALLOWED_HOSTS) or "none"
        raise VendorURLRefused(f"{host or 'This host'} is not a vendor host this portal may use (allowed: {shown}).")
    if resolve:
        for address in resolve_host(host, port or (443 if parts.scheme == "https" else 80)):
            check_address(address, host=host)


# ----- addresses --------------------------------------------------------------------------


def resolve_host(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise VendorURLRefused(f"{host} cannot be resolved.") from exc
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def _listed_literally(address: Address) -> bool:
    for entry in settings.VENDOR_ALLOWED_HOSTS:
        host, _ = _split_entry(entry)
        try:
            if ipaddress.ip_address(host) == address:
                return True
        except ValueError:
            continue
    return False


def check_address(address: Address, *, host: str) -> None:
    """Refuse an address that is not public, unless the settings allow it."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    public = address.is_global and not (address.is_multicast or address.is_reserved)
    if public:
        return
    for network in settings.VENDOR_ALLOWED_NETWORKS:
        if address in ipaddress.ip_network(network, strict=False):
            return
    if _listed_literally(address):
        return
    raise VendorURLRefused(f"{host} resolves to {address}, a non-public address the portal does not connect to.")


def _guarded_create_connection(host: str, port: int, timeout, source_address, socket_options) -> socket.socket:
    """Resolve once, check every address, and connect to the checked addresses only
    (never resolve again: the name could answer differently the second time)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        check_address(address, host=host)
    last: OSError | None = None
    for address in addresses:
        try:
            return urllib3_connection.create_connection(
                (str(address), port), timeout, source_address=source_address, socket_options=socket_options
            )
        except OSError as exc:
            last = exc
    raise last or OSError(f"no address for {host}")


def guarded_socket(url: str, *, connect_timeout: float) -> socket.socket:
    """A TCP connection (TCP_NODELAY) to a vendor URL's host, with the checks of
    GuardedAdapter: an allowed vendor host, no query or fragment, resolved once and only
    to allowed addresses. For a client that speaks HTTP on the socket itself."""
    parts = urlsplit(url)
    _check_origin(parts.scheme, parts.netloc, tuple(settings.VENDOR_ALLOWED_HOSTS), settings.VENDOR_REQUIRE_HTTPS)
    if "/" in parts.query or parts.fragment:
        raise VendorURLRefused("A vendor base URL cannot have a query string (?) or a fragment (#).")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    return _guarded_create_connection(parts.hostname or "", port, connect_timeout, None, options)


class _GuardedMixin:
    """urllib3's HTTPConnection._new_conn, with the resolution checked."""

    def _new_conn(self) -> socket.socket:
        if getattr(self, "_tunnel_host", None):
            return super()._new_conn()  # type: ignore[misc] - through a proxy: the proxy is the peer
        try:
            return _guarded_create_connection(
                self._dns_host,  # type: ignore[attr-defined]
                self.port,  # type: ignore[attr-defined]
                self.timeout,  # type: ignore[attr-defined]
                self.source_address,  # type: ignore[attr-defined]
                self.socket_options,  # type: ignore[attr-defined]
            )
        except VendorURLRefused:
            raise
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[attr-defined, arg-type]
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc  # type: ignore
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc  # type: ignore


class GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


def _refusal_in(exc: BaseException | None, depth: int = 0) -> VendorURLRefused | None:
    """The VendorURLRefused that urllib3 wrapped (MaxRetryError -> ProtocolError -> ...)."""
    if exc is None or depth > 6:
        return None
    if isinstance(exc, VendorURLRefused):
        return exc
    for inner in (getattr(exc, "reason", None), exc.__cause__, exc.__context__, *exc.args):
        if isinstance(inner, BaseException) and inner is not exc:
            found = _refusal_in(inner, depth + 1)
            if found is not None:
                return found
    return None


@lru_cache(maxsize=64)
def _check_origin(scheme: str, netloc: str, hosts: tuple[str, ...], require_https: bool) -> None:
    """check_base_url for one origin, remembered: a push sends thousands of packets to one
    origin, and the answer only changes with the settings (part of the cache key). A
    refusal raises, and exceptions are not cached."""
    check_base_url(f"{scheme}://{netloc}")


class PublicAddressAdapter(HTTPAdapter):
    """A requests adapter that connects only to allowed addresses (public ones, and
    VENDOR_ALLOWED_NETWORKS): for URLs an organization chooses freely, such as webhooks."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def send(self, request, *args, **kwargs):
        try:
            return super().send(request, *args, **kwargs)
        except requests.RequestException as exc:
            refused = _refusal_in(exc)
            if refused is not None and refused is not exc:
                raise VendorURLRefused(str(refused)) from exc
            raise


def public_session() -> requests.Session:
    """A session for URLs that are not vendors' (webhooks): any host, public addresses only."""
    s = requests.Session()
    adapter = PublicAddressAdapter(max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


class GuardedAdapter(PublicAddressAdapter):
    """A requests adapter that sends only to allowed vendor hosts and connects only to
    allowed addresses."""

    def send(self, request, *args, **kwargs):
        parts = urlsplit(request.url)
        _check_origin(parts.scheme, parts.netloc, tuple(settings.VENDOR_ALLOWED_HOSTS), settings.VENDOR_REQUIRE_HTTPS)
        # A base URL ending in "?" (stored before the form refused it) turns the vendor's
        # path into a query string, and the request reaches the host's root instead.
        if "/" in parts.query or parts.fragment:
            raise VendorURLRefused("A vendor base URL cannot have a query string (?) or a fragment (#).")
        return super().send(request, *args, **kwargs)


# ----- what a vendor says -------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"\s+")


def vendor_text(text: str, limit: int | None = None) -> str:
    """A vendor's error text as the portal keeps it: no tags, no control characters,
    one line, at most VENDOR_ERROR_TEXT_MAX characters (templates escape the rest)."""
    limit = min(limit or settings.VENDOR_ERROR_TEXT_MAX, settings.VENDOR_ERROR_TEXT_MAX)
    cleaned = _SPACES.sub(" ", _CONTROL.sub(" ", strip_tags(text[: limit * 4]))).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
