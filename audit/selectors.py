from datetime import UTC, date, datetime, time, timedelta

from django.db.models import QuerySet

from accounts.models import Organization
from audit.models import AuditEvent


def audit_events_for_org(
    *,
    organization: Organization,
    actor_id: int | None = None,
    action: str = "",
    object_type: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEvent]:
    """The organization's audit trail, newest first, filtered (dates are whole UTC days)."""
    events = AuditEvent.objects.filter(organization=organization)
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if action:
        events = events.filter(action=action)
    if object_type:
        events = events.filter(object_type=object_type)
    if date_from is not None:
        events = events.filter(created_at__gte=datetime.combine(date_from, time.min, tzinfo=UTC))
    if date_to is not None:
        events = events.filter(created_at__lt=datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC))
    return events


def audit_actors_for_org(*, organization: Organization) -> list[tuple[int, str]]:
    """(user id, name) of everyone who appears in the organization's trail."""
    rows = (
        AuditEvent.objects.filter(organization=organization, actor_id__isnull=False)
        .values_list("actor_id", "actor_label")
        .distinct()
        .order_by("actor_label")
    )
    return list(dict(rows).items())
