"""Database connections of long-running worker threads."""

from django.db import connection, connections


def connection_give_back() -> None:
    """Give this thread's connection back to the pool, between bursts of work.

    A worker runs many more threads than PostgreSQL has connections (WORKER_CONCURRENCY,
    DB_POOL_MAX_SIZE), and a push run spends nearly all its time waiting on the vendor: it
    gives its connection back after each checkpoint and takes one again at the next. Without
    a pool (SQLite, or DB_POOL_MAX_SIZE=0) the thread keeps its connection: closing would only
    mean reconnecting. Never inside a transaction."""
    if connection.connection is None or connection.in_atomic_block:
        return
    if connection.settings_dict.get("OPTIONS", {}).get("pool"):
        connection.close()


def connection_pools_close() -> None:
    """Close this process's connection pools (their idle connections included), at a
    worker's shutdown: without it the pool's open connections end only with the process,
    a moment after it has exited, and a DROP DATABASE right after can still see them."""
    for alias in connections:
        conn = connections[alias]
        if conn.settings_dict.get("OPTIONS", {}).get("pool") and hasattr(conn, "close_pool"):
            conn.close_pool()
