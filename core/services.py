"""Helpers every app's services share."""

from typing import Any, TypeVar

from django.db.models import Model

M = TypeVar("M", bound=Model)


def model_update(*, instance: M, data: dict[str, Any]) -> M:
    """Set the fields in `data`, validate the whole row (`full_clean`) and save it. For a new
    row too: `model_update(instance=Site(organization=org), data=fields)`."""
    for name, value in data.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    return instance
