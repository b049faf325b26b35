from django.db.models import QuerySet

from accounts.models import Organization
from audit.models import AuditEvent


def audit_events_for_org(*, organization: Organization) -> QuerySet[AuditEvent]:
    """The organization's audit trail, newest first (audit.filters.AuditFilter narrows it)."""
    return AuditEvent.objects.filter(organization=organization)


def audit_actors_for_org(*, organization: Organization) -> list[tuple[int, str]]:
    """(user id, name) of everyone who appears in the organization's trail."""
    rows = (
        AuditEvent.objects.filter(organization=organization, actor_id__isnull=False)
        .values_list("actor_id", "actor_label")
        .distinct()
        .order_by("actor_label")
    )
    return list(dict(rows).items())
