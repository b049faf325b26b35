"""The methodology registry: one entry per kind, used by the form and by the sync."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from sites import methodologies
from sites.forms import DeviceForm
from sites.methodologies import METHODOLOGIES, FieldSpec, Methodology, clean_values

EXPECTED_KINDS = {
    "solar_direct",
    "storage_direct",
    "electrification_eemetered",
    "energy_efficiency_eemetered",
    "tracking_building",
    "demand_response_eemetered",
}


def test_it_lists_the_six_kinds_with_labels_and_fields():
    assert set(METHODOLOGIES) == EXPECTED_KINDS
    for m in METHODOLOGIES.values():
        # Demand response has no fields of its own (its events are a document).
        assert m.label and m.description and (m.fields or m.documents)
    assert METHODOLOGIES["energy_efficiency_eemetered"].meter_based
    assert not METHODOLOGIES["solar_direct"].meter_based
    assert not METHODOLOGIES["demand_response_eemetered"].commenced_date_required
    assert METHODOLOGIES["demand_response_eemetered"].documents == ("demand_response_events",)


@pytest.mark.parametrize("old", ["electrification_billing_metered", "electrification"])
def test_the_old_electrification_names_find_todays_kind(old):
    assert methodologies.get_methodology(old).kind == "electrification_eemetered"
    assert methodologies.canonical_kind(old) == "electrification_eemetered"


def test_it_cleans_values_into_json_ready_types():
    values = clean_values(
        "electrification_eemetered",
        {"areaSqft": "1800.5", "previousFuel": "propane", "buildingType": "office", "replacesFurnace": "on"},
    )
    assert values == {
        "areaSqft": 1800.5,
        "previousFuel": "propane",
        "buildingType": "office",
        "replacesFurnace": True,
        "replacesWaterHeater": False,
        "coldClimate": False,
        "effectiveUsefulLifeYears": 15,
    }
    assert clean_values("energy_efficiency_eemetered", {"interventionDate": date(2024, 1, 2)}) == {
        "interventionDate": "2024-01-02"
    }


def test_it_rejects_a_missing_required_field_and_a_non_positive_capacity():
    with pytest.raises(ValidationError) as exc:
        clean_values("storage_direct", {"nameplatePowerKw": "0"})
    assert set(exc.value.message_dict) == {"nameplatePowerKw", "energyCapacityKwh"}
    assert "greater than 0" in exc.value.message_dict["nameplatePowerKw"][0]


def test_it_requires_an_eia_plant_id_above_a_megawatt():
    assert clean_values("solar_direct", {"nameplateCapacityKw": 1000}) == {"nameplateCapacityKw": 1000}
    with pytest.raises(ValidationError) as exc:
        clean_values("solar_direct", {"nameplateCapacityKw": 1500})
    assert "EIA plant id" in exc.value.message_dict["eiaPlantId"][0]
    assert clean_values("solar_direct", {"nameplateCapacityKw": 1500, "eiaPlantId": "60123"})["eiaPlantId"] == "60123"


def test_it_rejects_a_choice_outside_the_list():
    with pytest.raises(ValidationError) as exc:
        clean_values("tracking_building", {"buildingType": "castle"})
    assert "buildingType" in exc.value.message_dict


def test_it_adds_a_kind_with_one_entry(monkeypatch, org):
    geo = Methodology(
        kind="geothermal_direct",
        label="Geothermal (direct)",
        description="A test kind.",
        meter_based=False,
        fields=(FieldSpec("loopLengthFt", "Loop length (ft)", methodologies.INTEGER, required=True, min_value=1),),
    )
    monkeypatch.setitem(METHODOLOGIES, geo.kind, geo)
    form = DeviceForm(organization=org, kind="geothermal_direct")
    assert "loopLengthFt" in form.fields
    assert ("geothermal_direct", "Geothermal (direct)") in form.fields["kind"].choices
    html = str(form["loopLengthFt"])
    assert 'name="loopLengthFt"' in html and 'type="number"' in html
    assert clean_values("geothermal_direct", {"loopLengthFt": "300"}) == {"loopLengthFt": 300}


def test_the_database_knows_every_kind_of_the_registry(db):
    """A kind added to the registry comes with its migration (the database refuses unknown kinds)."""
    from django.core.management import call_command

    call_command("makemigrations", "sites", "--check", "--dry-run", verbosity=0)
