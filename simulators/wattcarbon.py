"""WattCarbon simulator: a FastAPI-looking registry of meters, intervals, bills and devices.

Contract: /work/shared/VENDORS.md and the WattCarbon developer guide (seed 000). Everything
the guide does not document is marked INFERRED; the paths live in the block just below.
Errors follow FastAPI/pydantic v2: 422 ``{"detail": [{"type", "loc", "msg", "input"}]}``,
other 4xx ``{"detail": "..."}``, an unhandled 500 is plain text "Internal Server Error".
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from . import WATTCARBON_DEMO_API_KEY, WATTCARBON_DEMO_EMAIL
from .core import Request, Response, SimApp, json_response, text_response
from .multipart import MultipartError, parse_multipart
from .wattcarbon_schema import (
    BILL_COLUMNS,
    COMMON_OPTIONAL,
    COMMON_REQUIRED,
    INTERVAL_COLUMNS,
    KIND_ALIASES,
    KIND_CHOICES,
    KINDS,
    MAX_ERRORS,
    check_field,
    check_meter_ids,
    enum_msg,
    enum_validator,
    err,
    parse_bill_row,
    parse_csv,
    parse_interval_row,
    v_location,
    v_str,
)

# ----- API paths (token and meter/device creation are documented; the rest INFERRED) -----
TOKEN_PATH = "/auth/token"
METERS_PATH = "/meters"
METER_PATH = "/meters/{meter_id}"
METER_INTERVALS_PATH = "/meters/{meter_id}/intervals"  # INFERRED
METER_BILLS_PATH = "/meters/{meter_id}/bills"  # INFERRED
DEVICES_PATH = "/devices"
DEVICE_PATH = "/devices/{device_id}"  # INFERRED (read back)

DEFAULT_TOKEN_TTL = 86400  # "lasts only 24 hours"
FIRST_METER_ID = 1001
FIRST_DEVICE_ID = 5001

NOT_AUTHENTICATED = {"detail": "Not authenticated"}


def unprocessable(errors: list[dict]) -> Response:
    return json_response(422, {"detail": errors[:MAX_ERRORS]})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class WattCarbonApp(SimApp):
    name = "wattcarbon"
    server_version = "uvicorn"

    def __init__(
        self,
        *,
        accounts: list[dict[str, str]] | None = None,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        **kwargs: Any,
    ) -> None:
        self._token_ttl = token_ttl
        super().__init__(**kwargs)
        self.accounts: dict[str, str] = {WATTCARBON_DEMO_EMAIL: WATTCARBON_DEMO_API_KEY}
        for acc in accounts or []:
            self.accounts[acc["email"].lower()] = acc["api_key"]
        self.configured_accounts = dict(self.accounts)
        self.reset_data()
        self.load_state_file()

    def default_faults(self) -> dict[str, Any]:
        faults = super().default_faults()
        faults["token_ttl"] = self._token_ttl
        return faults

    def register_routes(self) -> None:
        self.add_route("POST", TOKEN_PATH, self.create_token)
        self.add_route("POST", METERS_PATH, self.create_meter)
        self.add_route("GET", METERS_PATH, self.list_meters)
        self.add_route("GET", METER_PATH, self.get_meter)
        self.add_route("POST", METER_INTERVALS_PATH, self.upload_intervals)
        self.add_route("POST", METER_BILLS_PATH, self.upload_bills)
        self.add_route("POST", DEVICES_PATH, self.create_device)
        self.add_route("GET", DEVICES_PATH, self.list_devices)
        self.add_route("GET", DEVICE_PATH, self.get_device)
        self.add_route("GET", "/_sim/meters/{meter_id}/intervals", self.sim_intervals)
        self.add_route("GET", "/_sim/meters/{meter_id}/bills", self.sim_bills)
        self.add_route("POST", "/_sim/accounts", self.sim_add_account)

    # ----- vendor-style errors -------------------------------------------------------------
    def error_response(self, status: int) -> Response:
        if status == 500:
            return text_response(500, "Internal Server Error")  # Starlette's own 500
        return json_response(status, {"detail": HTTPStatus(status).phrase})

    def not_found(self) -> Response:
        return json_response(404, {"detail": "Not Found"})

    def method_not_allowed(self) -> Response:
        return json_response(405, {"detail": "Method Not Allowed"})

    # ----- state -------------------------------------------------------------------------
    def reset_data(self) -> None:
        self.accounts = dict(self.configured_accounts)
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (email, expiry epoch)
        self.meters: dict[int, dict[str, Any]] = {}
        self.intervals: dict[int, dict[str, float]] = {}
        self.bills: dict[int, dict[str, dict[str, Any]]] = {}
        self.devices: dict[int, dict[str, Any]] = {}
        self.owners: dict[tuple[str, int], str] = {}  # ("meter"|"device", id) -> account email
        self.next_meter_id = FIRST_METER_ID
        self.next_device_id = FIRST_DEVICE_ID

    def snapshot(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "tokens": self.tokens,
            "meters": self.meters,
            "intervals": self.intervals,
            "bills": self.bills,
            "devices": self.devices,
            "owners": [[kind, id_, email] for (kind, id_), email in self.owners.items()],
            "next_meter_id": self.next_meter_id,
            "next_device_id": self.next_device_id,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.accounts.update(data.get("accounts", {}))
        self.tokens = {k: (v[0], v[1]) for k, v in data.get("tokens", {}).items()}
        self.meters = {int(k): v for k, v in data.get("meters", {}).items()}
        self.intervals = {int(k): v for k, v in data.get("intervals", {}).items()}
        self.bills = {int(k): v for k, v in data.get("bills", {}).items()}
        self.devices = {int(k): v for k, v in data.get("devices", {}).items()}
        self.owners = {(kind, int(id_)): email for kind, id_, email in data.get("owners", [])}
        self.next_meter_id = data.get("next_meter_id", FIRST_METER_ID)
        self.next_device_id = data.get("next_device_id", FIRST_DEVICE_ID)

    def summary(self) -> dict[str, Any]:
        return {
            "accounts": sorted(self.accounts),
            "tokens": sum(1 for _, exp in self.tokens.values() if exp > time.time()),
            "meters": {
                str(mid): {
                    **meter,
                    "account": self.owners[("meter", mid)],
                    "intervals": len(self.intervals[mid]),
                    "bills": len(self.bills[mid]),
                }
                for mid, meter in self.meters.items()
            },
            "devices": {
                str(did): {**device, "account": self.owners[("device", did)]} for did, device in self.devices.items()
            },
        }

    # ----- auth ----------------------------------------------------------------------------
    def create_token(self, req: Request) -> Response:
        ctype = req.header("Content-Type").split(";")[0].strip().lower()
        form: dict[str, list[str]] = {}
        if ctype == "application/x-www-form-urlencoded":
            form = parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        elif ctype == "multipart/form-data":
            try:
                for part in parse_multipart(req.body, req.header("Content-Type")):
                    if part.name:
                        form.setdefault(part.name, []).append(part.data.decode("utf-8", "replace"))
            except MultipartError:
                form = {}
        values = {k: v[0] for k, v in form.items()}
        errors = [
            err(["body", key], "missing", "Field required", None)
            for key in ("grant_type", "username", "password")
            if key not in values
        ]
        grant = values.get("grant_type")
        if grant is not None and grant != "password":
            errors.insert(
                0,
                err(
                    ["body", "grant_type"],
                    "string_pattern_mismatch",
                    "String should match pattern '^password$'",
                    grant,
                    {"pattern": "^password$"},
                ),
            )
        if errors:
            return unprocessable(errors)
        email = values["username"].strip().lower()
        with self.lock:
            if not secrets.compare_digest(self.accounts.get(email, "\0").encode(), values["password"].encode()):
                return json_response(401, {"detail": "Incorrect username or password"})
            ttl = self.faults["token_ttl"]
            token = secrets.token_urlsafe(32)
            now = time.time()
            # Forget expired tokens now and then so the table does not grow without bound.
            if len(self.tokens) > 1000:
                self.tokens = {t: v for t, v in self.tokens.items() if v[1] > now}
            self.tokens[token] = (email, now + ttl)
            self.mark_dirty()
        expires_in = int(ttl) if float(ttl).is_integer() else ttl
        return json_response(200, {"access_token": token, "token_type": "bearer", "expires_in": expires_in})

    def account_for(self, req: Request) -> str | None:
        """Email of the bearer token's account, or None. Lock must be held."""
        auth = req.header("Authorization")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        entry = self.tokens.get(token.strip())
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]

    @staticmethod
    def unauthenticated() -> Response:
        return json_response(401, NOT_AUTHENTICATED, [("WWW-Authenticate", "Bearer")])

    def parse_json_body(self, req: Request) -> tuple[dict | None, Response | None]:
        try:
            data = json.loads(req.body) if req.body else None
        except ValueError as exc:
            pos = getattr(exc, "pos", 0)
            return None, unprocessable(
                [
                    err(
                        ["body", pos],
                        "json_invalid",
                        "JSON decode error",
                        {},
                        {"error": getattr(exc, "msg", str(exc))},
                    )
                ]
            )
        if data is None:
            return None, unprocessable([err(["body"], "missing", "Field required", None)])
        if not isinstance(data, dict):
            return None, unprocessable(
                [
                    err(
                        ["body"],
                        "model_attributes_type",
                        "Input should be a valid dictionary or object to extract fields from",
                        data,
                    )
                ]
            )
        return data, None

    def owned_id(self, req: Request, key: str, kind: str, email: str) -> tuple[int | None, Response | None]:
        """Id from the path if it names an object of this account; else a 422/404 answer."""
        obj_id, problem = parse_path_id(req, key)
        if problem:
            return None, problem
        if self.owners.get((kind, obj_id)) != email:
            return None, json_response(404, {"detail": "Not Found"})
        return obj_id, None

    # ----- meters --------------------------------------------------------------------------
    def create_meter(self, req: Request) -> Response:
        with self.lock:
            email = self.account_for(req)
        if email is None:
            return self.unauthenticated()
        data, problem = self.parse_json_body(req)
        if problem:
            return problem
        errors: list[dict] = []
        meter: dict[str, Any] = {}
        specs = [
            ("apiProvider", True, enum_validator(["manual"])),
            ("meterType", True, enum_validator(["electricity", "gas"])),
            ("location", True, v_location),
            ("name", False, v_str),
        ]
        for key, required, validator in specs:
            check_field(data, key, required, validator, meter, errors)
        if errors:
            return unprocessable(errors)
        with self.lock:
            mid = self.next_meter_id
            self.next_meter_id += 1
            meter = {"id": mid, "name": None, **meter, "createdAt": _now_iso()}
            self.meters[mid] = meter
            self.intervals[mid] = {}
            self.bills[mid] = {}
            self.owners[("meter", mid)] = email
            self.mark_dirty()
            return json_response(201, self.meter_view(mid))

    def meter_view(self, mid: int) -> dict[str, Any]:
        return {
            **self.meters[mid],
            "intervalCount": len(self.intervals[mid]),
            "billCount": len(self.bills[mid]),
        }

    def list_meters(self, req: Request) -> Response:
        with self.lock:
            email = self.account_for(req)
            if email is None:
                return self.unauthenticated()
            return json_response(
                200,
                [self.meter_view(m) for m in self.meters if self.owners[("meter", m)] == email],
            )

    def get_meter(self, req: Request) -> Response:
        with self.lock:
            email = self.account_for(req)
            if email is None:
                return self.unauthenticated()
            mid, problem = self.owned_id(req, "meter_id", "meter", email)
            if problem:
                return problem
            return json_response(200, self.meter_view(mid))

    def _upload_file(self, req: Request) -> tuple[str | None, Response | None]:
        missing = unprocessable([err(["body", "file"], "missing", "Field required", None)])
        try:
            parts = parse_multipart(req.body, req.header("Content-Type"))
        except MultipartError:
            return None, missing
        files = [p for p in parts if p.filename is not None] or [p for p in parts if p.name == "file"]
        if not files:
            return None, missing
        if len(files) > 1:
            return None, unprocessable(
                [err(["body", "file"], "value_error", "Value error, send exactly one file", None)]
            )
        try:
            return files[0].data.decode("utf-8-sig"), None
        except UnicodeDecodeError:
            return None, unprocessable(
                [err(["body", "file"], "value_error", "Value error, file must be UTF-8 text", None)]
            )

    def _upload(self, req: Request, columns: tuple[str, ...], parse_row, table: str) -> Response:
        """One CSV upload into `table` ("intervals" or "bills"): a row whose key is already
        stored replaces it, so re-uploading a file changes nothing."""
        with self.lock:
            email = self.account_for(req)
        if email is None:
            return self.unauthenticated()
        # FastAPI order: path and body validation (422) first, then the handler's lookup (404).
        mid, problem = parse_path_id(req, "meter_id")
        if problem:
            return problem
        text, problem = self._upload_file(req)
        if problem:
            return problem
        with self.lock:
            if self.owners.get(("meter", mid)) != email:
                return json_response(404, {"detail": "Not Found"})
        rows, errors = parse_csv(text, columns, parse_row)
        if errors:
            return unprocessable(errors)
        with self.lock:
            if ("meter", mid) not in self.owners:  # deleted by a reset meanwhile
                return json_response(404, {"detail": "Not Found"})
            series = getattr(self, table)[mid]  # read under the lock: a reset replaces the table
            before = len(series)
            series.update(rows)
            inserted = len(series) - before
            updated = len(rows) - inserted
            self.mark_dirty()
        return json_response(200, {"meterId": mid, "received": len(rows), "inserted": inserted, "updated": updated})

    def upload_intervals(self, req: Request) -> Response:
        return self._upload(req, INTERVAL_COLUMNS, parse_interval_row, "intervals")

    def upload_bills(self, req: Request) -> Response:
        return self._upload(req, BILL_COLUMNS, parse_bill_row, "bills")

    # ----- devices -------------------------------------------------------------------------
    def create_device(self, req: Request) -> Response:
        with self.lock:
            email = self.account_for(req)
        if email is None:
            return self.unauthenticated()
        data, problem = self.parse_json_body(req)
        if problem:
            return problem
        errors: list[dict] = []
        device: dict[str, Any] = {}
        for key, validator in COMMON_REQUIRED.items():
            check_field(data, key, True, validator, device, errors)
        for key, validator in COMMON_OPTIONAL.items():
            check_field(data, key, False, validator, device, errors)
        meter_ids = check_meter_ids(data, errors)

        kind = data.get("kind")
        spec = None
        if "kind" not in data:
            errors.append(err(["body", "kind"], "missing", "Field required", data))
        elif not isinstance(kind, str) or (kind not in KINDS and kind not in KIND_ALIASES):
            errors.append(
                err(
                    ["body", "kind"],
                    "enum",
                    enum_msg(KIND_CHOICES),
                    kind,
                    {"expected": enum_msg(KIND_CHOICES)[len("Input should be ") :]},
                )
            )
        else:
            kind = KIND_ALIASES.get(kind, kind)
            spec = KINDS[kind]
            fields: dict[str, Any] = {}
            for key, validator in spec["required"].items():
                check_field(data, key, True, validator, fields, errors)
            for key, validator in spec["optional"].items():
                check_field(data, key, False, validator, fields, errors)
            for condition, key in spec.get("conditional", []):
                if key not in data and condition(fields):
                    errors.append(err(["body", key], "missing", "Field required", data))
            if spec.get("requires_meters") and meter_ids is not None and not meter_ids:
                errors.append(
                    err(
                        ["body", "meterIds"],
                        "too_short",
                        f"List should have at least 1 item after validation, not 0 (kind {kind})",
                        data.get("meterIds"),
                    )
                )
            device["kind"] = kind
            device.update(fields)

        with self.lock:
            # Meters must exist in this account (checked under the lock with the insert).
            for i, meter_id in enumerate(meter_ids or []):
                if self.owners.get(("meter", meter_id)) != email:
                    errors.append(
                        err(
                            ["body", "meterIds", i],
                            "value_error",
                            f"Value error, meter {meter_id} not found",
                            meter_id,
                        )
                    )
            if errors:
                return unprocessable(errors)
            custom_id = device.get("customId")
            if custom_id is not None:
                for did, other in self.devices.items():
                    if other.get("customId") == custom_id and self.owners[("device", did)] == email:
                        return json_response(
                            409,
                            {"detail": f"customId '{custom_id}' is already used by device {did}"},
                        )
            did = self.next_device_id
            self.next_device_id += 1
            for key in ("customId", "utility", "deviceOwner"):
                device.setdefault(key, None)
            device = {"id": did, **device, "meterIds": meter_ids or [], "createdAt": _now_iso()}
            self.devices[did] = device
            self.owners[("device", did)] = email
            self.mark_dirty()
            return json_response(201, device)

    def list_devices(self, req: Request) -> Response:
        with self.lock:
            email = self.account_for(req)
            if email is None:
                return self.unauthenticated()
            return json_response(200, [d for did, d in self.devices.items() if self.owners[("device", did)] == email])

    def get_device(self, req: Request) -> Response:
        with self.lock:
            email = self.account_for(req)
            if email is None:
                return self.unauthenticated()
            did, problem = self.owned_id(req, "device_id", "device", email)
            if problem:
                return problem
            return json_response(200, self.devices[did])

    # ----- /_sim ---------------------------------------------------------------------------
    def _sim_meter(self, req: Request) -> int | None:
        try:
            mid = int(req.params["meter_id"])
        except ValueError:
            return None
        return mid if mid in self.meters else None

    def sim_intervals(self, req: Request) -> Response:
        with self.lock:
            mid = self._sim_meter(req)
            if mid is None:
                return json_response(404, {"error": "unknown meter"})
            rows = sorted(self.intervals[mid].items())
        return json_response(
            200,
            {
                "meterId": mid,
                "intervals": [{"start_datetime": ts, "energy_kwh": kwh} for ts, kwh in rows],
            },
        )

    def sim_bills(self, req: Request) -> Response:
        with self.lock:
            mid = self._sim_meter(req)
            if mid is None:
                return json_response(404, {"error": "unknown meter"})
            rows = sorted(self.bills[mid].items())
        return json_response(200, {"meterId": mid, "bills": [{"start_date": start, **bill} for start, bill in rows]})

    def sim_add_account(self, req: Request) -> Response:
        try:
            data = json.loads(req.body)
            email, api_key = data["email"].lower(), data["api_key"]
            if not isinstance(api_key, str) or not email:
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            return json_response(400, {"error": 'body must be {"email": str, "api_key": str}'})
        with self.lock:
            self.accounts[email] = api_key
            self.mark_dirty()
        return json_response(201, {"email": email})


def parse_path_id(req: Request, key: str) -> tuple[int | None, Response | None]:
    raw = req.params[key]
    try:
        return int(raw), None
    except ValueError:
        return None, unprocessable(
            [
                err(
                    ["path", key],
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                    raw,
                )
            ]
        )
