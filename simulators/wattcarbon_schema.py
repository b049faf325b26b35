"""WattCarbon request schemas: field validators, the methodology registry, CSV rows.

Errors are shaped like pydantic v2's (``{"type", "loc", "msg", "input"}``), as FastAPI
answers them in a 422. Column names and the extra device fields are partly INFERRED
(see /work/shared/VENDORS.md).
"""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import UTC, date, datetime
from typing import Any

INTERVAL_COLUMNS = ("start_datetime", "energy_kwh")  # INFERRED
BILL_COLUMNS = ("start_date", "end_date", "energy_kwh")  # INFERRED
# CalTRACK's analysis filter (monthly 25-35 days, bimonthly up to 70): eemeter drops other
# periods from a model, the API does not refuse them. Outside it, the answer carries a warning.
BILL_DAYS = (25, 70)
DR_EVENT_COLUMNS = ("Event Start Time", "Event End Time")  # documented (demand-response events)
SOLAR_EIA_THRESHOLD_KW = 1000
MAX_ERRORS = 50

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Invalid(Exception):
    """One pydantic-style validation error."""

    def __init__(self, type_: str, msg: str, ctx: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.type = type_
        self.msg = msg
        self.ctx = ctx


def err(loc: list[Any], type_: str, msg: str, input_: Any, ctx: dict | None = None) -> dict:
    item = {"type": type_, "loc": loc, "msg": msg, "input": input_}
    if ctx:
        item["ctx"] = ctx
    return item


def enum_msg(options: list[str]) -> str:
    quoted = [f"'{o}'" for o in options]
    if len(quoted) == 1:
        return f"Input should be {quoted[0]}"
    return f"Input should be {', '.join(quoted[:-1])} or {quoted[-1]}"


# ----- field validators: value -> normalized value, or raise Invalid -----------------------
def v_str(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("string_type", "Input should be a valid string")
    return value


def v_nonempty_str(value: Any) -> str:
    value = v_str(value)
    if not value.strip():
        raise Invalid("string_too_short", "String should have at least 1 character")
    return value


def v_id_str(value: Any) -> str:
    # External ids (inverter, registry, EIA plant) come as strings or numbers in practice.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return v_nonempty_str(value)


def v_number(value: Any) -> float:
    if isinstance(value, bool):
        raise Invalid("float_type", "Input should be a valid number")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise Invalid(
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
            ) from None
    else:
        raise Invalid("float_type", "Input should be a valid number")
    if not math.isfinite(number):
        raise Invalid("finite_number", "Input should be a finite number")
    return number


def v_positive(value: Any) -> float:
    number = v_number(value)
    if number <= 0:
        raise Invalid("greater_than", "Input should be greater than 0", {"gt": 0})
    return number


def v_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if value in (0, 1):
        return bool(value)
    raise Invalid("bool_parsing", "Input should be a valid boolean")


def v_date(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("date_type", "Input should be a valid date")
    if not DATE_RE.match(value):
        raise Invalid("date_from_datetime_parsing", "Input should be a valid date in YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise Invalid("date_parsing", "Input should be a valid date") from None
    return value


def v_location(value: Any) -> Any:
    """Street address object, {latitude, longitude} object, or a non-empty free string."""
    if isinstance(value, str):
        if not value.strip():
            raise Invalid("value_error", "Value error, location must not be empty")
        return value
    if isinstance(value, dict):
        if "latitude" in value or "longitude" in value:
            lat = v_number(value.get("latitude")) if "latitude" in value else None
            lon = v_number(value.get("longitude")) if "longitude" in value else None
            if lat is None or lon is None or not -90 <= lat <= 90 or not -180 <= lon <= 180:
                raise Invalid(
                    "value_error",
                    "Value error, latitude must be in [-90, 90] and longitude in [-180, 180]",
                )
            return {"latitude": lat, "longitude": lon}
        address = {}
        for key in ("street", "city", "state", "country", "postalCode"):
            if value.get(key) is not None:
                if not isinstance(value[key], str):
                    raise Invalid("value_error", f"Value error, location.{key} must be a string")
                address[key] = value[key]
        if not any(v.strip() for v in address.values()):
            raise Invalid(
                "value_error",
                "Value error, location must be an address {street, city, state, country, "
                "postalCode}, {latitude, longitude} or a non-empty string",
            )
        return address
    raise Invalid("value_error", "Value error, location must be an object or a string")


def v_owner(value: Any) -> dict:
    if not isinstance(value, dict):
        raise Invalid("model_type", "Input should be a valid dictionary or instance of DeviceOwner")
    return {"name": v_nonempty_str(value.get("name"))}


# ----- the methodology registry (data, not if/elif) -----------------------------------------
# required/optional: field name -> validator. "requires_meters": meterIds must be non-empty.
KINDS: dict[str, dict[str, Any]] = {
    "solar_direct": {
        "aliases": ("solar",),
        "required": {"nameplateCapacityKw": v_positive},
        "optional": {
            "inverterDataId": v_id_str,
            "inverterDataSource": v_nonempty_str,
            "eiaPlantId": v_id_str,
        },
        # Public M&V plans: an EIA plant id is required above 1 MW.
        "conditional": [
            (
                lambda d: d.get("nameplateCapacityKw", 0) > SOLAR_EIA_THRESHOLD_KW,
                "eiaPlantId",
            )
        ],
    },
    "storage_direct": {  # INFERRED minimum
        "aliases": (),
        "required": {"nameplatePowerKw": v_positive, "energyCapacityKwh": v_positive},
        "optional": {},
    },
    # Named electrification_billing_metered until December 2025 (as in the seed); the seed's
    # example says "electrification". Both old names stay accepted.
    "electrification_eemetered": {
        "aliases": ("electrification_billing_metered", "electrification"),
        "required": {
            "areaSqft": v_positive,
            "previousFuel": v_nonempty_str,
            "buildingType": v_nonempty_str,
        },
        "optional": {
            "replacesFurnace": v_bool,
            "replacesWaterHeater": v_bool,
            "coldClimate": v_bool,
            "effectiveUsefulLifeYears": v_positive,
            "heatingBackupSystem": v_nonempty_str,
            "heatPumpHspf": v_positive,
            "waterHeaterUef": v_positive,
        },
    },
    "energy_efficiency_eemetered": {
        "aliases": (),
        "required": {"interventionDate": v_date},
        "optional": {},
        "requires_meters": True,
    },
    "tracking_building": {
        "aliases": (),
        "required": {"buildingType": v_nonempty_str},
        "optional": {"interventionDate": v_date},
        "requires_meters": True,
    },
    # Added December 2025: name, customId, location, utility, meterIds, kind; no
    # commencedOperationDate. Its events come as an asset document (demand_response_events).
    "demand_response_eemetered": {
        "aliases": (),
        "required": {},
        "optional": {},
        "requires_meters": True,  # INFERRED: an EEmeter kind is measured from its meters
        "commenced_date_required": False,
    },
}
KIND_ALIASES = {alias: kind for kind, spec in KINDS.items() for alias in spec["aliases"]}
KIND_CHOICES = list(KINDS) + list(KIND_ALIASES)

COMMON_REQUIRED = {"name": v_nonempty_str, "location": v_location}
# The external registry fields appear in the seed's solar example; any asset may be registered
# elsewhere (INFERRED: taken for every kind).
COMMON_OPTIONAL = {
    "customId": v_nonempty_str,
    "utility": v_str,
    "deviceOwner": v_owner,
    "externalRegistryName": v_nonempty_str,
    "externalRegistryAssetId": v_id_str,
}
# Required by every kind but those whose spec says "commenced_date_required": False.
COMMENCED_DATE = ("commencedOperationDate", v_date)
# Old field names still accepted on input (stored and answered under the new name on /assets).
FIELD_ALIASES = {"externalRegistryDeviceId": "externalRegistryAssetId"}


def enum_validator(options: list[str]):
    def validate(value: Any) -> str:
        if value not in options:
            raise Invalid("enum", enum_msg(options), {"expected": enum_msg(options)[16:]})
        return value

    return validate


def check_field(data: dict, key: str, required: bool, validator, out: dict, errors: list[dict]) -> None:
    if key not in data or (data[key] is None and not required):
        if required:
            errors.append(err(["body", key], "missing", "Field required", data))
        return
    try:
        out[key] = validator(data[key])
    except Invalid as exc:
        errors.append(err(["body", key], exc.type, exc.msg, data[key], exc.ctx))


def check_meter_ids(data: dict, errors: list[dict]) -> list[int] | None:
    raw = data.get("meterIds")
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(err(["body", "meterIds"], "list_type", "Input should be a valid list", raw))
        return None
    ids = []
    for i, item in enumerate(raw):
        if isinstance(item, int) and not isinstance(item, bool):
            ids.append(item)
        elif isinstance(item, str) and item.strip().isdigit():
            ids.append(int(item))
        else:
            errors.append(
                err(
                    ["body", "meterIds", i],
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                    item,
                )
            )
    return ids


# ----- CSV -----------------------------------------------------------------------------------
def parse_csv(text: str, columns: tuple[str, ...], parse_row) -> tuple[list, list[dict]]:
    """Validate a whole CSV; rows are returned only if every row is good (atomic upload)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = None
    for row in reader:
        if row and any(cell.strip() for cell in row):
            header = [cell.strip() for cell in row]
            break
    if header is None:
        return [], [err(["body", "file"], "value_error", "Value error, CSV file is empty", None)]
    if sorted(header) != sorted(columns):
        return [], [
            err(
                ["body", "file", 0],
                "value_error",
                f"Value error, CSV header must be {','.join(columns)}, got {','.join(header)}",
                ",".join(header),
            )
        ]
    index = {name: header.index(name) for name in columns}
    rows: list = []
    errors: list[dict] = []
    seen: dict[str, int] = {}
    number = 0
    for row in reader:
        if not row or not any(cell.strip() for cell in row):
            continue  # blank line
        number += 1
        if len(row) != len(columns):
            errors.append(
                err(
                    ["body", "file", number],
                    "value_error",
                    f"Value error, row {number}: expected {len(columns)} columns, got {len(row)}",
                    row,
                )
            )
            continue
        values = {name: row[i].strip() for name, i in index.items()}
        try:
            key, value = parse_row(values)
        except RowInvalid as exc:
            errors.append(
                err(
                    ["body", "file", number, exc.column],
                    exc.type,
                    f"Value error, row {number}: {exc}",
                    values[exc.column],
                )
            )
            continue
        if key in seen:
            errors.append(
                err(
                    ["body", "file", number, columns[0]],
                    "value_error",
                    f"Value error, row {number}: duplicate {columns[0]} {key} (row {seen[key]})",
                    values[columns[0]],
                )
            )
            continue
        seen[key] = number
        rows.append((key, value))
        if len(errors) >= MAX_ERRORS:
            break
    if not errors and not rows:
        errors.append(err(["body", "file"], "value_error", "Value error, CSV has no data rows", None))
    return rows, errors


class RowInvalid(ValueError):
    def __init__(self, column: str, msg: str, type_: str = "value_error") -> None:
        super().__init__(msg)
        self.column = column
        self.type = type_


def _kwh(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise RowInvalid("energy_kwh", f"energy_kwh {raw!r} is not a number", "float_parsing") from None
    if not math.isfinite(value):
        raise RowInvalid("energy_kwh", f"energy_kwh {raw!r} is not finite", "finite_number")
    return value


def parse_interval_row(values: dict[str, str]) -> tuple[str, float]:
    raw = values["start_datetime"]
    # fromisoformat also takes dates alone and odd forms; insist on date, 'T' or ' ', time.
    if not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", raw):
        raise RowInvalid(
            "start_datetime",
            f"start_datetime {raw!r} is not an ISO 8601 datetime",
            "datetime_parsing",
        )
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise RowInvalid(
            "start_datetime",
            f"start_datetime {raw!r} is not an ISO 8601 datetime",
            "datetime_parsing",
        ) from None
    if moment.tzinfo is None:
        raise RowInvalid("start_datetime", f"start_datetime {raw!r} has no UTC offset (use +00:00 or Z)")
    if moment.utcoffset().total_seconds() != 0:
        raise RowInvalid("start_datetime", f"start_datetime {raw!r} is not in UTC (use +00:00 or Z)")
    key = moment.astimezone(UTC).isoformat()
    return key, _kwh(values["energy_kwh"])


def parse_bill_row(values: dict[str, str]) -> tuple[str, dict[str, Any]]:
    dates = {}
    for column in ("start_date", "end_date"):
        raw = values[column]
        try:
            dates[column] = date.fromisoformat(v_date(raw))
        except Invalid:
            raise RowInvalid(column, f"{column} {raw!r} is not a YYYY-MM-DD date", "date_parsing") from None
    if dates["end_date"] <= dates["start_date"]:
        raise RowInvalid("end_date", f"end_date {values['end_date']} is not after start_date {values['start_date']}")
    return values["start_date"], {
        "end_date": values["end_date"],
        "energy_kwh": _kwh(values["energy_kwh"]),
    }


def bill_warnings(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Periods CalTRACK would leave out of a model: accepted, and said so."""
    warnings = []
    for start, bill in rows:
        days = (date.fromisoformat(bill["end_date"]) - date.fromisoformat(start)).days
        if not BILL_DAYS[0] <= days <= BILL_DAYS[1]:
            warnings.append(
                f"billing period {start} to {bill['end_date']} is {days} days; CalTRACK models use "
                f"{BILL_DAYS[0]} to {BILL_DAYS[1]} days and will leave it out"
            )
    return warnings


LOCAL_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)$")


def _event_time(values: dict[str, str], column: str) -> datetime:
    raw = values[column]
    try:
        if not LOCAL_TIME_RE.match(raw):
            raise ValueError
        return datetime.fromisoformat(raw)
    except ValueError:
        raise RowInvalid(
            column,
            f"{column} {raw!r} is not a local time with its offset (e.g. 2021-01-01 17:00:00-05:00)",
            "datetime_parsing",
        ) from None


def parse_dr_event_row(values: dict[str, str]) -> tuple[str, dict[str, str]]:
    start = _event_time(values, "Event Start Time")
    end = _event_time(values, "Event End Time")
    if end <= start:
        raise RowInvalid("Event End Time", f"Event End Time {values['Event End Time']!r} is not after its start")
    key = start.astimezone(UTC).isoformat()
    return key, {"Event Start Time": values["Event Start Time"], "Event End Time": values["Event End Time"]}


# Asset document types: the CSV each one holds and the kinds it belongs to (INFERRED: the
# reference lists the type, not a rule on kinds).
DOCUMENT_TYPES: dict[str, dict[str, Any]] = {
    "demand_response_events": {
        "columns": DR_EVENT_COLUMNS,
        "parse_row": parse_dr_event_row,
        "kinds": ("demand_response_eemetered",),
    },
}
