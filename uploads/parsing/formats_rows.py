"""What the other formats add to a parsed row: unit conversion, the sign of received
energy, estimated entries. Applied after the row reader, whatever the file's format.

Received energy (Green Button flowDirection 19) is generation: stored as it is on a
production meter (the push makes it negative at WattCarbon), and negative on any
other meter, so a net meter keeps "consumption positive, generation negative".
"""

import dataclasses

from uploads.parsing import columns as c
from uploads.parsing.rows import BillRow, BillStart, MeterInfo, ReadingRow, RowError
from uploads.parsing.source import FileProblem
from uploads.parsing.units import Converter, UnitError

YES = {"yes", "y", "true", "1", "e", "est", "estimated", "x"}


def _scaled(value: float, factor: float) -> float:
    """value × factor to 12 significant digits: 475 Wh is 0.475 kWh, not 0.47500000000000003."""
    return float(f"{value * factor:.12g}")


class RowAdjuster:
    def __init__(self, source, header: list[str], *, unit: str = ""):
        self.source, self.header = source, header
        try:
            self.converter = Converter(unit)
        except UnitError as exc:
            raise FileProblem(str(exc)) from exc
        self.flow_index: int | None = getattr(source, "flow_index", None)
        self.unit_index: int | None = None
        self.estimated_index: int | None = None
        self.estimated: dict[str, int] = {}
        self.received: dict[str, int] = {}

    def check_fixed_meter(self, fixed_meter: MeterInfo | None) -> MeterInfo | None:
        """One meter chosen for a Green Button file is fine for one series; several need the mapping step."""
        series = getattr(self.source, "series", None)
        if series is not None:
            series = {k: s for k, s in series.items() if not s.cumulative}
        if fixed_meter is not None and series is not None and len(series) > 1:
            names = "; ".join(list(series)[:5])
            raise FileProblem(
                f"This Green Button file holds {len(series)} series ({names}); upload it with "
                "“The file has a meter column” and match each one to a meter."
            )
        return fixed_meter

    def set_layout(self, layout: c.Layout) -> None:
        self.unit_index = layout.index(c.UNIT)
        self.estimated_index = layout.index(c.ESTIMATED)

    @staticmethod
    def _cell(cells: list[str], index: int | None) -> str:
        return cells[index] if index is not None and index < len(cells) else ""

    def adjust(
        self, row: ReadingRow | BillRow | BillStart, line: int, cells: list[str]
    ) -> ReadingRow | BillRow | BillStart | RowError:
        meter = row.meter
        unit_text = self._cell(cells, self.unit_index)
        # Bills are energy in kWh whatever the meter reads in (WattCarbon takes energy_kwh).
        target = "kWh" if isinstance(row, (BillRow, BillStart)) else meter.unit
        try:
            factor = self.converter.factor(
                meter_id=meter.id, meter_label=meter.label, meter_unit=target, source=unit_text
            )
        except UnitError as exc:
            column = self.header[self.unit_index] if self.unit_index is not None else "unit"
            return RowError(line, column, unit_text[:200], str(exc))
        if self._cell(cells, self.flow_index) == "received":
            self.received[meter.label] = self.received.get(meter.label, 0) + 1
            if not meter.production:
                factor = -factor
        if self._cell(cells, self.estimated_index).strip().lower() in YES:
            self.estimated[meter.label] = self.estimated.get(meter.label, 0) + 1
        if factor == 1.0:
            return row
        if isinstance(row, (BillRow, BillStart)):  # BillStart: a bill of the "end = next row's start" layout
            return dataclasses.replace(row, energy_kwh=_scaled(row.energy_kwh, factor))
        return dataclasses.replace(row, value=_scaled(row.value, factor))

    def warnings(self) -> list[dict]:
        out = list(self.source.warnings()) if hasattr(self.source, "warnings") else []
        for meter, n in self.estimated.items():
            entries = "entry is" if n == 1 else "entries are"
            out.append(
                {"code": "estimated", "count": n, "message": f"{meter}: {n} {entries} estimated.", "meter": meter}
            )
        return out
