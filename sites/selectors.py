"""Reads for sites, meters and devices: lists with filters, the sync log, the CalTRACK preflight."""

import contextlib
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate

from accounts.models import Organization
from sites.methodologies import get_methodology
from sites.models import Device, Meter, Site
from vendors.models import HttpExchange, Vendor

# CalTRACK daily model: a 365-day baseline with at least 329 days (≈ 90 %) of data.
BASELINE_DAYS = 365
MIN_BASELINE_DAYS = 329
MIN_DAY_SHARE = 0.9


def sites_for_org(*, organization: Organization) -> QuerySet[Site]:
    """The organization's sites with their meter and device counts (sites.filters.SiteFilter narrows them)."""
    return (
        Site.objects.filter(organization=organization)
        .annotate(meter_count=Count("meters", distinct=True), device_count=Count("devices", distinct=True))
        .order_by("name")
    )


def meters_for_org(*, organization: Organization) -> QuerySet[Meter]:
    """The organization's meters with their sites (sites.filters.MeterFilter narrows them)."""
    return Meter.objects.filter(organization=organization).select_related("site").order_by("site__name", "name")


def devices_for_org(*, organization: Organization) -> QuerySet[Device]:
    """The organization's devices with their sites (sites.filters.DeviceFilter narrows them)."""
    return Device.objects.filter(organization=organization).select_related("site").order_by("site__name", "name")


def exchanges_for(*, meter: Meter | None = None, device: Device | None = None, limit: int = 10) -> list[HttpExchange]:
    """The last WattCarbon exchanges made for one meter or device."""
    qs = HttpExchange.objects.filter(vendor=Vendor.WATTCARBON)
    qs = qs.filter(meter=meter) if meter is not None else qs.filter(device=device)
    return list(qs.order_by("-created_at", "-id")[:limit])


@dataclass
class MeterBaseline:
    meter: Meter
    days_present: int
    missing_ranges: list[tuple[date, date]]
    # Stored bills overlapping the baseline: a day inside a bill period is covered.
    bills: int = 0

    @property
    def share(self) -> float:
        return self.days_present / BASELINE_DAYS

    @property
    def ok(self) -> bool:
        return self.days_present >= MIN_BASELINE_DAYS and self.share >= MIN_DAY_SHARE


@dataclass
class Preflight:
    """Whether the attached meters' stored data is a CalTRACK baseline."""

    start: date  # first baseline day
    end: date  # the intervention day (excluded)
    end_source: str
    meters: list[MeterBaseline] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.meters) and all(m.ok for m in self.meters)

    @property
    def required_days(self) -> int:
        return MIN_BASELINE_DAYS


def _ranges(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) ranges."""
    ranges: list[tuple[date, date]] = []
    for day in days:
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def device_preflight(*, device: Device) -> Preflight | None:
    """The baseline check of a meter-based device, or None for other kinds.

    One aggregate query: distinct (meter, local day) pairs in the 365 days before the
    intervention date (or the commenced operation date), so at most 365 rows per meter
    whatever the number of readings. Billing-metered data count too (CalTRACK's billing
    methodology): a day inside a stored bill period, start included and end excluded (the
    next period starts there), is covered. Bill dates are local dates already.
    """
    from uploads.models import Bill, Reading

    methodology = get_methodology(device.kind)
    if methodology is None or not methodology.meter_based:
        return None
    end, source = device.commenced_operation_date, "commenced operation date"
    raw = device.fields.get(methodology.baseline_end_field) if methodology.baseline_end_field else None
    if raw:
        with contextlib.suppress(ValueError):
            end, source = date.fromisoformat(str(raw)), "intervention date"
    if end is None:
        return None  # no date ends a baseline (demand response: its events do)
    start = end - timedelta(days=BASELINE_DAYS)
    tz = zoneinfo.ZoneInfo(device.site.timezone)
    meters = list(device.meters.order_by("name"))
    rows = (
        Reading.objects.filter(
            meter__in=meters,
            ts__gte=datetime.combine(start, time.min, tzinfo=tz),
            ts__lt=datetime.combine(end, time.min, tzinfo=tz),
        )
        .annotate(day=TruncDate("ts", tzinfo=tz))
        .values_list("meter_id", "day")
        .distinct()
    )
    present: dict[int, set[date]] = {m.pk: set() for m in meters}
    for meter_id, day in rows:
        present[meter_id].add(day)
    bill_counts: dict[int, int] = {m.pk: 0 for m in meters}
    bills = Bill.objects.filter(meter__in=meters, start_date__lt=end, end_date__gt=start).values_list(
        "meter_id", "start_date", "end_date"
    )
    for meter_id, first, last in bills:
        bill_counts[meter_id] += 1
        day = max(first, start)
        while day < min(last, end):
            present[meter_id].add(day)
            day += timedelta(days=1)
    all_days = [start + timedelta(days=i) for i in range(BASELINE_DAYS)]
    preflight = Preflight(start=start, end=end, end_source=source)
    for meter in meters:
        days = present[meter.pk]
        missing = [d for d in all_days if d not in days]
        preflight.meters.append(
            MeterBaseline(
                meter=meter, days_present=len(days), missing_ranges=_ranges(missing), bills=bill_counts[meter.pk]
            )
        )
    return preflight
