"""A small world of uploads, deliveries and readings for the status pages (imported by conftests and test modules)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests import factories


@pytest.fixture
def site(org):
    return factories.make_site(org, name="Ellis Street")


@pytest.fixture
def meter(site):
    return factories.make_meter(site, name="Main meter", interval_minutes=15, wattics_stream_id="stream-1")


@pytest.fixture
def upload(org, owner, meter):
    return factories.make_upload(org, owner, meter=meter, original_name="march.csv", targets=["wattics"])


@pytest.fixture
def pushing(upload, meter):
    """A delivery half-way through its push, started 100 s ago."""
    return factories.make_delivery(
        upload,
        meter,
        target="wattics",
        status="pushing",
        total=1000,
        sent=520,
        acknowledged=500,
        started_at=timezone.now() - timedelta(seconds=100),
    )


@pytest.fixture
def failed(upload, meter):
    return factories.make_delivery(
        upload,
        meter,
        target="wattcarbon_intervals",
        status="failed",
        total=96,
        sent=96,
        rejected=96,
        attempts=3,
        last_error="422 Unprocessable Entity: start_datetime is not ISO 8601",
    )


@pytest.fixture
def other_meter(other_org):
    return factories.make_meter(factories.make_site(other_org, name="Elsewhere"), name="Their meter")


@pytest.fixture
def other_upload(other_org, outsider, other_meter):
    upload = factories.make_upload(other_org, outsider, meter=other_meter, original_name="secret-theirs.csv")
    factories.make_delivery(upload, other_meter, status="failed", last_error="their failure")
    return upload


T0 = datetime(2025, 3, 1, tzinfo=UTC)
