"""The streaming parser on its own: no database, files built in memory."""

import gzip
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from uploads.parsing import FileProblem, MappingNeeded, MeterInfo, ParsedFile, ReadingRow, RowError
from uploads.parsing.columns import detect
from uploads.parsing.values import CellError, parse_date

NY = MeterInfo(1, "Site / Main", ZoneInfo("America/New_York"), 60, False)
SOLAR = MeterInfo(2, "Site / Solar", ZoneInfo("UTC"), 15, True)
METERS = {"Main": NY, "solar-stream": SOLAR}


def lookup(key: str):
    return METERS.get(key, "is not a meter of this organization")


def parse(data: bytes | str, *, meter=NY, mapping=None, cap=10**7):
    raw = io.BytesIO(data.encode() if isinstance(data, str) else data)
    parsed = ParsedFile(
        raw, column_mapping=mapping, fixed_meter=meter, resolve_meter=lookup, max_decompressed_bytes=cap
    )
    rows = list(parsed)
    return parsed, [r for r in rows if isinstance(r, ReadingRow)], [r for r in rows if isinstance(r, RowError)]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "header,expected",
    [
        ("start_datetime,energy_kwh", {"start_datetime": "ts", "energy_kwh": "value"}),
        ("Timestamp,Energy (kWh)", {"Timestamp": "ts", "Energy (kWh)": "value"}),
        ("INTERVAL_START,Usage", {"INTERVAL_START": "ts", "Usage": "value"}),
        ("Reading Time,consumption,Meter Name", {"Reading Time": "ts", "consumption": "value", "Meter Name": "meter"}),
        ("date,kwh", {"date": "ts", "kwh": "value"}),
        ("date,time,kwh", {"date": "date", "time": "time", "kwh": "value"}),
        ("start_date,end_date,energy_kwh", {"start_date": "start_date", "end_date": "end_date", "energy_kwh": "value"}),
        ("tsISO8601,AP_1,pc_1,V_12", {"tsISO8601": "ts", "AP_1": "aP_1", "pc_1": "pC_1", "V_12": "v_12"}),
        ("ts,data_stream_id,value", {"ts": "ts", "data_stream_id": "meter", "value": "value"}),
    ],
)
def test_it_recognises_header_variants(header, expected):
    assert detect(header.split(",")) == expected


@pytest.mark.parametrize(
    "header,expected",
    [
        ("Datum;Uhrzeit;Wert (kWh);Status", {"Datum": "date", "Uhrzeit": "time", "Wert (kWh)": "value"}),
        ("Zeitstempel;Verbrauch [kWh]", {"Zeitstempel": "ts", "Verbrauch [kWh]": "value"}),
        ("Von;Bis;Zählpunkt;Menge;Einheit", {"Von": "ts", "Zählpunkt": "meter", "Menge": "value", "Einheit": "unit"}),
        ("Von;Bis;Zaehlpunkt;Menge", {"Von": "ts", "Zaehlpunkt": "meter", "Menge": "value"}),
        # Beside a date column, "Von" is the time of day.
        ("Datum;Von;Bis;Verbrauch", {"Datum": "date", "Von": "time", "Verbrauch": "value"}),
        ("date;start;end;kwh", {"date": "date", "start": "time", "kwh": "value"}),
        ("Horodatage;Valeur;Unité", {"Horodatage": "ts", "Valeur": "value", "Unité": "unit"}),
        ("Fecha;Consumo (kWh);CUPS", {"Fecha": "ts", "Consumo (kWh)": "value", "CUPS": "meter"}),
        ("Datum;Tijd;Verbruik (kWh)", {"Datum": "date", "Tijd": "time", "Verbruik (kWh)": "value"}),
        # A register (running total) is not the interval's energy: left for the user to map.
        ("Datum;Uhrzeit;Zählerstand", {"Datum": "date", "Uhrzeit": "time"}),
    ],
)
def test_it_recognises_european_export_headers(header, expected):
    assert detect(header.split(";")) == expected


def test_a_german_export_is_read_without_a_mapping():
    """Semicolons, day-first dotted dates, a separate time column, decimal commas, a status
    column nobody asked for: what a German metering-point export looks like."""
    berlin = MeterInfo(4, "Werk / Hauptzähler", ZoneInfo("Europe/Berlin"), 15, False)
    data = "Datum;Uhrzeit;Wert (kWh);Status\n31.01.2024;00:00;1,5;W\n31.01.2024;00:15;1.234,25;E\n"
    _, rows, errors = parse(data.encode("cp1252"), meter=berlin)
    assert errors == []
    assert [(r.ts, r.value) for r in rows] == [(utc(2024, 1, 30, 23), 1.5), (utc(2024, 1, 30, 23, 15), 1234.25)]


def test_it_parses_iso_timestamps_with_offsets_and_spaces():
    _, rows, errors = parse(
        "start,value\n"
        "2024-01-01T00:00:00Z,1\n"
        "2024-01-01 01:00:00+00:00,2\n"
        "2024-01-01T04:00:00+02:00,3\n"
        "2024-01-01 02:00,4\n"
    )
    assert errors == []
    assert [r.ts for r in rows] == [utc(2024, 1, 1, 0), utc(2024, 1, 1, 1), utc(2024, 1, 1, 2), utc(2024, 1, 1, 7)]


def test_it_reads_naive_times_in_the_sites_time_zone():
    _, rows, _ = parse("timestamp,kwh\n2024-07-01 12:00,1\n")
    assert rows[0].ts == utc(2024, 7, 1, 16)


def test_it_reads_a_plain_date_as_local_midnight_for_daily_data():
    daily = MeterInfo(3, "Daily", ZoneInfo("Europe/Dublin"), 1440, False)
    _, rows, errors = parse("date,kwh\n2024-07-01,10\n2024-07-02,11\n", meter=daily)
    assert errors == []
    assert [r.ts for r in rows] == [utc(2024, 6, 30, 23), utc(2024, 7, 1, 23)]


def test_it_combines_separate_date_and_time_columns():
    _, rows, errors = parse("date,time,kwh\n2024-01-05,13:15,1\n")
    assert errors == [] and rows[0].ts == utc(2024, 1, 5, 18, 15)


def test_it_rejects_a_time_in_the_dst_gap():
    _, rows, errors = parse("ts,value\n2024-03-10 01:00,1\n2024-03-10 02:30,2\n2024-03-10 03:00,3\n")
    assert len(rows) == 2
    assert errors[0].line == 3
    assert "does not exist in America/New_York (DST gap)" in errors[0].problem


def test_it_disambiguates_the_repeated_hour_by_order_and_warns():
    parsed, rows, errors = parse(
        "ts,value\n2024-11-03 00:00,1\n2024-11-03 01:00,2\n2024-11-03 01:00,3\n2024-11-03 02:00,4\n"
    )
    assert errors == []
    assert [r.ts for r in rows] == [utc(2024, 11, 3, 4), utc(2024, 11, 3, 5), utc(2024, 11, 3, 6), utc(2024, 11, 3, 7)]
    fold = next(w for w in parsed.warnings() if w["code"] == "dst_fold")
    assert fold["count"] == 1 and "2024-11-03 01:00" in fold["message"]
    assert not [w for w in parsed.warnings() if w["code"] == "gaps"]


def test_it_reads_semicolons_with_decimal_commas():
    parsed, rows, errors = parse("ts;value\n2024-01-01T00:00Z;1,5\n2024-01-01T01:00Z;2\n")
    assert errors == [] and [r.value for r in rows] == [1.5, 2.0]
    assert parsed.options["delimiter"] == "semicolon" and parsed.options["decimal_comma"] is True


def test_it_reads_a_european_export_with_dotted_day_first_dates():
    # Semicolons, decimal commas and 31.01.2024-style dates come together in operators' exports.
    _, rows, errors = parse(
        "Datum;Zeit;Verbrauch (kWh)\n31.01.2024;23:45;2,5\n1.2.2024;00:00;0,25\n",
        mapping={"Datum": "date", "Zeit": "time", "Verbrauch (kWh)": "value"},
    )
    assert errors == []
    assert [(r.ts, r.value) for r in rows] == [(utc(2024, 2, 1, 4, 45), 2.5), (utc(2024, 2, 1, 5, 0), 0.25)]
    _, rows, errors = parse("ts;value\n31.01.2024 23:45;1\n")
    assert errors == [] and rows[0].ts == utc(2024, 2, 1, 4, 45)


def test_it_still_refuses_ambiguous_and_impossible_dotted_dates():
    _, rows, errors = parse("ts;value\n01.02.24 10:00;1\n31.02.2024 10:00;1\n2024.01.02 10:00;1\n")
    assert rows == [] and len(errors) == 3
    assert all("is not a date and time" in e.problem for e in errors)


def test_bill_dates_may_be_dotted_day_first():
    assert parse_date("31.01.2024") == date(2024, 1, 31)
    with pytest.raises(CellError, match="DD.MM.YYYY"):
        parse_date("31.02.2024")


def test_it_reads_thousands_grouped_with_dots_before_a_decimal_comma():
    _, rows, errors = parse(
        "ts;value\n2024-01-01T00:00Z;1.234,5\n2024-01-01T01:00Z;-12.345.678,25\n2024-01-01T02:00Z;1.234\n"
    )
    assert errors == [] and [r.value for r in rows] == [1234.5, -12345678.25, 1.234]
    _, rows, errors = parse("ts;value\n2024-01-01T00:00Z;1.23,5\n")
    assert rows == [] and "is not a number" in errors[0].problem


def test_it_reads_tabs_bom_and_crlf():
    parsed, rows, errors = parse(b"\xef\xbb\xbfts\tvalue\r\n2024-01-01T00:00Z\t7\r\n")
    assert errors == [] and rows[0].value == 7.0
    assert parsed.options["encoding"] == "utf-8-sig" and parsed.options["delimiter"] == "tab"


def test_it_streams_gzip_files():
    parsed, rows, errors = parse(gzip.compress(b"ts,value\n2024-01-01T00:00Z,1\n2024-01-01T01:00Z,2\n"))
    assert errors == [] and len(rows) == 2 and parsed.options["compression"] == "gzip"


def test_it_refuses_a_gzip_bomb():
    bomb = gzip.compress(b"2024-01-01T00:00Z,1\n" * 200_000)  # 4 MB of text in a few KB
    with pytest.raises(FileProblem, match="decompresses to more than"):
        parse(gzip.compress(b"ts,value\n") + bomb, cap=1024 * 1024)


def test_it_rejects_non_finite_and_non_numeric_values_naming_the_column():
    _, rows, errors = parse(
        "ts,energy_kwh\n2024-01-01T00:00Z,NaN\n2024-01-01T01:00Z,inf\n2024-01-01T02:00Z,\n"
        "2024-01-01T03:00Z,abc\n2024-01-01T04:00Z,1_000\n2024-01-01T05:00Z,=1+2\n2024-01-01T06:00Z,-3\n"
    )
    assert [e.problem for e in errors] == [
        "energy_kwh is not a finite number",
        "energy_kwh is not a finite number",
        "energy_kwh is empty",
        "energy_kwh is not a number",
        "energy_kwh is not a number",
        "energy_kwh is not a number",
    ]
    assert [r.value for r in rows] == [-3.0]


def test_it_rejects_absurd_timestamps():
    _, rows, errors = parse("ts,value\n1970-01-01T00:00Z,1\n2999-01-01T00:00Z,1\n")
    assert rows == []
    assert "before 1990" in errors[0].problem and "in the future" in errors[1].problem


def test_it_reports_duplicates_out_of_order_rows_and_gaps_per_meter():
    parsed, rows, errors = parse(
        "ts,value\n"
        "2024-01-01T00:00Z,1\n2024-01-01T01:00Z,1\n2024-01-01T01:00Z,1\n"  # duplicate
        "2024-01-01T05:00Z,1\n"  # gap of 3 missing hours
        "2024-01-01T02:00Z,1\n"  # out of order
    )
    assert [(e.line, e.problem) for e in errors] == [(4, "Duplicate timestamp: same meter and time as line 3.")]
    codes = {w["code"]: w for w in parsed.warnings()}
    assert codes["gaps"]["count"] == 1 and "3 missing readings" in codes["gaps"]["message"]
    assert codes["out_of_order"]["count"] == 1
    assert len(rows) == 4


def test_it_warns_about_negative_values_only_on_consumption_meters():
    parsed, _, _ = parse("ts,value\n2024-01-01T00:00Z,-1\n")
    assert [w["code"] for w in parsed.warnings()] == ["negative_values"]
    parsed, _, _ = parse("ts,value\n2024-01-01T00:00Z,-1\n", meter=SOLAR)
    assert parsed.warnings() == []


def test_it_reads_wattics_electrical_columns():
    _, rows, errors = parse("tsISO8601,aP_1,AP_2,ap_3,v_1,PC_1\n2024-01-01T00:00Z,1000,2000,3000,230.5,\n")
    assert errors == []
    assert rows[0].extra == {"aP_1": 1000.0, "aP_2": 2000.0, "aP_3": 3000.0, "v_1": 230.5}
    # No energy column: the interval's energy from the active power, 6 kW for one hour.
    assert rows[0].value == pytest.approx(6.0)


def test_it_maps_rows_to_meters_by_the_meter_column():
    _, rows, errors = parse(
        "ts,meter,value\n2024-01-01T00:00Z,Main,1\n2024-01-01T00:00Z,solar-stream,2\n2024-01-01T00:00Z,Nope,3\n",
        meter=None,
    )
    assert [(r.meter.id, r.value) for r in rows] == [(1, 1.0), (2, 2.0)]
    assert errors[0].line == 4 and errors[0].column == "meter" and errors[0].value == "Nope"


def test_it_asks_for_a_mapping_when_columns_are_unknown():
    with pytest.raises(MappingNeeded, match="timestamp"):
        parse("when,how much\n2024-01-01T00:00Z,1\n")
    with pytest.raises(MappingNeeded, match="meter column"):
        parse("ts,value\n2024-01-01T00:00Z,1\n", meter=None)


def test_it_uses_a_users_mapping():
    _, rows, errors = parse("when,how much\n2024-01-01T00:00Z,1\n", mapping={"when": "ts", "how much": "value"})
    assert errors == [] and rows[0].value == 1.0


def test_it_parses_bills():
    parsed = ParsedFile(
        io.BytesIO(b"start_date,end_date,energy_kwh\n2024-01-01,2024-02-01,500\n2024-02-01,2024-01-15,1\n"),
        column_mapping=None,
        fixed_meter=NY,
        resolve_meter=lookup,
        max_decompressed_bytes=10**6,
    )
    rows = list(parsed)
    assert rows[0].energy_kwh == 500.0 and rows[0].start_date.isoformat() == "2024-01-01"
    assert isinstance(rows[1], RowError) and "end_date is not after the start date" in rows[1].problem


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "The file is empty."),
        (b"\xff\xfet\x00s\x00", "UTF-16"),
        (b"PK\x03\x04rest", "Excel"),
        (b"ts,value\n2024-01-01T00:00Z,\xe9\n", "Line 2 is not valid UTF-8"),
        (b"ts,value\n\x00\x01\x02\n", "binary data"),
        (b"ts,value,value\n", "appears twice"),
        (b"ts,value\n" + b"1" * 70_000 + b"\n", "Line 2 is longer than"),
        (b'ts,value\n"2024-01-01,1\n', "unclosed quote"),
        (gzip.compress(b"ts,value\n")[:-6] + b"xx", "corrupt or truncated"),
    ],
)
def test_it_refuses_unreadable_files_with_a_sentence(data, message):
    with pytest.raises(FileProblem, match=message):
        parse(data)


def test_it_reports_rows_with_too_many_fields():
    _, rows, errors = parse("ts,value\n2024-01-01T00:00Z,1,extra\n2024-01-01T01:00Z,2,\n")
    assert errors[0].problem == "Row has 3 fields; the header has 2."
    assert len(rows) == 1
