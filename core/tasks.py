"""What the Celery tasks of every app share: their options and the backoff formula."""

import random
from typing import Any

# A task takes ids and is idempotent. Losing one would lose work, so it is acknowledged only
# after it ran and handed back when its worker dies; arguments travel as JSON.
TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "serializer": "json",
}


def backoff_seconds(retries: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter: base x 2^retries (at most `cap`) times a random 0.5-1,
    so retries spread out but never come back at once; never shorter than what the vendor
    asked for (Retry-After)."""
    delay = min(cap, base * 2 ** min(retries, 30)) * random.uniform(0.5, 1.0)
    return max(delay, retry_after or 0.0)
