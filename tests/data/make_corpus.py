# ruff: noqa: E501 - the corpus is a table, one file per line
"""Write the ingest test corpus: malformed files (bad/) and accepted variants (good/).

    .venv/bin/python tests/data/make_corpus.py

Deterministic: running it again rewrites the same bytes. Each directory has a
MANIFEST.json the tests read. The very large inputs (a 10 MB line, a file over the
size limit, a gzip bomb) are not here: tests/uploads/test_corpus.py builds them in tmp.

Every file is meant for a meter named "Main" (interval 60 min) of a site in
America/New_York, or, when the manifest says meter_column, for the organization's
meters "Main" and "Roof PV" (Wattics stream id pv-stream).
"""

import gzip
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
T = "2024-01-15T{:02d}:00:00Z"
FORMULAS = ["=CMD()|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0"]


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def rows(values, header="timestamp,value", sep=",") -> bytes:
    lines = [header] + [f"{T.format(i)}{sep}{v}" for i, v in enumerate(values)]
    return ("\n".join(lines) + "\n").encode()


def stamps(values, header="timestamp,value") -> bytes:
    return ("\n".join([header] + [f"{t},1" for t in values]) + "\n").encode()


rng = random.Random(6)
CSV = rows([1, 2, 3])

# name -> (bytes, expected words in the error or the error report, meter column?)
BAD: dict[str, tuple[bytes, str, bool]] = {
    "empty.csv": (b"", "The file is empty.", False),
    "blank_lines_only.csv": (b"\n\r\n  \n", "The file is empty.", False),
    "header_only.csv": (b"timestamp,value\n", "header but no data rows", False),
    "header_only_bom_crlf.csv": (b"\xef\xbb\xbftimestamp,value\r\n\r\n", "header but no data rows", False),
    "binary_garbage.csv": (bytes(rng.randrange(256) for _ in range(4096)), "binary data (a NUL byte): this is not a text CSV file", False),
    "png_image.csv": (b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(512)), "not valid UTF-8", False),
    "excel_xlsx.csv": (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 64, "Excel", False),
    "pdf_document.csv": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "PDF", False),
    "utf16_le_bom.csv": (CSV.decode().encode("utf-16"), "UTF-16", False),
    "utf16_be_bom.csv": (b"\xfe\xff" + CSV.decode().encode("utf-16-be"), "UTF-16", False),
    "utf16_no_bom.csv": (CSV.decode().encode("utf-16-le"), "binary data", False),
    "latin1_not_utf8.csv": ("timestamp,value\n2024-01-15T00:00:00Z,1\n2024-01-15T01:00:00Z,5 °C\n".encode("latin-1"), "Line 3 is not valid UTF-8", False),
    "cp1252_smart_quotes_header.csv": ("“timestamp”,“value”\n2024-01-15T00:00:00Z,1\n".encode("cp1252"), "not valid UTF-8", False),
    "null_byte_in_row.csv": (b"timestamp,value\n2024-01-15T00:00:00Z,1\x00\n", "binary data", False),
    "wrong_delimiter_pipe.csv": (rows([1, 2], header="timestamp|value", sep="|"), "columns were not all recognised", False),
    "mixed_delimiters.csv": (rows([1, 2], sep=";"), "Row has 1 fields; the header has 2.", False),
    "cr_only_line_endings.csv": (CSV.replace(b"\n", b"\r"), "not valid CSV", False),
    "non_numeric_values.csv": (rows(["abc", "one", "1.2.3", "0x10"]), "value is not a number", False),
    "values_with_units.csv": (rows(["12 kWh", "3.5kWh", "€4"]), "value is not a number", False),
    "nan_values.csv": (rows(["NaN", "nan", "-NaN"]), "value is not a finite number", False),
    "inf_values.csv": (rows(["inf", "-inf", "Infinity", "1e999"]), "value is not a finite number", False),
    "empty_values.csv": (rows(["", " ", ""]), "value is empty", False),
    "thousands_separator_quoted.csv": (rows(['"1,234"', '"2,000.5"']), "value is not a number", False),
    "decimal_comma_in_comma_file.csv": (rows(["1,5", "2,25"]), "Row has 3 fields; the header has 2.", False),
    "underscored_numbers.csv": (rows(["1_000", "2_5"]), "value is not a number", False),
    "decimal_comma_garbage_semicolon.csv": (rows(["1,2,3", "4,,5"], header="timestamp;value", sep=";"), "value is not a number", False),
    "tab_non_numeric.csv": (rows(["x", "y"], header="timestamp\tvalue", sep="\t"), "value is not a number", False),
    "absurd_past.csv": (stamps(["1970-01-01T00:00:00Z", "1899-12-31T00:00:00Z", "0001-01-01T00:00:00Z"]), "before 1990", False),
    "absurd_future.csv": (stamps(["2999-01-01T00:00:00Z", "2100-06-01 00:00"]), "more than a day in the future", False),
    "impossible_dates.csv": (stamps(["2024-02-30T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z"]), "is not a date and time", False),
    "ambiguous_or_epoch_dates.csv": (stamps(["01/02/2024 10:00", "1704067200", "yesterday", "Jan 5 2024"]), "is not a date and time", False),
    "bad_offsets.csv": (stamps(["2024-01-01T00:00:00+25:00", "2024-01-01T00:00:00 PST"]), "is not a date and time", False),
    "dst_gap_new_york.csv": (stamps(["2024-03-10 02:30", "2024-03-10 02:00", "2024-03-10T02:59:59"]), "does not exist in America/New_York (DST gap)", False),
    "dst_gap_new_york_2023.csv": (stamps(["2023-03-12 02:15"]), "does not exist in America/New_York (DST gap)", False),
    "formula_values.csv": (rows(FORMULAS), "value is not a number", False),
    "formula_timestamps.csv": (stamps(FORMULAS), "is not a date and time", False),
    "formula_meter_column.csv": (("timestamp,meter,value\n" + "".join(f"2024-01-15T00:00:00Z,{f},1\n" for f in FORMULAS)).encode(), "is not a meter of this organization", True),
    "formula_header.csv": (b"=CMD()|' /C calc'!A0,@SUM(1)\n1,2\n", "columns were not all recognised", False),
    "unclosed_quote.csv": (b'timestamp,value\n"2024-01-15T00:00:00Z,1\n2024-01-15T01:00:00Z,2\n', "unclosed quote", False),
    "unclosed_quote_swallows_file.csv": (b'timestamp,value\n"2024-01-15T00:00:00Z,1\n' + b"2024-01-15T01:00:00Z,2\n" * 3000, "unclosed quote", False),
    "stray_quote.csv": (b'timestamp,value\n2024-01-15T00:00:00Z,1"2"\n', "value is not a number", False),
    "too_many_columns.csv": (b"timestamp,value\n2024-01-15T00:00:00Z,1,2,3\n2024-01-15T01:00:00Z,1,x\n", "the header has 2", False),
    "too_few_columns.csv": (b"timestamp,meter,value\n2024-01-15T00:00:00Z\n2024-01-15T01:00:00Z,Main\n", "the header has 3", True),
    "missing_value_column.csv": (b"timestamp,note\n2024-01-15T00:00:00Z,ok\n", "Choose a value column", False),
    "missing_timestamp_column.csv": (b"value\n1\n2\n", "Choose a timestamp column", False),
    "missing_meter_column.csv": (CSV, "Choose the meter column", True),
    "duplicate_header.csv": (b"timestamp,value,value\n2024-01-15T00:00:00Z,1,2\n", "appears twice in the header", False),
    "duplicate_header_case.csv": (b"Timestamp,timestamp,value\n2024-01-15T00:00:00Z,x,1\n", "appears twice in the header", False),
    "no_header_row.csv": (b"2024-01-15T00:00:00Z,1\n2024-01-15T01:00:00Z,2\n", "columns were not all recognised", False),
    "html_error_page.csv": (b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n", "columns were not all recognised", False),
    "json_document.csv": (b'[{"timestamp": "2024-01-15T00:00:00Z", "value": 1}]\n', "columns were not all recognised", False),
    "unknown_meters.csv": (b"timestamp,meter,value\n2024-01-15T00:00:00Z,Ghost,1\n2024-01-15T00:00:00Z,Nope,2\n", "is not a meter of this organization", True),
    "empty_meter_cells.csv": (b"timestamp,meter,value\n2024-01-15T00:00:00Z,,1\n2024-01-15T01:00:00Z, ,2\n", "which meter is this row for", True),
    "electrical_non_numeric.csv": (b"tsISO8601,aP_1,v_1\n2024-01-15T00:00:00Z,high,230\n2024-01-15T01:00:00Z,,230\n", "aP_1 is not a number", False),
    "bills_end_before_start.csv": (b"start_date,end_date,energy_kwh\n2024-02-01,2024-01-01,500\n2024-03-01,2024-03-01,1\n", "end_date is not after the start date", False),
    "bills_bad_dates.csv": (b"start_date,end_date,energy_kwh\n2024-02-31,2024-03-31,500\nlast month,now,1\n", "is not a date", False),
    "bills_non_numeric_energy.csv": (b"start_date,end_date,energy_kwh\n2024-01-01,2024-02-01,lots\n", "energy_kwh is not a number", False),
    "truncated_gzip.csv.gz": (gz(CSV * 50)[:-40], "gzip file is corrupt or truncated", False),
    "gzip_of_garbage.csv.gz": (gz(bytes(rng.randrange(256) for _ in range(2048))), "binary data (a NUL byte): this is not a text CSV file", False),
    "gzip_of_empty.csv.gz": (gz(b""), "The file is empty.", False),
    "double_gzip.csv.gz": (gz(gz(CSV)), "binary data", False),
    "gzip_of_utf16.csv.gz": (gz(CSV.decode().encode("utf-16")), "UTF-16", False),
}  # fmt: skip

# name -> (bytes, rows stored, first stored instant (UTC, ISO), its value, meter column?)
NY_FOLD = "timestamp,value\n2024-11-03 00:00,1\n2024-11-03 01:00,2\n2024-11-03 01:00,3\n2024-11-03 02:00,4\n"
GOOD: dict[str, tuple[bytes, int, str, float, bool]] = {
    "utf8_bom.csv": (b"\xef\xbb\xbf" + rows([1.5, 2]), 2, "2024-01-15T00:00:00+00:00", 1.5, False),
    "gzip.csv.gz": (gz(rows([4, 5, 6])), 3, "2024-01-15T00:00:00+00:00", 4.0, False),
    "semicolon_decimal_comma.csv": (b"Timestamp;Energy (kWh)\n2024-01-15T00:00:00Z;1,25\n2024-01-15T01:00:00Z;2,5\n", 2, "2024-01-15T00:00:00+00:00", 1.25, False),
    "tab_separated.csv": (rows([7, 8], header="start\tkwh", sep="\t"), 2, "2024-01-15T00:00:00+00:00", 7.0, False),
    "space_instead_of_t.csv": (b"start_datetime,energy_kwh\n2024-01-15 00:00:00+00:00,3\n2024-01-15 01:00:00+00:00,4\n", 2, "2024-01-15T00:00:00+00:00", 3.0, False),
    "offsets.csv": (b"interval_start,usage\n2024-01-15T02:00:00+02:00,1\n2024-01-14T20:00:00-05:00,2\n2024-01-15T02:00:00Z,3\n", 3, "2024-01-15T00:00:00+00:00", 1.0, False),
    "naive_local_minutes.csv": (b"reading_time,consumption\n2024-07-01 12:00,1\n2024-07-01 13:00,2\n", 2, "2024-07-01T16:00:00+00:00", 1.0, False),
    "naive_local_fold.csv": (NY_FOLD.encode(), 4, "2024-11-03T04:00:00+00:00", 1.0, False),
    "daily_dates.csv": (b"date,kwh\n2024-01-15,10\n2024-01-16,11\n", 2, "2024-01-15T05:00:00+00:00", 10.0, False),
    "date_and_time_columns.csv": (b"Date,Time,kWh\n2024-01-15,08:00,1\n2024-01-15,09:00,2\n", 2, "2024-01-15T13:00:00+00:00", 1.0, False),
    "quoted_fields_crlf.csv": (b'"timestamp","value"\r\n"2024-01-15T00:00:00Z","9"\r\n', 1, "2024-01-15T00:00:00+00:00", 9.0, False),
    "wattics_electrical.csv": (b"tsISO8601,aP_1,aP_2,aP_3,V_1,c_1,pC_1,v_12\n2024-01-15T00:00:00.000+00:00,1000,1000,2000,230.1,4.2,123456,400\n2024-01-15T01:00:00.000+00:00,500,,,231,2,124000,401\n", 2, "2024-01-15T00:00:00+00:00", 4.0, False),
    "meter_column_two_meters.csv": (b"timestamp,meter_name,kwh\n2024-01-15T00:00:00Z,Main,1\n2024-01-15T00:00:00Z,pv-stream,-2\n2024-01-15T01:00:00Z,main,3\n2024-01-15T01:00:00Z,Roof PV,-4\n", 4, "2024-01-15T00:00:00+00:00", 1.0, True),
    "bills.csv": (b"start_date,end_date,energy_kwh\n2024-01-01,2024-02-01,500\n2024-02-01,2024-03-01,450.5\n", 2, "2024-01-01", 500.0, False),
}  # fmt: skip


def main() -> None:
    # The formats' files (Green Button XML, Excel, zips) live in their own table.
    from corpus_formats import BAD as FORMATS_BAD
    from corpus_formats import GOOD as FORMATS_GOOD

    BAD.update(FORMATS_BAD)
    GOOD.update(FORMATS_GOOD)
    for folder, table in (("bad", BAD), ("good", GOOD)):
        out = HERE / folder
        out.mkdir(exist_ok=True)
        manifest = {}
        for name, (data, *facts) in table.items():
            (out / name).write_bytes(data)
            manifest[name] = facts
        (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        print(f"{len(table)} files in {out}")


if __name__ == "__main__":
    main()
