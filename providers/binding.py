"""From stored settings to a ready adapter: map form values to adapter arguments (manifest
`runtime.credentials`), decrypt secrets, and keep the result in process memory.

Decrypting costs an RSA private-key operation per secret, so revealed values are cached per
process, keyed by the row and its `updated_at`: any change to the row makes a new key. The cache
never leaves the process (never Redis, never a Celery message).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Any

from django.conf import settings

from config import errors
from providers import credentials, outbound, selectors
from providers.models import (
    CheckedConfig,
    CheckStatus,
    CustomModel,
    ModelSetting,
    ProviderCredential,
)
from providers.runtime import http, registry
from providers.runtime.base import Adapter, Endpoint
from providers.runtime.http import RetryPolicy, Timeouts
from providers.schema import ProviderManifest
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
    return Endpoint(
        base_url=runtime.base_url or "",
        credentials=mapped,
        options=options,
        extra_headers=dict(runtime.extra_headers),
        timeouts=Timeouts(
            read=_number(values, "invoke_timeout", 60.0, 1, settings.UPSTREAM_TIMEOUT_MAX)
        ),
        retry=RetryPolicy(attempts=1 + int(_number(values, "max_retries", 2, 0, 10))),
    )


def adapter_for(manifest: ProviderManifest, row: CheckedConfig) -> Adapter:
    cls = registry.adapter_class(manifest.runtime.family)
    return cls(endpoint(manifest, revealed(row)), http.session(outbound.policy()))


@dataclass(frozen=True, slots=True)
class Target:
    """What to call for one model: the adapter, and the row whose credentials it uses."""

    manifest: ProviderManifest
    row: CheckedConfig
    model: str
    model_type: str

    def adapter(self) -> Adapter:
        return adapter_for(self.manifest, self.row)


def resolve(*, tenant: Tenant, provider: str, model_type: str, model: str) -> Target:
    """The credentials to call `model` with: its custom model row, else the provider's active
    credential. Raises Conflict when the model is disabled or its provider unconfigured."""
    manifest = selectors.manifest_get(provider)
    custom = CustomModel.objects.filter(
        tenant=tenant, provider=provider, model_type=model_type, model=model
    ).first()
    setting_off = ModelSetting.objects.filter(
        tenant=tenant, provider=provider, model_type=model_type, model=model, enabled=False
    ).exists()
    if setting_off:
        raise errors.Conflict(
            f"{provider}/{model} is disabled in this workspace.", code="model_disabled"
        )
    if custom is not None:
        return Target(manifest, custom, model, model_type)
    if manifest.predefined(model_type, model) is None:
        raise errors.NotFound(f"{provider} has no {model_type} model {model!r} in this workspace.")
    active = ProviderCredential.objects.filter(
        tenant=tenant, provider=provider, is_active=True
    ).first()
    if active is None:
        raise errors.Conflict(
            f"{manifest.label.en_US} is not configured in this workspace.", code="not_configured"
        )
    if active.status == CheckStatus.INVALID:
        raise errors.Conflict(
            f"{manifest.label.en_US}'s active credential failed its check: {active.last_error}",
            code="credential_invalid",
        )
    return Target(manifest, active, model, model_type)


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
