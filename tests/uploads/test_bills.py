"""Bills as first-class data: billing meters, the `start,value` layout, target fit, naive times."""

from datetime import UTC, date, datetime

import pytest

from tests import factories
from tests.uploads import ingest_support as support
from tests.uploads.bill_files import gas_billing_export
from tests.uploads.ingest_support import hourly, submit
from uploads.models import Bill, Reading, Target, UploadStatus
from uploads.parsing.columns import END_DATE, NEXT_START, START_DATE, VALUE
from uploads.services.deliveries import _spans
from uploads.services.ingest import upload_confirm, upload_set_mapping

meter, ny_site, no_deliveries = support.meter, support.ny_site, support.no_deliveries
BILLS = [Target.WATTCARBON_BILLS]


@pytest.fixture
def gas_meter(ny_site):
    return factories.make_meter(ny_site, name="Gas", meter_type="gas", reading_kind="billing")


def test_it_reads_a_billing_meters_start_value_file_as_bills_ending_at_the_next_row(org, owner, gas_meter):
    content, expected = gas_billing_export()
    upload = submit(org, owner, content, meter=gas_meter, targets=BILLS)
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert upload.options["kind"] == "bills" and upload.options["bill_end"] == "next_start"
    # The last row's nan is the end marker, not an error.
    assert (upload.rows_valid, upload.rows_invalid) == (25, 0) and not upload.error_report
    assert upload.column_mapping == {"start": START_DATE, "value": VALUE, NEXT_START: END_DATE}
    assert upload.preview[0]["start_date"] == expected[0][0].isoformat()
    assert upload.preview[0]["end_date"] == expected[0][1].isoformat()
    # The period ends at the last bill's end date.
    assert upload.period_end.date() == expected[-1][1]


def test_it_stores_the_bills_with_the_next_rows_start_as_end(org, owner, gas_meter, no_deliveries):
    content, expected = gas_billing_export()
    upload = submit(org, owner, content, meter=gas_meter, targets=BILLS)
    upload = upload_confirm(upload=upload, user=owner, run_now=True)
    assert upload.status == UploadStatus.STORED and upload.rows_stored == 25
    stored = list(Bill.objects.filter(meter=gas_meter).order_by("start_date").values_list(
        "start_date", "end_date", "energy_kwh"))  # fmt: skip
    assert stored == expected
    assert Reading.objects.count() == 0


def test_a_last_period_without_an_end_marker_is_a_row_error(org, owner, gas_meter):
    content = "start,value\n2024-01-01,100\n2024-02-01,90\n2024-03-01,80\n"
    upload = submit(org, owner, content, meter=gas_meter, targets=BILLS)
    assert (upload.rows_valid, upload.rows_invalid) == (2, 1)
    assert upload.preview[-1]["end_date"] == "2024-03-01"
    with upload.error_report.open("rb") as f:
        report = f.read().decode()
    assert "4," in report and "This period has no end" in report


def test_an_empty_value_is_an_end_marker_too(org, owner, gas_meter):
    content = "start,value\n2024-01-01,100\n2024-02-01,\n2024-03-05,80\n2024-04-04,NaN\n"
    upload = submit(org, owner, content, meter=gas_meter, targets=BILLS)
    assert (upload.rows_valid, upload.rows_invalid) == (2, 0)
    assert [(r["start_date"], r["end_date"]) for r in upload.preview] == [
        ("2024-01-01", "2024-02-01"),
        ("2024-03-05", "2024-04-04"),
    ]


def test_the_mapping_step_offers_end_at_the_next_rows_start(org, owner, meter, no_deliveries):
    # An interval meter's file of month starts: read as readings first, then mapped as bills.
    content = "period,therms_kwh\n2024-01-01,100\n2024-02-01,90\n2024-03-01,nan\n"
    upload = submit(org, owner, content, meter=meter, targets=BILLS)
    assert upload.status == UploadStatus.NEEDS_MAPPING
    from uploads.forms import MappingForm

    form = MappingForm({"col_0": START_DATE, "col_1": VALUE, "bill_end": "next_start"}, upload=upload)
    assert "bill_end" in form.fields and "next row" in dict(form.fields["bill_end"].choices)["next_start"].lower()
    assert form.is_valid(), form.errors
    upload = upload_set_mapping(upload=upload, mapping=form.mapping, user=owner, run_now=True)
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert [(r["start_date"], r["end_date"]) for r in upload.preview] == [
        ("2024-01-01", "2024-02-01"),
        ("2024-02-01", "2024-03-01"),
    ]
    # Without "end = next row's start" a start date and a value are not bills; the form says so.
    form = MappingForm({"col_0": START_DATE, "col_1": VALUE}, upload=upload)
    assert not form.is_valid() and "End = next row's start" in form.non_field_errors()[0]


def test_start_end_value_bills_still_work(org, owner, gas_meter):
    content = "start_date,end_date,value\n2024-01-03,2024-02-02,500\n2024-02-02,2024-03-04,450\n"
    upload = submit(org, owner, content, meter=gas_meter, targets=BILLS)
    assert upload.status == UploadStatus.VALIDATED and upload.options["bill_end"] == ""
    assert upload.period_end.date() == date(2024, 3, 4)


# --- Target fit: stopped at review, before anything is stored --------------------------------


def test_month_totals_are_never_sent_as_intervals(org, owner, meter):
    content, _ = gas_billing_export()
    upload = submit(org, owner, content.replace(",nan", ",1.0"), meter=meter)
    assert upload.status == UploadStatus.INVALID
    assert "month totals, which are never sent as intervals" in upload.error
    assert Reading.objects.count() == 0 and Bill.objects.count() == 0


def test_a_bill_file_for_interval_targets_is_stopped(org, owner, gas_meter):
    content, _ = gas_billing_export()
    upload = submit(org, owner, content, meter=gas_meter, targets=[Target.WATTCARBON_INTERVALS, Target.WATTICS])
    assert upload.status == UploadStatus.INVALID
    assert "never as intervals" in upload.error and "WattCarbon intervals and Wattics packets" in upload.error
    with pytest.raises(Exception, match="only a validated upload"):
        upload_confirm(upload=upload, user=owner, run_now=True)
    assert Bill.objects.count() == 0


def test_readings_for_the_bills_target_are_stopped(org, owner, meter):
    upload = submit(org, owner, hourly(5), meter=meter, targets=[Target.WATTICS, Target.WATTCARBON_BILLS])
    assert upload.status == UploadStatus.INVALID
    assert "WattCarbon bills takes billing periods" in upload.error


def test_hourly_readings_of_an_interval_meter_pass(org, owner, meter):
    upload = submit(org, owner, hourly(5), meter=meter)
    assert upload.status == UploadStatus.VALIDATED and not upload.error


def test_a_bill_deliverys_span_ends_at_the_last_bills_end_date(org, owner, gas_meter, no_deliveries):
    content, expected = gas_billing_export()
    upload = upload_confirm(upload=submit(org, owner, content, meter=gas_meter, targets=BILLS), user=owner,
                            run_now=True)  # fmt: skip
    first, last = _spans(upload, Target.WATTCARBON_BILLS)[gas_meter.pk]
    assert first == datetime.combine(expected[0][0], datetime.min.time(), UTC)
    assert last == datetime.combine(expected[-1][1], datetime.min.time(), UTC)


# --- Naive times: the site's local time or UTC ---------------------------------------------


def _submit_naive(org, owner, meter, naive_times):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from uploads.services.ingest import upload_create

    content = b"timestamp,kwh\n2024-01-15 00:00,1\n2024-01-15 01:00,2\n"
    return upload_create(organization=org, user=owner, file=SimpleUploadedFile("n.csv", content), meter=meter,
                         targets=[Target.WATTICS], run_now=True, naive_times=naive_times)  # fmt: skip


def test_naive_times_are_the_sites_local_time_by_default(org, owner, meter):
    upload = _submit_naive(org, owner, meter, None)
    assert upload.naive_times == "local"
    assert upload.preview[0]["ts"] == "2024-01-15T05:00:00+00:00"  # midnight in New York


def test_naive_times_can_be_utc(org, owner, meter):
    upload = _submit_naive(org, owner, meter, "utc")
    assert upload.naive_times == "utc"
    assert upload.preview[0]["ts"] == "2024-01-15T00:00:00+00:00"


def test_a_meter_sets_its_own_default_and_an_upload_may_override_it(org, owner, meter):
    meter.naive_times = "utc"
    meter.save()
    assert _submit_naive(org, owner, meter, None).preview[0]["ts"] == "2024-01-15T00:00:00+00:00"
    assert _submit_naive(org, owner, meter, "local").preview[0]["ts"] == "2024-01-15T05:00:00+00:00"


def test_an_unknown_naive_times_value_is_refused(org, owner, meter):
    from uploads.services.ingest import IngestError

    with pytest.raises(IngestError, match="say 'local'"):
        _submit_naive(org, owner, meter, "martian")


def test_a_file_with_a_meter_column_sent_to_bills_only_pairs_periods_per_meter(org, owner, gas_meter, ny_site):
    other = factories.make_meter(ny_site, name="Gas 2", meter_type="gas", reading_kind="billing")
    content = (
        "meter,start,value\n"
        "Gas,2024-01-01,100\nGas 2,2024-01-05,70\n"
        "Gas,2024-02-01,90\nGas 2,2024-02-04,nan\n"
        "Gas,2024-03-01,\n"
    )
    upload = submit(org, owner, content, targets=BILLS)
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert (upload.rows_valid, upload.rows_invalid) == (3, 0)
    periods = sorted((r["meter"], r["start_date"], r["end_date"]) for r in upload.preview)
    assert periods == [
        (str(gas_meter), "2024-01-01", "2024-02-01"),
        (str(gas_meter), "2024-02-01", "2024-03-01"),
        (str(other), "2024-01-05", "2024-02-04"),
    ]


def test_a_period_that_ends_before_it_starts_is_a_row_error(org, owner, gas_meter):
    content = "start,value\n2024-02-01,100\n2024-01-01,90\n2024-03-01,nan\n"
    upload = submit(org, owner, content, meter=gas_meter, targets=BILLS)
    with upload.error_report.open("rb") as f:
        report = f.read().decode()
    assert "which is not after its start" in report
    assert [(r["start_date"], r["end_date"]) for r in upload.preview] == [("2024-01-01", "2024-03-01")]


def test_month_totals_sent_to_bills_alone_are_read_as_bills_even_on_an_interval_meter(org, owner, meter):
    content, expected = gas_billing_export()
    upload = submit(org, owner, content, meter=meter, targets=BILLS)
    assert upload.status == UploadStatus.VALIDATED, upload.error
    assert upload.options["bill_end"] == "next_start" and upload.rows_valid == len(expected)


def test_start_value_bills_in_therms_are_converted_to_kwh(org, owner, gas_meter, no_deliveries):
    # A unit column, as utility exports have: each bill's energy becomes kWh (1 therm = 100,000 Btu).
    content = "start,value,unit\n2024-01-04,100,therm\n2024-02-03,50,therms\n2024-03-05,nan,therm\n"
    upload = submit(org, owner, content, meter=gas_meter, targets=BILLS)
    assert upload.status == UploadStatus.VALIDATED and (upload.rows_valid, upload.rows_invalid) == (2, 0)
    upload_confirm(upload=upload, user=owner, run_now=True)
    stored = list(Bill.objects.order_by("start_date").values_list("start_date", "end_date", "energy_kwh"))
    btu_per_therm, kwh_per_btu = 100_000, 1 / 3412.14163
    assert [(s.isoformat(), e.isoformat()) for s, e, _ in stored] == [
        ("2024-01-04", "2024-02-03"),
        ("2024-02-03", "2024-03-05"),
    ]
    assert [kwh for _, _, kwh in stored] == pytest.approx(
        [100 * btu_per_therm * kwh_per_btu, 50 * btu_per_therm * kwh_per_btu], rel=1e-5
    )


def test_a_bad_unit_on_a_start_value_row_still_ends_the_period_before_it(org, owner, gas_meter):
    content = "start,value,unit\n2024-01-04,100,kWh\n2024-02-03,50,furlongs\n2024-03-05,nan,kWh\n"
    upload = submit(org, owner, content, meter=gas_meter, targets=BILLS)
    assert (upload.rows_valid, upload.rows_invalid) == (1, 1)
    assert [(r["start_date"], r["end_date"], r["value"]) for r in upload.preview] == [
        ("2024-01-04", "2024-02-03", 100.0)
    ]
