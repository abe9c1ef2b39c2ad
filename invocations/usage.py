"""Reads for Settings > Usage: a workspace's invocations over a period, counted per hour or day
and per provider and model, and the most recent ones.

Everything is scoped to the tenant passed in. The aggregates are computed in Python from one
narrow query (a tuple per invocation in the period): that keeps the time buckets in the current
time zone on SQLite and PostgreSQL alike and gives exact p50/p95 latencies, and is cheap at this
service's volumes (thousands of calls a day). A workspace making millions of calls a month would
want a rollup table, or the database's percentile functions, instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from invocations.models import Invocation, Source
from providers.models import JobStatus
from tenants import selectors as tenant_selectors
from tenants.models import ApiKey, Tenant

PERIODS = ("24h", "7d", "30d")
DEFAULT_PERIOD = "7d"
NO_API_KEY = "none"  # the api_key filter value for calls made without a key (browser, demo)
RECENT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class UsageFilters:
    period: str = DEFAULT_PERIOD
    provider: str = ""
    model: str = ""
    api_key: str = ""  # "" for any, NO_API_KEY, or a key id
    source: str = ""  # "" for any, "job" or "gateway"

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> UsageFilters:
        """From GET parameters; anything unknown or malformed falls back to "no filter"."""
        period = params.get("period", "")
        api_key = (params.get("api_key") or "").strip()
        if api_key != NO_API_KEY and not (api_key.isascii() and api_key.isdigit()):
            api_key = ""
        return cls(
            period=period if period in PERIODS else DEFAULT_PERIOD,
            provider=(params.get("provider") or "").strip()[:64],
            model=(params.get("model") or "").strip()[:255],
            api_key=api_key,
            source=params.get("source", "") if params.get("source") in Source.values else "",
        )

    @property
    def hourly(self) -> bool:
        return self.period == "24h"


def percentile(values: Sequence[int], p: float) -> int | None:
    """The nearest-rank percentile: the smallest value with at least p% of `values` at or below
    it (so always a latency that was actually seen). None when there are no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def amount_text(amount: Decimal) -> str:
    """A cost without trailing zeros or exponent: 0.01230000 -> "0.0123", 10.00 -> "10"."""
    return format(amount.normalize(), "f")


@dataclass(slots=True)
class Bucket:
    """One hour (24h period) or one day (7d, 30d) of calls."""

    start: datetime
    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def succeeded_or_other(self) -> int:
        return self.calls - self.errors

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class UsageRow:
    """Totals for one provider and model (or, with both empty, for everything)."""

    provider: str = ""
    model: str = ""
    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    costs: dict[str, Decimal] = field(default_factory=dict)  # per currency code
    latencies: list[int] = field(default_factory=list)

    def add(
        self,
        *,
        status: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: Decimal | None,
        currency: str,
        latency_ms: int | None,
    ) -> None:
        self.calls += 1
        if status == JobStatus.FAILED:
            self.errors += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if cost is not None:
            self.costs[currency] = self.costs.get(currency, Decimal(0)) + cost
        if latency_ms is not None:
            self.latencies.append(latency_ms)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def error_percent(self) -> float:
        return round(100 * self.errors / self.calls, 1) if self.calls else 0.0

    @property
    def p50_ms(self) -> int | None:
        return percentile(self.latencies, 50)

    @property
    def p95_ms(self) -> int | None:
        return percentile(self.latencies, 95)

    @property
    def cost_items(self) -> list[tuple[str, str]]:
        """(currency, amount) pairs, amounts without trailing zeros, by currency code."""
        return [(currency, amount_text(amount)) for currency, amount in sorted(self.costs.items())]


@dataclass(slots=True)
class UsageSummary:
    filters: UsageFilters
    since: datetime
    until: datetime
    buckets: list[Bucket]
    rows: list[UsageRow]  # per provider and model, most calls first
    total: UsageRow


def period_start(period: str, now: datetime) -> datetime:
    """Where a period's first bucket starts: 24 whole hours, or 7 / 30 whole days, counting the
    current (partial) hour or day, in the current time zone."""
    local = timezone.localtime(now)
    if period == "24h":
        # In UTC: adding hours to a local time would go by the wall clock across a DST change.
        hour = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return hour - timedelta(hours=23)
    days = 7 if period == "7d" else 30
    first = local.date() - timedelta(days=days - 1)
    return timezone.make_aware(datetime.combine(first, time.min))


def invocations_filtered(
    *, tenant: Tenant, filters: UsageFilters, now: datetime | None = None
) -> QuerySet[Invocation]:
    now = now or timezone.now()
    qs = Invocation.objects.filter(
        tenant=tenant, created_at__gte=period_start(filters.period, now), created_at__lte=now
    )
    if filters.provider:
        qs = qs.filter(provider=filters.provider)
    if filters.model:
        qs = qs.filter(model=filters.model)
    if filters.api_key == NO_API_KEY:
        qs = qs.filter(api_key__isnull=True)
    elif filters.api_key:
        qs = qs.filter(api_key_id=int(filters.api_key))
    if filters.source:
        qs = qs.filter(source=filters.source)
    return qs


def _empty_buckets(filters: UsageFilters, since: datetime, now: datetime) -> list[Bucket]:
    if filters.hourly:
        return [Bucket(start=since + timedelta(hours=i)) for i in range(24)]
    first = timezone.localtime(since).date()
    last = timezone.localtime(now).date()
    days = (last - first).days + 1
    return [
        Bucket(start=timezone.make_aware(datetime.combine(first + timedelta(days=i), time.min)))
        for i in range(days)
    ]


def usage_summary(
    *, tenant: Tenant, filters: UsageFilters, now: datetime | None = None
) -> UsageSummary:
    now = now or timezone.now()
    since = period_start(filters.period, now)
    buckets = _empty_buckets(filters, since, now)
    first_day: date = timezone.localtime(since).date()
    rows: dict[tuple[str, str], UsageRow] = {}
    total = UsageRow()
    values = (
        invocations_filtered(tenant=tenant, filters=filters, now=now)
        .order_by()
        .values_list(
            "provider",
            "model",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "currency",
            "latency_ms",
            "created_at",
        )
    )
    for provider, model, status, prompt, completion, cost, currency, latency, created in values:
        numbers = {
            "status": status,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost": cost,
            "currency": currency,
            "latency_ms": latency,
        }
        total.add(**numbers)
        row = rows.get((provider, model))
        if row is None:
            row = rows[(provider, model)] = UsageRow(provider=provider, model=model)
        row.add(**numbers)
        if filters.hourly:
            index = int((created - since).total_seconds() // 3600)
        else:
            index = (timezone.localtime(created).date() - first_day).days
        if 0 <= index < len(buckets):
            bucket = buckets[index]
            bucket.calls += 1
            bucket.errors += 1 if status == JobStatus.FAILED else 0
            bucket.prompt_tokens += prompt
            bucket.completion_tokens += completion
    ordered = sorted(rows.values(), key=lambda r: (-r.calls, r.provider, r.model))
    return UsageSummary(
        filters=filters, since=since, until=now, buckets=buckets, rows=ordered, total=total
    )


def recent_invocations(
    *, tenant: Tenant, filters: UsageFilters, now: datetime | None = None, limit: int = RECENT_LIMIT
) -> list[Invocation]:
    recent = list(
        invocations_filtered(tenant=tenant, filters=filters, now=now)
        .select_related("api_key")
        .defer("request", "result")[:limit]
    )
    for invocation in recent:
        invocation.cost_text = amount_text(invocation.cost) if invocation.cost is not None else ""
    return recent


@dataclass(frozen=True, slots=True)
class FilterChoices:
    providers: list[str]
    models: list[str]
    api_keys: list[ApiKey]


def filter_choices(*, tenant: Tenant) -> FilterChoices:
    """The providers and models the workspace has ever called, and its API keys."""
    pairs = (
        Invocation.objects.filter(tenant=tenant)
        .order_by()
        .values_list("provider", "model")
        .distinct()
    )
    providers: set[str] = set()
    models: set[str] = set()
    for provider, model in pairs:
        providers.add(provider)
        models.add(model)
    return FilterChoices(
        providers=sorted(providers),
        models=sorted(models),
        api_keys=list(tenant_selectors.api_key_list(tenant=tenant)),
    )


# --- Grouped totals (GET /api/v1/usage) ---------------------------------------------------------

GROUPS = ("day", "provider", "model", "api_key", "source")
DEFAULT_GROUPS = ("day", "provider", "model")


@dataclass(slots=True)
class Group:
    key: dict[str, str | int | None]  # the values of the grouped-by columns
    totals: UsageRow


def usage_groups(
    *,
    tenant: Tenant,
    filters: UsageFilters,
    group_by: Sequence[str] = DEFAULT_GROUPS,
    now: datetime | None = None,
) -> tuple[list[Group], UsageRow]:
    """The period's calls totalled per distinct value of the `group_by` columns (day in the
    current time zone), in that order, and the total of everything."""
    columns = {
        "provider": "provider",
        "model": "model",
        "api_key": "api_key_id",
        "source": "source",
    }
    wanted = [g for g in group_by if g in GROUPS]
    values = (
        invocations_filtered(tenant=tenant, filters=filters, now=now)
        .order_by()
        .values_list(
            "status", "prompt_tokens", "completion_tokens", "cost", "currency", "latency_ms",
            "created_at", *(columns[g] for g in wanted if g != "day"),
        )
    )  # fmt: skip
    groups: dict[tuple[Any, ...], Group] = {}
    total = UsageRow()
    for status, prompt, completion, cost, currency, latency, created, *rest in values:
        numbers = {
            "status": status, "prompt_tokens": prompt, "completion_tokens": completion,
            "cost": cost, "currency": currency, "latency_ms": latency,
        }  # fmt: skip
        total.add(**numbers)
        found = iter(rest)
        key = {
            g: timezone.localtime(created).date().isoformat() if g == "day" else next(found)
            for g in wanted
        }
        signature = tuple(key.values())
        group = groups.get(signature)
        if group is None:
            group = groups[signature] = Group(key=key, totals=UsageRow())
        group.totals.add(**numbers)
    ordered = sorted(groups.values(), key=lambda g: tuple(str(v) for v in g.key.values()))
    return ordered, total
