"""Green Button XML, Excel, Portfolio Manager exports, units, batches and saved mappings, through the
ingest services (inline). The worker and the simulators: test_formats_pipeline.py."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests import factories
from tests.data import espi
from tests.uploads import formats_support as fs
from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import submit
from uploads.models import Bill, Reading, SavedMapping, SourceMeter, Target, Upload, UploadStatus
from uploads.parsing.units import UnitError, canonical, conversion_factor
from uploads.services.formats import batch_create, batch_status, upload_set_source_meters
from uploads.services.ingest import IngestError, upload_confirm, upload_set_mapping

meter, ny_site, solar, no_deliveries = support.meter, support.ny_site, support.solar, support.no_deliveries
NY = ZoneInfo("America/New_York")


@pytest.fixture
def gas(ny_site):
    return factories.make_meter(ny_site, name="Gas", meter_type="gas", unit="kWh", interval_minutes=1440)


def electric_feed(start: datetime, hours: int, *, received: bool = False, multiplier: int = 0) -> bytes:
    channels = [espi.Channel(multiplier=multiplier, readings=espi.hourly(start, hours))]
    if received:
        channels.append(espi.Channel(flow=espi.REVERSE, readings=espi.hourly(start, hours, value=lambda i: 10 * i)))
    return espi.feed([espi.Point("Depot service", channels=channels)])


# --- Units ---------------------------------------------------------------------------


def test_units_convert_energy_exactly_and_gas_through_the_settings(settings):
    assert conversion_factor("Wh", "kWh") == pytest.approx(0.001)
    assert conversion_factor("MWh", "kWh") == pytest.approx(1000)
    assert conversion_factor("therm", "kWh") == pytest.approx(29.3071, rel=1e-5)
    assert conversion_factor("kBtu", "kWh") == pytest.approx(0.293071, rel=1e-5)
    assert conversion_factor("MMBtu", "therm") == pytest.approx(10)
    assert conversion_factor("GJ", "kWh") == pytest.approx(277.7778, rel=1e-6)
    assert conversion_factor("ccf", "m³") == pytest.approx(2.8316846592)
    assert conversion_factor("ccf", "therm") == pytest.approx(1.037)
    assert conversion_factor("m3", "kWh") == pytest.approx(10.55)
    settings.GAS_M3_TO_KWH = 11.0
    assert conversion_factor("m³", "kWh") == pytest.approx(11.0)
    assert [canonical(u) for u in ("KWH", "kWh (thousand Watt-hours)", "Therms", "CCF", "m³")] == [
        "kWh", "kWh", "therm", "ccf", "m³",
    ]  # fmt: skip
    with pytest.raises(UnitError, match="Unknown unit 'furlongs'"):
        canonical("furlongs")


def test_a_unit_column_converts_each_row_and_the_upload_records_the_factor(org, owner, meter, no_deliveries):
    data = "timestamp,usage,unit\n2024-01-15T00:00:00Z,1500,Wh\n2024-01-15T01:00:00Z,2,MWh\n"
    data += "2024-01-15T02:00:00Z,3,kWh\n"
    upload = submit(org, owner, data, meter=meter)
    assert upload.status == UploadStatus.VALIDATED, upload.error
    conversions = {(c["from"], c["to"]): (c["factor"], c["rows"]) for c in upload.unit_conversions}
    assert conversions == {("Wh", "kWh"): (0.001, 1), ("MWh", "kWh"): (1000.0, 1), ("kWh", "kWh"): (1.0, 1)}
    upload_confirm(upload=upload, user=owner, run_now=True)
    assert list(Reading.objects.order_by("ts").values_list("value", flat=True)) == [1.5, 2000.0, 3.0]


def test_an_unknown_unit_is_a_row_error_that_names_it(org, owner, meter):
    data = "timestamp,usage,unit\n2024-01-15T00:00:00Z,1,kWh\n2024-01-15T01:00:00Z,2,furlongs\n"
    upload = submit(org, owner, data, meter=meter)
    assert (upload.rows_valid, upload.rows_invalid) == (1, 1)
    report = upload.error_report.open("rb").read().decode()
    assert "Unknown unit 'furlongs'" in report


def test_the_unit_chosen_on_the_form_converts_a_file_without_unit_column(org, owner, gas, no_deliveries):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from uploads.services.ingest import upload_create

    upload = upload_create(
        organization=org, user=owner, file=SimpleUploadedFile("gas.csv", b"date,usage\n2024-01-15,10\n"),
        meter=gas, targets=[Target.WATTICS], run_now=True, source_unit="ccf",
    )  # fmt: skip
    assert upload.status == UploadStatus.VALIDATED, upload.error
    (conversion,) = upload.unit_conversions
    assert conversion["from"] == "ccf" and "GAS_CCF_TO_THERM" in conversion["assumption"]
    upload_confirm(upload=upload, user=owner, run_now=True)
    assert Reading.objects.get().value == pytest.approx(10 * 1.037 * 29.3071070)


# --- Green Button ----------------------------------------------------------------------


def test_green_button_hourly_electricity_with_a_fixed_meter_across_the_fall_back(
    org, owner, owner_client, meter, no_deliveries
):
    # 48 hours from local midnight of 2024-11-02: the 3rd has 25 local hours (clocks go back at 02:00).
    start = datetime(2024, 11, 2, tzinfo=NY)
    upload = submit(org, owner, electric_feed(start, 49), meter=meter, name="pge_electric.xml")
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert upload.options["format"] == "greenbutton" and upload.rows_valid == 49
    assert upload.unit_conversions[0]["from"] == "Wh" and upload.unit_conversions[0]["factor"] == 0.001
    page = owner_client.get(f"/uploads/{upload.pk}/review/").content.decode()
    assert 'data-conversion="Wh-kWh"' in page and "× 0.001" in page and "multiplier 10^0" in page
    upload_confirm(upload=upload, user=owner, run_now=True)
    stamps = list(Reading.objects.order_by("ts").values_list("ts", flat=True))
    assert stamps == [start.astimezone(UTC) + timedelta(hours=i) for i in range(49)]
    local_day = [ts for ts in stamps if ts.astimezone(NY).date().isoformat() == "2024-11-03"]
    assert len(local_day) == 25  # the repeated 01:00 hour is two readings, nothing lost or merged
    assert Reading.objects.order_by("ts").first().value == pytest.approx(0.4)  # 400 Wh


def test_green_button_multiplier_is_applied(org, owner, meter, no_deliveries):
    upload = submit(org, owner, electric_feed(datetime(2024, 1, 15, tzinfo=UTC), 3, multiplier=-3), meter=meter)
    upload_confirm(upload=upload, user=owner, run_now=True)
    # value 400 × 10^-3 Wh = 0.4 Wh = 0.0004 kWh
    assert Reading.objects.order_by("ts").first().value == pytest.approx(0.0004)


def test_green_button_daily_gas_in_therms_becomes_kwh(org, owner, gas, no_deliveries):
    start = datetime(2024, 1, 1, 5, tzinfo=UTC)
    channel = espi.Channel(uom=espi.THERM, multiplier=-2, commodity=7, interval=86400, readings=espi.daily(start, 31))
    data = espi.feed([espi.Point("Gas service", service_kind=1, channels=[channel])])
    upload = submit(org, owner, data, meter=gas, name="gas_daily.xml")
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert not [w for w in upload.warnings if w["code"] == "gaps"]
    upload_confirm(upload=upload, user=owner, run_now=True)
    first = Reading.objects.order_by("ts").first()
    assert first.value == pytest.approx(1.20 * 29.3071070)  # 120 × 10^-2 therm


def test_two_usage_points_are_matched_once_and_remembered(org, owner, owner_client, meter, gas, solar, no_deliveries):
    start = datetime(2024, 6, 1, tzinfo=NY)
    elec = espi.Point("Depot service", channels=[
        espi.Channel(readings=espi.hourly(start, 24)),
        espi.Channel(flow=espi.REVERSE, readings=espi.hourly(start, 24, value=lambda i: 100 + i)),
    ])  # fmt: skip
    gas_point = espi.Point("Depot gas", service_kind=1, channels=[
        espi.Channel(uom=espi.THERM, multiplier=-1, commodity=7, interval=86400, readings=espi.daily(start, 2)),
    ])  # fmt: skip
    data = espi.feed([elec, gas_point])
    upload = submit(org, owner, data, name="two_points.xml")
    assert upload.status == UploadStatus.NEEDS_MAPPING and "3 Green Button series" in upload.error
    keys = upload.options["meter_keys"]
    assert keys == [
        "Depot gas (UsagePoint 2), delivered",
        "Depot service (UsagePoint 1), delivered",
        "Depot service (UsagePoint 1), received",
    ]
    page = owner_client.get(f"/uploads/{upload.pk}/review/")
    assert f"/uploads/{upload.pk}/meters/".encode() in page.content
    response = owner_client.post(f"/uploads/{upload.pk}/meters/", {"meter_0": gas.pk, "meter_1": meter.pk,
                                                                  "meter_2": solar.pk})  # fmt: skip
    assert response.status_code == 302
    upload.refresh_from_db()
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert SourceMeter.objects.filter(organization=org).count() == 3
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="map", object_type="upload", object_id=str(upload.pk)).exists()
    upload_confirm(upload=upload, user=owner, run_now=True)
    assert Reading.objects.filter(meter=meter).count() == 24 and Reading.objects.filter(meter=gas).count() == 2
    # Received energy kept apart, on the production meter, as generation (the push makes it negative).
    assert list(Reading.objects.filter(meter=solar).order_by("ts").values_list("value", flat=True))[:2] == [0.1, 0.101]
    # The next file from the same utility goes straight to review.
    again = submit(org, owner, data, name="two_points_next_month.xml")
    assert again.status == UploadStatus.VALIDATED and again.rows_valid == 50


def test_received_energy_on_a_consumption_meter_is_negative(org, owner, meter, ny_site, no_deliveries):
    export = factories.make_meter(ny_site, name="Export", interval_minutes=60)
    data = electric_feed(datetime(2024, 6, 1, tzinfo=UTC), 3, received=True)
    upload = submit(org, owner, data)
    keys = upload.options["meter_keys"]
    upload = upload_set_source_meters(upload=upload, choices={keys[0]: meter, keys[1]: export}, user=owner,
                                      run_now=True)  # fmt: skip
    upload_confirm(upload=upload, user=owner, run_now=True)
    assert list(Reading.objects.filter(meter=export).order_by("ts").values_list("value", flat=True)) == [
        0.0, -0.01, -0.02,
    ]  # fmt: skip
    assert Reading.objects.filter(meter=meter, value__lt=0).count() == 0


def test_a_series_left_out_is_reported_not_stored_and_not_asked_again(org, owner, meter, no_deliveries):
    data = electric_feed(datetime(2024, 6, 1, tzinfo=UTC), 3, received=True)
    upload = submit(org, owner, data)
    delivered, received = upload.options["meter_keys"]
    upload = upload_set_source_meters(upload=upload, choices={delivered: meter, received: None}, user=owner,
                                      run_now=True)  # fmt: skip
    assert upload.status == UploadStatus.VALIDATED and (upload.rows_valid, upload.rows_invalid) == (3, 3)
    assert "was left out when the file's meters were matched" in upload.error_report.open("rb").read().decode()
    upload_confirm(upload=upload, user=owner, run_now=True)
    assert Reading.objects.count() == 3 and Reading.objects.filter(value__lt=0).count() == 0
    again = submit(org, owner, data)
    assert again.status == UploadStatus.VALIDATED


def test_a_green_button_file_with_several_series_and_one_meter_is_refused(org, owner, meter):
    upload = submit(org, owner, electric_feed(datetime(2024, 6, 1, tzinfo=UTC), 3, received=True), meter=meter)
    assert upload.status == UploadStatus.INVALID and "holds 2 series" in upload.error
    assert Reading.objects.count() == 0


def test_green_button_register_readings_are_left_out_with_a_warning(org, owner, meter, no_deliveries):
    start = datetime(2024, 6, 1, tzinfo=UTC)
    usage = espi.Channel(readings=espi.hourly(start, 3))
    register = espi.Channel(readings=espi.hourly(start, 3, value=lambda i: 100000 + 400 * i))
    data = espi.feed([espi.Point("Depot", channels=[usage, register])]).replace(
        b"<accumulationBehaviour>4</accumulationBehaviour>", b"<accumulationBehaviour>1</accumulationBehaviour>", 2
    )
    data = data.replace(
        b"<accumulationBehaviour>1</accumulationBehaviour>", b"<accumulationBehaviour>4</accumulationBehaviour>", 1
    )
    upload = submit(org, owner, data, meter=meter)
    assert upload.status == UploadStatus.VALIDATED and upload.rows_valid == 3, upload.error
    assert [w["count"] for w in upload.warnings if w["code"] == "register_readings"] == [3]
    only_register = data.replace(
        b"<accumulationBehaviour>4</accumulationBehaviour>", b"<accumulationBehaviour>1</accumulationBehaviour>"
    )
    refused = submit(org, owner, only_register, meter=meter)
    assert refused.status == UploadStatus.INVALID and "only cumulative register readings" in refused.error


def test_a_gzipped_green_button_file_is_read(org, owner, meter, no_deliveries):
    import gzip

    data = gzip.compress(electric_feed(datetime(2024, 1, 15, tzinfo=UTC), 5), mtime=0)
    upload = submit(org, owner, data, meter=meter, name="usage.xml.gz")
    assert upload.status == UploadStatus.VALIDATED and upload.rows_valid == 5, upload.error
    assert upload.options["compression"] == "gzip"


def test_green_button_estimated_readings_are_flagged(org, owner, meter):
    readings = espi.hourly(datetime(2024, 6, 1, tzinfo=UTC), 4)
    readings[1].quality = 8
    readings[2].quality = 9
    data = espi.feed([espi.Point("Depot", channels=[espi.Channel(readings=readings)])])
    upload = submit(org, owner, data, meter=meter)
    assert [w["count"] for w in upload.warnings if w["code"] == "estimated"] == [2]


def test_green_button_is_parsed_in_constant_memory():
    import io
    import tracemalloc

    from uploads.parsing import MeterInfo, ParsedFile, ReadingRow

    info = MeterInfo(1, "Main", ZoneInfo("UTC"), 60, False)

    def peak(hours: int) -> tuple[int, int]:
        data = electric_feed(datetime(2020, 1, 1, tzinfo=UTC), hours)
        tracemalloc.start()
        parsed = ParsedFile(io.BytesIO(data), column_mapping=None, fixed_meter=info, resolve_meter=lambda k: "no",
                            max_decompressed_bytes=10**9)  # fmt: skip
        count = sum(1 for row in parsed if isinstance(row, ReadingRow))
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return count, result

    small_count, small = peak(500)
    big_count, big = peak(20_000)
    assert (small_count, big_count) == (500, 20_000)
    assert big < 2 * small + 512 * 1024, (small, big)


# --- Excel and Portfolio Manager ---------------------------------------------------------


def test_an_xlsx_is_parsed_under_the_same_memory_bound_as_csv():
    import io
    import tracemalloc

    from uploads.parsing import MeterInfo, ParsedFile, ReadingRow

    info = MeterInfo(1, "Main", ZoneInfo("UTC"), 15, False)

    def peak(rows: int) -> tuple[int, int]:
        start = datetime(2020, 1, 1)
        data = fs.xlsx({"R": [["timestamp", "value"]] + [[start + timedelta(minutes=15 * i), i % 100 + 0.5]
                                                         for i in range(rows)]})  # fmt: skip
        tracemalloc.start()
        parsed = ParsedFile(io.BytesIO(data), column_mapping=None, fixed_meter=info, resolve_meter=lambda k: "no",
                            max_decompressed_bytes=10**9)  # fmt: skip
        count = sum(1 for row in parsed if isinstance(row, ReadingRow))
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return count, result

    small_count, small = peak(1_000)
    big_count, big = peak(20_000)
    assert (small_count, big_count) == (1_000, 20_000)
    # Twenty times the rows, about the same memory; the CSV test's bound (tests/uploads/test_parsing_memory.py).
    assert big < 2 * small + 256 * 1024, (small, big)
    assert big < 2 * 1024 * 1024


def test_an_xlsx_of_readings_is_read_like_a_csv(org, owner, meter, no_deliveries):
    rows = [["Interval Start", "kWh"]] + [[datetime(2024, 1, 15, h), 1.5 + h] for h in range(5)]
    data = fs.xlsx({"Readings": rows})
    upload = submit(org, owner, data, meter=meter, name="readings.xlsx")
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert upload.options["format"] == "xlsx" and upload.rows_valid == 5
    upload_confirm(upload=upload, user=owner, run_now=True)
    first = Reading.objects.order_by("ts").first()
    # Excel times are naive: read in the site's zone (New York, UTC-5 in January).
    assert (first.ts.isoformat(), first.value) == ("2024-01-15T05:00:00+00:00", 1.5)


def test_the_chosen_sheet_is_read(org, owner, meter):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from uploads.services.ingest import upload_create

    data = fs.xlsx({"Notes": [["Exported by the BMS"]], "Data": [["timestamp", "value"], ["2024-01-15 00:00", 2]]})
    upload = upload_create(organization=org, user=owner, file=SimpleUploadedFile("two.xlsx", data), meter=meter,
                           targets=[Target.WATTICS], run_now=True, sheet="Data")  # fmt: skip
    assert upload.status == UploadStatus.VALIDATED and upload.options["sheet"] == "Data"
    missing = upload_create(organization=org, user=owner, file=SimpleUploadedFile("two.xlsx", data), meter=meter,
                            targets=[Target.WATTICS], run_now=True, sheet="Nope")  # fmt: skip
    assert missing.status == UploadStatus.INVALID and "no sheet named 'Nope'" in missing.error


def test_a_portfolio_manager_export_is_read_as_bills_with_meters_matched_once(org, owner, meter, gas, no_deliveries):
    data = fs.portfolio_manager_export()
    upload = submit(org, owner, data, name="Meter Entries.xlsx", targets=[Target.WATTCARBON_BILLS])
    assert upload.status == UploadStatus.NEEDS_MAPPING, upload.error
    assert upload.options["meter_keys"] == ["7700101", "7700102"]
    upload = upload_set_source_meters(upload=upload, choices={"7700101": meter, "7700102": gas}, user=owner,
                                      run_now=True)  # fmt: skip
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert upload.options["kind"] == "bills" and upload.rows_valid == 12
    estimated = [w["message"] for w in upload.warnings if w["code"] == "estimated"]
    assert estimated == ["Brooklyn Depot / Gas: 1 entry is estimated."]
    conversions = {c["from"]: c["factor"] for c in upload.unit_conversions}
    assert conversions["kWh"] == 1.0 and conversions["therm"] == pytest.approx(29.3071070)
    upload_confirm(upload=upload, user=owner, run_now=True)
    gas_bill = Bill.objects.filter(meter=gas).order_by("start_date").first()
    assert (gas_bill.start_date.isoformat(), gas_bill.end_date.isoformat()) == ("2024-01-01", "2024-01-31")
    assert gas_bill.energy_kwh == pytest.approx(900 * 29.3071070)
    assert Bill.objects.filter(meter=meter).count() == 6
    again = submit(org, owner, data, name="Meter Entries (2).xlsx", targets=[Target.WATTCARBON_BILLS])
    assert again.status == UploadStatus.VALIDATED


# --- Saved column mappings -----------------------------------------------------------------


def test_a_mapping_is_offered_again_and_applied_without_asking_for_the_same_header(org, owner, meter, owner_client):
    data = "Erfassung;Bezug;Bemerkung\n2024-01-15T00:00:00Z;1,5;x\n"
    first = submit(org, owner, data, meter=meter)
    assert first.status == UploadStatus.NEEDS_MAPPING
    first = upload_set_mapping(upload=first, mapping={"Erfassung": "ts", "Bezug": "value"}, user=owner,
                               run_now=True)  # fmt: skip
    assert first.status == UploadStatus.VALIDATED
    assert SavedMapping.objects.filter(organization=org).count() == 1
    second = submit(org, owner, data.replace("1,5", "2,5"), meter=meter)
    assert second.status == UploadStatus.VALIDATED
    assert second.column_mapping == {"Erfassung": "ts", "Bezug": "value"}
    # A close header (one more column) is not applied, but the mapping page starts from the saved choice.
    close = submit(org, owner, "Erfassung;Bezug;Anlage\n2024-01-15T00:00:00Z;1,5;7\n", meter=meter)
    assert close.status == UploadStatus.NEEDS_MAPPING
    assert close.column_mapping == {"Erfassung": "ts", "Bezug": "value"}
    page = owner_client.get(f"/uploads/{close.pk}/mapping/")
    assert b'<option value="ts" selected>' in page.content


def test_saved_mappings_belong_to_one_organization(org, owner, meter, other_org, outsider):
    data = "Erfassung,Bezug\n2024-01-15T00:00:00Z,1\n"
    first = submit(org, owner, data, meter=meter)
    upload_set_mapping(upload=first, mapping={"Erfassung": "ts", "Bezug": "value"}, user=owner, run_now=True)
    other_meter = factories.make_meter(factories.make_site(other_org), name="Theirs", interval_minutes=60)
    theirs = submit(other_org, outsider, data, meter=other_meter)
    assert theirs.status == UploadStatus.NEEDS_MAPPING


# --- Batches -------------------------------------------------------------------------------


def _files(**named):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return [SimpleUploadedFile(name, data) for name, data in named.items()]


def test_a_zip_becomes_one_batch_of_uploads(org, owner, meter, no_deliveries):
    zipped = fs.zipped({
        "jan.csv": support.hourly(3).encode(),
        "feb.xlsx": fs.xlsx({"S": [["timestamp", "value"], ["2024-02-01 00:00", 4]]}),
        "greenbutton/mar.xml": electric_feed(datetime(2024, 3, 1, tzinfo=UTC), 2),
        "__MACOSX/._jan.csv": b"\x00\x05\x16\x07",
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
    })  # fmt: skip
    batch = batch_create(organization=org, user=owner, files=_files(**{"readings.zip": zipped}), meter=meter,
                         targets=[Target.WATTICS], run_now=True)  # fmt: skip
    uploads = list(batch.uploads.order_by("id"))
    assert [u.original_name for u in uploads] == ["jan.csv", "feb.xlsx", "mar.xml"]
    assert [u.status for u in uploads] == [UploadStatus.VALIDATED] * 3, [u.error for u in uploads]
    assert batch_status(batch=batch)["code"] == "validated"
    for upload in uploads:
        upload_confirm(upload=upload, user=owner, run_now=True)
    assert batch_status(batch=batch)["code"] == "stored" and Reading.objects.count() == 6


def test_several_files_in_one_form_make_a_batch_with_one_status(owner_client, org, owner, meter):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = owner_client.post("/uploads/new/", {
        "file": SimpleUploadedFile("a.csv", support.hourly(2).encode()),
        "more_files": [SimpleUploadedFile("b.csv", b"timestamp,value\n2024-02-01T00:00:00Z,x\n")],
        "meter": meter.pk, "targets": ["wattics"],
    })  # fmt: skip
    assert response.status_code == 302 and "/uploads/batches/" in response["Location"]
    page = owner_client.get(response["Location"])
    assert b"a.csv" in page.content and b"b.csv" in page.content
    assert b'data-batch-status="validated"' in page.content
    statuses = sorted(Upload.objects.values_list("original_name", "status"))
    assert statuses == [("a.csv", UploadStatus.VALIDATED), ("b.csv", UploadStatus.INVALID)]
    batch_pk = Upload.objects.first().batch_id
    response = owner_client.post(f"/uploads/batches/{batch_pk}/confirm/")
    assert response.status_code == 302
    assert Upload.objects.get(original_name="a.csv").status in (UploadStatus.STORING, UploadStatus.STORED)


@pytest.mark.parametrize(
    "who, see, push", [("owner", 200, 302), ("teammate", 200, 302), ("viewer", 200, 403), ("outsider", 404, 404)]
)
def test_the_batch_page_is_for_the_organization_only(request, who, see, push, org, owner, meter, no_deliveries):
    batch = batch_create(organization=org, user=owner, files=_files(**{"a.csv": support.hourly(1).encode()}),
                         meter=meter, targets=[Target.WATTICS], run_now=True)  # fmt: skip
    client = request.getfixturevalue(f"{who}_client")
    assert client.get(f"/uploads/batches/{batch.pk}/").status_code == see
    assert client.post(f"/uploads/batches/{batch.pk}/confirm/").status_code == push
    stored = Upload.objects.get().status == UploadStatus.STORED
    assert stored == (push == 302)


def test_a_zip_with_too_many_files_stores_nothing(org, owner, meter, settings):
    settings.UPLOAD_ZIP_MAX_FILES = 2
    zipped = fs.zipped({f"{i}.csv": support.hourly(1).encode() for i in range(3)})
    with pytest.raises(IngestError, match="holds 3 files; at most 2"):
        batch_create(organization=org, user=owner, files=_files(**{"z.zip": zipped}), meter=meter,
                     targets=[Target.WATTICS], run_now=True)  # fmt: skip
    assert Upload.objects.count() == 0


# --- The accepted formats page ----------------------------------------------------------------


def test_the_formats_page_offers_a_template_of_each_layout_and_each_template_is_accepted(
    owner_client, org, owner, meter, ny_site, no_deliveries
):
    from uploads.format_templates import TEMPLATES

    factories.make_meter(ny_site, name="Main incomer", interval_minutes=60)
    factories.make_meter(ny_site, name="Roof PV", meter_type="production", interval_minutes=60)
    page = owner_client.get("/uploads/formats/")
    assert page.status_code == 200
    for name in TEMPLATES:
        assert f'/uploads/formats/{name}"'.encode() in page.content
        response = owner_client.get(f"/uploads/formats/{name}")
        assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
        fixed = None if "meter-column" in name or "portfolio" in name else meter
        targets = [Target.WATTCARBON_BILLS] if name == "bills.csv" or "portfolio" in name else [Target.WATTICS]
        upload = submit(org, owner, response.content, meter=fixed, name=name, targets=targets)
        if "portfolio" in name:  # its meter ids are matched once, then it is read
            assert upload.options["meter_keys"] == ["7654321", "7654322"], upload.error
            continue
        assert upload.status == UploadStatus.VALIDATED and upload.rows_invalid == 0, (name, upload.error)
    assert owner_client.get("/uploads/formats/nope.csv").status_code == 404
