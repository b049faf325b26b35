"""Fixtures and helpers of the ingest tests (imported by those test modules)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests import factories
from uploads.models import Target
from uploads.services.ingest import upload_create


@pytest.fixture
def ny_site(org):
    return factories.make_site(org, name="Brooklyn Depot", custom_id="BKD", timezone="America/New_York")


@pytest.fixture
def meter(ny_site):
    return factories.make_meter(ny_site, name="Main", interval_minutes=60, wattics_stream_id="main-stream")


@pytest.fixture
def solar(ny_site):
    return factories.make_meter(
        ny_site, name="Roof PV", meter_type="production", interval_minutes=60, wattics_stream_id="pv-stream"
    )


@pytest.fixture
def no_deliveries(monkeypatch):
    """Deliveries are the push engineer's: storage unit tests only check that they are asked for."""
    calls = []
    monkeypatch.setattr(
        "uploads.services.deliveries.deliveries_create_for_upload", lambda *, upload: calls.append(upload.pk) or []
    )
    return calls


def hourly(count: int, *, start_hour: int = 0, value=lambda i: i + 0.5, day: str = "2024-01-15") -> str:
    """`count` hourly rows in UTC from the given hour, as 'ts,value' CSV text."""
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(f"{day}T{start_hour:02d}:00:00+00:00")
    lines = ["timestamp,energy_kwh"]
    lines += [f"{(start + timedelta(hours=i)).isoformat()},{value(i)}" for i in range(count)]
    return "\n".join(lines) + "\n"


def submit(org, user, content: bytes | str, *, meter=None, name="readings.csv", targets=None, run_now=True):
    data = content.encode() if isinstance(content, str) else content
    return upload_create(
        organization=org,
        user=user,
        file=SimpleUploadedFile(name, data, content_type="text/csv"),
        meter=meter,
        targets=targets or [Target.WATTICS, Target.WATTCARBON_INTERVALS],
        run_now=run_now,
    )
