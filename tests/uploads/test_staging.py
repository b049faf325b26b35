"""The staging file: validation's valid readings, read back by the store without a second parse."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from uploads.parsing import MeterInfo, ReadingRow
from uploads.services import staging
from uploads.services.staging import StagingWriter, staged_batches

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def info(meter_id: int) -> MeterInfo:
    return MeterInfo(id=meter_id, label=f"m{meter_id}", tz=ZoneInfo("UTC"), interval_minutes=60, production=False)


def us(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


def read_all(path) -> tuple[list, list, list, list]:
    meters, stamps, values, extras = [], [], [], []
    for batch in staged_batches(path):
        meters += batch.meter_id.tolist()
        stamps += batch.ts_us.tolist()
        values += batch.value.tolist()
        extras += [None] * len(batch) if batch.extra is None else batch.extra.tolist()
    return meters, stamps, values, extras


def test_it_reads_back_rows_and_arrays_in_file_order(tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "BATCH_ROWS", 3)  # several record batches, and a partial one
    start = datetime(2024, 3, 31, 0, 30, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)
    path = tmp_path / "staged.arrows"
    writer = StagingWriter(path)
    rows = [ReadingRow(line=i + 2, meter=info(7), ts=start + timedelta(hours=i), value=i + 0.25, extra=None)
            for i in range(4)]  # fmt: skip
    for row in rows:
        writer.add(row)
    writer.add(ReadingRow(line=6, meter=info(8), ts=start, value=-1.5, extra={"aP_1": 2.0, "v_12": 230.5}))
    writer.add_arrays(
        meter_id=np.array([9, 9], dtype=np.int64),
        ts_us=np.array([us(start), us(start) + 3_600_000_000], dtype=np.int64),
        value=np.array([1.0, 2.0]),
    )
    writer.add_arrays(
        meter_id=np.array([10], dtype=np.int64),
        ts_us=np.array([us(start)], dtype=np.int64),
        value=np.array([3.0]),
        extra=['{"aP_1": 1.0}'],
    )
    writer.add(rows[0])
    assert not path.exists()  # complete only once closed
    writer.close()

    meters, stamps, values, extras = read_all(path)
    assert meters == [7, 7, 7, 7, 8, 9, 9, 10, 7]
    assert stamps == [us(r.ts) for r in rows] + [us(start), us(start), us(start) + 3_600_000_000, us(start), us(start)]
    assert values == [0.25, 1.25, 2.25, 3.25, -1.5, 1.0, 2.0, 3.0, 0.25]
    assert extras[4] == '{"aP_1": 2.0, "v_12": 230.5}' and extras[7] == '{"aP_1": 1.0}'
    assert [e for i, e in enumerate(extras) if i not in (4, 7)] == [None] * 7
    assert list(tmp_path.iterdir()) == [path]


def test_a_file_without_extra_reads_back_without_it(tmp_path):
    path = tmp_path / "staged.arrows"
    writer = StagingWriter(path)
    writer.add(ReadingRow(line=2, meter=info(1), ts=EPOCH, value=1.0, extra=None))
    writer.close()
    (batch,) = staged_batches(path)
    assert batch.extra is None and batch.ts_us.tolist() == [0] and batch.meter_id.dtype == np.int64


def test_discard_leaves_no_file(tmp_path):
    path = tmp_path / "staged.arrows"
    writer = StagingWriter(path)
    writer.add(ReadingRow(line=2, meter=info(1), ts=EPOCH, value=1.0, extra=None))
    assert len(list(tmp_path.iterdir())) == 1  # the part being written
    writer.discard()
    assert list(tmp_path.iterdir()) == []


def test_staging_path_is_per_upload_under_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    class Upload:
        pk = 42

    assert staging.staging_path(Upload()) == tmp_path / "staging" / "upload-42.arrows"
    staging.staging_path(Upload()).parent.mkdir()
    staging.staging_path(Upload()).write_bytes(b"x")
    staging.staging_delete(Upload())
    assert not staging.staging_path(Upload()).exists()
    staging.staging_delete(Upload())  # nothing there: no error
