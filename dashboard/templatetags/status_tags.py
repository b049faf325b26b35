"""Small formatting filters for the status pages."""

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | int | None) -> str:
    """Seconds as a short human duration: 45 s, 3 min 20 s, 2 h 5 min, 3 d 4 h."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def timedelta_seconds(value) -> float | None:
    return value.total_seconds() if value is not None else None


@register.filter
def rate(value: float | None) -> str:
    """Rows per second, with a precision that suits its size."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f} rows/s"
    if value >= 10:
        return f"{value:.1f} rows/s"
    return f"{value:.2f} rows/s"
