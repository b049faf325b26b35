from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.dateparse import parse_date

from accounts.permissions import current_org_or_404, object_or_404
from dashboard import selectors as dash
from sites.feeds import feeds_for_org
from sites.models import Meter
from uploads import selectors

RECENT_DAYS = 7


@login_not_required
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says: send them to the SVG icon.
    Resolved per request: the static manifest may not exist when the URLs are imported."""
    return HttpResponseRedirect(static("favicon.svg"))


def _active_context(request: HttpRequest) -> dict:
    org = current_org_or_404(request)
    active = selectors.with_progress(selectors.active_deliveries(organization=org))
    return {"org": org, "active": active}


def home(request: HttpRequest) -> HttpResponse:
    """The organization's home dashboard: recent uploads, pushes in progress, failures."""
    context = _active_context(request)
    org = context["org"]
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    counts = selectors.upload_status_counts(organization=org, since=since)
    context.update(
        {
            "recent_days": RECENT_DAYS,
            "status_counts": counts,
            # Not the tiles' sum: an upload whose push failed is in two tiles.
            "recent_total": selectors.upload_count(organization=org, since=since),
            "attention": selectors.attention_deliveries(organization=org),
            "attention_total": selectors.attention_count(organization=org),
            # Live meters, late first (sites.feeds).
            "feeds": list(feeds_for_org(organization=org)) if org is not None else [],
        }
    )
    return render(request, "dashboard/home.html", context)


def active(request: HttpRequest) -> HttpResponse:
    """The deliveries-in-progress partial, polled by the dashboard every 2 s."""
    return render(request, "dashboard/_active.html", _active_context(request))


def _query_day(request: HttpRequest, name: str) -> date | None:
    """A day from the query string; a day that does not exist, or one so far off that the
    range arithmetic would overflow (9999-12-31), is a 400, not a 500."""
    text = request.GET.get(name)
    if not text:
        return None
    try:
        day = parse_date(text)
    except ValueError as exc:
        raise BadRequest(f"{name} is not a real date.") from exc
    if day is not None and not (1900 <= day.year <= 2200):
        raise BadRequest(f"{name} must be a date between the years 1900 and 2200.")
    return day


def _parse_range(request: HttpRequest, span: dash.Span, interval_minutes: int) -> tuple[datetime, datetime, bool]:
    start_day, end_day = _query_day(request, "from"), _query_day(request, "to")
    default_start, default_end = dash.default_range(span=span, interval_minutes=interval_minutes)
    if start_day is None and end_day is None:
        return default_start, default_end, False
    start = datetime.combine(start_day, time.min, UTC) if start_day else default_start
    # "to" is a whole day, inclusive.
    end = datetime.combine(end_day + timedelta(days=1), time.min, UTC) if end_day else default_end
    start, end = dash.clamp_range(start=start, end=end)
    return start, end, True


def meter_data(request: HttpRequest, pk: int) -> HttpResponse:
    """A meter's stored readings as a chart, what each vendor last acknowledged, and the
    holes in its data. A partial for the meter page (loaded by htmx), or a page of its own."""
    meter = object_or_404(request, Meter.objects.select_related("site", "organization"), pk=pk)
    span = dash.meter_reading_span(meter=meter)
    start, end, custom = _parse_range(request, span, meter.interval_minutes)
    series = dash.meter_series(meter=meter, start=start, end=end)
    context = {
        "meter": meter,
        "span": span,
        "start": start,
        "end": end,
        # The form shows whole days; "to" is the last day included.
        "end_day": (end - timedelta(microseconds=1)).date(),
        "custom_range": custom,
        "series": series,
        "chart_id": f"meter-chart-data-{meter.pk}",
        "chart": {
            "labels": series.labels,
            "avg": series.avg,
            "low": series.low,
            "high": series.high,
            "unit": meter.unit,
            "bucketMinutes": series.bucket_seconds // 60,
        },
        "acknowledged": dash.meter_last_acknowledged(meter=meter),
        "gaps": dash.meter_gaps(meter=meter, start=start, end=end),
        "interval_minutes": meter.interval_minutes,
        "bills": dash.meter_bills(meter=meter),
    }
    template = "dashboard/_meter_data.html" if request.headers.get("HX-Request") else "dashboard/meter_data.html"
    return render(request, template, context)
