"""What every web and worker process shares through Redis (the Celery broker's): pooled clients,
and cache versions, tokens that a change replaces so every process's in-memory cache of what
changed is stale before its next use. Nothing secret is ever stored here."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import redis
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


@cache
def _client(url: str, read_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=read_timeout, socket_connect_timeout=1.0)


def client(*, blocking: bool = False) -> redis.Redis:
    """The pooled client; `blocking` for commands that wait (up to 3 s)."""
    return _client(settings.REDIS_URL, 4.0 if blocking else 1.0)


_read_together = threading.local()


@contextmanager
def read_together(keys: list[str]) -> Iterator[None]:
    """Read these cache versions in one round trip; `version()` answers from that read within
    the block (a request that needs several versions pays for one)."""
    try:
        values = client().mget(keys)
    except redis.RedisError:
        values = [None] * len(keys)
    _read_together.found = {k: v.decode() for k, v in zip(keys, values, strict=True) if v}
    _read_together.asked = frozenset(keys)
    try:
        yield
    finally:
        _read_together.found = {}
        _read_together.asked = frozenset()


def read(key: str) -> str | None:
    """A key's value: from the enclosing `read_together` when it read the key (no round trip),
    else from Redis; None when the key is missing or Redis cannot say."""
    if key in getattr(_read_together, "asked", ()):
        return _read_together.found.get(key)
    try:
        found = client().get(key)
    except redis.RedisError as exc:
        logger.warning("Shared state %s unavailable: %s", key, exc)
        return None
    return found.decode() if found else None


def version(key: str) -> str | None:
    """The current token of a cache version (made on first use, or after Redis lost it); None
    when Redis cannot say, and a cache must then not be trusted for long."""
    already = getattr(_read_together, "found", None)
    if already and key in already:
        return already[key]
    try:
        found = client().get(key)
        if found is None:
            client().set(key, uuid.uuid4().hex, nx=True)
            found = client().get(key)
    except redis.RedisError as exc:
        logger.warning("Cache version %s unavailable: %s", key, exc)
        return None
    return found.decode() if found else None


def bump(key: str) -> None:
    """Replace a cache version now, and again once the current transaction commits (another
    process may rebuild from the old rows in between)."""

    def replace() -> None:
        try:
            client().set(key, uuid.uuid4().hex)
        except redis.RedisError as exc:
            logger.warning("Could not replace cache version %s: %s", key, exc)

    replace()
    transaction.on_commit(replace)
