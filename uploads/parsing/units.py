"""Units of energy and gas volume, and the conversion of a value to the meter's unit.

Energy converts exactly (through kWh). Gas volume converts to energy only through a
heating value, which is a convention, not physics: the two factors are settings
(GAS_CCF_TO_THERM, GAS_M3_TO_KWH), shown on the review page with every conversion.
Volume to volume (ccf, cf, m³) is exact.

    factor = conversion_factor("therm", "kWh")   # 29.3071…
    convert(12.0, "ccf", "m³")                   # 12 × 2.8316846592
"""

import re
from dataclasses import dataclass

from django.conf import settings

ENERGY, VOLUME = "energy", "volume"

# Canonical name -> (dimension, size in the dimension's base: kWh for energy, m³ for volume).
UNITS: dict[str, tuple[str, float]] = {
    "Wh": (ENERGY, 1e-3),
    "kWh": (ENERGY, 1.0),
    "MWh": (ENERGY, 1e3),
    "GWh": (ENERGY, 1e6),
    "Btu": (ENERGY, 1.0 / 3412.14163),
    "kBtu": (ENERGY, 1.0 / 3.41214163),
    "MMBtu": (ENERGY, 293.071070),
    "therm": (ENERGY, 29.3071070),  # 100,000 Btu (US therm)
    "Dth": (ENERGY, 293.071070),  # dekatherm = 10 therms = 1 MMBtu
    "MJ": (ENERGY, 1.0 / 3.6),
    "GJ": (ENERGY, 1000.0 / 3.6),
    "m³": (VOLUME, 1.0),
    "cf": (VOLUME, 0.028316846592),  # cubic foot
    "ccf": (VOLUME, 2.8316846592),  # hundred cubic feet
    "mcf": (VOLUME, 28.316846592),  # thousand cubic feet
}

# What files write -> canonical name; looked up after normalise().
ALIASES: dict[str, str] = {
    "wh": "Wh", "watt_hours": "Wh", "watt_hour": "Wh",
    "kwh": "kWh", "kw_h": "kWh", "kilowatt_hours": "kWh", "kilowatt_hour": "kWh", "kwh_thousand_watt_hours": "kWh",
    "mwh": "MWh", "megawatt_hours": "MWh", "mwh_million_watt_hours": "MWh",
    "gwh": "GWh",
    "btu": "Btu",
    "kbtu": "kBtu", "kbtu_thousand_btu": "kBtu",
    "mmbtu": "MMBtu", "mbtu_million_btu": "MMBtu", "mmbtu_million_btu": "MMBtu",
    "therm": "therm", "therms": "therm", "thm": "therm",
    "dth": "Dth", "dekatherm": "Dth", "dekatherms": "Dth", "decatherms": "Dth",
    "mj": "MJ", "gj": "GJ", "gigajoules": "GJ",
    "m3": "m³", "m³": "m³", "cubic_meters": "m³", "cubic_metres": "m³", "cubic_meters_m3": "m³", "cm": "m³",
    "cf": "cf", "ft3": "cf", "cubic_feet": "cf", "cf_cubic_feet": "cf",
    "ccf": "ccf", "hcf": "ccf", "ccf_hundred_cubic_feet": "ccf",
    "mcf": "mcf", "kcf": "mcf", "mcf_thousand_cubic_feet": "mcf",
}  # fmt: skip


class UnitError(ValueError):
    """A unit that is unknown, or that cannot become the meter's unit; the message names it."""


def normalise(name: str) -> str:
    text = name.strip().lower().replace("³", "3")
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_")


def canonical(name: str) -> str:
    """'KWH', 'kWh (thousand Watt-hours)', 'Therms' -> 'kWh', 'kWh', 'therm'. Raises UnitError."""
    if name in UNITS:
        return name
    found = ALIASES.get(normalise(name))
    if found is None:
        known = ", ".join(UNITS)
        raise UnitError(f"Unknown unit {name.strip()!r}: the portal converts {known}.")
    return found


def _gas_kwh_per_m3() -> float:
    return float(settings.GAS_M3_TO_KWH)


def _gas_kwh_per_ccf() -> float:
    return float(settings.GAS_CCF_TO_THERM) * UNITS["therm"][1]


def _to_base_energy(unit: str) -> float:
    """kWh per one `unit`, volumes through the gas heating value (ccf-based units use the therm factor)."""
    dimension, size = UNITS[unit]
    if dimension == ENERGY:
        return size
    if unit in ("cf", "ccf", "mcf"):
        return _gas_kwh_per_ccf() * size / UNITS["ccf"][1]
    return _gas_kwh_per_m3() * size


def conversion_factor(source: str, target: str) -> float:
    """Multiply a value in `source` by this to get `target`. Both are names a file may write."""
    src, dst = canonical(source), canonical(target)
    if src == dst:
        return 1.0
    src_dim, dst_dim = UNITS[src][0], UNITS[dst][0]
    if src_dim == dst_dim:
        return UNITS[src][1] / UNITS[dst][1]
    if dst_dim == VOLUME:
        # Energy back to a volume divides by the same heating value.
        return _to_base_energy(src) / _to_base_energy(dst)
    return _to_base_energy(src) / UNITS[dst][1]


def gas_assumption(source: str, target: str) -> str:
    """The heating value used, when a conversion needs one; '' otherwise."""
    src, dst = canonical(source), canonical(target)
    if UNITS[src][0] == UNITS[dst][0]:
        return ""
    volume = src if UNITS[src][0] == VOLUME else dst
    if volume in ("cf", "ccf", "mcf"):
        return f"1 ccf = {settings.GAS_CCF_TO_THERM} therm (setting GAS_CCF_TO_THERM)"
    return f"1 m³ = {settings.GAS_M3_TO_KWH} kWh (setting GAS_M3_TO_KWH)"


@dataclass
class Conversion:
    """One (source unit -> meter unit) pair met in a file, with how many rows it converted."""

    meter: str
    source: str
    target: str
    factor: float
    assumption: str
    rows: int = 0

    def as_dict(self) -> dict:
        return {
            "meter": self.meter,
            "from": self.source,
            "to": self.target,
            "factor": self.factor,
            "assumption": self.assumption,
            "rows": self.rows,
        }


class Converter:
    """Converts row values to each meter's unit; remembers every conversion it made (a few per file)."""

    def __init__(self, default_unit: str = ""):
        # The unit the user said the file is in (when it has no unit column); '' means the meter's unit.
        self.default_unit = canonical(default_unit) if default_unit else ""
        self.used: dict[tuple[int, str], Conversion] = {}

    def factor(self, *, meter_id: int, meter_label: str, meter_unit: str, source: str) -> float:
        """Raises UnitError for an unknown unit, or one that cannot become the meter's."""
        source = source.strip() or self.default_unit
        if not source:
            return 1.0  # no unit in the file and none chosen: the values are in the meter's unit
        key = (meter_id, source)
        found = self.used.get(key)
        if found is None:
            src = canonical(source)
            try:
                dst = canonical(meter_unit)
            except UnitError:
                if src == meter_unit:
                    dst = meter_unit
                else:
                    raise UnitError(
                        f"{meter_label} is in {meter_unit!r}, which the portal cannot convert {src} to."
                    ) from None
            factor = 1.0 if src == dst else conversion_factor(src, dst)
            found = self.used[key] = Conversion(meter_label, src, dst, factor, gas_assumption(src, dst))
        found.rows += 1
        return found.factor

    def summary(self) -> list[dict]:
        return [c.as_dict() for c in self.used.values()]
