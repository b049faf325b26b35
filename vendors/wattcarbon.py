"""WattCarbon API client: token, meters, assets (the seed's "devices"), uploads, asset documents.

One client per organization and unit of work. Every request goes through
`vendors.http.send`, so each exchange is recorded (never a token or a key). The
access token is kept in Django's cache, shared by every web and worker process,
encrypted with the field key (Fernet): the cache may be a database table or a Redis
shared with others, and a bearer token is as good as the API key for 24 hours.
A 401 on any call drops it, re-authenticates once and retries the call once.

Errors are vendors.http's `VendorError` kinds, as for Wattics, so callers decide without
looking at status codes: `VendorRefused` (the account's email/key are wrong or missing),
`VendorRejected` (a 4xx: fix the data, retrying as is will not help), `VendorTransient`
(500/502/503/504, 429: retry later) and `VendorUnreachable` (no answer at all); and
`PayloadInvalid` before anything is sent (the portal's data cannot make the request).
"""

import csv
import datetime
import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.cache import cache

from vendors.http import (
    ExchangeLog,
    VendorError,
    VendorRefused,
    VendorRejected,
    VendorTransient,
    error_text,
    retry_after_seconds,
    send,
)
from vendors.safety import vendor_text

__all__ = [
    "Asset",
    "Location",
    "PayloadInvalid",
    "WattCarbonAccount",
    "WattCarbonClient",
    "asset_payload",
    "meter_payload",
]

VENDOR = "WattCarbon"  # how its errors name it: "WattCarbon 422: ..."

# ----- The contract, in one place --------------------------------------------------------------
# Documented in WattCarbon's developer guide (seed 000) unless marked INFERRED; an inferred
# path, field or status that turns out wrong is corrected here and nowhere else.
TOKEN_PATH = "/auth/token"  # documented: form grant_type=password, username=<email>, password=<API key>
TOKEN_GRANT_TYPE = "password"  # documented
TOKEN_FIELD = "access_token"  # documented
METERS_PATH = "/meters"  # documented (create)
METERS_LIST_PATH = "/meters"  # INFERRED: GET lists the account's meters (finds a meter by our name marker)
# WattCarbon renamed devices to assets in December 2025 (Assets-create_asset); the seed shows /devices.
ASSETS_PATH = "/assets"  # documented (create)
ASSETS_LIST_PATH = "/assets"  # INFERRED: GET lists the account's assets
ASSET_CUSTOM_ID_PARAM = "customId"  # INFERRED: list filter; the client also filters what comes back
METER_PATH = "/meters/{id}"  # INFERRED (read back)
ASSET_PATH = "/assets/{id}"  # INFERRED (read back)
# Documents-upload_asset_document: operation documented, path and form field names INFERRED.
ASSET_DOCUMENTS_PATH = "/assets/{id}/documents"
DOCUMENT_TYPE_FIELD = "type"  # documented: the document's type goes with the file
DOCUMENT_TYPE_DR_EVENTS = "demand_response_events"  # documented
EXTERNAL_REGISTRY_ID_FIELD = "externalRegistryAssetId"  # documented (was externalRegistryDeviceId)
# "will enforce that the same custom ID is never used": a 4xx whose detail names the custom id.
# INFERRED: its status (the simulator answers 409) and wording; 422 is field validation.
CUSTOM_ID_TAKEN_STATUSES = frozenset({400, 409})
METER_INTERVALS_PATH = "/meters/{id}/intervals"  # INFERRED (operation documented, path not)
METER_BILLS_PATH = "/meters/{id}/bills"  # INFERRED (operation documented, path not)
UPLOAD_FILE_FIELD = "file"  # INFERRED: FastAPI's UploadFile parameter name
UPLOAD_CONTENT_TYPE = "text/csv"
RESPONSE_ID_FIELD = "id"  # INFERRED: created objects answer with their "id" (an integer in the examples)
ERROR_DETAIL_FIELD = "detail"  # INFERRED from FastAPI: 422 detail is a list of {loc, msg, type}
ERROR_BODY_LOC = "body"  # INFERRED from FastAPI: loc starts with "body" for JSON/form fields
STATUS_UNAUTHORIZED = 401  # INFERRED from FastAPI: no or expired token
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})  # worth retrying later
# The guide says a token "lasts only 24 hours"; keep it a little less, and never trust
# expires_in (inferred), since a 401 re-authenticates anyway.
TOKEN_CACHE_SECONDS = 23 * 3600


def field_errors_from(body: Any) -> dict[str, str]:
    """FastAPI's 422 `detail` list as {top-level field: message}; nested parts prefix the message."""
    detail = body.get(ERROR_DETAIL_FIELD) if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return {}
    errors: dict[str, str] = {}
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = [str(part) for part in item.get("loc", [])]
        if loc and loc[0] == ERROR_BODY_LOC:
            loc = loc[1:]
        key = loc[0] if loc else "__all__"
        msg = str(item.get("msg", "invalid"))
        if len(loc) > 1:
            msg = f"{'.'.join(loc[1:])}: {msg}"
        errors[key] = f"{errors[key]}; {msg}" if key in errors else msg
    # Shown next to the form's fields: cut and stripped like any vendor text (vendors/safety.py).
    return {vendor_text(key, 100): vendor_text(msg) for key, msg in list(errors.items())[:50]}


# ----- What the portal sends: plain values in, WattCarbon's JSON out ------------------------------


class PayloadInvalid(VendorError):
    """What the portal holds cannot make a valid request (e.g. a site with no address):
    fix it in the portal. Nothing was sent; field_errors by WattCarbon field name."""

    def __init__(self, message: str, field_errors: dict[str, str] | None = None):
        super().__init__(None, message, field_errors=field_errors, vendor=VENDOR)


@dataclass(frozen=True)
class Location:
    """A site's address or coordinates; `site` names it in messages."""

    site: str
    street: str = ""
    city: str = ""
    state: str = ""
    country: str = ""
    postal_code: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Asset:
    """A device as WattCarbon takes it: common fields, and its kind's own (already validated)."""

    name: str
    custom_id: str
    kind: str
    location: Location
    meter_ids: list[str]
    kind_values: dict[str, Any] = field(default_factory=dict)
    commenced_operation_date: datetime.date | None = None  # None: the kind takes none
    utility: str = ""
    owner_name: str = ""
    external_registry_name: str = ""
    external_registry_id: str = ""


def location_payload(location: Location) -> dict[str, Any]:
    """WattCarbon's `location`: the street address, else the coordinates."""
    address = {
        "street": location.street,
        "city": location.city,
        "state": location.state,
        "country": location.country,
        "postalCode": location.postal_code,
    }
    if location.street or location.city or location.postal_code:
        return {k: v for k, v in address.items() if v}
    if location.latitude is not None and location.longitude is not None:
        return {"latitude": float(location.latitude), "longitude": float(location.longitude)}
    raise PayloadInvalid(
        f"Site {location.site} needs a street address or coordinates: WattCarbon maps devices to weather by it."
    )


def meter_marker_tag(marker: str) -> str:
    """What goes into the remote meter's name: WattCarbon has no custom id for meters."""
    return f"[portal:{marker}]"


def meter_payload(*, name: str, meter_type: str, location: Location, marker: str = "") -> dict[str, Any]:
    """The JSON for POST /meters; `marker` goes into the name so an interrupted creation is found again."""
    return {
        "apiProvider": "manual",
        "meterType": meter_type,
        "location": location_payload(location),
        "name": f"{name} {meter_marker_tag(marker)}" if marker else name,
    }


def _remote_id(value: Any) -> int | str:
    text = str(value)
    return int(text) if text.isdigit() else text


def asset_payload(asset: Asset) -> dict[str, Any]:
    """The JSON for POST /assets: common fields, then the kind's own."""
    payload: dict[str, Any] = {
        "name": asset.name,
        "customId": asset.custom_id,
        "location": location_payload(asset.location),
        "meterIds": [_remote_id(m) for m in asset.meter_ids],
        "kind": asset.kind,
    }
    if asset.commenced_operation_date is not None:
        payload["commencedOperationDate"] = asset.commenced_operation_date.isoformat()
    if asset.utility:
        payload["utility"] = asset.utility
    if asset.owner_name:
        payload["deviceOwner"] = {"name": asset.owner_name}
    if asset.external_registry_name:
        payload["externalRegistryName"] = asset.external_registry_name
    if asset.external_registry_id:
        payload[EXTERNAL_REGISTRY_ID_FIELD] = asset.external_registry_id
    payload.update(asset.kind_values)
    return payload


def intervals_csv(rows: list[tuple[datetime.datetime, float]], factor: float) -> bytes:
    """The CSV of POST /meters/{id}/intervals: start_datetime (UTC), energy_kwh (value x factor)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start_datetime", "energy_kwh"])
    for ts, value in rows:
        writer.writerow([ts.astimezone(datetime.UTC).isoformat(), repr(float(value) * factor)])
    return out.getvalue().encode()


def bills_csv(rows: list[tuple]) -> bytes:
    """The CSV of POST /meters/{id}/bills: start_date, end_date, energy_kwh."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start_date", "end_date", "energy_kwh"])
    for start, end, kwh in rows:
        writer.writerow([start.isoformat(), end.isoformat(), repr(float(kwh))])
    return out.getvalue().encode()


# ----- The client ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WattCarbonAccount:
    """One organization's WattCarbon account. `cipher` encrypts the cached token."""

    organization_id: int
    base_url: str
    email: str
    api_key: str
    cipher: Fernet | MultiFernet


class WattCarbonClient:
    """The WattCarbon account of one organization. `log` records every exchange."""

    def __init__(self, account: WattCarbonAccount, log: ExchangeLog):
        self.account = account
        self.log = log
        self.base_url = account.base_url.rstrip("/")

    # ----- token -----------------------------------------------------------------------------
    @property
    def _token_key(self) -> str:
        # Per organization and account (and URL: a simulator's token is no good elsewhere);
        # the email is hashed so the cache holds no address.
        account = f"{self.base_url}|{self.account.email.strip().lower()}"
        digest = hashlib.sha256(account.encode()).hexdigest()[:24]
        return f"wattcarbon:token:{self.account.organization_id}:{digest}"

    def _authenticate(self) -> str:
        email, key = self.account.email, self.account.api_key
        if not email or not key:
            raise VendorRefused(None, "No WattCarbon email and API key are set for this organization.", vendor=VENDOR)
        response = send(
            "POST",
            self.base_url + TOKEN_PATH,
            log=self.log,
            data={"grant_type": TOKEN_GRANT_TYPE, "username": email, "password": key},
        )
        if response.status_code in (400, 401, 403):
            raise VendorRefused(
                response.status_code,
                f"WattCarbon refused the account's email or API key ({error_text(response)}).",
                vendor=VENDOR,
            )
        self._raise_for_status(response)
        try:
            token = response.json()[TOKEN_FIELD]
        except (ValueError, KeyError, TypeError):
            raise VendorRejected(response.status_code, "The token answer had no access_token.", vendor=VENDOR) from None
        # Encrypted: the cache backend (a database table, a shared Redis) never holds it in clear.
        cache.set(self._token_key, self.account.cipher.encrypt(token.encode()).decode(), TOKEN_CACHE_SECONDS)
        return token

    def _cached_token(self) -> str | None:
        stored = cache.get(self._token_key)
        if not stored:
            return None
        try:
            return self.account.cipher.decrypt(str(stored).encode()).decode()
        except InvalidToken:
            return None  # another key (rotated) or a value from an older version: authenticate anew

    def _token(self) -> str:
        return self._cached_token() or self._authenticate()

    def ensure_token(self) -> None:
        """Have a token now: a caller that records an intent just before a POST gets the
        token's own failures out of the way first."""
        self._token()

    def _drop_token(self, token: str) -> None:
        # Only the token that failed: another worker may have stored a fresh one meanwhile.
        if self._cached_token() in (token, None):
            cache.delete(self._token_key)

    # ----- requests --------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs) -> Any:
        url = self.base_url + path
        token = self._token()
        response = send(method, url, log=self.log, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code == STATUS_UNAUTHORIZED:
            # Expired or revoked: one fresh token, one retry.
            self._drop_token(token)
            token = self._authenticate()
            response = send(method, url, log=self.log, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            if response.status_code == STATUS_UNAUTHORIZED:
                cache.delete(self._token_key)
                raise VendorRefused(STATUS_UNAUTHORIZED, "WattCarbon refused a fresh access token.", vendor=VENDOR)
        self._raise_for_status(response)
        try:
            return response.json()
        except ValueError:
            raise VendorRejected(
                response.status_code, "WattCarbon answered with something other than JSON.", vendor=VENDOR
            ) from None

    @staticmethod
    def _raise_for_status(response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        message = error_text(response) or response.reason or "no message"
        if status in TRANSIENT_STATUSES or status >= 500:
            raise VendorTransient(status, message, retry_after=retry_after_seconds(response), vendor=VENDOR)
        if status == 403:
            message = f"Forbidden: this WattCarbon account may not do this ({message})."
        elif status == 404:
            message = f"Not found at WattCarbon: the object does not exist in this account ({message})."
        try:
            body = response.json()
        except ValueError:
            body = None
        raise VendorRejected(status, message, field_errors=field_errors_from(body), vendor=VENDOR)

    @staticmethod
    def id_of(body: Any) -> Any:
        if not isinstance(body, dict) or body.get(RESPONSE_ID_FIELD) in (None, ""):
            raise VendorRejected(None, "WattCarbon's answer had no id.", vendor=VENDOR)
        return body[RESPONSE_ID_FIELD]

    # ----- operations ------------------------------------------------------------------------
    def create_meter(self, payload: dict[str, Any]) -> Any:
        """Create a meter; returns WattCarbon's id for it."""
        return self.id_of(self._request("POST", METERS_PATH, json=payload))

    def create_asset(self, payload: dict[str, Any]) -> Any:
        """Create an asset (the seed's "device"); returns WattCarbon's id for it."""
        return self.id_of(self._request("POST", ASSETS_PATH, json=payload))

    def get_meter(self, meter_id: Any) -> dict[str, Any]:
        return self._request("GET", METER_PATH.format(id=meter_id))

    def get_asset(self, asset_id: Any) -> dict[str, Any]:
        return self._request("GET", ASSET_PATH.format(id=asset_id))

    def list_meters(self) -> list[dict[str, Any]]:
        """Every meter of the account (no pagination is published: one page is assumed)."""
        body = self._request("GET", METERS_LIST_PATH)
        return [m for m in body if isinstance(m, dict)] if isinstance(body, list) else []

    def find_meter_named(self, marker: str) -> dict[str, Any] | None:
        """The account's meter whose name carries `marker` (ours, put there at creation)."""
        return next((m for m in self.list_meters() if marker in str(m.get("name") or "")), None)

    def find_asset_by_custom_id(self, custom_id: str) -> dict[str, Any] | None:
        """The account's asset with this customId, or None. The filter is inferred, so the
        answer is filtered here too (a server that ignores the parameter lists them all)."""
        body = self._request("GET", ASSETS_LIST_PATH, params={ASSET_CUSTOM_ID_PARAM: custom_id})
        assets = body if isinstance(body, list) else []
        return next((a for a in assets if isinstance(a, dict) and a.get("customId") == custom_id), None)

    @staticmethod
    def is_custom_id_taken(exc: VendorRejected) -> bool:
        """Maybe WattCarbon's "this customId is already used" answer to a create: the caller
        confirms with find_asset_by_custom_id, so a false positive costs one GET."""
        return exc.status in CUSTOM_ID_TAKEN_STATUSES

    def upload_asset_document(
        self, asset_id: Any, document_type: str, content: bytes, filename: str, content_type: str = UPLOAD_CONTENT_TYPE
    ) -> dict[str, Any]:
        """Upload one document (e.g. demand-response events) to an asset: a file and its `type`."""
        files = {UPLOAD_FILE_FIELD: (filename, content, content_type)}
        return self._request(
            "POST", ASSET_DOCUMENTS_PATH.format(id=asset_id), files=files, data={DOCUMENT_TYPE_FIELD: document_type}
        )

    def upload_intervals(self, meter_id: Any, csv_bytes: bytes, filename: str = "intervals.csv") -> dict[str, Any]:
        """Upload one CSV of intervals (start_datetime,energy_kwh) to a meter."""
        files = {UPLOAD_FILE_FIELD: (filename, csv_bytes, UPLOAD_CONTENT_TYPE)}
        return self._request("POST", METER_INTERVALS_PATH.format(id=meter_id), files=files)

    def upload_bills(self, meter_id: Any, csv_bytes: bytes, filename: str = "bills.csv") -> dict[str, Any]:
        """Upload one CSV of bills (start_date,end_date,energy_kwh) to a meter."""
        files = {UPLOAD_FILE_FIELD: (filename, csv_bytes, UPLOAD_CONTENT_TYPE)}
        return self._request("POST", METER_BILLS_PATH.format(id=meter_id), files=files)
