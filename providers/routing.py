"""The one call path: which backend serves a call. Validation jobs, invocation jobs and the
gateway all come here; nothing else resolves credentials or builds adapters.

    route = routing.route(tenant_id=..., provider=..., model_type=..., model=...)
    served = routing.call(route, lambda adapter, model: adapter.embed(model, texts))

A `Route` holds, for one model of one workspace, the entries that may serve it (its own
credentials, and with load balancing on, its enabled load-balancing entries), each with a ready
adapter, plus its fallback chain, price and whether a quota limits it. Routes are cached in process
memory under the workspace's settings version (`balancing.settings_version`), which every settings
write replaces: a warm call reads one Redis key and makes no database query, no RSA operation and
no manifest parsing before the backend is called.

`call` tries the entries in weighted round-robin order (position shared through Redis), skipping
those cooling down. An entry that answers 429, 401/403, 5xx or times out is cooled down (shared,
with its reason and end) and the next entry is tried in the same call; when every entry fails so,
the model's fallbacks are tried in order. Decrypted values are cached per row and `updated_at`,
in process memory only (never Redis, never a Celery message).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from threading import Lock
from typing import Any, Generic, TypeVar

from django.conf import settings

from config import errors
from config.db import release_while_waiting
from providers import balancing, credentials, outbound, quotas, selectors
from providers.models import (
    CheckedConfig,
    CheckStatus,
    CustomModel,
    LoadBalancingEntry,
    ModelSetting,
    ProviderCredential,
    ProviderQuota,
)
from providers.runtime import http, registry
from providers.runtime.base import Adapter, Endpoint
from providers.runtime.http import RetryPolicy, Timeouts
from providers.schema import ProviderManifest
from tenants.crypto import CryptoError
from tenants.models import Tenant

_CACHE_SIZE = 1024
_revealed: OrderedDict[tuple[str, int, str], dict[str, Any]] = OrderedDict()
_lock = Lock()


def revealed(row: CheckedConfig) -> dict[str, Any]:
    key = (row._meta.label_lower, row.pk, row.updated_at.isoformat())
    with _lock:
        found = _revealed.get(key)
        if found is not None:
            _revealed.move_to_end(key)
            return found
    values = credentials.reveal(row)
    with _lock:
        _revealed[key] = values
        while len(_revealed) > _CACHE_SIZE:
            _revealed.popitem(last=False)
    return values


def _number(values: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    """A stored form number, kept within bounds: rows saved before a form checked its ranges
    (an invoke timeout of 0, say) must not break every call."""
    try:
        value = float(values.get(name) or default)
    except (TypeError, ValueError):
        return default
    return min(max(value, low), high)


def endpoint(manifest: ProviderManifest, values: dict[str, Any]) -> Endpoint:
    runtime = manifest.runtime
    mapped = {
        argument: values[variable]
        for argument, variable in runtime.credentials.items()
        if values.get(variable) not in (None, "")
    }
    # Other form values (context size, batch size, region switches...) reach the adapter as options.
    options = {**runtime.options}
    options.update(
        {k: v for k, v in values.items() if k not in runtime.credentials.values() and v != ""}
    )
    secret = manifest.secret_variables
    return Endpoint(
        base_url=runtime.base_url or "",
        credentials=mapped,
        secret_names=frozenset(
            {argument for argument, variable in runtime.credentials.items() if variable in secret}
            | {name for name in options if name in secret}
        ),
        options=options,
        extra_headers=dict(runtime.extra_headers),
        timeouts=Timeouts(
            read=_number(values, "invoke_timeout", 60.0, 1, settings.UPSTREAM_TIMEOUT_MAX),
            total=float(settings.UPSTREAM_CALL_DEADLINE),
        ),
        retry=RetryPolicy(attempts=1 + int(_number(values, "max_retries", 2, 0, 10))),
    )


def adapter_for(
    manifest: ProviderManifest, row: CheckedConfig, *, retry: RetryPolicy | None = None
) -> Adapter:
    """An adapter speaking with `row`'s credentials (a validation checks one row, so it comes
    here directly; calls come through `route`)."""
    try:
        values = revealed(row)
    except CryptoError as exc:  # a restore without its master key, a damaged row
        raise errors.Conflict(
            f"The stored credentials of {manifest.label.en_US} cannot be decrypted ({exc}); "
            "enter them again.",
            code="credential_unreadable",
        ) from exc
    found = endpoint(manifest, values)
    return adapter_for_endpoint(manifest, replace(found, retry=retry) if retry else found)


def adapter_for_endpoint(manifest: ProviderManifest, where: Endpoint) -> Adapter:
    """An adapter for values not stored (discovery runs with the form being filled in)."""
    cls = registry.adapter_class(manifest.runtime.family)
    return cls(where, http.pool(outbound.policy()))


def validation_model(manifest: ProviderManifest, values: dict[str, Any]) -> tuple[str, str]:
    """(model_type, model) a provider-level credential is checked with, as Dify does: the form's
    `validate_model`, else the manifest's, else its first LLM, else its first model."""
    chosen = values.get("validate_model") or manifest.runtime.options.get("validate_model")
    if chosen:
        predefined = next((m for m in manifest.models if m.model == chosen), None)
        return (predefined.model_type if predefined else "llm"), chosen
    first = next((m for m in manifest.models if m.model_type == "llm"), None) or next(
        iter(manifest.models), None
    )
    if first is None:
        raise errors.InvalidInput(f"{manifest.label.en_US} has no model to validate with.")
    return first.model_type, first.model


# --- Routes -----------------------------------------------------------------------------------

OWN = "own credentials"
# Without a settings version (Redis away), a cached route is trusted this long.
UNVERSIONED_MAX_AGE = 5.0
_ROUTES_SIZE = 4096
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry:
    """One way to reach the model: its own credentials, or a load-balancing entry."""

    key: str  # the cool-down key: "credential:12", "custom:5", "lb:7"
    label: str  # what pages say served a call
    adapter: Adapter
    weight: int = 1
    credential_id: int | None = None  # the provider credential it uses, if any
    custom_model_id: int | None = None
    lb_entry_id: int | None = None
    # The same, trying once (None: `adapter` already does): when a fallback is there to try
    # next, a failing backend is not tried again and again first.
    once: Adapter | None = None

    def adapter_for_call(self, alternatives: bool) -> Adapter:
        return self.once if alternatives and self.once is not None else self.adapter


@dataclass(frozen=True, slots=True)
class Route:
    tenant_id: int
    provider: str
    model_type: str
    model: str
    entries: tuple[Entry, ...] = ()
    balanced: bool = False  # load balancing on, with more than one entry
    fallbacks: tuple[tuple[str, str], ...] = ()  # (provider, model), tried in order
    pricing: Any = None  # the catalog's Pricing, or None
    limited_quota: bool = False  # a provider quota with a limit applies
    problem: errors.ServiceError | None = None  # why it cannot be called (raised by `route`)
    version: str | None = None
    built_at: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.model_type}:{self.model}"


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    """What a call returned, and which route (after fallbacks) and entry answered."""

    value: T
    route: Route
    entry: Entry


_routes: OrderedDict[tuple[int, str, str, str], Route] = OrderedDict()


def forget_routes() -> None:
    """Drop this process's cached routes (tests; the settings version makes it unnecessary)."""
    with _lock:
        _routes.clear()
        _names.clear()


def route(*, tenant_id: int, provider: str, model_type: str, model: str) -> Route:
    """The route of a model; raises NotFound / Conflict when it cannot be called."""
    version = balancing.settings_version(tenant_id)
    key = (tenant_id, provider, model_type, model)
    with _lock:
        cached = _routes.get(key)
    if cached is None or not _fresh(cached.version, cached.built_at, version):
        cached = _build(tenant_id, provider, model_type, model, version)
        with _lock:
            _routes[key] = cached
            _routes.move_to_end(key)
            while len(_routes) > _ROUTES_SIZE:
                _routes.popitem(last=False)
    if cached.problem is not None:
        raise cached.problem
    return cached


def _fresh(cached_version: str | None, built_at: float, version: str | None) -> bool:
    """A cached thing of a workspace is current under its settings version; without one (Redis
    away), for UNVERSIONED_MAX_AGE."""
    if version is not None:
        return cached_version == version
    return time.monotonic() - built_at < UNVERSIONED_MAX_AGE


@dataclass(frozen=True, slots=True)
class Names:
    """What else a workspace calls its models: aliases, and the default model of each type."""

    aliases: dict[str, tuple[str, str, str]]  # alias -> (provider, model_type, model)
    defaults: dict[str, tuple[str, str]]  # model_type -> (provider, model)
    version: str | None = None
    built_at: float = 0.0


_names: dict[int, Names] = {}


def names(tenant: Tenant) -> Names:
    """The workspace's model names, cached like routes under its settings version (a call by
    alias or `default` makes no query on a warm process either)."""
    version = balancing.settings_version(tenant.pk)
    with _lock:
        cached = _names.get(tenant.pk)
    if cached is None or not _fresh(cached.version, cached.built_at, version):
        rows = (
            ModelSetting.objects.filter(tenant_id=tenant.pk)
            .exclude(alias="")
            .values_list("alias", "provider", "model_type", "model")
        )
        cached = Names(
            aliases={a: (p, t, m) for a, p, t, m in rows},
            defaults={
                d.model_type: (d.model.provider, d.model.model)
                for d in selectors.default_models(tenant=tenant)
                if d.model is not None
            },
            version=version,
            built_at=time.monotonic(),
        )
        with _lock:
            if len(_names) >= _ROUTES_SIZE:
                _names.clear()
            _names[tenant.pk] = cached
    return cached


def _build(
    tenant_id: int, provider: str, model_type: str, model: str, version: str | None
) -> Route:
    blank = Route(
        tenant_id, provider, model_type, model, version=version, built_at=time.monotonic()
    )
    try:
        return replace(blank, **_resolve(tenant_id, provider, model_type, model))
    except (errors.NotFound, errors.Conflict) as problem:
        return replace(blank, problem=problem)


def _resolve(tenant_id: int, provider: str, model_type: str, model: str) -> dict[str, Any]:
    manifest = selectors.manifest_get(provider)
    scope = {"tenant_id": tenant_id, "provider": provider, "model_type": model_type, "model": model}
    setting = ModelSetting.objects.filter(**scope).first()
    if setting is not None and not setting.enabled:
        raise errors.Conflict(
            f"{provider}/{model} is disabled in this workspace.", code="model_disabled"
        )
    predefined = manifest.predefined(model_type, model)
    custom = CustomModel.objects.filter(**scope).first()
    own: list[tuple[CheckedConfig, dict[str, Any]]] = []
    invalid: ProviderCredential | None = None
    if custom is not None:
        own.append(
            (
                custom,
                {"key": balancing.own_key(custom_model_id=custom.pk), "custom_model_id": custom.pk},
            )
        )
    elif predefined is None:
        raise errors.NotFound(f"{provider} has no {model_type} model {model!r} in this workspace.")
    else:
        active = ProviderCredential.objects.filter(
            tenant_id=tenant_id, provider=provider, is_active=True
        ).first()
        if active is None:
            raise errors.Conflict(
                f"{manifest.label.en_US} is not configured in this workspace.",
                code="not_configured",
            )
        if active.status == CheckStatus.INVALID:
            invalid = active
        else:
            key = balancing.own_key(credential_id=active.pk, model_type=model_type, model=model)
            own.append((active, {"key": key, "credential_id": active.pk}))

    extra: list[tuple[CheckedConfig, dict[str, Any]]] = []
    if setting is not None and setting.load_balancing_enabled:
        for lb in LoadBalancingEntry.objects.filter(**scope, enabled=True).select_related(
            "credential"
        ):
            row = lb.credential or lb
            if lb.status == CheckStatus.INVALID or row.status == CheckStatus.INVALID:
                continue
            extra.append(
                (
                    row,
                    {
                        "key": balancing.lb_entry_key(lb.pk),
                        "label": lb.name,
                        "weight": lb.weight,
                        "lb_entry_id": lb.pk,
                        "credential_id": lb.credential_id,
                    },
                )
            )
    rows = own + extra
    if invalid is not None and not rows:
        raise errors.Conflict(
            f"{manifest.label.en_US}'s active credential failed its check: {invalid.last_error}",
            code="credential_invalid",
        )
    balanced = len(rows) > 1
    # Balanced entries are tried once each: the next entry is the retry. A lone entry keeps its
    # retries, and a twin that tries once for when fallbacks come next (or it is a fallback).
    once = RetryPolicy(attempts=1)
    entries = []
    for row, fields in rows:
        adapter = adapter_for(manifest, row, retry=once if balanced else None)
        twin = (
            None
            if balanced
            else adapter_for_endpoint(manifest, replace(adapter.endpoint, retry=once))
        )
        entries.append(Entry(adapter=adapter, once=twin, **{"label": OWN, **fields}))
    return {
        "entries": tuple(entries),
        "balanced": balanced,
        "fallbacks": tuple(
            (f["provider"], f["model"]) for f in (setting.fallbacks if setting else ())
        ),
        "pricing": predefined.pricing if predefined else None,
        "limited_quota": ProviderQuota.objects.filter(
            tenant_id=tenant_id, provider=provider, limit__gte=0
        ).exists(),
    }


# --- Calls ------------------------------------------------------------------------------------

# What moves a call on to the next entry, and how long the failing entry then rests.
_MOVES_ON: tuple[type[errors.UpstreamError], ...] = (
    errors.UpstreamRateLimited,
    errors.UpstreamQuota,
    errors.UpstreamAuth,
    errors.UpstreamUnavailable,
    errors.UpstreamTimeout,
)


def _cool_seconds(failure: errors.UpstreamError) -> float:
    """A rate limit rests as long as the backend's Retry-After says, else the setting's time."""
    if isinstance(failure, errors.UpstreamRateLimited | errors.UpstreamQuota):
        asked = getattr(failure, "retry_after", None)
        if asked:
            return min(max(float(asked), 1.0), float(settings.UPSTREAM_TIMEOUT_MAX))
        return float(settings.LB_COOLDOWN_RATE_LIMIT)
    return float(settings.LB_COOLDOWN_OTHER)


def _order(route: Route, alternatives: bool) -> list[Entry]:
    """The entries to try: in weighted round-robin order from the shared position when
    balanced, and, when something else can be tried (another entry, a fallback), without those
    cooling down; raises AllEntriesCooling when none is left. A lone entry with nothing after it
    is always tried: there is nothing to rest it for."""
    if not alternatives:
        return list(route.entries)
    ordered = list(route.entries)
    if route.balanced:
        sequence = balancing.smooth_sequence([e.weight for e in route.entries])
        first = sequence[balancing.next_slot(route.tenant_id, route.key) % len(sequence)]
        ordered = ordered[first:] + ordered[:first]
    cooling = balancing.cooldowns(route.tenant_id, [e.key for e in ordered])
    ready = [e for e in ordered if e.key not in cooling]
    if not ready:
        wait = min(c.seconds_left for c in cooling.values())
        raise errors.AllEntriesCooling(
            f"Every entry of {route.provider}/{route.model} is cooling down "
            f"({', '.join(sorted({c.reason for c in cooling.values()}))}); "
            f"the first is ready in {wait:.0f} s.",
            retry_after=wait,
        )
    return ready


def _call_entries(
    route: Route, fn: Callable[[Adapter, str], T], usage: Usage[T], alternatives: bool
) -> Served[T]:
    """Try the route's entries; with a limited quota, hold the call's tokens meanwhile."""
    if not route.limited_quota:
        return _try_entries(route, fn, alternatives)
    hold = quotas.reserve(
        tenant_id=route.tenant_id, provider=route.provider, tokens=usage.estimate()
    )
    try:
        served = _try_entries(route, fn, alternatives)
    except BaseException:
        quotas.settle(hold, 0)
        raise
    if usage.streamed:
        return replace(served, value=_settled_at_end(served.value, hold, usage.tokens_of))
    quotas.settle(hold, usage.tokens_of(served.value))
    return served


def _settled_at_end(
    chunks: Iterator[Any], hold: quotas.Hold, tokens_of: Callable[[Any], int]
) -> Iterator[Any]:
    """The stream, settling the quota's hold to its chunks' tokens once it ends (or is closed:
    a client that hangs up is charged what it was sent)."""
    used = 0
    try:
        for chunk in chunks:
            used += tokens_of(chunk)
            yield chunk
    finally:
        close(chunks)
        quotas.settle(hold, used)


def _try_entries(route: Route, fn: Callable[[Adapter, str], T], alternatives: bool) -> Served[T]:
    alternatives = alternatives or route.balanced
    *others, last = _order(route, alternatives)
    release_while_waiting()  # no database connection held while a backend thinks
    for entry in others:
        try:
            return Served(fn(entry.adapter_for_call(alternatives), route.model), route, entry)
        except _MOVES_ON as exc:
            _cool(route, entry, exc)
    try:
        return Served(fn(last.adapter_for_call(alternatives), route.model), route, last)
    except _MOVES_ON as exc:
        if alternatives:
            _cool(route, last, exc)
        raise


def _cool(route: Route, entry: Entry, failure: errors.UpstreamError) -> None:
    """Rest a failing entry (only when something else could be tried instead)."""
    balancing.cool_down(
        route.tenant_id, entry.key, reason=failure.code, seconds=_cool_seconds(failure)
    )


@dataclass(frozen=True, slots=True)
class Usage(Generic[T]):
    """How many tokens a call may use (reserved on a limited quota before it; asked only then),
    and how many a result says it used (what the quota is settled to). `streamed`: the result is
    an iterator of chunks, `tokens_of` counts one chunk, and the quota settles when it ends."""

    estimate: Callable[[], int] = lambda: 0
    tokens_of: Callable[[T], int] = lambda value: 0
    streamed: bool = False


def primed(chunks: Iterator[T]) -> Iterator[T]:
    """A stream whose first chunk is already fetched, so that a stream that cannot start raises
    here, where `call` can still move on to another entry or a fallback; closing it closes the
    stream underneath (and so the backend's response)."""
    try:
        first = next(chunks)
    except StopIteration:
        return iter(())

    def rest() -> Iterator[T]:
        try:
            yield first
            yield from chunks
        finally:
            close(chunks)

    return rest()


def close(chunks: Iterator[Any]) -> None:
    """Close a stream (a generator: its `finally` closes the backend's response) if it can be."""
    closer = getattr(chunks, "close", None)
    if closer is not None:
        closer()


def call(
    primary: Route, fn: Callable[[Adapter, str], T], usage: Usage[T] | None = None
) -> Served[T]:
    """Call `fn(adapter, model)` through the route's entries, then its fallbacks. An error that
    another entry would not fix (a bad request, an unknown model) is raised at once."""
    usage = usage or Usage()
    try:
        return _call_entries(primary, fn, usage, alternatives=bool(primary.fallbacks))
    except _MOVES_ON as exc:
        failure: errors.UpstreamError = exc
    for provider, model in primary.fallbacks:
        try:
            fallback = route(
                tenant_id=primary.tenant_id,
                provider=provider,
                model_type=primary.model_type,
                model=model,
            )
            # Tried once, rested when it fails: the next fallback is the retry.
            return _call_entries(fallback, fn, usage, alternatives=True)
        except (errors.NotFound, errors.Conflict):
            continue  # a fallback that cannot be called now is passed over
        except _MOVES_ON as exc:
            failure = exc
    raise failure


def cost(route: Route, fields: dict[str, Any]) -> tuple[Decimal | None, str]:
    """What a call cost at the catalog's price of the model that answered."""
    pricing = route.pricing
    if pricing is None:
        return None, ""
    million = Decimal(1_000_000)
    if pricing.unit == "1M-tokens":
        amount = Decimal(fields.get("prompt_tokens") or 0) * pricing.input / million
        amount += Decimal(fields.get("completion_tokens") or 0) * (pricing.output or 0) / million
    elif pricing.unit == "1M-characters":
        amount = Decimal(fields.get("characters") or 0) * pricing.input / million
    elif fields.get("audio_seconds") is not None:
        amount = Decimal(str(fields["audio_seconds"])) / 60 * pricing.input
    else:
        return None, ""
    return amount.quantize(Decimal("0.00000001")), pricing.currency
