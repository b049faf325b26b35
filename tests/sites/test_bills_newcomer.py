"""Meter billing kind and naive-time default; the live sync card; choice labels; the device
form's meters. As owner, teammate, viewer and outsider where a page is concerned."""

import pytest
from django.urls import reverse

from sites.models import Meter
from tests import factories
from tests.sites.test_views import PEOPLE, login, meter_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(org):
    return factories.make_site(org, name="Ellis Street")


@pytest.fixture
def meter(site):
    return factories.make_meter(site, name="Main meter")


@pytest.fixture
def device(site, meter):
    return factories.make_device(
        site,
        kind="electrification_billing_metered",
        meters=[meter],
        fields={"areaSqft": 1500, "previousFuel": "natural_gas", "buildingType": "single_family_detached"},
    )


def test_it_creates_a_billing_meter_whose_naive_times_are_utc(owner_client, site):
    data = meter_post(site, reading_kind="billing", naive_times="utc", wattics_stream_id="")
    assert owner_client.post(reverse("sites:meter_create"), data).status_code == 302
    meter = Meter.objects.get(name="Main")
    assert (meter.reading_kind, meter.naive_times) == ("billing", "utc")
    page = owner_client.get(reverse("sites:meter_detail", args=[meter.pk])).content.decode()
    assert "Billing periods (bills)" in page and "UTC" in page
    assert f"/uploads/new/?meter={meter.pk}" in page


def test_a_meter_form_without_the_new_fields_keeps_the_defaults(owner_client, site):
    assert owner_client.post(reverse("sites:meter_create"), meter_post(site)).status_code == 302
    meter = Meter.objects.get(name="Main")
    assert (meter.reading_kind, meter.naive_times) == ("interval", "local")


@pytest.mark.parametrize("who", PEOPLE)
def test_the_sync_card_is_polled_while_pending_and_scoped_to_the_org(client, request, who, meter, device):
    login(client, request, who)
    meter.wattcarbon_status = "pending"
    meter.save()
    response = client.get(reverse("sites:meter_sync_card", args=[meter.pk]))
    device_response = client.get(reverse("sites:device_sync_card", args=[device.pk]))
    if who == "outsider":
        assert response.status_code == device_response.status_code == 404
        return
    body = response.content.decode()
    assert response.status_code == 200 and 'hx-trigger="every 2s"' in body and "Pending" in body
    assert f'hx-get="{reverse("sites:meter_sync_card", args=[meter.pk])}"' in body
    assert ("Sync to WattCarbon</button>" in body) == (who != "viewer")
    assert device_response.status_code == 200 and 'hx-trigger="every 2s"' not in device_response.content.decode()


@pytest.mark.parametrize("status", ["synced", "failed", "not_synced"])
def test_the_sync_card_stops_polling_once_done(owner_client, meter, status):
    meter.wattcarbon_status = status
    meter.save()
    body = owner_client.get(reverse("sites:meter_detail", args=[meter.pk])).content.decode()
    assert 'id="sync-card"' in body and "every 2s" not in body
    assert "{#" not in body and "card_url" not in body  # the template's comment stays a comment


def test_the_device_page_polls_while_syncing(owner_client, device):
    device.wattcarbon_status = "syncing"
    device.save()
    body = owner_client.get(reverse("sites:device_detail", args=[device.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in body


def test_the_device_page_shows_choice_labels(owner_client, device):
    body = owner_client.get(reverse("sites:device_detail", args=[device.pk])).content.decode()
    assert "Natural gas" in body and "natural_gas" not in body
    assert "single_family_detached" not in body


def test_the_device_form_offers_only_the_chosen_sites_meters(owner_client, org, site, meter):
    far = factories.make_meter(factories.make_site(org, name="Harbour"), name="Harbour meter")
    body = owner_client.get(reverse("sites:device_create") + f"?site={site.pk}").content.decode()
    assert "Main meter" in body and "Harbour meter" not in body
    # The page's script gets each meter's site, to follow the site select.
    assert f'"{far.pk}": "{far.site_id}"' in body and "js/device_form.js" in body
