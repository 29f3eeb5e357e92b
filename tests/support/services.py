"""The shared services, used as a test or a long run needs them: a PostgreSQL database
of its own, created and dropped, and the Redis keys of one run, deleted. Plain Python."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

# How the tests, the soak and the benchmark reach PostgreSQL (trust auth here).
PG: dict[str, Any] = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
}


@contextlib.contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A new PostgreSQL database ``name``, dropped afterwards (its sessions ended first)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(**PG, dbname="postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def forget_redis_keys(url: str, pattern: str) -> int:
    """Delete the keys matching ``pattern`` (a run's cache entries, queue and bindings)
    from the Redis at ``url``; never the rest of a shared database. Returns how many."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()
