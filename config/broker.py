"""Celery's Redis transport, with one client per channel for publishing.

kombu's Redis channel builds a new `redis.Redis` for every message it publishes (`conn_or_acquire`
without a client), and a client's construction copies its 170 response callbacks: about a fifth
of what queueing a job costs the web process. A client is only a handle on the channel's
connection pool and is safe to share between threads, so one per pool serves every publish.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _publishing: tuple[Any, Any] | None = None  # (pool, client on that pool)

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool, shared = self._publishing or (None, None)
        if pool is not self.pool:  # first use, or the channel replaced its pool
            shared = self._create_client()
            self._publishing = (self.pool, shared)
        yield shared


class Transport(kombu_redis.Transport):
    Channel = Channel
