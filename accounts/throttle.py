"""Login throttling, for every form that checks a password or sends a reset link.

Each attempt is counted *before* the password is checked, with an atomic counter,
per username and per client address: 60 parallel guesses get LOGIN_FAILURE_LIMIT
answers, not 60. A counter lives LOGIN_FAILURE_WINDOW_SECONDS from the first
attempt (the lockout lasts what the message says). A successful login forgets the
username's count and gives the address its attempt back.

Counters live in the "throttle" cache: Redis when REDIS_URL is set (INCR is atomic
and keeps the key's expiry), else this process's memory (`make run` is one process;
Django's database cache is not used here because its incr is a read-then-write that
loses increments and resets the expiry to the cache's default).
"""

import contextlib
import hashlib
import ipaddress

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

LOCKED_MESSAGE = "Too many failed attempts. Wait {minutes} minutes, then try again."


def _cache():
    return caches["throttle"]


def locked_message() -> str:
    return LOCKED_MESSAGE.format(minutes=max(1, round(settings.LOGIN_FAILURE_WINDOW_SECONDS / 60)))


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or, behind TRUSTED_PROXY_COUNT proxies, the
    address the outermost trusted proxy saw (X-Forwarded-For read from the right, so a
    client cannot choose its own key by sending the header itself)."""
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < hops:
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _keys(request: HttpRequest, username: str) -> tuple[str, str]:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login-attempt:user:{digest}", f"login-attempt:ip:{client_ip(request)}"


def _incr(key: str) -> int:
    cache = _cache()
    if cache.add(key, 1, settings.LOGIN_FAILURE_WINDOW_SECONDS):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, settings.LOGIN_FAILURE_WINDOW_SECONDS)
        return 1


def login_blocked(request: HttpRequest, username: str) -> bool:
    """True if the username or the address already used up its attempts (counts nothing)."""
    counts = _cache().get_many(list(_keys(request, username)))
    return any(count >= settings.LOGIN_FAILURE_LIMIT for count in counts.values())


def login_attempt(request: HttpRequest, username: str) -> bool:
    """Count one attempt; False if it is over the limit and must not be checked."""
    counts = [_incr(key) for key in _keys(request, username)]
    return all(count <= settings.LOGIN_FAILURE_LIMIT for count in counts)


def login_succeeded(request: HttpRequest, username: str) -> None:
    user_key, ip_key = _keys(request, username)
    cache = _cache()
    cache.delete(user_key)
    with contextlib.suppress(ValueError):  # expired meanwhile
        cache.decr(ip_key)
