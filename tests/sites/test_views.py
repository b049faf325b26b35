"""Site, meter and device pages as owner, teammate (operator), viewer and outsider."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from sites.forms import DeviceForm
from sites.methodologies import METHODOLOGIES, FieldSpec, Methodology
from sites.models import Device, Meter, Site, SyncStatus
from sites.services import crud
from tests import factories

PEOPLE = ["owner", "teammate", "viewer", "outsider"]


@pytest.fixture
def site(org):
    return factories.make_site(org, name="Ellis Street", custom_id="S-1")


@pytest.fixture
def meter(site):
    return factories.make_meter(site, name="Main meter")


@pytest.fixture
def device(site, meter):
    return factories.make_device(site, name="Roof array", custom_id="SP123", meters=[meter])


def login(client, request, who):
    client.force_login(request.getfixturevalue(who))
    return client


def device_post(site, meters=(), **extra):
    data = {
        "kind": "solar_direct",
        "site": site.pk,
        "name": "New array",
        "custom_id": "SP-NEW",
        "meters": [m.pk for m in meters],
        "commenced_operation_date": "2022-08-01",
        "owner_name": "Person Person",
        "utility": "",
        "external_registry_name": "GATS",
        "external_registry_id": "45678",
        "nameplateCapacityKw": "123.5",
        "inverterDataSource": "enphase",
    }
    data.update(extra)
    return data


# ----- read pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("name", ["site", "meter", "device"])
def test_it_shows_lists_and_details_to_members_only(client, request, who, name, device):
    obj = {"site": device.site, "meter": device.meters.get(), "device": device}[name]
    login(client, request, who)
    detail = client.get(reverse(f"sites:{name}_detail", args=[obj.pk]))
    listing = client.get(reverse(f"sites:{name}_list"))
    assert listing.status_code == 200
    if who == "outsider":
        assert detail.status_code == 404
        assert str(obj).encode() not in listing.content
        return
    assert detail.status_code == 200
    assert obj.name.encode() in listing.content
    edit_url = reverse(f"sites:{name}_edit", args=[obj.pk]).encode()
    # Viewers read everything but get no buttons.
    assert (edit_url in detail.content) == (who != "viewer")
    assert (b"Sync to WattCarbon" in detail.content) == (name != "site" and who != "viewer")


@pytest.mark.parametrize("who,status", [("owner", 200), ("teammate", 200), ("viewer", 403), ("outsider", 404)])
@pytest.mark.parametrize("name", ["site", "meter", "device"])
def test_it_lets_only_operators_open_edit_and_delete_pages(client, request, who, status, name, device):
    obj = {"site": device.site, "meter": device.meters.get(), "device": device}[name]
    login(client, request, who)
    assert client.get(reverse(f"sites:{name}_edit", args=[obj.pk])).status_code == status
    assert client.get(reverse(f"sites:{name}_delete", args=[obj.pk])).status_code == status


@pytest.mark.parametrize("who,status", [("owner", 200), ("teammate", 200), ("viewer", 403), ("outsider", 200)])
@pytest.mark.parametrize("name", ["site", "meter", "device"])
def test_it_lets_only_operators_open_create_pages(client, request, who, status, name, org):
    # The outsider creates in their own organization: allowed, and it never shows org's rows.
    login(client, request, who)
    assert client.get(reverse(f"sites:{name}_create")).status_code == status


@pytest.mark.parametrize("who,status", [("owner", 302), ("teammate", 302), ("viewer", 403), ("outsider", 404)])
@pytest.mark.parametrize("name", ["site", "meter", "device"])
def test_it_deletes_on_post_for_operators_only(client, request, who, status, name, device):
    model = {"site": Site, "meter": Meter, "device": Device}[name]
    obj = {"site": device.site, "meter": device.meters.get(), "device": device}[name]
    login(client, request, who)
    response = client.post(reverse(f"sites:{name}_delete", args=[obj.pk]))
    assert response.status_code == status
    assert model.objects.filter(pk=obj.pk).exists() == (status != 302)


@pytest.mark.parametrize("who,status", [("owner", 302), ("teammate", 302), ("viewer", 403), ("outsider", 404)])
def test_it_lets_only_operators_press_sync(client, request, who, status, device, django_capture_on_commit_callbacks):
    meter = device.meters.get()
    login(client, request, who)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(reverse("sites:meter_sync", args=[meter.pk])).status_code == status
        assert client.post(reverse("sites:device_sync", args=[device.pk])).status_code == status
    meter.refresh_from_db()
    device.refresh_from_db()
    expected = SyncStatus.PENDING if status == 302 else SyncStatus.NOT_SYNCED
    assert (meter.wattcarbon_status, device.wattcarbon_status) == (expected, expected)
    assert len(callbacks) == (2 if status == 302 else 0)


def test_it_refuses_sync_by_get(owner_client, meter):
    assert owner_client.get(reverse("sites:meter_sync", args=[meter.pk])).status_code == 405


# ----- lists: search, filters, pagination ------------------------------------------------


def test_it_searches_and_filters_devices(owner_client, org, site, meter):
    other_site = factories.make_site(org, name="Warehouse")
    factories.make_device(site, name="Roof array", custom_id="SP-1")
    factories.make_device(
        other_site, name="Battery", custom_id="BAT-9", kind="storage_direct", wattcarbon_status=SyncStatus.SYNCED
    )
    url = reverse("sites:device_list")
    assert b"BAT-9" not in owner_client.get(url, {"q": "roof"}).content
    assert b"BAT-9" in owner_client.get(url, {"q": "bat-9"}).content
    response = owner_client.get(url, {"site": other_site.pk, "kind": "storage_direct", "status": "synced"})
    assert b"BAT-9" in response.content and b"SP-1" not in response.content
    assert b"BAT-9" not in owner_client.get(url, {"status": "failed"}).content


def test_it_filters_meters_by_type_and_site(owner_client, org, site):
    factories.make_meter(site, name="Gas main", meter_type="gas")
    factories.make_meter(site, name="Sub meter")
    response = owner_client.get(reverse("sites:meter_list"), {"type": "gas", "site": site.pk})
    assert b"Gas main" in response.content and b"Sub meter" not in response.content


def test_it_paginates_sites_by_25(owner_client, org):
    for i in range(30):
        factories.make_site(org, name=f"Site {i:02d}")
    first = owner_client.get(reverse("sites:site_list"))
    second = owner_client.get(reverse("sites:site_list"), {"page": 2})
    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 5
    assert b"Page 1 of 2" in first.content


def test_page_links_keep_the_filters(owner_client, org, site):
    for i in range(30):
        factories.make_meter(site, name=f"Gas {i:02d}", meter_type="gas")
    factories.make_meter(site, name="Electric main")
    html = owner_client.get(reverse("sites:meter_list"), {"type": "gas", "q": "gas"}).content.decode()
    assert 'href="?type=gas&amp;q=gas&amp;page=2" rel="next"' in html
    second = owner_client.get(reverse("sites:meter_list"), {"type": "gas", "q": "gas", "page": 2})
    assert [m.name for m in second.context["page"].object_list] == [f"Gas {i:02d}" for i in range(25, 30)]


# ----- sites ----------------------------------------------------------------------------


def test_it_creates_a_site(owner_client, org):
    response = owner_client.post(
        reverse("sites:site_create"),
        {"name": "Depot", "country": "us", "timezone": "Europe/Dublin", "city": "Dublin", "street": "1 Quay"},
    )
    site = Site.objects.get(name="Depot")
    assert response.status_code == 302 and response["Location"] == reverse("sites:site_detail", args=[site.pk])
    assert site.organization == org and site.country == "US"


def test_it_rejects_an_unknown_time_zone_and_a_duplicate_name(owner_client, site):
    response = owner_client.post(
        reverse("sites:site_create"), {"name": site.name, "country": "US", "timezone": "Mars/Olympus"}
    )
    assert response.status_code == 200
    assert "is not an IANA time zone" in response.context["form"].errors["timezone"][0]
    assert "already has this name" in response.context["form"].errors["name"][0]
    assert b'list="timezones"' in response.content and b"America/New_York" in response.content


def test_it_edits_a_site(teammate_client, site):
    data = {"name": "Renamed", "country": "US", "timezone": "America/New_York", "custom_id": "S-1"}
    assert teammate_client.post(reverse("sites:site_edit", args=[site.pk]), data).status_code == 302
    site.refresh_from_db()
    assert (site.name, site.timezone) == ("Renamed", "America/New_York")


# ----- meters ---------------------------------------------------------------------------


def meter_post(site, **extra):
    data = {
        "site": site.pk,
        "name": "Main",
        "meter_type": "electricity",
        "unit": "kWh",
        "interval_minutes": "15",
        "wattics_stream_id": "stream-1",
        "wattics_format": "electrical",
        "wattics_username": "meter-user",
        "wattics_password": "meter-secret",
    }
    data.update(extra)
    return data


def test_it_creates_a_meter_with_a_write_only_password(owner_client, site):
    assert owner_client.post(reverse("sites:meter_create"), meter_post(site)).status_code == 302
    meter = Meter.objects.get(name="Main")
    assert meter.wattics_password == "meter-secret" and meter.interval_minutes == 15
    page = owner_client.get(reverse("sites:meter_edit", args=[meter.pk]))
    assert b"meter-secret" not in page.content
    # An empty password keeps the stored one.
    owner_client.post(reverse("sites:meter_edit", args=[meter.pk]), meter_post(site, wattics_password="", unit="Wh"))
    meter.refresh_from_db()
    assert (meter.wattics_password, meter.unit) == ("meter-secret", "Wh")


def test_it_offers_only_the_organizations_sites_and_standard_intervals(owner_client, site, other_org):
    stranger = factories.make_site(other_org, name="Stranger site")
    response = owner_client.post(reverse("sites:meter_create"), meter_post(stranger, interval_minutes="7"))
    errors = response.context["form"].errors
    assert "site" in errors and "interval_minutes" in errors
    assert not Meter.objects.exists()


def test_it_rejects_a_stream_id_used_by_another_meter(owner_client, site, meter):
    Meter.objects.filter(pk=meter.pk).update(wattics_stream_id="stream-1")
    response = owner_client.post(reverse("sites:meter_create"), meter_post(site))
    assert "uses this Wattics stream id" in response.context["form"].errors["wattics_stream_id"][0]


def test_it_includes_the_meter_data_panel(owner_client, meter):
    response = owner_client.get(reverse("sites:meter_detail", args=[meter.pk]))
    assert "sites/_meter_data.html" in [t.name for t in response.templates]


# ----- devices --------------------------------------------------------------------------


def test_it_creates_a_device_with_its_kind_fields(owner_client, site, meter):
    response = owner_client.post(reverse("sites:device_create"), device_post(site, [meter]))
    device = Device.objects.get(custom_id="SP-NEW")
    assert response.status_code == 302
    assert device.fields == {"nameplateCapacityKw": 123.5, "inverterDataSource": "enphase"}
    assert list(device.meters.all()) == [meter]
    assert device.external_registry_name == "GATS"


def test_it_shows_errors_next_to_the_kind_fields(owner_client, site):
    response = owner_client.post(
        reverse("sites:device_create"), device_post(site, nameplateCapacityKw="-3", inverterDataSource="")
    )
    assert response.status_code == 200
    assert "greater than 0" in response.context["form"].errors["nameplateCapacityKw"][0]
    assert b'id="field-nameplateCapacityKw"' in response.content
    assert not Device.objects.exists()


def test_it_rejects_a_duplicate_custom_id_cleanly(owner_client, site, device):
    response = owner_client.post(reverse("sites:device_create"), device_post(site, custom_id=device.custom_id))
    assert "already uses the custom id" in response.context["form"].errors["custom_id"][0]


def test_it_allows_the_same_custom_id_in_another_organization(client, outsider, other_org, device):
    other_site = factories.make_site(other_org)
    client.force_login(outsider)
    response = client.post(reverse("sites:device_create"), device_post(other_site, custom_id=device.custom_id))
    assert response.status_code == 302
    assert Device.objects.filter(custom_id=device.custom_id).count() == 2


def test_it_accepts_only_meters_of_the_chosen_site(owner_client, org, site, other_org):
    elsewhere = factories.make_meter(factories.make_site(org, name="Other site"), name="Far meter")
    foreign = factories.make_meter(factories.make_site(other_org), name="Foreign meter")
    response = owner_client.post(reverse("sites:device_create"), device_post(site, [elsewhere]))
    assert "Far meter" in response.context["form"].errors["meters"][0]
    response = owner_client.post(reverse("sites:device_create"), device_post(site, [foreign]))
    assert "meters" in response.context["form"].errors
    assert b"Foreign meter" not in response.content


def test_it_requires_a_meter_for_meter_based_kinds(owner_client, site):
    data = device_post(site, kind="energy_efficiency_eemetered", interventionDate="2024-01-01")
    response = owner_client.post(reverse("sites:device_create"), data)
    assert "needs at least one meter" in response.context["form"].errors["meters"][0]


@pytest.mark.parametrize(
    "kind,fields",
    [
        ("storage_direct", {"nameplatePowerKw": "5", "energyCapacityKwh": "13.5"}),
        ("electrification_eemetered", {"areaSqft": "1500", "previousFuel": "natural_gas",
                                             "buildingType": "single_family_attached", "coldClimate": "on"}),
        ("energy_efficiency_eemetered", {"interventionDate": "2024-01-01"}),
        ("tracking_building", {"buildingType": "office"}),
    ],
)  # fmt: skip
def test_it_creates_devices_of_every_other_kind(owner_client, site, meter, kind, fields):
    data = device_post(site, [meter], kind=kind, custom_id=f"C-{kind}", nameplateCapacityKw="", inverterDataSource="")
    data.update(fields)
    assert owner_client.post(reverse("sites:device_create"), data).status_code == 302
    device = Device.objects.get(custom_id=f"C-{kind}")
    assert device.kind == kind and set(fields) <= set(device.fields)
    assert "nameplateCapacityKw" not in device.fields


def test_it_shows_the_kind_fields_without_javascript_and_keeps_the_data(owner_client, site, meter):
    data = device_post(site, [meter], kind="storage_direct", _show_fields="1")
    response = owner_client.post(reverse("sites:device_create"), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="nameplatePowerKw"' in html and 'name="nameplateCapacityKw"' not in html
    assert 'value="New array"' in html and 'value="SP-NEW"' in html
    assert not response.context["form"].errors  # not validated yet: no error shown
    assert not Device.objects.exists()
    assert "Show fields" in html and "<noscript>" in html


def test_it_serves_the_kind_field_block_for_htmx(owner_client):
    url = reverse("sites:device_kind_fields")
    response = owner_client.get(url, {"kind": "tracking_building"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith("<fieldset") and 'name="buildingType"' in html and "<html" not in html
    form = owner_client.get(reverse("sites:device_create")).content.decode()
    assert f'hx-get="{url}"' in form and 'hx-target="#kind-fields"' in form


def test_it_refuses_the_kind_field_block_to_viewers(viewer_client):
    assert viewer_client.get(reverse("sites:device_kind_fields"), {"kind": "solar_direct"}).status_code == 403


def test_it_edits_a_device_and_switches_its_kind(owner_client, site, meter, device):
    form = owner_client.get(reverse("sites:device_edit", args=[device.pk])).content.decode()
    assert 'value="123"' in form  # the stored kind field
    data = device_post(site, [meter], kind="storage_direct", custom_id=device.custom_id)
    data.update(nameplatePowerKw="7", energyCapacityKwh="20")
    assert owner_client.post(reverse("sites:device_edit", args=[device.pk]), data).status_code == 302
    device.refresh_from_db()
    assert device.kind == "storage_direct"
    assert device.fields == {"nameplatePowerKw": 7, "energyCapacityKwh": 20}


def test_it_renders_a_kind_added_to_the_registry(owner_client, site, monkeypatch):
    geo = Methodology(
        kind="geothermal_direct",
        label="Geothermal (direct)",
        description="Ground-source heat pumps.",
        meter_based=False,
        fields=(FieldSpec("boreholeCount", "Boreholes", "integer", required=True, min_value=1),),
    )
    monkeypatch.setitem(METHODOLOGIES, geo.kind, geo)
    page = owner_client.get(reverse("sites:device_create"), {"kind": "geothermal_direct"}).content.decode()
    assert "Geothermal (direct)" in page and 'name="boreholeCount"' in page
    data = device_post(site, kind="geothermal_direct", boreholeCount="4", nameplateCapacityKw="")
    form = DeviceForm(data, organization=site.organization)
    assert form.is_valid(), form.errors
    assert form.service_kwargs()["fields"] == {"boreholeCount": 4}
    # Stored only once a migration (makemigrations writes it) lets the database accept the kind.
    with pytest.raises(ValidationError, match="device_kind_known"):
        crud.device_create(organization=site.organization, **form.service_kwargs())


def test_it_shows_vendor_field_errors_next_to_the_fields(owner_client, device):
    Device.objects.filter(pk=device.pk).update(
        wattcarbon_status=SyncStatus.FAILED,
        wattcarbon_error="WattCarbon 422: nameplateCapacityKw: Field required",
        wattcarbon_field_errors={"nameplateCapacityKw": "Field required", "location": "Value error, bad"},
    )
    html = owner_client.get(reverse("sites:device_detail", args=[device.pk])).content.decode()
    block = html.split('id="kind-field-nameplateCapacityKw"', 1)[1].split("</dd>", 1)[0]
    assert "Field required" in block
    assert "Location: Value error, bad" in html


def test_it_creates_a_demand_response_device_without_a_commenced_date(owner_client, site, meter):
    data = device_post(site, [meter], kind="demand_response_eemetered", custom_id="DR-1", commenced_operation_date="")
    assert owner_client.post(reverse("sites:device_create"), data).status_code == 302
    device = Device.objects.get(custom_id="DR-1")
    assert device.kind == "demand_response_eemetered" and device.commenced_operation_date is None
    assert device.fields == {}  # the solar fields posted along are not its own
    page = owner_client.get(reverse("sites:device_detail", args=[device.pk])).content.decode()
    assert "Demand response (EEmeter)" in page


def test_other_kinds_still_need_a_commenced_date(owner_client, site):
    response = owner_client.post(reverse("sites:device_create"), device_post(site, commenced_operation_date=""))
    assert response.status_code == 200
    assert "needs this date" in " ".join(response.context["form"].errors["commenced_operation_date"])
    assert not Device.objects.exists()


def test_a_kind_posted_under_its_old_name_is_stored_under_todays(owner_client, site, meter):
    data = device_post(site, [meter], kind="electrification_billing_metered", custom_id="HP-1",
                       areaSqft="1500", previousFuel="natural_gas", buildingType="office")  # fmt: skip
    assert owner_client.post(reverse("sites:device_create"), data).status_code == 302
    assert Device.objects.get(custom_id="HP-1").kind == "electrification_eemetered"
