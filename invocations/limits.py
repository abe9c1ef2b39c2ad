"""Per-API-key limits of model calls and tokens per minute, and monthly budgets per API key and
per workspace, shared by every web and worker process through Redis:

    mps:rpm:{key}:{minute}                    calls admitted in that minute
    mps:tpm:{key}:{minute}                    tokens the key's calls used in that minute
    mps:spend:{key|tenant}:{id}:{YYYYMM}:{CUR} what calls cost this month (UTC), in CUR

A spend counter starts from the database's sum of that month's costs (so a Redis restart loses
nothing) and grows as each call's cost is known. A budget counts the costs in its currency.

A call is refused (429 `rate_limited`, with when to retry) when the key has made its calls of the
minute, or its calls of the minute have used (or, still running, hold) its tokens: a call holds
the most it may use (its prompt plus its max_tokens, else 1,024) from admission until it ends and
settles to what it used, so the call that crosses the limit finishes and the next one waits. If
Redis cannot be reached, calls are admitted: a limit must not take the service down with it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import redis
from django.db.models import Sum

from config import errors
from invocations.models import Invocation
from providers import balancing
from tenants.models import ApiKey, Tenant

logger = logging.getLogger(__name__)
WINDOW = 60


def _window() -> tuple[int, float]:
    now = time.time()
    return int(now // WINDOW), WINDOW - now % WINDOW


@dataclass(frozen=True, slots=True)
class TokenHold:
    """Tokens a call in flight holds in its key's minute, until it ends and says what it used."""

    api_key_id: int
    minute: int
    tokens: int


def admit(
    tenant: Tenant, api_key: ApiKey | None, estimate: Callable[[], int] = lambda: 0
) -> TokenHold | None:
    """Count a call against its key's limits and check the budgets; raise RateLimited when one
    is reached. With a tokens-per-minute limit, the call holds `estimate()` tokens (the most it
    may use) until `settle`: calls in flight count, so many at once cannot all slip under it."""
    _check_budget("tenant", tenant.pk, tenant.monthly_budget, tenant.budget_currency)
    if api_key is not None:
        _check_budget("key", api_key.pk, api_key.monthly_budget, api_key.budget_currency)
    if api_key is None or (api_key.rpm_limit is None and api_key.tpm_limit is None):
        return None
    minute, left = _window()
    held = max(0, int(estimate())) if api_key.tpm_limit is not None else 0
    calls_key, tokens_key = f"mps:rpm:{api_key.pk}:{minute}", f"mps:tpm:{api_key.pk}:{minute}"
    try:
        pipe = balancing.client().pipeline()
        pipe.incr(calls_key).expire(calls_key, WINDOW * 2)
        pipe.incrby(tokens_key, held).expire(tokens_key, WINDOW * 2)
        calls, _, tokens, _ = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("Rate limits not checked (Redis: %s)", exc)
        return None
    refusal = None
    if api_key.rpm_limit is not None and calls > api_key.rpm_limit:
        refusal = (
            f"This API key may make {api_key.rpm_limit} model calls a minute; "
            f"try again in {left:.0f} s."
        )
    elif api_key.tpm_limit is not None and tokens - held >= api_key.tpm_limit:
        refusal = (
            f"This API key's calls used (or hold, while they run) its {api_key.tpm_limit} "
            f"tokens of this minute; try again in {left:.0f} s."
        )
    if refusal is not None:
        if held:
            with contextlib.suppress(redis.RedisError):
                balancing.client().decrby(tokens_key, held)
        raise errors.RateLimited(refusal, retry_after=left)
    return TokenHold(api_key.pk, minute, held) if held else None


def settle_many(used: Sequence[tuple[int | None, int, TokenHold | None]]) -> None:
    """Finished calls, as (api key id, tokens used, the hold `admit` gave): each hold is
    replaced by what its call used, in the hold's minute (else the current one); one round trip."""
    current, _ = _window()
    deltas: dict[str, int] = defaultdict(int)
    for api_key_id, tokens, hold in used:
        if hold is not None:
            deltas[f"mps:tpm:{hold.api_key_id}:{hold.minute}"] += tokens - hold.tokens
        elif api_key_id is not None and tokens > 0:
            deltas[f"mps:tpm:{api_key_id}:{current}"] += tokens
    pipe = balancing.client().pipeline(transaction=False)
    for key, delta in deltas.items():
        if delta:
            pipe.incrby(key, delta).expire(key, WINDOW * 2)
    if not len(pipe):
        return
    try:
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("Tokens not counted against keys (Redis: %s)", exc)


def settle(api_key_id: int | None, tokens: int, hold: TokenHold | None = None) -> None:
    """One finished call's tokens (see settle_many)."""
    settle_many([(api_key_id, tokens, hold)])


# --- Monthly budgets --------------------------------------------------------------------------


def _month() -> tuple[datetime, str, float]:
    """The month's start (UTC), its key, and the seconds until the next one."""
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, f"{start:%Y%m}", (following - now).total_seconds()


def _spend_key(scope: str, owner_id: int, month: str, currency: str) -> str:
    return f"mps:spend:{scope}:{owner_id}:{month}:{currency}"


def spent(scope: str, owner_id: int, currency: str) -> Decimal:
    """What the workspace's (or key's) calls cost this month, in `currency`."""
    start, month, _ = _month()
    key = _spend_key(scope, owner_id, month, currency)
    try:
        found = balancing.client().get(key)
    except redis.RedisError:
        found = None
    if found is not None:
        return Decimal(found.decode())
    owner = {"tenant_id": owner_id} if scope == "tenant" else {"api_key_id": owner_id}
    total = Invocation.objects.filter(
        **owner, currency=currency, created_at__gte=start, cost__isnull=False
    ).aggregate(total=Sum("cost"))["total"] or Decimal(0)
    with contextlib.suppress(redis.RedisError):
        balancing.client().set(key, str(total), nx=True, ex=40 * 86400)
    return total


def _amount(value: Decimal) -> str:
    """1E-8 -> 0.00000001, 0.000341700000000000 -> 0.0003417."""
    return format(value.normalize(), "f")


def _check_budget(scope: str, owner_id: int, budget: Decimal | None, currency: str) -> None:
    if budget is None:
        return
    used = spent(scope, owner_id, currency)
    if used >= budget:
        _, _, left = _month()
        whose = "This workspace's" if scope == "tenant" else "This API key's"
        raise errors.RateLimited(
            f"{whose} monthly budget of {_amount(budget)} {currency} is spent "
            f"({_amount(used)} {currency}); "
            "it renews on the 1st (UTC).",
            retry_after=left,
            code="budget_exhausted",
        )


def charge_cost(*, tenant_id: int, api_key_id: int | None, cost: Decimal, currency: str) -> None:
    """Add a finished call's cost to the month's counters that exist (a missing counter starts
    from the database's sum, which already holds this call)."""
    if not cost or not currency:
        return
    _, month, _ = _month()
    owners = [("tenant", tenant_id)] + ([("key", api_key_id)] if api_key_id else [])
    try:
        for scope, owner_id in owners:
            key = _spend_key(scope, owner_id, month, currency)
            if balancing.client().exists(key):
                balancing.client().incrbyfloat(key, float(cost))
    except redis.RedisError as exc:
        logger.warning("Spend not counted (Redis: %s); the next check recounts", exc)
