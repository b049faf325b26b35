"""Read what the cache backend itself stores (bytes as stored), to assert what is not in it."""

import base64

from django.conf import settings
from django.core.cache import cache
from django.db import connection


def raw_cache_values() -> list[bytes]:
    """What the cache backend itself holds for this run's keys, bytes as stored."""
    backend = settings.CACHES["default"]["BACKEND"]
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    if backend.endswith("RedisCache"):
        redis = cache._cache.get_client(write=True)
        return [redis.get(key) or b"" for key in redis.scan_iter(f"{prefix}:*", count=1000)]
    if backend.endswith("DatabaseCache"):
        table = connection.ops.quote_name(settings.CACHES["default"]["LOCATION"])
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT value FROM {table}")  # noqa: S608 - the name comes from settings
            return [base64.b64decode(row[0]) for row in cursor.fetchall()]
    if backend.endswith("LocMemCache"):
        return [bytes(v) for v in cache._cache.values()]
    raise AssertionError(f"no way to read {backend} raw")
