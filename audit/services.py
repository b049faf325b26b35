"""Writes of the audit trail.

Services record what people do with one decorator (`@audited(...)`) or one call
(`audit_record(...)`). The actor is the `user` argument when the service takes one, else
the logged-in user of the current request (set by `AuditActorMiddleware`), else the
system (a worker, a management command).
"""

import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from audit.context import Actor, current_actor
from audit.models import AuditEvent

MASK = "••••••••"
# Field names whose values are never written to the trail, only whether they changed.
SECRET_MARKERS = ("password", "api_key", "secret", "token")
# Bookkeeping that no person changes through a form (the sync state is the worker's).
SKIPPED_FIELDS = (
    "id", "organization", "created_at", "updated_at", "wattcarbon_id", "wattcarbon_status", "wattcarbon_error",
    "wattcarbon_field_errors", "wattcarbon_claimed_at", "wattcarbon_synced_at",
)  # fmt: skip


def is_secret(name: str) -> bool:
    return any(marker in name for marker in SECRET_MARKERS)


def _plain(value: Any) -> Any:
    """A JSON value (dates as ISO strings, decimals as strings, files as names)."""
    if isinstance(value, models.Model):
        return value.pk
    if hasattr(value, "name") and hasattr(value, "storage"):  # a FieldFile
        return value.name or ""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def snapshot(obj: models.Model | None, *, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The values of a row's person-editable fields (secrets in clear: mask with `diff`)."""
    if obj is None:
        return {}
    wanted = set(fields) if fields is not None else None
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        name = field.name
        if wanted is not None:
            if name not in wanted:
                continue
        elif name in SKIPPED_FIELDS:
            continue
        values[name] = _plain(field.value_from_object(obj))
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            if wanted is None or field.name in wanted:
                values[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return values


def _masked(name: str, value: Any) -> Any:
    if value is None or not is_secret(name):
        return value
    return MASK if value else ""


_NOTHING: tuple[object, ...] = (None, "", [])


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """{field: [before, after]} for the fields that differ; secrets masked (a new secret reads "(new)")."""
    changes: dict[str, list] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new or (old in _NOTHING and new in _NOTHING):  # a blank field created (or deleted) is no change
            continue
        shown_old, shown_new = _masked(name, old), _masked(name, new)
        if shown_old == shown_new:  # a secret replaced by another one
            shown_new = f"{MASK} (new)"
        changes[name] = [shown_old, shown_new]
    return changes


def _actor_of(user) -> Actor | None:
    if user is not None and getattr(user, "is_authenticated", False):
        ambient = current_actor()
        ip = ambient.ip_address if ambient is not None and ambient.user_id == user.pk else None
        return Actor(user_id=user.pk, label=user.get_username(), ip_address=ip)
    return current_actor()


def audit_record(
    *,
    organization_id: int | None,
    action: str,
    object_type: str,
    object_id: Any = "",
    object_label: str = "",
    changes: dict[str, list] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    user=None,
) -> AuditEvent:
    """Append one event to the trail. Pass `changes` ({field: [before, after]}, already masked)
    or `before`/`after` snapshots (masked here). `user`: the actor; default the request's user."""
    if changes is None:
        changes = diff(before or {}, after or {})
    actor = _actor_of(user)
    return AuditEvent.objects.create(
        organization_id=organization_id,
        actor_id=actor.user_id if actor else None,
        actor_label=actor.label if actor else "",
        ip_address=actor.ip_address if actor else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id or "")[:64],
        object_label=str(object_label)[:255],
        changes=changes,
    )


def audited(
    action: str,
    object_type: str,
    *,
    target: str | None = None,
    lookup: Callable[[dict[str, Any]], models.Model | None] | None = None,
    fields: Iterable[str] | None = None,
) -> Callable:
    """Decorate a keyword-only service so each successful call is recorded.

    The object is the keyword argument named `target` (or what `lookup(kwargs)` finds) before
    the call, and the service's return value (or the same object) after it; a failing call
    records nothing. `fields`: only these fields are compared (default: every editable one)."""
    fields = tuple(fields) if fields is not None else None

    def decorate(service: Callable) -> Callable:
        @functools.wraps(service)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            obj = kwargs.get(target) if target else lookup(kwargs) if lookup else None
            # From the database: a ModelForm has already written the new values onto the instance.
            stored = type(obj)._default_manager.filter(pk=obj.pk).first() if obj is not None and obj.pk else None
            before = snapshot(stored, fields=fields) if action != "create" else {}
            pk, label = (obj.pk, str(obj)) if obj is not None else (None, "")
            result = service(*args, **kwargs)
            after_obj = result if isinstance(result, models.Model) else obj
            after = {} if action == "delete" else snapshot(after_obj, fields=fields)
            if after_obj is not None and action != "delete":
                pk, label = after_obj.pk, str(after_obj)
            org = kwargs.get("organization")
            org_id = org.pk if org is not None else getattr(after_obj or obj, "organization_id", None)
            audit_record(
                organization_id=org_id,
                action=action,
                object_type=object_type,
                object_id=pk,
                object_label=label,
                before=before,
                after=after,
                user=kwargs.get("user"),
            )
            return result

        return wrapper

    return decorate
