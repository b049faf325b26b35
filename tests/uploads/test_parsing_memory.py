"""Parsing streams: its memory does not grow with the file."""

import gzip
import tracemalloc
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from uploads.parsing import MeterInfo, ParsedFile, ReadingRow

METER = MeterInfo(1, "Main", ZoneInfo("UTC"), 15, False)


def write(path, rows: int) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with gzip.open(path, "wt", compresslevel=1) as f:
        f.write("timestamp,value\n")
        for i in range(rows):
            f.write(f"{(start + timedelta(minutes=15 * i)):%Y-%m-%d %H:%M},{i % 100}.5\n")


def peak_parsing(path) -> tuple[int, int]:
    tracemalloc.start()
    with open(path, "rb") as raw:
        parsed = ParsedFile(
            raw, column_mapping=None, fixed_meter=METER, resolve_meter=lambda k: "no", max_decompressed_bytes=10**9
        )
        count = sum(1 for row in parsed if isinstance(row, ReadingRow))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return count, peak


def test_it_parses_in_constant_memory(tmp_path):
    write(tmp_path / "small.csv.gz", 2_000)
    write(tmp_path / "big.csv.gz", 40_000)
    small_count, small_peak = peak_parsing(tmp_path / "small.csv.gz")
    big_count, big_peak = peak_parsing(tmp_path / "big.csv.gz")
    assert (small_count, big_count) == (2_000, 40_000)
    # Twenty times the rows, about the same memory (a few hundred KB of buffers).
    assert big_peak < 2 * small_peak + 256 * 1024, (small_peak, big_peak)
    assert big_peak < 2 * 1024 * 1024
