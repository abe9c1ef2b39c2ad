"""Routing state shared by every web and worker process, in Redis: each workspace's settings
version, the weighted round-robin position of each balanced model, and entry cool-downs.

    mps:settings:{tenant}            a token replaced on every settings write (cache key)
    mps:rr:{tenant}:{route}          a counter: the next round-robin slot of a model
    mps:cool:{tenant}:{entry}        "reason|until" with a TTL: an entry cooling down

Nothing secret is stored here. If Redis cannot be reached, routing still works: the version reads
as unknown (caches are then trusted for a short while only), the round robin starts anywhere, and
no entry is taken for cooling.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from config import shared_state

logger = logging.getLogger(__name__)


def client(*, blocking: bool = False) -> redis.Redis:
    return shared_state.client(blocking=blocking)


# --- Settings version -------------------------------------------------------------------------


def version_key(tenant_id: int) -> str:
    return f"mps:settings:{tenant_id}"


def settings_version(tenant_id: int) -> str | None:
    """The workspace's current settings version; None when Redis cannot say."""
    return shared_state.version(version_key(tenant_id))


def settings_changed(tenant_id: int) -> None:
    """Every process's cached routes of the workspace are stale."""
    shared_state.bump(version_key(tenant_id))


# --- Weighted round robin ---------------------------------------------------------------------


def smooth_sequence(weights: Sequence[int]) -> tuple[int, ...]:
    """Indexes in smooth weighted round-robin order (nginx's): weights 2, 1 give 0, 1, 0, so a
    heavy entry's turns are spread out rather than bunched."""
    current = [0] * len(weights)
    total = sum(weights)
    order = []
    for _ in range(total):
        for i, weight in enumerate(weights):
            current[i] += weight
        best = max(range(len(weights)), key=lambda i: current[i])
        current[best] -= total
        order.append(best)
    return tuple(order)


def next_slot(tenant_id: int, route_key: str) -> int:
    """The next position of the model's round robin, shared by every process."""
    try:
        return int(client().incr(f"mps:rr:{tenant_id}:{route_key}")) - 1
    except redis.RedisError:
        return int(time.monotonic_ns() // 1000)  # any start will do while Redis is away


# --- Cool-downs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cooldown:
    reason: str  # the error code that cooled the entry: rate_limit, authorization, ...
    until: float  # Unix time

    @property
    def seconds_left(self) -> float:
        return max(0.0, self.until - time.time())

    @property
    def ends_at(self) -> datetime:
        return datetime.fromtimestamp(self.until, tz=UTC)


def own_key(
    *,
    custom_model_id: int | None = None,
    credential_id: int | None = None,
    model_type: str = "",
    model: str = "",
) -> str:
    """The cool-down key of a model's own credentials: its custom model's, or the provider
    credential's for this model (providers limit rates per model: a 429 for one model says
    nothing of the others)."""
    if custom_model_id:
        return f"custom:{custom_model_id}"
    return f"credential:{credential_id}:{model_type}:{model}"


def lb_entry_key(entry_id: int) -> str:
    """The cool-down key of a load-balancing entry (the model's own credentials have theirs)."""
    return f"lb:{entry_id}"


def _cool_key(tenant_id: int, entry_key: str) -> str:
    return f"mps:cool:{tenant_id}:{entry_key}"


def cooldowns(tenant_id: int, entry_keys: Sequence[str]) -> dict[str, Cooldown]:
    """The entries among `entry_keys` that are cooling down now (one round trip)."""
    if not entry_keys:
        return {}
    try:
        values = client().mget([_cool_key(tenant_id, key) for key in entry_keys])
    except redis.RedisError:
        return {}
    found = {}
    now = time.time()
    for key, value in zip(entry_keys, values, strict=True):
        if value:
            reason, _, until = value.decode().partition("|")
            if float(until) > now:
                found[key] = Cooldown(reason, float(until))
    return found


def rested(tenant_id: int, entry_key: str) -> None:
    """End an entry's cool-down now (a check just found it working)."""
    try:
        client().delete(_cool_key(tenant_id, entry_key))
    except redis.RedisError as exc:
        logger.warning("Could not end the cool-down of %s: %s", entry_key, exc)


def cool_down(tenant_id: int, entry_key: str, *, reason: str, seconds: float) -> Cooldown:
    cooldown = Cooldown(reason, time.time() + seconds)
    try:
        client().set(
            _cool_key(tenant_id, entry_key),
            f"{reason}|{cooldown.until}",
            px=max(1, int(seconds * 1000)),
        )
    except redis.RedisError as exc:
        logger.warning("Could not record a cool-down of %s: %s", entry_key, exc)
    return cooldown
