"""A per-stream push lock in the shared cache (Redis, or the database cache).

One (meter, target) stream is pushed by one worker at a time: Wattics discards
packets that arrive out of order, so two workers interleaving one meter's packets
would lose data. Different meters push in parallel.

The lock is a cache key added with a TTL and refreshed at each checkpoint, so a
worker that dies frees it within the TTL. Its value names the delivery and the
claim (attempt) holding it: a worker that has just taken over a dead worker's
claim on the same delivery may take the lock over at once instead of waiting.
"""

from django.core.cache import cache

# Longer than the longest in-task wait (PushRun.IN_TASK_WAIT_MAX) plus a checkpoint.
LOCK_TTL_SECONDS = 90


class StreamLock:
    def __init__(self, *, meter_id: int, target: str, delivery_id: int, attempt: int):
        self.key = f"push-lock:{meter_id}:{target}"
        self.delivery_id = delivery_id
        self.owner = f"{delivery_id}:{attempt}"

    def acquire(self) -> bool:
        if cache.add(self.key, self.owner, LOCK_TTL_SECONDS):
            return True
        holder = cache.get(self.key)
        if holder is None:
            return cache.add(self.key, self.owner, LOCK_TTL_SECONDS)
        if str(holder).split(":")[0] == str(self.delivery_id):
            # An earlier claim of this same delivery: we out-claimed it (its heartbeat went
            # stale, or it gave the delivery back), so it no longer pushes.
            cache.set(self.key, self.owner, LOCK_TTL_SECONDS)
            return True
        return False

    def refresh(self) -> None:
        if not cache.touch(self.key, LOCK_TTL_SECONDS):
            # Expired (a long stall): take it back if nobody else has.
            cache.add(self.key, self.owner, LOCK_TTL_SECONDS)

    def release(self) -> None:
        # Not atomic, but the only other writer that may replace our value is a newer claim
        # of the same delivery, and its checkpoint fences us off anyway.
        if cache.get(self.key) == self.owner:
            cache.delete(self.key)
