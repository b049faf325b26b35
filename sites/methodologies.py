"""The WattCarbon device kinds (methodologies) and their own fields, as data.

Adding a kind is one entry in METHODOLOGIES. The device form builds its fields from
an entry (`form_fields`), and the form and the sync service both validate the stored
values with `clean_values`, so a rule is written once. Field names are WattCarbon's
JSON keys; values are stored JSON-ready in Device.fields.

Sources: WattCarbon's developer guide (seed 000) and VENDORS.md. Enumerations beyond
the guide's examples are not public: the choices below are the examples plus the
obvious neighbours, and are marked INFERRED.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

DECIMAL, INTEGER, BOOLEAN, CHOICE, TEXT, DATE = "decimal", "integer", "boolean", "choice", "text", "date"

# INFERRED beyond the guide's examples (natural_gas, single_family_attached, electric_resistance).
FUEL_CHOICES = [
    ("natural_gas", "Natural gas"),
    ("propane", "Propane"),
    ("fuel_oil", "Fuel oil"),
    ("electric_resistance", "Electric resistance"),
    ("other", "Other"),
]
BUILDING_TYPE_CHOICES = [
    ("single_family_detached", "Single family, detached"),
    ("single_family_attached", "Single family, attached"),
    ("multifamily", "Multifamily"),
    ("manufactured_home", "Manufactured home"),
    ("office", "Office"),
    ("retail", "Retail"),
    ("school", "School"),
    ("warehouse", "Warehouse"),
    ("other", "Other"),
]
BACKUP_HEAT_CHOICES = [
    ("none", "None"),
    ("electric_resistance", "Electric resistance"),
    ("natural_gas", "Natural gas"),
    ("propane", "Propane"),
    ("fuel_oil", "Fuel oil"),
]

EIA_PLANT_ID_THRESHOLD_KW = 1000
DOCUMENT_DR_EVENTS = "demand_response_events"  # WattCarbon's asset document type


@dataclass(frozen=True)
class FieldSpec:
    name: str  # WattCarbon's JSON key
    label: str
    type: str  # DECIMAL, INTEGER, BOOLEAN, CHOICE, TEXT, DATE
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    help_text: str = ""
    min_value: Decimal | int | None = None
    max_value: Decimal | int | None = None
    # min_value is exclusive ("greater than"), as for a capacity that must be > 0.
    min_exclusive: bool = False
    default: Any = None


@dataclass(frozen=True)
class Rule:
    """A condition over the cleaned values; when `applies` is true, `field` is required."""

    field: str
    applies: Callable[[dict[str, Any]], bool]
    message: str


@dataclass(frozen=True)
class Methodology:
    kind: str
    label: str
    description: str
    # Meter-based kinds are modelled from the attached meters' data (CalTRACK baseline).
    meter_based: bool
    fields: tuple[FieldSpec, ...] = ()
    rules: tuple[Rule, ...] = ()
    # The field whose date ends the baseline; the device's commenced operation date when empty.
    baseline_end_field: str = ""
    # WattCarbon does not take a commenced operation date for every kind (not for demand response).
    commenced_date_required: bool = True
    # Asset documents this kind takes (WattCarbon document types), uploaded from the device page.
    documents: tuple[str, ...] = ()

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


def _over_eia_threshold(values: dict[str, Any]) -> bool:
    return (values.get("nameplateCapacityKw") or 0) > EIA_PLANT_ID_THRESHOLD_KW


_POSITIVE = {"min_value": 0, "min_exclusive": True}

METHODOLOGIES: dict[str, Methodology] = {
    m.kind: m
    for m in (
        Methodology(
            kind="solar_direct",
            label="Solar (direct)",
            description="Solar panel impact, from nameplate capacity and inverter data.",
            meter_based=False,
            fields=(
                FieldSpec("nameplateCapacityKw", "Nameplate capacity (kW DC)", DECIMAL, required=True, **_POSITIVE),
                FieldSpec("inverterDataSource", "Inverter data source", TEXT, help_text="For example enphase."),
                FieldSpec("inverterDataId", "Inverter data id", TEXT),
                FieldSpec(
                    "eiaPlantId",
                    "EIA plant id",
                    TEXT,
                    help_text=f"Required above {EIA_PLANT_ID_THRESHOLD_KW} kW.",
                ),
            ),
            rules=(
                Rule(
                    "eiaPlantId",
                    _over_eia_threshold,
                    f"An EIA plant id is required when the nameplate capacity is above {EIA_PLANT_ID_THRESHOLD_KW} kW.",
                ),
            ),
        ),
        Methodology(
            kind="storage_direct",
            label="Battery storage (direct)",
            description="Direct battery impact. Field set INFERRED: WattCarbon does not publish it.",
            meter_based=False,
            fields=(
                FieldSpec("nameplatePowerKw", "Nameplate power (kW)", DECIMAL, required=True, **_POSITIVE),
                FieldSpec("energyCapacityKwh", "Energy capacity (kWh)", DECIMAL, required=True, **_POSITIVE),
            ),
        ),
        Methodology(
            # Named electrification_billing_metered until December 2025 (KIND_ALIASES).
            kind="electrification_eemetered",
            label="Electrification (EEmeter)",
            description="Heat pump and water heater electrification measured from meter or billing data.",
            meter_based=True,
            fields=(
                FieldSpec("areaSqft", "Conditioned area (sq ft)", DECIMAL, required=True, **_POSITIVE),
                FieldSpec("previousFuel", "Previous fuel", CHOICE, required=True, choices=tuple(FUEL_CHOICES)),
                FieldSpec("buildingType", "Building type", CHOICE, required=True, choices=tuple(BUILDING_TYPE_CHOICES)),
                FieldSpec("replacesFurnace", "Replaces a furnace", BOOLEAN),
                FieldSpec("replacesWaterHeater", "Replaces a water heater", BOOLEAN),
                FieldSpec("coldClimate", "Cold climate", BOOLEAN),
                FieldSpec(
                    "effectiveUsefulLifeYears",
                    "Effective useful life (years)",
                    INTEGER,
                    default=15,
                    min_value=1,
                    max_value=50,
                    help_text="M&V plans default to 15.",
                ),
                FieldSpec("heatingBackupSystem", "Heating backup system", CHOICE, choices=tuple(BACKUP_HEAT_CHOICES)),
                FieldSpec("heatPumpHspf", "Heat pump HSPF", DECIMAL, max_value=20, **_POSITIVE),
                FieldSpec("waterHeaterUef", "Water heater UEF", DECIMAL, max_value=10, **_POSITIVE),
            ),
            baseline_end_field="",
        ),
        Methodology(
            kind="energy_efficiency_eemetered",
            label="Energy efficiency (EEmeter)",
            description="Savings from metered usage (OpenEEmeter / CalTRACK): needs a year of baseline data.",
            meter_based=True,
            fields=(
                FieldSpec(
                    "interventionDate",
                    "Intervention date",
                    DATE,
                    required=True,
                    help_text="The baseline is the 365 days before it.",
                ),
            ),
            baseline_end_field="interventionDate",
        ),
        Methodology(
            kind="tracking_building",
            label="Building tracking",
            description="Tracks a building's consumption against a reference building and a baseline EEmeter model.",
            meter_based=True,
            fields=(
                FieldSpec("buildingType", "Building type", CHOICE, required=True, choices=tuple(BUILDING_TYPE_CHOICES)),
                FieldSpec("interventionDate", "Intervention date", DATE, help_text="Optional."),
            ),
            baseline_end_field="interventionDate",
        ),
        Methodology(
            kind="demand_response_eemetered",
            label="Demand response (EEmeter)",
            description="Load shifted or shed during demand-response events, measured from the meters' data. "
            "The events are uploaded from the device page once it is at WattCarbon.",
            meter_based=True,
            commenced_date_required=False,
            documents=(DOCUMENT_DR_EVENTS,),
        ),
    )
}

# Names WattCarbon used before (and the seed's example's), still accepted on input: a form post,
# a stored row from before the rename, a filter in a URL.
KIND_ALIASES = {
    "electrification_billing_metered": "electrification_eemetered",
    "electrification": "electrification_eemetered",
    "solar": "solar_direct",
}


def canonical_kind(kind: str) -> str:
    return KIND_ALIASES.get(kind, kind)


def kind_choices() -> list[tuple[str, str]]:
    return [(m.kind, m.label) for m in METHODOLOGIES.values()]


def get_methodology(kind: str) -> Methodology | None:
    return METHODOLOGIES.get(canonical_kind(kind))


def form_field(spec: FieldSpec) -> forms.Field:
    """One Django form field for one registry field."""
    common: dict[str, Any] = {"label": spec.label, "required": spec.required, "help_text": spec.help_text}
    if spec.default is not None:
        common["initial"] = spec.default
    validators = []
    if spec.min_value is not None:
        if spec.min_exclusive:
            validators.append(_greater_than(spec.min_value))
        else:
            validators.append(MinValueValidator(spec.min_value))
    if spec.max_value is not None:
        validators.append(MaxValueValidator(spec.max_value))
    if spec.type == DECIMAL:
        return forms.DecimalField(max_digits=14, decimal_places=4, validators=validators, **common)
    if spec.type == INTEGER:
        return forms.IntegerField(validators=validators, **common)
    if spec.type == BOOLEAN:
        # A checkbox: unticked is False, never "missing".
        return forms.BooleanField(**{**common, "required": False})
    if spec.type == CHOICE:
        choices = list(spec.choices) if spec.required else [("", "—"), *spec.choices]
        return forms.ChoiceField(choices=choices, **common)
    if spec.type == DATE:
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if spec.type == TEXT:
        return forms.CharField(max_length=200, **common)
    raise ValueError(f"Unknown field type {spec.type!r} for {spec.name}")


def _greater_than(limit):
    def validate(value) -> None:
        if value is not None and value <= limit:
            raise ValidationError(f"Must be greater than {limit}.", code="min_value")

    return validate


def form_fields(methodology: Methodology) -> dict[str, forms.Field]:
    """The Django form fields of one kind, keyed by WattCarbon's JSON keys."""
    return {spec.name: form_field(spec) for spec in methodology.fields}


def _json_ready(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Integral numbers stay integers; others become floats (JSONField cannot hold Decimal).
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def clean_values(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalize a kind's values (form data or a stored Device.fields).

    Returns the JSON-ready dict to store or send, with empty optional fields left out
    and defaults filled in. Raises ValidationError({field: [messages]}).
    """
    methodology = get_methodology(kind)
    if methodology is None:
        raise ValidationError({"kind": [f"Unknown kind {kind!r}."]})
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for spec in methodology.fields:
        raw = values.get(spec.name)
        if raw in (None, "") and spec.default is not None:
            raw = spec.default
        try:
            value = form_field(spec).clean(raw)
        except ValidationError as exc:
            errors[spec.name] = exc.messages
            continue
        if value in (None, ""):
            continue
        cleaned[spec.name] = _json_ready(value)
    for rule in methodology.rules:
        if rule.field not in errors and rule.field not in cleaned and rule.applies(cleaned):
            errors[rule.field] = [rule.message]
    if errors:
        raise ValidationError(errors)
    return cleaned
