"""Validation in blocks with arrays (uploads.parsing.batches) against the row-by-row parser:
the same rows and errors in the same order, the same warnings and state, whatever the
block size; and through upload_create, the same upload (counts, report, preview, period,
warnings, options) and the same staged rows."""

import gzip
import io
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.uploads import ingest_support as support
from tests.uploads.ingest_support import submit
from uploads.models import Target
from uploads.parsing import FileProblem, MeterInfo, ParsedFile, ReadingBatch, ReadingRow, RowError, batches
from uploads.services import staging

meter, ny_site, solar = support.meter, support.ny_site, support.solar

DATA = Path(__file__).resolve().parent.parent / "data"
NY = MeterInfo(1, "Site / Main", ZoneInfo("America/New_York"), 60, False)
SOLAR = MeterInfo(2, "Site / Roof PV", ZoneInfo("America/New_York"), 60, True)
BERLIN = MeterInfo(3, "Berlin / Hall", ZoneInfo("Europe/Berlin"), 15, False)
UTC_METER = MeterInfo(4, "London / Dock", ZoneInfo("UTC"), 15, False)
METERS = {
    "Main": NY,
    "main-stream": NY,
    "Roof PV": SOLAR,
    "pv-stream": SOLAR,
    "Hall": BERLIN,
    "Dock": UTC_METER,
    "Zähler Süd": BERLIN,
}
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
BLOCK_SIZES = [1, 150, batches.BLOCK_BYTES]


def lookup(key: str):
    return METERS.get(key, "is not a meter of this organization")


def _item(item) -> tuple:
    if isinstance(item, ReadingRow):
        return ("row", item.line, item.meter.id, item.ts.isoformat(), repr(item.value), item.extra)
    if isinstance(item, RowError):
        return ("error", item.line, item.column, item.value, item.problem)
    return ("other", repr(item))


def outcome(data: bytes, *, fast: bool, fixed: MeterInfo | None, mapping=None, cap=10**8, naive_utc=False):
    """Everything a validation reads from a ParsedFile."""
    try:
        parsed = ParsedFile(
            io.BytesIO(data),
            column_mapping=mapping,
            fixed_meter=fixed,
            resolve_meter=lookup,
            max_decompressed_bytes=cap,
            now=NOW,
            naive_utc=naive_utc,
        )
    except Exception as exc:  # noqa: BLE001 - the same refusal either way
        return ("refused", type(exc).__name__, str(exc))
    items, problem, arrays = [], "", 0
    try:
        for item in parsed.batches() if fast else parsed:
            if isinstance(item, ReadingBatch):
                arrays += len(item)
                items += [_item(item.row(i)) for i in range(len(item))]
            else:
                items.append(_item(item))
    except FileProblem as exc:
        problem = str(exc)
    state = (
        parsed.warnings(),
        parsed.options,
        parsed.conversions(),
        parsed.intervals,
        parsed.checks.series,
        parsed.reader.folds_resolved,
        parsed.reader.first_fold,
        parsed.reader._ambiguous,
    )
    return items, problem, state, arrays


def assert_same(data: bytes, monkeypatch, *, expect_arrays=False, sizes=tuple(BLOCK_SIZES), **kwargs) -> None:
    slow = outcome(data, fast=False, **kwargs)
    for size in sizes:
        monkeypatch.setattr(batches, "BLOCK_BYTES", size)
        fast = outcome(data, fast=True, **kwargs)
        if slow[0] == "refused":
            assert fast == slow
            continue
        assert fast[:3] == slow[:3], size
        if expect_arrays and size < 100:
            # Blocks of a line or two: any file has some the arrays take.
            assert fast[3] > 0, "the arrays took no row"


def _corpus_files() -> list[Path]:
    return sorted(p for folder in ("bad", "good") for p in (DATA / folder).iterdir() if p.name != "MANIFEST.json")


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_it_reads_every_corpus_file_as_the_row_reader_does(path, monkeypatch):
    data = path.read_bytes()
    for fixed in (NY, None):
        assert_same(data, monkeypatch, fixed=fixed, cap=50 * 1024 * 1024)


# --- Generated files ---------------------------------------------------------------------


def _stamp(ts: datetime, style: int) -> str:
    return [
        ts.isoformat(),  # 2024-01-15T00:00:00+00:00
        ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ts.strftime("%Y-%m-%d %H:%M"),
        ts.astimezone(ZoneInfo("Asia/Kolkata")).isoformat(),
        ts.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%dT%H:%M%z")[:-2] + ":00",
    ][style]


def many_meters(seed: int, rows: int = 700, *, delimiter: str = ",", crlf: bool = False) -> bytes:
    """Three meters, in time order with gaps, negatives, repeats, rows going back, and bad cells."""
    rng = random.Random(seed)
    names = ["Main", "Hall", "Dock"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    lines = [delimiter.join(["meter", "timestamp", "value"])]
    step = 0
    for _ in range(rows):
        step += 1 if rng.random() > 0.03 else rng.randint(2, 40)  # gaps
        ts = start + timedelta(minutes=15 * step)
        name = rng.choice(names)
        value = f"{rng.uniform(-2, 50):.3f}" if rng.random() > 0.05 else f"{-rng.random():.2f}"
        style = 0 if rng.random() > 0.1 else rng.randint(1, 4)
        line = [name, _stamp(ts, style), value]
        roll = rng.random()
        if roll < 0.01:
            line[1] = _stamp(ts - timedelta(hours=rng.randint(1, 30)), 0)  # goes back
        elif roll < 0.02:
            lines.append(delimiter.join(line))  # repeated instant
        elif roll < 0.04:
            line[rng.randint(0, 2)] = rng.choice(
                ["", " ", "abc", "1,5", "nan", "inf", "1e400", " 2.5", "2024-02-30T00:00:00Z", "Nobody", "١٢",
                 "2024-01-01T24:00:00Z", "1989-12-31T00:00:00Z", "2031-01-01T00:00:00Z", "+3", ".5", "7.", "1_000",
                 "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00.5Z", "2024/01/02 03:04", "02.01.2024 03:04"]
            )  # fmt: skip
        elif roll < 0.045:
            line.append("extra")  # too many fields
        elif roll < 0.05:
            line = line[:2]  # too few
        elif roll < 0.055:
            lines.append("")  # blank line
        elif roll < 0.06:
            lines.append(delimiter.join(["", "", ""]))  # a row of empty cells
        elif roll < 0.062:
            line.append("")  # an empty extra field: allowed
        lines.append(delimiter.join(line))
    end = "\r\n" if crlf else "\n"
    return (end.join(lines) + end).encode()


def naive_local(seed: int) -> bytes:
    """Naive local times through both clock changes of 2024 in New York and Berlin, every 15 minutes."""
    rng = random.Random(seed)
    lines = ["meter,timestamp,value"]
    for name, tz, days in (("Main", "America/New_York", ("2024-03-10", "2024-11-03")),
                           ("Hall", "Europe/Berlin", ("2024-03-31", "2024-10-27"))):  # fmt: skip
        for day in days:
            start = datetime.fromisoformat(f"{day}T00:00").replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
            for i in range(4 * 26):
                local = (start + timedelta(minutes=15 * i)).astimezone(ZoneInfo(tz))
                lines.append(f"{name},{local:%Y-%m-%d %H:%M},{rng.randint(0, 99)}")
            # A time the clocks jumped over (New York 02:30 in March) is an error, row by row.
            lines.append(f"{name},{day} 02:30,1")
    return ("\n".join(lines) + "\n").encode()


def decimal_comma(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = ["timestamp;value;meter"]
    ts = datetime(2024, 5, 1)
    for _ in range(600):
        ts += timedelta(minutes=15)
        value = f"{rng.uniform(-1, 9):.2f}".replace(".", ",")
        if rng.random() < 0.05:
            value = rng.choice(["2.5", "1.234,5", "-0,5", ",5", "1,", "1,2,3", "1.2,3", "x", "1e3", "2,5e-1"])
        meter_name = "Zähler Süd" if rng.random() < 0.5 else "Hall"
        lines.append(f"{ts:%Y-%m-%d %H:%M};{value};{meter_name if rng.random() > 0.02 else ' Hall'}")
    return ("\n".join(lines) + "\n").encode()


def with_quotes(seed: int) -> bytes:
    text = many_meters(seed, 400).decode().splitlines()
    for i in range(50, len(text), 97):
        meter_name, rest = text[i].split(",", 1)
        text[i] = f'"{meter_name}",{rest}'
    text.insert(200, '"Main","2024-01-03T00:00:00+00:00","1.5\n2"')  # a quoted newline
    return ("\n".join(text) + "\n").encode()


GENERATED = {
    "many_meters": lambda: many_meters(1),
    "many_meters_crlf": lambda: many_meters(2, crlf=True),
    "many_meters_tab": lambda: many_meters(3, delimiter="\t"),
    "many_meters_no_final_newline": lambda: many_meters(4).rstrip(b"\n"),
    "many_meters_trailing_blank_lines": lambda: many_meters(5) + b"\n\n  \n",
    "many_meters_gzip": lambda: gzip.compress(many_meters(6)),
    "naive_local_dst": lambda: naive_local(7),
    "decimal_comma": lambda: decimal_comma(8),
    "quotes": lambda: with_quotes(9),
    "all_quoted": lambda: b"\n".join(
        b",".join(b'"' + cell + b'"' for cell in line.split(b",")) for line in many_meters(25).split(b"\n")
    ),
    "odd_quotes": lambda: many_meters(26).replace(b"Hall,", b'Ha"ll,', 5).replace(b"Dock,", b'"Do""ck",', 5),
    "lone_cr": lambda: many_meters(10, 200).replace(b"\n", b"\r", 3),
    "bom_in_a_row": lambda: many_meters(11, 200).replace(b"\nMain", "\n\ufeffMain".encode(), 1),
    "invalid_utf8_late": lambda: many_meters(12, 800) + b"Main,2024-09-01T00:00:00Z,\xff\n" + many_meters(13, 50),
    "nul_late": lambda: many_meters(14, 800) + b"Main,2024-09-01T00:00:00Z,1\x00\n",
    "long_line_late": lambda: many_meters(15, 800) + b"Main," + b"9" * 70_000 + b"\n",
    "unclosed_quote_late": lambda: many_meters(16, 800) + b'Main,"2024-09-01T00:00:00Z,1\nDock,x,1\n',
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_it_reads_generated_files_as_the_row_reader_does(name, monkeypatch):
    data = GENERATED[name]()
    assert_same(data, monkeypatch, fixed=None, expect_arrays=name not in ("lone_cr",))


def test_it_reads_naive_times_as_utc_when_told(monkeypatch):
    assert_same(naive_local(17), monkeypatch, fixed=None, naive_utc=True, expect_arrays=True)


def test_it_reads_a_file_without_a_header_with_its_mapping(monkeypatch):
    data = b"".join(f"2024-01-15T{h:02d}:00:00Z,{h}.5\n".encode() for h in range(24))
    mapping = {"column_1": "ts", "column_2": "value"}
    assert_same(data, monkeypatch, fixed=NY, mapping=mapping, expect_arrays=True)


def test_a_corrupt_gzip_stops_after_the_same_rows(monkeypatch):
    text = many_meters(18, 6000)
    assert len(text) > 3 * batches.PIECE_BYTES  # errors met after a few pieces
    whole = gzip.compress(text)
    for cut in (len(whole) // 2, len(whole) - 20):
        assert_same(whole[:cut], monkeypatch, fixed=None, sizes=(300, batches.BLOCK_BYTES))


def test_a_gzip_bomb_stops_after_the_same_rows(monkeypatch):
    data = gzip.compress(many_meters(19, 6000))
    assert_same(data, monkeypatch, fixed=None, cap=150_000, sizes=(300, batches.BLOCK_BYTES))


def test_the_arrays_take_a_clean_file_whole(monkeypatch):
    lines = ["meter,ts,value"] + [
        f"{name},{datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * i):%Y-%m-%dT%H:%M:%S%z},{i % 7 - 1}.25"
        for i in range(3000)
        for name in ("Main", "Hall")
    ]
    data = ("\n".join(lines) + "\n").encode()
    assert_same(data, monkeypatch, fixed=None, sizes=(300, batches.BLOCK_BYTES))
    monkeypatch.setattr(batches, "BLOCK_BYTES", 4096)
    items, problem, _, arrays = outcome(data, fast=True, fixed=None)
    assert arrays == len(items) == 6000 and problem == ""


# --- Through the services ------------------------------------------------------------------


def validated(org, owner, data: bytes, *, fast: bool, meter=None, monkeypatch) -> tuple:
    if not fast:
        monkeypatch.setattr(batches, "eligible", lambda parsed: False)
    upload = submit(org, owner, data, meter=meter, targets=[Target.WATTICS])
    monkeypatch.undo()
    report = upload.error_report.read() if upload.error_report else b""
    staged = []
    if staging.staging_path(upload).exists():
        for batch in staging.staged_batches(staging.staging_path(upload)):
            staged += list(zip(batch.meter_id.tolist(), batch.ts_us.tolist(), batch.value.tolist(), strict=True))
    fields = (
        upload.status,
        upload.error,
        upload.rows_total,
        upload.rows_valid,
        upload.rows_invalid,
        upload.period_start,
        upload.period_end,
        upload.preview,
        upload.warnings,
        upload.options,
        upload.unit_conversions,
        upload.column_mapping,
    )
    return fields, report, staged


def test_it_validates_and_stages_as_row_by_row(org, owner, meter, solar, monkeypatch):
    from tests import factories

    berlin = factories.make_site(org, name="Berlin", timezone="Europe/Berlin")
    factories.make_meter(berlin, name="Hall", interval_minutes=15)
    london = factories.make_site(org, name="London", timezone="UTC")
    factories.make_meter(london, name="Dock", interval_minutes=15)
    files = [many_meters(21, 3000), naive_local(22), many_meters(23, 500, crlf=True), decimal_comma(24)]
    for data in files:
        slow = validated(org, owner, data, fast=False, monkeypatch=monkeypatch)
        monkeypatch.setattr(batches, "BLOCK_BYTES", 1000)
        fast = validated(org, owner, data, fast=True, monkeypatch=monkeypatch)
        assert fast == slow
        assert slow[0][0] == "validated" and slow[2]
    hourly = support.hourly(500).encode()
    slow = validated(org, owner, hourly, fast=False, meter=meter, monkeypatch=monkeypatch)
    fast = validated(org, owner, hourly, fast=True, meter=meter, monkeypatch=monkeypatch)
    assert fast == slow and len(fast[2]) == 500
