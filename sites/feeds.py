"""Live feeds: is each live meter's data arriving, and reaching the vendors?

A reading is stamped at the start of its interval, so the reading after the last one
(at last + interval) can exist only from last + 2 × interval on: that is when it is
due. A feed is late once it is due and a grace period has passed.

Also the coverage of meters × days: the share of expected readings stored, and the
share delivered per target (readings inside the span of a delivered delivery).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Exists, Max, OuterRef, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Organization
from sites.models import FeedState, Meter, MeterFeed
from uploads.models import Delivery, DeliveryStatus, Reading, Target

READING_TARGETS = (Target.WATTICS, Target.WATTCARBON_INTERVALS)
_STATE_ORDER = {FeedState.LATE: 0, FeedState.DUE: 1, FeedState.NO_DATA: 2, FeedState.OK: 3}


def feed_state(
    *, last_reading_at: datetime | None, interval_minutes: int, now: datetime
) -> tuple[str, datetime | None]:
    """(state, due_at) of a feed whose last reading starts at `last_reading_at`."""
    if last_reading_at is None:
        return FeedState.NO_DATA, None
    interval = timedelta(minutes=interval_minutes)
    due_at = last_reading_at + 2 * interval
    grace = timedelta(minutes=max(settings.LIVE_FEED_GRACE_MINUTES, interval_minutes))
    if now >= due_at + grace:
        return FeedState.LATE, due_at
    if now >= due_at:
        return FeedState.DUE, due_at
    return FeedState.OK, due_at


def _last_delivered(meter_ids: list[int]) -> dict[int, dict[str, str]]:
    """Per meter and target, the last reading instant a delivered delivery covers."""
    rows = (
        Delivery.objects.filter(meter_id__in=meter_ids, status=DeliveryStatus.DELIVERED, target__in=READING_TARGETS)
        .values("meter_id", "target")
        .annotate(last=Max("last_ts"))
    )
    out: dict[int, dict[str, str]] = {}
    for row in rows:
        if row["last"] is not None:
            out.setdefault(row["meter_id"], {})[row["target"]] = row["last"].isoformat()
    return out


def feeds_refresh(*, now: datetime | None = None) -> list[MeterFeed]:
    """Recompute every live meter's feed; return the feeds that have just become late."""
    now = now or timezone.now()
    meters = list(Meter.objects.filter(live=True).annotate(last=Max("readings__ts")))
    delivered = _last_delivered([m.pk for m in meters])
    existing = {f.meter_id: f for f in MeterFeed.objects.filter(meter__in=meters)}
    newly_late = []
    for meter in meters:
        state, due_at = feed_state(last_reading_at=meter.last, interval_minutes=meter.interval_minutes, now=now)
        feed = existing.get(meter.pk) or MeterFeed(meter=meter, organization_id=meter.organization_id)
        was_late = feed.state == FeedState.LATE and feed.pk is not None
        feed.last_reading_at, feed.due_at, feed.state, feed.checked_at = meter.last, due_at, state, now
        feed.delivered = delivered.get(meter.pk, {})
        if state == FeedState.LATE:
            feed.late_since = feed.late_since if was_late else now
            if not was_late:
                newly_late.append(feed)
        else:
            feed.late_since = None
        feed.save()
    # A meter no longer live keeps no feed.
    MeterFeed.objects.exclude(meter__live=True).delete()
    return newly_late


def feeds_for_org(*, organization: Organization) -> QuerySet[MeterFeed]:
    """The organization's live feeds, late first, then due, no data, on time."""
    from django.db.models import Case, IntegerField, Value, When

    order = Case(*[When(state=s, then=Value(n)) for s, n in _STATE_ORDER.items()], output_field=IntegerField())
    return (
        MeterFeed.objects.filter(organization=organization, meter__live=True)
        .select_related("meter__site")
        .annotate(state_order=order)
        .order_by("state_order", "meter__site__name", "meter__name")
    )


# ----- Coverage heatmap -------------------------------------------------------------------------

# Share buckets and their CSS classes (no inline styles: the page runs under a strict CSP).
BUCKETS = ((1.0, "cov-full"), (0.9, "cov-high"), (0.5, "cov-mid"), (0.0001, "cov-low"))


def share_class(share: float | None) -> str:
    if share is None:
        return "cov-none"
    for threshold, css in BUCKETS:
        if share >= threshold - 1e-9:
            return css
    return "cov-empty"


@dataclass
class CoverageCell:
    day: date
    share: float
    what: str

    @property
    def css(self) -> str:
        return share_class(self.share)

    @property
    def title(self) -> str:
        return f"{self.day}: {round(100 * self.share)}% {self.what}"


@dataclass
class CoverageLine:
    label: str
    kind: str  # "stored" or a target
    cells: list[CoverageCell]


@dataclass
class CoverageRow:
    meter: Meter
    lines: list[CoverageLine]


def _counts(qs) -> dict[tuple[int, date], int]:
    rows = qs.annotate(day=TruncDate("ts", tzinfo=UTC)).values("meter_id", "day").annotate(n=Count("ts"))
    return {(r["meter_id"], r["day"]): r["n"] for r in rows}


def coverage_for_org(*, organization: Organization, days: int = 14, today: date | None = None) -> dict:
    """Meters × the last `days` UTC days: shares of expected readings stored and delivered per target."""
    today = today or timezone.now().astimezone(UTC).date()
    day_list = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    start = datetime.combine(day_list[0], time.min, UTC)
    end = datetime.combine(today + timedelta(days=1), time.min, UTC)
    meters = list(Meter.objects.filter(organization=organization).select_related("site").order_by("site__name", "name"))
    readings = Reading.objects.filter(meter__organization=organization, ts__gte=start, ts__lt=end)
    stored = _counts(readings)
    delivered = {}
    for target in READING_TARGETS:
        covering = Delivery.objects.filter(
            meter_id=OuterRef("meter_id"), target=target, status=DeliveryStatus.DELIVERED,
            first_ts__lte=OuterRef("ts"), last_ts__gte=OuterRef("ts"),
        )  # fmt: skip
        delivered[target] = _counts(readings.filter(Exists(covering)))
    rows = []
    for meter in meters:
        expected = max(1, 1440 // meter.interval_minutes)

        def line(label: str, kind: str, counts: dict, what: str, meter=meter, expected=expected) -> CoverageLine:
            cells = [CoverageCell(day=d, share=min(1.0, counts.get((meter.pk, d), 0) / expected), what=what)
                     for d in day_list]  # fmt: skip
            return CoverageLine(label=label, kind=kind, cells=cells)

        lines = [line("stored", "stored", stored, "of expected readings stored")]
        lines += [line(Target(t).label, t, delivered[t], f"delivered to {Target(t).label}") for t in READING_TARGETS]
        rows.append(CoverageRow(meter=meter, lines=lines))
    return {"days": day_list, "rows": rows, "targets": [Target(t) for t in READING_TARGETS]}
