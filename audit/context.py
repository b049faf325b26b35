"""Who is acting in this request, so services can record it without a new argument."""

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    label: str
    ip_address: str | None = None


_current: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)


def current_actor() -> Actor | None:
    return _current.get()


def set_actor(actor: Actor | None):
    """Returns a token for `reset_actor`."""
    return _current.set(actor)


def reset_actor(token) -> None:
    _current.reset(token)
