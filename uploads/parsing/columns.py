"""What each column of a file means: detected from the header, or chosen by the user.

A mapping is `{header name: role}`. Roles are data (ROLES), and so are the header
names operators really export (ALIASES); detection is a lookup, not a chain of ifs.
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property

TS, DATE, TIME, VALUE, METER, START_DATE, END_DATE = "ts", "date", "time", "value", "meter", "start_date", "end_date"
ELECTRICAL = tuple(
    [f"{p}_{n}" for p in ("aP", "rP", "apP", "v", "c", "pC") for n in (1, 2, 3)] + ["v_12", "v_13", "v_23"]
)
ROLES: dict[str, str] = {
    TS: "Timestamp (start of interval)",
    DATE: "Date (with a separate time column)",
    TIME: "Time of day (with a separate date column)",
    VALUE: "Value (energy, kWh)",
    METER: "Meter (name or Wattics stream id)",
    START_DATE: "Bill start date",
    END_DATE: "Bill end date",
    **{name: f"Wattics {name}" for name in ELECTRICAL},
}

# Normalised header names (see normalise()) per role, most specific first.
ALIASES: dict[str, tuple[str, ...]] = {
    TS: (
        "start", "start_datetime", "start_time", "start_timestamp", "timestamp", "datetime", "date_time",
        "time_stamp", "ts", "tsiso8601", "interval_start", "interval_start_time", "interval_start_datetime",
        "reading_time", "read_time", "reading_datetime", "period_start", "local_time", "utc_time",
    ),
    DATE: ("date", "day", "reading_date", "read_date"),
    TIME: ("time", "hour", "time_of_day"),
    VALUE: (
        "value", "energy_kwh", "kwh", "usage", "usage_kwh", "consumption", "consumption_kwh", "energy",
        "reading", "reading_kwh", "kwh_used", "quantity", "net_kwh",
    ),
    METER: (
        "meter", "meter_name", "meter_id", "custom_id", "stream", "stream_id", "data_stream_id",
        "datastream_id", "data_stream", "id", "channel",
    ),
    START_DATE: ("start_date", "bill_start", "bill_start_date", "period_start_date", "from_date", "service_start"),
    END_DATE: ("end_date", "bill_end", "bill_end_date", "period_end_date", "to_date", "service_end"),
}  # fmt: skip
_ROLE_OF_ALIAS = {alias: role for role, aliases in ALIASES.items() for alias in aliases}
_ELECTRICAL_OF = {name.lower(): name for name in ELECTRICAL}

READINGS, BILLS = "readings", "bills"

# Not a column: in a mapping, `{NEXT_START: END_DATE}` says each bill ends where the next row's
# period starts (the layout `start,value` whose last row, with an empty or nan value, marks the end).
NEXT_START = "(next row's start)"


def normalise(name: str) -> str:
    """'Energy (kWh)' -> 'energy_kwh', ' Start Time' -> 'start_time'."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


_SPELLED_OUT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def _alias_key(name: str) -> str:
    """normalise() after spelling out umlauts and dropping accents, for the alias lookup only:
    'Zählpunkt' and 'Zaehlpunkt' -> 'zaehlpunkt', 'Unité' -> 'unite'. (Saved mappings keep
    normalise(), so their fingerprints do not change.)"""
    text = unicodedata.normalize("NFKD", name.strip().lower().translate(_SPELLED_OUT))
    return normalise("".join(ch for ch in text if not unicodedata.combining(ch)))


@dataclass(frozen=True)
class Layout:
    """A complete mapping, by column index."""

    kind: str  # READINGS or BILLS
    columns: dict[int, str]  # index -> role
    # Bills without an end column: each one ends at the next row's start date.
    end_from_next: bool = False

    def index(self, role: str) -> int | None:
        return next((i for i, r in self.columns.items() if r == role), None)

    @cached_property  # read for every row
    def electrical(self) -> list[tuple[int, str]]:
        return [(i, r) for i, r in sorted(self.columns.items()) if r in _ELECTRICAL_OF.values()]


class MappingNeeded(Exception):
    """The columns are not (all) recognised; the user must say what they mean."""


def duplicate_header_problem(header: list[str]) -> str | None:
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        key = normalise(name)
        if not key:
            continue
        if key in seen:
            return f"Column {name!r} appears twice in the header (columns {seen[key] + 1} and {i + 1})."
        seen[key] = i
    return None


def detect(header: list[str]) -> dict[str, str]:
    """The roles recognised in a header, as {header name: role}. Unknown columns are left out."""
    found: dict[str, str] = {}
    for name in header:
        key = _alias_key(name)
        role = _ELECTRICAL_OF.get(key) or _ROLE_OF_ALIAS.get(key)
        if role and role not in found.values():
            found[name] = role
    roles = set(found.values())
    # "Datum;Von;Bis;Wert": a "from" column beside a date column is the time of day, not a timestamp.
    if DATE in roles and TIME not in roles:
        found = {n: (TIME if r == TS and _alias_key(n) in _FROM_WORDS else r) for n, r in found.items()}
        roles = set(found.values())
    # One column with a date and no time column is the timestamp of daily data; a
    # time column alone is taken to hold full timestamps.
    if TS not in roles and (DATE in roles) != (TIME in roles):
        for name, role in found.items():
            if role in (DATE, TIME):
                found[name] = TS
    if TS in roles:
        found = {n: r for n, r in found.items() if r not in (DATE, TIME)}
    # A start date without an end date is the timestamp of daily readings.
    if START_DATE in roles and END_DATE not in roles and TS not in set(found.values()):
        found = {n: (TS if r == START_DATE else r) for n, r in found.items()}
    return found


def as_bills(mapping: dict[str, str]) -> dict[str, str]:
    """A detected mapping read as bills, for a meter whose data are bills: a start column
    without an end column becomes the `start,value` layout whose periods end at the next row."""
    roles = set(mapping.values())
    if VALUE not in roles or DATE in roles or TIME in roles:
        return mapping
    bills = {name: (START_DATE if role == TS else role) for name, role in mapping.items()}
    if START_DATE not in bills.values():
        return mapping
    if END_DATE not in bills.values():
        bills[NEXT_START] = END_DATE
    return bills


def layout(header: list[str], mapping: dict[str, str], *, needs_meter: bool) -> Layout:
    """Check a mapping is complete; raise MappingNeeded with what is missing."""
    by_name = {name: i for i, name in enumerate(header)}
    columns = {by_name[name]: role for name, role in mapping.items() if name in by_name and role in ROLES}
    end_from_next = mapping.get(NEXT_START) == END_DATE and END_DATE not in columns.values()
    roles = list(columns.values()) + ([END_DATE] if end_from_next else [])
    repeated = sorted({r for r in roles if roles.count(r) > 1})
    if repeated:
        raise MappingNeeded(f"Each meaning can be given to one column only: {', '.join(repeated)}.")
    missing = []
    if START_DATE in roles or END_DATE in roles:
        kind = BILLS
        missing += [ROLES[r] for r in (START_DATE, VALUE) if r not in roles]
        if END_DATE not in roles:
            missing.append("a bill end date column (or “End = next row's start”)")
    else:
        kind = READINGS
        if TS not in roles and not (DATE in roles and TIME in roles):
            missing.append("a timestamp column")
        if VALUE not in roles and not any(r.startswith("aP_") for r in roles):
            missing.append("a value column (or Wattics aP_1..aP_3 columns)")
    if needs_meter and METER not in roles:
        missing.append("the meter column")
    if missing:
        raise MappingNeeded(f"Choose {' and '.join(missing)}.")
    return Layout(kind=kind, columns=columns, end_from_next=end_from_next and kind == BILLS)


# --- Units and estimation (formats): extra roles, appended so the lists above stay as they are ---
UNIT, ESTIMATED = "unit", "estimated"
ROLES[UNIT] = "Unit of the value (kWh, therm, ccf, m³ …), converted to the meter's unit"
ROLES[ESTIMATED] = "Estimated? (yes/no: flagged on the review page)"
ALIASES[UNIT] = ("unit", "units", "usage_units", "uom", "unit_of_measure", "usage_unit")
ALIASES[ESTIMATED] = ("estimation", "estimated", "is_estimated", "estimate", "estimated_reading")
# ENERGY STAR Portfolio Manager meter entries: "Usage/Quantity", "Portfolio Manager Meter ID".
ALIASES[VALUE] += ("usage_quantity",)
ALIASES[METER] += ("portfolio_manager_meter_id",)
_ROLE_OF_ALIAS.update({alias: role for role in (UNIT, ESTIMATED) for alias in ALIASES[role]})
_ROLE_OF_ALIAS.update({"usage_quantity": VALUE, "portfolio_manager_meter_id": METER})

# European utility and metering-point exports (German, French, Spanish, Dutch), as _alias_key()
# writes them. Left out on purpose: register columns ("Zählerstand", "index"), which hold a
# running total rather than the interval's energy; power columns ("Leistung", kW); and "Hora",
# which in Spanish distributors' exports is an hour number (1–24), not a time of day.
_EUROPEAN: dict[str, tuple[str, ...]] = {
    TS: (
        "zeitstempel", "datum_uhrzeit", "datum_zeit", "zeitpunkt", "von", "beginn", "ab", "startzeit",
        "horodatage", "date_heure", "debut", "fecha_hora", "inicio", "tijdstip", "datum_tijd", "van",
    ),
    DATE: ("datum", "tag", "fecha", "jour"),
    TIME: ("uhrzeit", "zeit", "heure", "tijd"),
    VALUE: (
        "wert", "wert_kwh", "verbrauch", "verbrauch_kwh", "energie", "energie_kwh", "menge", "menge_kwh",
        "wirkarbeit", "wirkarbeit_kwh", "wirkenergie", "wirkenergie_kwh", "arbeit_kwh",
        "consommation", "consommation_kwh", "valeur", "energie_active_kwh",
        "consumo", "consumo_kwh", "valor", "energia_kwh", "verbruik", "verbruik_kwh", "waarde",
    ),
    METER: (
        "zaehler", "zaehlernummer", "zaehlpunkt", "zaehlpunktbezeichnung", "messlokation", "melo", "malo",
        "marktlokation", "compteur", "pdl", "prm", "point_de_livraison", "contador", "cups", "meternummer", "ean",
    ),
    UNIT: ("einheit", "unite", "unidad", "eenheid"),
}  # fmt: skip
# "From" words: a full timestamp alone, the time of day beside a date column (see detect()).
_FROM_WORDS = frozenset(("von", "ab", "beginn", "debut", "inicio", "van", "start", "start_time"))
for _role, _names in _EUROPEAN.items():
    ALIASES[_role] += _names
    _ROLE_OF_ALIAS.update({alias: _role for alias in _names if alias not in _ROLE_OF_ALIAS})
