"""This process's pooled Redis clients (the Celery broker's Redis): routing state, limits, job
wake-ups and cache versions live there. Nothing secret is ever stored in it."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def _client(url: str, read_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=read_timeout, socket_connect_timeout=1.0)


def client(*, blocking: bool = False) -> redis.Redis:
    """The pooled client; `blocking` for commands that wait (up to 3 s)."""
    return _client(settings.REDIS_URL, 4.0 if blocking else 1.0)
