"""Reads for provider settings. Everything a page or list needs about a workspace is loaded by
`workspace_state` in a fixed number of queries, however many providers and models there are;
the catalog itself is in memory."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet

from config import errors
from providers import balancing
from providers import catalog as catalog_module
from providers.models import (
    AuditLogEntry,
    CheckedConfig,
    CheckStatus,
    CustomModel,
    DefaultModel,
    LoadBalancingEntry,
    ModelSetting,
    ProviderCredential,
    ProviderQuota,
)
from providers.schema import ProviderManifest
from tenants.models import Tenant

UNCONFIGURED = "unconfigured"


def catalog() -> catalog_module.Catalog:
    return catalog_module.load(tuple(str(d) for d in settings.PROVIDER_CATALOG_DIRS))


def manifest_get(provider: str) -> ProviderManifest:
    manifest = catalog().get(provider)
    if manifest is None:
        raise errors.NotFound(f"No provider {provider!r}.")
    return manifest


# --- Model ids --------------------------------------------------------------------------------
# Model names contain "/" and ":" (deepseek-ai/DeepSeek-V3, llama3:8b), so a model is addressed in
# URLs by an opaque id: url-safe base64 of "<model_type>:<model>".


def model_id(model_type: str, model: str) -> str:
    return base64.urlsafe_b64encode(f"{model_type}:{model}".encode()).decode().rstrip("=")


def parse_model_id(value: str) -> tuple[str, str]:
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise errors.NotFound("No such model.") from exc
    model_type, _, model = decoded.partition(":")
    if not model:
        raise errors.NotFound("No such model.")
    return model_type, model


# --- Workspace state --------------------------------------------------------------------------


@dataclass(slots=True)
class WorkspaceState:
    """A workspace's provider rows, grouped for lookups (loaded by `workspace_state`)."""

    credentials: dict[str, list[ProviderCredential]] = field(default_factory=dict)
    custom_models: dict[str, list[CustomModel]] = field(default_factory=dict)
    settings: dict[tuple[str, str, str], ModelSetting] = field(default_factory=dict)
    defaults: dict[str, DefaultModel] = field(default_factory=dict)
    quotas: dict[str, list[ProviderQuota]] = field(default_factory=dict)

    def active_credential(self, provider: str) -> ProviderCredential | None:
        return next((c for c in self.credentials.get(provider, []) if c.is_active), None)


def workspace_state(*, tenant: Tenant) -> WorkspaceState:
    state = WorkspaceState()
    credentials: defaultdict[str, list[ProviderCredential]] = defaultdict(list)
    for credential in ProviderCredential.objects.filter(tenant=tenant).order_by("name"):
        credentials[credential.provider].append(credential)
    custom: defaultdict[str, list[CustomModel]] = defaultdict(list)
    for custom_model in CustomModel.objects.filter(tenant=tenant).order_by("model_type", "model"):
        custom[custom_model.provider].append(custom_model)
    quotas: defaultdict[str, list[ProviderQuota]] = defaultdict(list)
    for quota in ProviderQuota.objects.filter(tenant=tenant):
        quotas[quota.provider].append(quota)
    state.credentials = dict(credentials)
    state.custom_models = dict(custom)
    state.quotas = dict(quotas)
    state.settings = {
        (s.provider, s.model_type, s.model): s for s in ModelSetting.objects.filter(tenant=tenant)
    }
    state.defaults = {d.model_type: d for d in DefaultModel.objects.filter(tenant=tenant)}
    return state


# --- Providers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckSummary:
    """How the checks of a provider's credentials and custom models stand (issue 13, item 3).

    What counts: every named credential of the provider (the active one and the others: each
    is checked on its own) and every custom model. Predefined models have no check of their own
    (they stand or fall with the active credential) and load-balancing entries are shown in
    their model's dialog, so neither is counted."""

    valid: int = 0
    invalid: int = 0
    checking: int = 0
    unchecked: int = 0

    @property
    def total(self) -> int:
        return self.valid + self.invalid + self.checking + self.unchecked


@dataclass(frozen=True, slots=True)
class CheckProblem:
    """A credential or custom model whose last check failed (or could not finish)."""

    kind: str  # credential | model
    name: str
    model_type: str  # "" for a credential
    status: str
    error: str
    active: bool = False  # the provider's active credential


@dataclass(frozen=True, slots=True)
class ProviderView:
    manifest: ProviderManifest
    configured: bool
    # unconfigured; validating while anything is being checked; otherwise valid (all valid),
    # invalid (all failed), partial (some failed, some not) or unchecked.
    status: str
    active_credential: ProviderCredential | None
    credential_count: int
    custom_model_count: int
    last_error: str  # the worst problem's error ("" for none)
    validated_at: object
    quotas: tuple[ProviderQuota, ...]
    checks: CheckSummary = CheckSummary()
    problems: tuple[CheckProblem, ...] = ()  # worst first: the active credential, then by name
    custom_model_names: tuple[str, ...] = ()

    @property
    def model_count(self) -> int:
        return len(self.manifest.models) + self.custom_model_count

    @property
    def checking(self) -> bool:
        return self.checks.checking > 0


PARTIAL = "partial"
# What a provider's and a model's status can be (the API's enums).
PROVIDER_STATUSES = (UNCONFIGURED, *CheckStatus.values, PARTIAL)
MODEL_STATUSES = (UNCONFIGURED, *CheckStatus.values)


def _summary_status(checks: CheckSummary) -> str:
    if checks.total == 0:
        return UNCONFIGURED
    if checks.checking:
        return CheckStatus.VALIDATING
    if checks.invalid == checks.total:
        return CheckStatus.INVALID
    if checks.invalid:
        return PARTIAL
    if checks.valid:
        return CheckStatus.VALID
    return CheckStatus.UNCHECKED


def _provider_view(manifest: ProviderManifest, state: WorkspaceState) -> ProviderView:
    active = state.active_credential(manifest.provider)
    named = state.credentials.get(manifest.provider, [])
    custom = state.custom_models.get(manifest.provider, [])
    rows: list[CheckedConfig] = [*named, *custom]
    counts = {status: 0 for status in CheckStatus.values}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    checks = CheckSummary(
        valid=counts[CheckStatus.VALID],
        invalid=counts[CheckStatus.INVALID],
        checking=counts[CheckStatus.VALIDATING],
        unchecked=counts[CheckStatus.UNCHECKED],
    )
    problems = [
        CheckProblem("credential", c.name, "", c.status, c.last_error, active=c.is_active)
        for c in named
        if c.status == CheckStatus.INVALID or (c.last_error and c.status != CheckStatus.VALID)
    ]
    problems += [
        CheckProblem("model", m.model, m.model_type, m.status, m.last_error)
        for m in custom
        if m.status == CheckStatus.INVALID or (m.last_error and m.status != CheckStatus.VALID)
    ]
    # Worst first: the active credential (every predefined model hangs on it), then what
    # failed before what could not finish; credentials before models.
    problems.sort(key=lambda p: (not p.active, p.status != CheckStatus.INVALID))
    return ProviderView(
        manifest=manifest,
        configured=active is not None or bool(custom),
        status=_summary_status(checks),
        active_credential=active,
        credential_count=len(named),
        custom_model_count=len(custom),
        last_error=problems[0].error if problems else "",
        validated_at=max((r.validated_at for r in rows if r.validated_at), default=None),
        quotas=tuple(state.quotas.get(manifest.provider, [])),
        checks=checks,
        problems=tuple(problems),
        custom_model_names=tuple(m.model for m in custom),
    )


def provider_list(*, tenant: Tenant, model_type: str | None = None) -> list[ProviderView]:
    """Every catalog provider (optionally offering `model_type`): configured ones first."""
    state = workspace_state(tenant=tenant)
    views = [
        _provider_view(manifest, state)
        for manifest in catalog()
        if model_type is None or model_type in manifest.supported_model_types
    ]
    return sorted(views, key=lambda v: not v.configured)  # stable: catalog order within groups


def provider_get(*, tenant: Tenant, provider: str) -> ProviderView:
    return _provider_view(manifest_get(provider), workspace_state(tenant=tenant))


# --- Models -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelView:
    provider: str
    model: str
    model_type: str
    label: str
    label_zh: str
    source: str  # predefined | custom
    features: tuple[str, ...]
    context_size: int | None
    mode: str | None
    pricing: object  # schema.Pricing | None
    enabled: bool
    load_balancing_enabled: bool
    status: str
    usable: bool
    custom_model: CustomModel | None = None
    deprecated: bool = False
    fallbacks: tuple[dict[str, str], ...] = ()  # {"provider", "model"}, tried in order
    alias: str = ""  # its name in the OpenAI-compatible gateway besides provider/model
    own_key: str | None = None  # the cool-down key of its own credentials (none: unconfigured)
    cooldown: balancing.Cooldown | None = None  # its own credentials resting (see with_cooldowns)
    # The workspace chose it as the default of its type (the models dialog warns before it is
    # switched off or deleted; switched on again, it is the default again: services).
    is_default: bool = False

    @property
    def id(self) -> str:
        return model_id(self.model_type, self.model)

    @property
    def price_input(self) -> Decimal | None:
        return self.pricing.input if self.pricing else None


def _custom_features(custom: CustomModel) -> tuple[str, ...]:
    """Features a custom model's form (or its check) says it has."""
    config, details = custom.config, custom.details
    features: list[str] = []
    if config.get("vision_support") in {"support", "true", True} or "vision" in details.get(
        "abilities", []
    ):
        features.append("vision")
    calling = config.get("function_calling_type") or config.get("function_call_support")
    if calling in {"tool_call", "function_call", "true", True} or "tools" in details.get(
        "abilities", []
    ):
        features.append("tool-call")
    if config.get("structured_output_support") in {"support", "true", True}:
        features.append("structured-output")
    return tuple(features)


def _context_size(custom: CustomModel) -> int | None:
    for value in (
        custom.details.get("context_length"),
        custom.config.get("context_size"),
        custom.config.get("context_length"),
    ):
        if value not in (None, ""):
            try:
                return int(value)
            except (TypeError, ValueError):
                continue
    return None


def _is_default(state: WorkspaceState, provider: str, model_type: str, model: str) -> bool:
    chosen = state.defaults.get(model_type)
    return chosen is not None and (chosen.provider, chosen.model) == (provider, model)


def iter_models(manifest: ProviderManifest, state: WorkspaceState) -> Iterator[ModelView]:
    active = state.active_credential(manifest.provider)
    credential_ok = active is not None and active.status != CheckStatus.INVALID
    for model in manifest.models:
        setting = state.settings.get((manifest.provider, model.model_type, model.model))
        enabled = setting.enabled if setting else True
        yield ModelView(
            provider=manifest.provider,
            model=model.model,
            model_type=model.model_type,
            label=model.label.en_US,
            label_zh=model.label.zh_Hans,
            source="predefined",
            features=model.features,
            context_size=model.context_size,
            mode=model.mode,
            pricing=model.pricing,
            enabled=enabled,
            load_balancing_enabled=bool(setting and setting.load_balancing_enabled),
            status=active.status if active else UNCONFIGURED,
            usable=enabled and credential_ok,
            deprecated=model.deprecated,
            fallbacks=tuple(setting.fallbacks) if setting else (),
            alias=setting.alias if setting else "",
            own_key=balancing.own_key(
                credential_id=active.pk, model_type=model.model_type, model=model.model
            )
            if active
            else None,
            is_default=_is_default(state, manifest.provider, model.model_type, model.model),
        )
    for custom in state.custom_models.get(manifest.provider, []):
        setting = state.settings.get((manifest.provider, custom.model_type, custom.model))
        enabled = setting.enabled if setting else True
        yield ModelView(
            provider=manifest.provider,
            model=custom.model,
            model_type=custom.model_type,
            label=custom.config.get("display_name") or custom.model,
            label_zh=custom.config.get("display_name") or custom.model,
            source="custom",
            features=_custom_features(custom),
            context_size=_context_size(custom),
            mode=custom.config.get("mode") or custom.config.get("completion_type"),
            pricing=None,
            enabled=enabled,
            load_balancing_enabled=bool(setting and setting.load_balancing_enabled),
            status=custom.status,
            usable=enabled and custom.status != CheckStatus.INVALID,
            custom_model=custom,
            fallbacks=tuple(setting.fallbacks) if setting else (),
            alias=setting.alias if setting else "",
            own_key=balancing.own_key(custom_model_id=custom.pk),
            is_default=_is_default(state, manifest.provider, custom.model_type, custom.model),
        )


def with_cooldowns(tenant: Tenant, views: list[ModelView]) -> list[ModelView]:
    """The views with `cooldown` set where a model's own credentials are resting (one Redis
    round trip)."""
    cooling = balancing.cooldowns(tenant.pk, [v.own_key for v in views if v.own_key])
    return [replace(v, cooldown=cooling[v.own_key]) if v.own_key in cooling else v for v in views]


def provider_models(*, tenant: Tenant, provider: str) -> list[ModelView]:
    """A provider's models, with their cool-downs."""
    views = list(iter_models(manifest_get(provider), workspace_state(tenant=tenant)))
    return with_cooldowns(tenant, views)


def model_get(*, tenant: Tenant, provider: str, model_key: str) -> ModelView:
    model_type, model = parse_model_id(model_key)
    for view in provider_models(tenant=tenant, provider=provider):
        if (view.model_type, view.model) == (model_type, model):
            return view
    raise errors.NotFound("No such model for this provider.")


def available_models(
    *,
    tenant: Tenant,
    model_type: str | None = None,
    feature: str | None = None,
    state: WorkspaceState | None = None,
) -> list[ModelView]:
    """Every model this workspace can use now: enabled, its provider configured and not invalid."""
    state = state or workspace_state(tenant=tenant)
    return [
        view
        for manifest in catalog()
        if model_type is None or model_type in manifest.supported_model_types
        for view in iter_models(manifest, state)
        if view.usable
        and (model_type is None or view.model_type == model_type)
        and (feature is None or feature in view.features)
    ]


# --- Default models ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DefaultView:
    model_type: str
    model: ModelView | None
    source: str  # configured | fallback | none


def default_models(*, tenant: Tenant) -> list[DefaultView]:
    """The default model of each type. A configured default that is still usable wins; otherwise
    the first usable model of that type in catalog order (providers as listed, predefined models
    in manifest order, then custom models by name) stands in; otherwise none."""
    state = workspace_state(tenant=tenant)
    usable = available_models(tenant=tenant, state=state)
    result = []
    for model_type in ("llm", "text-embedding", "rerank", "speech2text", "tts"):
        of_type = [m for m in usable if m.model_type == model_type]
        chosen = state.defaults.get(model_type)
        configured = next(
            (
                m
                for m in of_type
                if chosen and (m.provider, m.model) == (chosen.provider, chosen.model)
            ),
            None,
        )
        if configured is not None:
            result.append(DefaultView(model_type, configured, "configured"))
        elif of_type:
            result.append(DefaultView(model_type, of_type[0], "fallback"))
        else:
            result.append(DefaultView(model_type, None, "none"))
    return result


# --- Single rows ------------------------------------------------------------------------------


def credential_list(*, tenant: Tenant, provider: str) -> list[ProviderCredential]:
    manifest_get(provider)
    return list(ProviderCredential.objects.filter(tenant=tenant, provider=provider))


def credential_get(*, tenant: Tenant, provider: str, credential_id: int) -> ProviderCredential:
    credential = ProviderCredential.objects.filter(
        tenant=tenant, provider=provider, pk=credential_id
    ).first()
    if credential is None:
        raise errors.NotFound("No such credential for this provider.")
    return credential


def lb_entry_list(*, tenant: Tenant, view: ModelView) -> list[LoadBalancingEntry]:
    """The model's entries, each with `cooldown` (a `balancing.Cooldown`, or None) from Redis."""
    entries = list(
        LoadBalancingEntry.objects.filter(
            tenant=tenant, provider=view.provider, model_type=view.model_type, model=view.model
        ).select_related("credential")
    )
    cooling = balancing.cooldowns(tenant.pk, [balancing.lb_entry_key(e.pk) for e in entries])
    for entry in entries:
        entry.cooldown = cooling.get(balancing.lb_entry_key(entry.pk))
    return entries


def lb_entry_get(*, tenant: Tenant, view: ModelView, entry_id: int) -> LoadBalancingEntry:
    for entry in lb_entry_list(tenant=tenant, view=view):
        if entry.pk == entry_id:
            return entry
    raise errors.NotFound("No such load-balancing entry for this model.")


def audit_log(*, tenant: Tenant, provider: str | None = None) -> QuerySet[AuditLogEntry]:
    entries = AuditLogEntry.objects.filter(tenant=tenant).select_related("actor", "api_key")
    return entries.filter(provider=provider) if provider else entries
