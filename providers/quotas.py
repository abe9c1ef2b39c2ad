"""Provider quotas on the call path: a call reserves its estimated tokens before the backend is
called and settles to what it really used after, so concurrent calls can never spend past a
limit between them (what one has reserved, the next cannot take).

A reservation takes what the call may use (its prompt, estimated, plus its completion limit),
or what is left of the quota when that is less: the last call of a quota may still run. If a
call then uses more than it reserved, `used` stops at the limit (a database constraint), and the
call's own row keeps its true token counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest, Least

from config import errors
from providers.models import ProviderQuota


@dataclass(frozen=True, slots=True)
class Hold:
    taken: tuple[tuple[int, int], ...]  # (quota id, tokens reserved on it)


def reserve(*, tenant_id: int, provider: str, tokens: int) -> Hold:
    """Reserve `tokens` on every limited quota of the provider; UpstreamQuota when one is spent."""
    with transaction.atomic():
        rows = list(
            ProviderQuota.objects.select_for_update()
            .filter(tenant_id=tenant_id, provider=provider, limit__gte=0)
            .order_by("pk")
        )
        for quota in rows:
            if quota.used >= quota.limit:
                raise errors.UpstreamQuota(
                    f"The {quota.quota_type} quota of {provider} is used up "
                    f"({quota.used}/{quota.limit})."
                )
        taken = tuple((q.pk, max(0, min(tokens, q.limit - q.used))) for q in rows)
        for pk, amount in taken:
            if amount:
                ProviderQuota.objects.filter(pk=pk).update(used=F("used") + amount)
    return Hold(taken)


def settle(hold: Hold, tokens: int) -> None:
    """Replace the reservation with what the call used (0 when it failed)."""
    for pk, amount in hold.taken:
        if amount != tokens:
            ProviderQuota.objects.filter(pk=pk).update(
                used=Greatest(Least(F("used") - amount + tokens, F("limit")), 0)
            )
