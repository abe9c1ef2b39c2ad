"""Database connections of threads that wait: with a connection pool (PostgreSQL, DB_POOL), a
thread gives its connection back while it waits for something else, so that a pool of a few
connections serves many threads (a worker's 64, a web process's 32)."""

from __future__ import annotations

from django.db import connections


def release_while_waiting() -> None:
    """Before a wait that needs no database (a model backend's answer, a long-poll): put this
    thread's pooled connections back in the pool; its next query takes one again. Nothing
    without a pool (each thread keeps its own connection, CONN_MAX_AGE), nor inside a
    transaction (closing would break it)."""
    for connection in connections.all(initialized_only=True):
        if (
            connection.connection is not None
            and connection.settings_dict.get("OPTIONS", {}).get("pool")
            and not connection.in_atomic_block
        ):
            connection.close()
