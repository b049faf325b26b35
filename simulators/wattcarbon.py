"""WattCarbon simulator: a FastAPI-looking registry of meters, intervals, bills, assets and documents.

Assets are today's name of the seed's "devices": `/assets` is the route, `/devices` stays
for the seed's own example (same objects, the old field name `externalRegistryDeviceId`
in its answers), and old kind names are aliases.

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
from .core import BadFaults, Request, Response, SimApp, json_response, text_response
from .multipart import MultipartError, parse_multipart
from .wattcarbon_schema import (
    BILL_COLUMNS,
    COMMENCED_DATE,
    COMMON_OPTIONAL,
    COMMON_REQUIRED,
    DOCUMENT_TYPES,
    FIELD_ALIASES,
    INTERVAL_COLUMNS,
    KIND_ALIASES,
    KIND_CHOICES,
    KINDS,
    MAX_ERRORS,
    bill_warnings,
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
ASSETS_PATH = "/assets"  # documented (Assets-create_asset); GET lists them, ?customId= filters (INFERRED)
ASSET_PATH = "/assets/{asset_id}"  # INFERRED (read back)
ASSET_DOCUMENTS_PATH = "/assets/{asset_id}/documents"  # INFERRED (Documents-upload_asset_document)
DOCUMENT_TYPE_FIELD = "type"  # documented: the document's type, a form field beside the file
# The seed's older names for the same objects, kept so its example runs unchanged.
DEVICES_PATH = "/devices"
DEVICE_PATH = "/devices/{asset_id}"  # INFERRED (read back)
LEGACY_FIELDS = {"externalRegistryAssetId": "externalRegistryDeviceId"}

DEFAULT_TOKEN_TTL = 86400  # "lasts only 24 hours"
FIRST_METER_ID = 1001
FIRST_DEVICE_ID = 5001
FIRST_DOCUMENT_ID = 9001

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
        # A crash window on demand: a meter or asset is created and stored, then its answer
        # waits this long, so a test can kill the client between the creation and its answer.
        faults["hold_created_ms"] = 0
        return faults

    def validate_faults(self, knobs: dict[str, Any]) -> None:
        value = knobs.get("hold_created_ms", 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise BadFaults("hold_created_ms must be a number >= 0")
        super().validate_faults(knobs)

    def _hold_created(self) -> None:
        with self.lock:
            hold = self.faults["hold_created_ms"] / 1000.0
        if hold:
            time.sleep(hold)

    def register_routes(self) -> None:
        self.add_route("POST", TOKEN_PATH, self.create_token)
        self.add_route("POST", METERS_PATH, self.create_meter)
        self.add_route("GET", METERS_PATH, self.list_meters)
        self.add_route("GET", METER_PATH, self.get_meter)
        self.add_route("POST", METER_INTERVALS_PATH, self.upload_intervals)
        self.add_route("POST", METER_BILLS_PATH, self.upload_bills)
        for path, one, legacy in ((ASSETS_PATH, ASSET_PATH, False), (DEVICES_PATH, DEVICE_PATH, True)):
            self.add_route("POST", path, lambda req, legacy=legacy: self.create_asset(req, legacy=legacy))
            self.add_route("GET", path, lambda req, legacy=legacy: self.list_assets(req, legacy=legacy))
            self.add_route("GET", one, lambda req, legacy=legacy: self.get_asset(req, legacy=legacy))
        self.add_route("POST", ASSET_DOCUMENTS_PATH, self.upload_document)
        self.add_route("GET", "/_sim/meters/{meter_id}/intervals", self.sim_intervals)
        self.add_route("GET", "/_sim/meters/{meter_id}/bills", self.sim_bills)
        self.add_route("GET", "/_sim/assets/{asset_id}/documents", self.sim_documents)
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
        self.devices: dict[int, dict[str, Any]] = {}  # the assets
        self.documents: dict[int, list[dict[str, Any]]] = {}  # asset id -> its documents
        self.owners: dict[tuple[str, int], str] = {}  # ("meter"|"device", id) -> account email
        self.next_meter_id = FIRST_METER_ID
        self.next_device_id = FIRST_DEVICE_ID
        self.next_document_id = FIRST_DOCUMENT_ID

    def snapshot(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "tokens": self.tokens,
            "meters": self.meters,
            "intervals": self.intervals,
            "bills": self.bills,
            "devices": self.devices,
            "documents": self.documents,
            "owners": [[kind, id_, email] for (kind, id_), email in self.owners.items()],
            "next_meter_id": self.next_meter_id,
            "next_device_id": self.next_device_id,
            "next_document_id": self.next_document_id,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.accounts.update(data.get("accounts", {}))
        self.tokens = {k: (v[0], v[1]) for k, v in data.get("tokens", {}).items()}
        self.meters = {int(k): v for k, v in data.get("meters", {}).items()}
        self.intervals = {int(k): v for k, v in data.get("intervals", {}).items()}
        self.bills = {int(k): v for k, v in data.get("bills", {}).items()}
        self.devices = {int(k): v for k, v in data.get("devices", {}).items()}
        self.documents = {int(k): v for k, v in data.get("documents", {}).items()}
        self.next_document_id = data.get("next_document_id", FIRST_DOCUMENT_ID)
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
                str(did): {
                    **device,
                    "account": self.owners[("device", did)],
                    "documents": len(self.documents.get(did, [])),
                }
                for did, device in self.devices.items()
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
            answer = json_response(201, self.meter_view(mid))
        self._hold_created()
        return answer

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
        answer = {"meterId": mid, "received": len(rows), "inserted": inserted, "updated": updated}
        if table == "bills":
            answer["warnings"] = bill_warnings(rows)  # INFERRED: accepted, with CalTRACK's caveat
        return json_response(200, answer)

    def upload_intervals(self, req: Request) -> Response:
        return self._upload(req, INTERVAL_COLUMNS, parse_interval_row, "intervals")

    def upload_bills(self, req: Request) -> Response:
        return self._upload(req, BILL_COLUMNS, parse_bill_row, "bills")

    # ----- assets (the seed's devices) ------------------------------------------------------
    def create_asset(self, req: Request, *, legacy: bool = False) -> Response:
        with self.lock:
            email = self.account_for(req)
        if email is None:
            return self.unauthenticated()
        data, problem = self.parse_json_body(req)
        if problem:
            return problem
        for old, new in FIELD_ALIASES.items():
            if old in data and new not in data:
                data[new] = data.pop(old)
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
            date_key, date_validator = COMMENCED_DATE
            check_field(data, date_key, spec.get("commenced_date_required", True), date_validator, fields, errors)
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
                        noun = "device" if legacy else "asset"
                        return json_response(
                            409,
                            {"detail": f"customId '{custom_id}' is already used by {noun} {did}"},
                        )
            did = self.next_device_id
            self.next_device_id += 1
            for key in ("customId", "utility", "deviceOwner"):
                device.setdefault(key, None)
            device = {"id": did, **device, "meterIds": meter_ids or [], "createdAt": _now_iso()}
            self.devices[did] = device
            self.owners[("device", did)] = email
            self.mark_dirty()
            answer = json_response(201, self.asset_view(did, legacy))
        self._hold_created()
        return answer

    def asset_view(self, did: int, legacy: bool) -> dict[str, Any]:
        asset = self.devices[did]
        if not legacy:
            return asset
        return {LEGACY_FIELDS.get(key, key): value for key, value in asset.items()}

    def list_assets(self, req: Request, *, legacy: bool = False) -> Response:
        custom_id = req.query_one("customId")  # INFERRED filter
        with self.lock:
            email = self.account_for(req)
            if email is None:
                return self.unauthenticated()
            return json_response(
                200,
                [
                    self.asset_view(did, legacy)
                    for did, d in self.devices.items()
                    if self.owners[("device", did)] == email and (custom_id is None or d.get("customId") == custom_id)
                ],
            )

    def get_asset(self, req: Request, *, legacy: bool = False) -> Response:
        with self.lock:
            email = self.account_for(req)
            if email is None:
                return self.unauthenticated()
            did, problem = self.owned_id(req, "asset_id", "device", email)
            if problem:
                return problem
            return json_response(200, self.asset_view(did, legacy))

    def upload_document(self, req: Request) -> Response:
        """An asset document: a multipart file and its `type`; the CSV is checked per type."""
        with self.lock:
            email = self.account_for(req)
        if email is None:
            return self.unauthenticated()
        did, problem = parse_path_id(req, "asset_id")
        if problem:
            return problem
        try:
            parts = parse_multipart(req.body, req.header("Content-Type"))
        except MultipartError:
            parts = []
        doc_type = next((p.data.decode("utf-8", "replace") for p in parts if p.name == DOCUMENT_TYPE_FIELD), None)
        errors = []
        if doc_type is None:
            errors.append(err(["body", DOCUMENT_TYPE_FIELD], "missing", "Field required", None))
        elif doc_type not in DOCUMENT_TYPES:
            choices = list(DOCUMENT_TYPES)
            errors.append(err(["body", DOCUMENT_TYPE_FIELD], "enum", enum_msg(choices), doc_type))
        text, problem = self._upload_file(req)
        if problem:
            errors.extend(json.loads(problem.body)["detail"])
        if errors:
            return unprocessable(errors)
        with self.lock:
            if self.owners.get(("device", did)) != email:
                return json_response(404, {"detail": "Not Found"})
            kind = self.devices[did]["kind"]
        spec = DOCUMENT_TYPES[doc_type]
        if kind not in spec["kinds"]:
            return unprocessable(
                [
                    err(
                        ["body", DOCUMENT_TYPE_FIELD],
                        "value_error",
                        f"Value error, a {doc_type} document is for {' or '.join(spec['kinds'])} assets, not {kind}",
                        doc_type,
                    )
                ]
            )
        rows, errors = parse_csv(text, spec["columns"], spec["parse_row"])
        if errors:
            return unprocessable(errors)
        filename = next((p.filename for p in parts if p.filename is not None), None)
        with self.lock:
            if ("device", did) not in self.owners:  # deleted by a reset meanwhile
                return json_response(404, {"detail": "Not Found"})
            doc_id = self.next_document_id
            self.next_document_id += 1
            document = {
                "id": doc_id,
                "assetId": did,
                "type": doc_type,
                "filename": filename,
                "rows": [value for _, value in rows],
                "uploadedAt": _now_iso(),
            }
            self.documents.setdefault(did, []).append(document)
            self.mark_dirty()
        return json_response(201, {**{k: v for k, v in document.items() if k != "rows"}, "rowCount": len(rows)})

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

    def sim_documents(self, req: Request) -> Response:
        try:
            did = int(req.params["asset_id"])
        except ValueError:
            did = None
        with self.lock:
            if did not in self.devices:
                return json_response(404, {"error": "unknown asset"})
            return json_response(200, {"assetId": did, "documents": self.documents.get(did, [])})

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
