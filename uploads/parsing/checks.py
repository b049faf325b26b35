"""Checks across rows, per meter, in constant memory.

Each meter keeps only counters and the latest instant seen. A repeated instant is a
row error when it follows its twin in file order (what a re-exported or
concatenated file looks like); once a file is out of order, an earlier instant
that comes back is reported as out of order, and storage keeps the last value
(readings are unique per meter and instant, so nothing is ever doubled).

Negative values: WattCarbon's sign convention is "consumption positive, generation
negative", so a negative reading is normal on a production meter and merely
suspicious (net export? sign error?) on any other meter: a warning, never an error.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from uploads.parsing.rows import BillRow, MeterInfo, ReadingRow, RowError

EXAMPLES = 3
BILL_DAYS = (25, 70)  # WattCarbon: monthly periods of 25-35 days, bimonthly up to 70.
# Readings this far apart are month (or longer) totals: bills, never intervals.
MONTH_TOTAL_STEP = timedelta(days=27)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """Microseconds since the Unix epoch (a Python or numpy integer) as an aware UTC datetime
    (what the row reader gives)."""
    return EPOCH + timedelta(microseconds=int(us))


def to_us(ts: datetime) -> int:
    return (ts - EPOCH) // _US


@dataclass
class _Series:
    label: str
    count: int = 0
    latest: datetime | date | None = None
    latest_line: int = 0
    latest_end: date | None = None
    out_of_order: int = 0
    negatives: int = 0
    gaps: int = 0
    missing: int = 0
    gap_examples: list[str] = field(default_factory=list)
    overlaps: int = 0
    odd_periods: int = 0
    steps: int = 0
    long_steps: int = 0


class SeriesChecks:
    def __init__(self) -> None:
        self.series: dict[int, _Series] = {}

    def _get(self, meter) -> _Series:
        s = self.series.get(meter.id)
        if s is None:
            s = self.series[meter.id] = _Series(meter.label)
        return s

    def check(self, row: ReadingRow | BillRow) -> RowError | None:
        return self._reading(row) if isinstance(row, ReadingRow) else self._bill(row)

    def _reading(self, row: ReadingRow) -> RowError | None:
        s = self._get(row.meter)
        if s.latest is not None and row.ts == s.latest:
            stamp = row.ts.isoformat()
            return RowError(row.line, "", stamp, f"Duplicate timestamp: same meter and time as line {s.latest_line:,}.")
        s.count += 1
        if row.value < 0 and not row.meter.production:
            s.negatives += 1
        if s.latest is not None and row.ts < s.latest:
            s.out_of_order += 1
            return None
        if s.latest is not None:
            s.steps += 1
            if row.ts - s.latest >= MONTH_TOTAL_STEP:
                s.long_steps += 1
            step = timedelta(minutes=row.meter.interval_minutes)
            missing = (row.ts - s.latest) // step - 1
            if missing >= 1:
                s.gaps += 1
                s.missing += missing
                if len(s.gap_examples) < EXAMPLES:
                    s.gap_examples.append(f"{s.latest:%Y-%m-%d %H:%M} → {row.ts:%Y-%m-%d %H:%M} UTC")
        s.latest, s.latest_line = row.ts, row.line
        return None

    def readings_run(
        self, *, meters: list[MeterInfo], meter: np.ndarray, ts_us: np.ndarray, value: np.ndarray, line: np.ndarray
    ) -> int:
        """check() for a run of valid readings given as arrays in file order (meter: index into `meters`).

        Takes the rows before the first one that repeats or goes back in time for its meter
        (that one needs check() itself, for its error or its count) and returns how many it took.
        Counts, gaps and their first examples, steps and the latest instant are what check()
        would leave, row after row."""
        n = len(ts_us)
        # Per meter, in file order (a radix sort for a few thousand meters or fewer).
        order = np.argsort(meter.astype(np.int16) if len(meters) < 2**15 else meter, kind="stable")
        m_s, t_s = meter[order], ts_us[order]
        starts = np.ones(n, dtype=bool)
        starts[1:] = m_s[1:] != m_s[:-1]
        prev = np.empty(n, dtype=np.int64)
        prev[1:] = t_s[:-1]
        has_prev = ~starts
        for p in np.flatnonzero(starts):
            s = self.series.get(meters[m_s[p]].id)
            if s is not None and s.latest is not None:
                prev[p], has_prev[p] = to_us(s.latest), True  # type: ignore[arg-type]
        bad = has_prev & (t_s <= prev)
        taken = int(order[bad].min()) if bad.any() else n
        keep = order < taken
        if not taken:
            return 0
        m_s, t_s, prev, has_prev, starts = m_s[keep], t_s[keep], prev[keep], has_prev[keep], starts[keep]
        v_s, l_s, first_pos = value[order][keep], line[order][keep], order[keep]
        k = len(meters)
        step_us = np.array([m.interval_minutes * 60_000_000 for m in meters], dtype=np.int64)
        stepped = has_prev
        diff = np.where(stepped, t_s - prev, 0)
        missing = np.where(stepped, diff // step_us[m_s] - 1, 0)
        gap = stepped & (missing >= 1)
        count = np.bincount(m_s, minlength=k)
        negatives = np.bincount(m_s[v_s < 0], minlength=k)
        steps = np.bincount(m_s[stepped], minlength=k)
        long_steps = np.bincount(m_s[stepped & (diff >= to_us(EPOCH + MONTH_TOTAL_STEP))], minlength=k)
        gaps = np.bincount(m_s[gap], minlength=k)
        missing_sum = np.zeros(k, dtype=np.int64)
        np.add.at(missing_sum, m_s[gap], missing[gap])
        group_starts = np.flatnonzero(starts)
        group_ends = np.append(group_starts[1:], len(m_s)) - 1
        # A meter met for the first time joins the series where check() would add it: at its first row.
        for g in np.argsort(first_pos[group_starts], kind="stable"):
            a, b = group_starts[g], group_ends[g]
            m = int(m_s[a])
            info = meters[m]
            s = self._get(info)
            s.count += int(count[m])
            if not info.production:
                s.negatives += int(negatives[m])
            s.steps += int(steps[m])
            s.long_steps += int(long_steps[m])
            if gaps[m]:
                s.gaps += int(gaps[m])
                s.missing += int(missing_sum[m])
                for i in np.flatnonzero(gap[a : b + 1])[: max(0, EXAMPLES - len(s.gap_examples))]:
                    s.gap_examples.append(
                        f"{from_us(int(prev[a + i])):%Y-%m-%d %H:%M} → {from_us(int(t_s[a + i])):%Y-%m-%d %H:%M} UTC"
                    )
            s.latest, s.latest_line = from_us(int(t_s[b])), int(l_s[b])
        return taken

    def _bill(self, row: BillRow) -> RowError | None:
        s = self._get(row.meter)
        if s.latest == row.start_date:
            problem = f"Duplicate bill: same meter and start date as line {s.latest_line:,}."
            return RowError(row.line, "", row.start_date.isoformat(), problem)
        s.count += 1
        if row.energy_kwh < 0 and not row.meter.production:
            s.negatives += 1
        days = (row.end_date - row.start_date).days
        if not BILL_DAYS[0] <= days <= BILL_DAYS[1]:
            s.odd_periods += 1
        if s.latest is not None and row.start_date < s.latest:
            s.out_of_order += 1
            return None
        if s.latest_end is not None and row.start_date < s.latest_end:
            s.overlaps += 1
        s.latest, s.latest_line, s.latest_end = row.start_date, row.line, row.end_date
        return None

    def month_totals(self) -> list[str]:
        """The meters whose readings are mostly a month or more apart: bills in the shape of readings."""
        return [s.label for s in self.series.values() if s.steps and s.long_steps * 2 > s.steps]

    def warnings(self, *, interval_of: dict[int, int]) -> list[dict]:
        """Findings as {code, message, count, meter}, for Upload.warnings."""
        out: list[dict] = []

        def add(code: str, count: int, message: str, meter: str) -> None:
            if count:
                out.append({"code": code, "count": count, "message": message, "meter": meter})

        for meter_id, s in self.series.items():
            m = s.label
            add("out_of_order", s.out_of_order, f"{m}: {s.out_of_order:,} rows are earlier than a row above them.", m)
            add(
                "negative_values",
                s.negatives,
                f"{m}: {s.negatives:,} negative values on a consumption meter (net export or a sign error?).",
                m,
            )
            if s.gaps:
                first = "; ".join(s.gap_examples)
                add(
                    "gaps",
                    s.gaps,
                    f"{m}: {_count(s.gaps, 'gap')}, {_count(s.missing, 'missing reading')} against the "
                    f"{interval_of.get(meter_id, 0)}-minute interval (first: {first}).",
                    m,
                )
            add("bill_overlaps", s.overlaps, f"{m}: {s.overlaps:,} bills start before the previous one ends.", m)
            add(
                "bill_period_length",
                s.odd_periods,
                f"{m}: {s.odd_periods:,} bills cover fewer than {BILL_DAYS[0]} or more than {BILL_DAYS[1]} days.",
                m,
            )
        return out


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
