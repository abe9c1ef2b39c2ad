"""Per-API-key limits of model calls and tokens per minute, shared by every web and worker
process through Redis (fixed one-minute windows):

    mps:rpm:{key}:{minute}    calls admitted in that minute
    mps:tpm:{key}:{minute}    tokens the key's calls used in that minute

A call is refused (429 `rate_limited`, with when to retry) when the key has made its calls of the
minute, or its calls of the minute have used its tokens; tokens are counted when a call ends, so
the call that crosses the limit finishes and the next one waits. If Redis cannot be reached, calls
are admitted: a limit must not take the service down with it.
"""

from __future__ import annotations

import logging
import time

import redis

from config import errors
from providers import balancing
from tenants.models import ApiKey

logger = logging.getLogger(__name__)
WINDOW = 60


def _window() -> tuple[int, float]:
    now = time.time()
    return int(now // WINDOW), WINDOW - now % WINDOW


def admit(api_key: ApiKey | None) -> None:
    """Count a call against its key's limits; raise RateLimited when one is reached."""
    if api_key is None or (api_key.rpm_limit is None and api_key.tpm_limit is None):
        return
    minute, left = _window()
    try:
        pipe = balancing.client().pipeline()
        pipe.incr(f"mps:rpm:{api_key.pk}:{minute}")
        pipe.expire(f"mps:rpm:{api_key.pk}:{minute}", WINDOW * 2)
        pipe.get(f"mps:tpm:{api_key.pk}:{minute}")
        calls, _, tokens = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("Rate limits not checked (Redis: %s)", exc)
        return
    if api_key.rpm_limit is not None and calls > api_key.rpm_limit:
        raise errors.RateLimited(
            f"This API key may make {api_key.rpm_limit} model calls a minute; "
            f"try again in {left:.0f} s.",
            retry_after=left,
        )
    if api_key.tpm_limit is not None and int(tokens or 0) >= api_key.tpm_limit:
        raise errors.RateLimited(
            f"This API key's calls used its {api_key.tpm_limit} tokens of this minute; "
            f"try again in {left:.0f} s.",
            retry_after=left,
        )


def charge(api_key_id: int | None, tokens: int) -> None:
    """Count the tokens a finished call used against its key's minute."""
    if api_key_id is None or tokens <= 0:
        return
    minute, _ = _window()
    key = f"mps:tpm:{api_key_id}:{minute}"
    try:
        balancing.client().pipeline().incrby(key, tokens).expire(key, WINDOW * 2).execute()
    except redis.RedisError as exc:
        logger.warning("Tokens not counted against key %s (Redis: %s)", api_key_id, exc)
