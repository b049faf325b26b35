"""Through the API (and `upload_csv --wait`) with a real worker, to both simulators over HTTP."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.selectors import wattcarbon_account
from api.models import KeyRole
from api.services import api_key_create
from tests import factories
from tests.drills.support import wait_for
from uploads.models import Delivery, DeliveryStatus, Reading, Upload
from vendors.http import ExchangeLog
from vendors.wattcarbon import WattCarbonClient

pytestmark = pytest.mark.worker
T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
def live_meter(org, vendor_credentials):
    client = WattCarbonClient(
        wattcarbon_account(credentials=vendor_credentials), ExchangeLog(organization_id=org.pk, vendor="wattcarbon")
    )
    remote = client.create_meter({"apiProvider": "manual", "meterType": "electricity", "name": "Main",
                                  "location": {"latitude": 37.78, "longitude": -122.41}})  # fmt: skip
    site = factories.make_site(org, timezone="UTC")
    return factories.make_meter(site, name="Main", wattics_stream_id="demo-elec-1", wattcarbon_id=str(remote))


def test_readings_posted_to_the_api_arrive_at_both_simulators(
    celery_worker, org, live_meter, wattics_sim, wattcarbon_sim, settings
):
    # Small enough a limit that the worker validates, and the API's confirm=true waits for it.
    settings.INGEST_INLINE_MAX_BYTES = 64
    key = api_key_create(organization=org, name="logger", role=KeyRole.OPERATOR)[1]
    rows = [{"ts": (T0 + timedelta(minutes=15 * i)).isoformat(), "value": 1 + i / 100} for i in range(200)]
    response = Client().post(
        f"/api/v1/meters/{live_meter.pk}/readings/",
        {"rows": rows, "targets": ["wattics", "wattcarbon_intervals"]},
        content_type="application/json",
        headers={"Authorization": f"Api-Key {key}", "Idempotency-Key": "batch-1"},
    )
    assert response.status_code == 201, response.content
    upload_id = response.json()["id"]
    assert response.json()["status"] in ("received", "parsing", "validated")

    def delivered():
        body = Client().get(f"/api/v1/uploads/{upload_id}/", headers={"Authorization": f"Api-Key {key}"}).json()
        return body if body["finished"] and body["deliveries"] else None

    body = wait_for(delivered, timeout=180, what="the upload to be delivered", worker=celery_worker)
    assert body["delivered"] is True, body
    assert sorted((d["target"], d["acknowledged"]) for d in body["deliveries"]) == [
        ("wattcarbon_intervals", 200), ("wattics", 200)
    ]  # fmt: skip
    assert len(wattics_sim.packets("demo-elec-1")["accepted"]) == 200 + 1  # and the register's opening packet
    assert len(wattcarbon_sim.intervals(int(live_meter.wattcarbon_id))) == 200
    # The same request again returns the first answer and creates nothing.
    again = Client().post(
        f"/api/v1/meters/{live_meter.pk}/readings/",
        {"rows": rows, "targets": ["wattics", "wattcarbon_intervals"]},
        content_type="application/json",
        headers={"Authorization": f"Api-Key {key}", "Idempotency-Key": "batch-1"},
    )
    assert again.json()["id"] == upload_id
    assert Upload.objects.count() == 1 and Reading.objects.count() == 200


def _csv(tmp_path, count: int):
    path = tmp_path / "r.csv"
    lines = [f"{(T0 + timedelta(hours=i)).isoformat()},{i / 10}" for i in range(count)]
    path.write_text("timestamp,kwh\n" + "\n".join(lines) + "\n")
    return path


def test_upload_csv_waits_until_delivered_and_prints_json(
    celery_worker, org, live_meter, wattics_sim, wattcarbon_sim, tmp_path
):
    out = StringIO()
    call_command("upload_csv", "--org", org.slug, "--meter", "Main", "--to", "wattics,wattcarbon", "--wait",
                 "--json", str(_csv(tmp_path, 48)), stdout=out, stderr=StringIO())  # fmt: skip
    text = out.getvalue()
    state = json.loads(text[text.index("{") :])
    assert state["delivered"] is True
    assert sorted((d["target"], d["status"], d["acknowledged"]) for d in state["deliveries"]) == [
        ("wattcarbon_intervals", "delivered", 48), ("wattics", "delivered", 48)
    ]  # fmt: skip
    assert len(wattics_sim.packets("demo-elec-1")["accepted"]) == 48 + 1  # and the register's opening packet


def test_upload_csv_wait_fails_when_a_delivery_fails(celery_worker, org, live_meter, wattics_sim, tmp_path):
    wattics_sim.register_stream("other-stream")
    meter = factories.make_meter(live_meter.site, name="Unsynced", wattics_stream_id="other-stream")
    out = StringIO()
    with pytest.raises(CommandError, match="Not everything was delivered"):
        call_command("upload_csv", "--org", org.slug, "--meter", "Unsynced", "--to", "wattics,wattcarbon",
                     "--wait", str(_csv(tmp_path, 5)), stdout=out, stderr=StringIO())  # fmt: skip
    statuses = dict(Delivery.objects.filter(meter=meter).values_list("target", "status"))
    assert statuses == {"wattics": DeliveryStatus.DELIVERED, "wattcarbon_intervals": DeliveryStatus.FAILED}
    assert "wattcarbon_intervals (Unsynced): failed" in out.getvalue()
    assert "rows pushed" in out.getvalue()  # plain progress lines off a terminal


def _readme_block(after: str, lang: str) -> str:
    from pathlib import Path

    text = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    start = text.index(f"```{lang}\n", text.index(after)) + len(lang) + 4
    return text[start : text.index("```", start)]


@pytest.mark.parametrize("example", ["curl", "requests"])
def test_the_readme_examples_upload_and_wait_until_delivered(
    example, celery_worker, live_server, org, live_meter, wattics_sim, wattcarbon_sim, tmp_path, monkeypatch
):
    import subprocess

    key = api_key_create(organization=org, name="readme", role=KeyRole.OPERATOR)[1]
    _csv(tmp_path, 24).rename(tmp_path / "readings.csv")
    monkeypatch.chdir(tmp_path)
    if example == "curl":
        script = _readme_block("with curl:", "sh").replace("KEY=...", f"KEY={key}")
        script = script.replace("http://127.0.0.1:8000", live_server.url).replace("meter=12", f"meter={live_meter.pk}")
        script = script.replace("sleep 5", "sleep 0.5")
        run = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["delivered"] is True
    else:
        code = _readme_block("with Python `requests`:", "python").replace("Api-Key ...", f"Api-Key {key}")
        code = code.replace("http://127.0.0.1:8000", live_server.url).replace(
            '"meter": 12', f'"meter": {live_meter.pk}'
        )
        code = code.replace("time.sleep(5)", "time.sleep(0.5)")
        exec(compile(code, "README.md", "exec"), {})  # its last line asserts "delivered"
    assert len(wattics_sim.packets("demo-elec-1")["accepted"]) == 24 + 1  # and the register's opening packet
    assert len(wattcarbon_sim.intervals(int(live_meter.wattcarbon_id))) == 24
