"""Green Button (NAESB ESPI, REQ.21) XML: an Atom feed of UsagePoint, MeterReading,
ReadingType and IntervalBlock entries, read as records like a CSV file's.

    meter key                                   timestamp (UTC)            value  unit   estimated  flow
    Home electric (UsagePoint 1), delivered     2024-01-15T05:00:00+00:00  1.234  Wh            delivered

How the entries hang together: an IntervalBlock's `self`/`up` link is under its
MeterReading's (…/UsagePoint/1/MeterReading/1/IntervalBlock/1), a MeterReading's
href is under its UsagePoint's, and a MeterReading links (`related`) to its
ReadingType. Nothing in the standard puts the ReadingType before the blocks, so the
file is read twice, streaming both times: the first pass keeps the few metadata
entries and counts the readings, the second yields them. A value is
`value × 10^powerOfTenMultiplier` in the ReadingType's `uom`; `timePeriod/start` is
epoch seconds (UTC), so a file that crosses a DST change needs no guessing.

Safety: lxml never resolves entities, never touches the network, keeps its
default limits (no huge_tree), and a document with a DTD (`<!DOCTYPE`, where
entity bombs and external entities live) is refused before its first element is read.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from uploads.parsing.source import FileProblem

ATOM = "{http://www.w3.org/2005/Atom}"
ESPI = "{http://naesb.org/espi}"
HEADER = ["meter", "timestamp", "value", "unit", "estimated", "flow"]
FLOW_INDEX = HEADER.index("flow")

# ESPI UnitSymbolKind codes (the ones utilities export); energy and gas volume convert, the rest are named.
UOM = {72: "Wh", 169: "therm", 42: "m³", 119: "cf", 132: "Btu", 38: "W", 61: "VA", 63: "VAr", 71: "VAh", 73: "VArh"}
# ESPI FlowDirectionKind: 1 forward (delivered to the customer), 19 reverse (received from the customer), 4 net.
FLOW = {1: "delivered", 19: "received", 4: "net"}
COMMODITY = {0: "none", 1: "electricity", 2: "electricity", 4: "air", 7: "natural gas", 8: "propane", 9: "water"}
SERVICE_KIND = {0: "electricity", 1: "gas", 2: "water", 3: "time", 4: "heat", 5: "refuse", 6: "sewerage"}
# ESPI QualityOfReading: 8 estimated (reference day), 9 estimated (linear interpolation), 12 projected.
ESTIMATED_QUALITY = {8, 9, 12}
MAX_SERIES = 100


@dataclass
class _ReadingType:
    uom: int | None = None
    multiplier: int = 0
    flow: int = 1
    commodity: int | None = None
    interval: int | None = None
    accumulation: int | None = None


@dataclass
class Series:
    """One UsagePoint and direction (and interval, when a UsagePoint has several): one meter of the portal."""

    key: str
    usage_point: str
    title: str
    flow: str
    unit: str
    multiplier: int
    interval_seconds: int | None
    commodity: str
    service: str
    readings: int = 0
    # accumulationBehaviour 1: the meter's register (cumulative), not usage per interval: not read.
    cumulative: bool = False

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "usage_point": self.usage_point,
            "flow": self.flow,
            "unit": self.unit,
            "multiplier": self.multiplier,
            "interval_seconds": self.interval_seconds,
            "commodity": self.commodity,
            "service": self.service,
            "readings": self.readings,
            "cumulative": self.cumulative,
        }


@dataclass
class _Meta:
    usage_points: dict[str, dict] = field(default_factory=dict)  # href -> {title, service}
    meter_readings: dict[str, str] = field(default_factory=dict)  # href -> ReadingType href
    reading_types: dict[str, _ReadingType] = field(default_factory=dict)
    blocks: dict[int, str] = field(default_factory=dict)  # entry number -> MeterReading href
    block_counts: dict[int, int] = field(default_factory=dict)


def _path(href: str) -> str:
    return urlsplit(href.strip()).path.rstrip("/")


def _int(elem, tag: str) -> int | None:
    child = elem.find(ESPI + tag)
    if child is None or child.text is None or not child.text.strip():
        return None
    try:
        return int(child.text.strip())
    except ValueError:
        raise FileProblem(
            f"The Green Button file has a <{tag}> that is not a whole number "
            f"({child.text.strip()[:40]!r}, line {child.sourceline})."
        ) from None


def _free(elem) -> None:
    """Drop an element once read, and its finished older siblings: memory stays flat."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


class GreenButtonSource:
    format = "greenbutton"
    decimal_comma = False
    header = HEADER
    flow_index = FLOW_INDEX

    def __init__(self, open_stream):
        """`open_stream()` returns the XML from its start, each time it is called (the file is read twice)."""
        self._open = open_stream
        self.meta = self._first_pass()
        self.series_of_entry: dict[int, Series] = {}
        self.series: dict[str, Series] = {}
        self._link()

    # --- parsing ---------------------------------------------------------------

    def _events(self):
        from lxml import etree

        stream = self._open()
        parser = etree.iterparse(
            stream,
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        first = True
        try:
            for event, elem in parser:
                if first:
                    first = False
                    docinfo = elem.getroottree().docinfo
                    if docinfo.doctype or docinfo.internalDTD is not None:
                        raise FileProblem(
                            "The XML file declares a DTD (<!DOCTYPE>): Green Button files have none, and the entities "
                            "a DTD declares can expand to gigabytes or read files of the server; it was refused."
                        )
                    if elem.tag != ATOM + "feed":
                        name = re.sub(r"^\{.*\}", "", str(elem.tag))
                        raise FileProblem(
                            f"This XML file is not a Green Button (ESPI) Atom feed: its root element is <{name}>, "
                            "not <feed>."
                        )
                yield event, elem
        except etree.XMLSyntaxError as exc:
            line = f" at line {exc.lineno}" if getattr(exc, "lineno", None) else ""
            message = str(exc.msg if hasattr(exc, "msg") else exc).rstrip(".")
            raise FileProblem(f"The XML is malformed{line}: {message}.") from exc

    def _first_pass(self) -> _Meta:
        meta = _Meta()
        entry = 0
        links: list[tuple[str, str]] = []
        title = ""
        for event, elem in self._events():
            tag = elem.tag
            if event == "start":
                if tag == ATOM + "entry":
                    entry, links, title = entry + 1, [], ""
                continue
            if tag == ESPI + "IntervalReading":
                meta.block_counts[entry] = meta.block_counts.get(entry, 0) + 1
                _free(elem)
            elif tag == ATOM + "link" and elem.getparent() is not None and elem.getparent().tag == ATOM + "entry":
                links.append((elem.get("rel", ""), _path(elem.get("href", ""))))
            elif tag == ATOM + "title" and elem.getparent() is not None and elem.getparent().tag == ATOM + "entry":
                title = (elem.text or "").strip()
            elif tag == ATOM + "entry":
                self._entry(meta, entry, elem, links, title)
                _free(elem)
        if not meta.block_counts:
            raise FileProblem("This Green Button file holds no IntervalReading: there is nothing to upload.")
        return meta

    def _entry(self, meta: _Meta, number: int, elem, links: list[tuple[str, str]], title: str) -> None:
        content = elem.find(ATOM + "content")
        if content is None or not len(content):
            return
        body = content[0]
        self_href = next((h for r, h in links if r == "self"), "")
        up_href = next((h for r, h in links if r == "up"), "")
        if body.tag == ESPI + "UsagePoint":
            kind_elem = body.find(f"{ESPI}ServiceCategory/{ESPI}kind")
            kind = int(kind_elem.text) if kind_elem is not None and (kind_elem.text or "").strip().isdigit() else None
            meta.usage_points[self_href or f"#{number}"] = {"title": title, "service": SERVICE_KIND.get(kind, "")}
        elif body.tag == ESPI + "MeterReading":
            reading_type = next((h for r, h in links if r == "related" and "/ReadingType" in h), "")
            meta.meter_readings[self_href or f"#{number}"] = reading_type
        elif body.tag == ESPI + "ReadingType":
            meta.reading_types[self_href or f"#{number}"] = _ReadingType(
                uom=_int(body, "uom"),
                multiplier=_int(body, "powerOfTenMultiplier") or 0,
                flow=_int(body, "flowDirection") or 1,
                commodity=_int(body, "commodity"),
                interval=_int(body, "intervalLength"),
                accumulation=_int(body, "accumulationBehaviour"),
            )
        elif body.tag == ESPI + "IntervalBlock":
            href = self_href or up_href
            meta.blocks[number] = re.sub(r"/IntervalBlock(/[^/]*)?$", "", href)

    def _link(self) -> None:
        """Each block -> its MeterReading -> ReadingType and UsagePoint -> a Series."""
        meta = self.meta
        only = lambda d: next(iter(d)) if len(d) == 1 else None  # noqa: E731 - a file without links has one of each
        for number in meta.block_counts:
            mr_href = meta.blocks.get(number)
            if mr_href is None:
                raise FileProblem(f"Entry {number} of the feed holds IntervalReadings outside an IntervalBlock.")
            if mr_href not in meta.meter_readings:
                mr_href = only(meta.meter_readings) or mr_href
            rt_href = meta.meter_readings.get(mr_href or "", "") if mr_href else ""
            reading_type = meta.reading_types.get(rt_href) or (
                meta.reading_types[only(meta.reading_types)] if only(meta.reading_types) else None
            )
            if reading_type is None:
                raise FileProblem(
                    f"The IntervalBlock of entry {number} ({mr_href or 'no link'}) has no ReadingType in the file: "
                    "its unit and multiplier are unknown."
                )
            up_href = re.sub(r"/MeterReading(/[^/]*)?$", "", mr_href or "")
            if up_href not in meta.usage_points:
                up_href = only(meta.usage_points) or up_href
            point = meta.usage_points.get(up_href, {"title": "", "service": ""})
            self.series_of_entry[number] = self._series(up_href, point, reading_type, meta.block_counts[number])
        if len(self.series) > MAX_SERIES:
            raise FileProblem(f"This Green Button file holds more than {MAX_SERIES} series; split it.")
        if all(s.cumulative for s in self.series.values()):
            raise FileProblem(
                "This Green Button file holds only cumulative register readings (accumulationBehaviour 1); "
                "the portal reads usage per interval (accumulationBehaviour 4): export interval usage."
            )
        # Register series are left out; the meter mapping and the review page only see usage.
        self.series = {k: s for k, s in self.series.items() if not s.cumulative} | {
            k: s for k, s in self.series.items() if s.cumulative
        }

    def warnings(self) -> list[dict]:
        return [
            {
                "code": "register_readings",
                "count": s.readings,
                "message": f"{s.key}: {s.readings} cumulative register readings (accumulationBehaviour 1) were "
                "left out; only usage per interval is read.",
                "meter": "",
            }
            for s in self.series.values()
            if s.cumulative
        ]

    def _series(self, up_href: str, point: dict, rt: _ReadingType, count: int) -> Series:
        number = up_href.rsplit("/", 1)[-1] if up_href and not up_href.startswith("#") else ""
        name = point["title"] or (f"UsagePoint {number}" if number else "UsagePoint")
        if point["title"] and number:
            name = f"{name} (UsagePoint {number})"
        flow = FLOW.get(rt.flow, f"flow {rt.flow}")
        unit = UOM.get(rt.uom, f"ESPI uom {rt.uom}") if rt.uom is not None else "ESPI uom missing"
        key = f"{name}, {flow}" + (", register" if rt.accumulation == 1 else "")
        same = self.series.get(key)
        if same is not None and same.interval_seconds != rt.interval:
            key = f"{key}, every {rt.interval} s"
            same = self.series.get(key)
        if same is None:
            same = self.series[key] = Series(
                key=key,
                usage_point=up_href,
                title=point["title"],
                flow=flow,
                unit=unit,
                multiplier=rt.multiplier,
                interval_seconds=rt.interval,
                commodity=COMMODITY.get(rt.commodity, "") if rt.commodity is not None else "",
                service=point["service"],
                cumulative=rt.accumulation == 1,
            )
        same.readings += count
        return same

    # --- records -----------------------------------------------------------------

    @property
    def options(self) -> dict:
        return {
            "format": "greenbutton",
            "compression": getattr(self, "compression", ""),
            "series": [s.as_dict() for s in self.series.values()],
        }

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        entry = 0
        series: Series | None = None
        for event, elem in self._events():
            if event == "start":
                if elem.tag == ATOM + "entry":
                    entry += 1
                    series = self.series_of_entry.get(entry)
                continue
            if elem.tag != ESPI + "IntervalReading":
                if elem.tag == ATOM + "entry":
                    _free(elem)
                continue
            if series is None or series.cumulative:
                _free(elem)
                continue
            yield elem.sourceline or 0, self._cells(series, elem)
            _free(elem)

    def _cells(self, series: Series, elem) -> list[str]:
        period = elem.find(ESPI + "timePeriod")
        start = period.find(ESPI + "start") if period is not None else None
        stamp = ""
        if start is not None and (start.text or "").strip():
            text = start.text.strip()
            try:
                stamp = datetime.fromtimestamp(int(text), UTC).isoformat()
            except (ValueError, OverflowError, OSError):
                stamp = text  # the row reader reports it, with the line
        value_elem = elem.find(ESPI + "value")
        value = (value_elem.text or "").strip() if value_elem is not None else ""
        try:
            if value:
                value = str(Decimal(value).scaleb(series.multiplier))
        except InvalidOperation:
            pass  # not a number: the row reader reports it
        qualities = {q.text.strip() for q in elem.iter(ESPI + "quality") if q.text and q.text.strip().isdigit()}
        estimated = "yes" if any(int(q) in ESTIMATED_QUALITY for q in qualities) else ""
        return [series.key, stamp, value, series.unit, estimated, series.flow]


def looks_like_xml(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"<?xml") or text.startswith(b"<feed") or text.startswith(b"<ns0:feed")
