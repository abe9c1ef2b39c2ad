"""Model discovery: ask a server what it serves, so a user imports models instead of retyping UIDs.

Discovery runs in the request, with the form the user is filling in: its values are not saved
yet, and a key must never travel in a Celery message. The listing call is bounded by short
timeouts and a single try. Each imported model is a custom model, validated like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from config import errors
from providers import credentials, routing, selectors, services
from providers.models import CustomModel
from providers.runtime.http import RetryPolicy, Timeouts
from tenants.models import Tenant
from tenants.principals import Principal

# Form fields that name the backend's model, filled from each discovered model on import.
MODEL_NAME_FIELDS = ("model_uid", "endpoint_model_name")


@dataclass(frozen=True, slots=True)
class Proposal:
    model: str
    model_type: str
    details: dict[str, Any]
    added: bool


def discover(*, tenant: Tenant, provider: str, values: dict[str, Any]) -> list[Proposal]:
    manifest = selectors.manifest_get(provider)
    form = services.model_form(manifest)
    # The form may require a model name field: discovery is what will fill it in.
    names = {f.variable for f in form} & set(MODEL_NAME_FIELDS)
    cleaned = credentials.clean_form(form, {**values, **dict.fromkeys(names, "-")})
    endpoint = replace(
        routing.endpoint(manifest, {**cleaned.plain, **cleaned.secrets}),
        timeouts=Timeouts(connect=3.0, read=10.0),
        retry=RetryPolicy(attempts=1),
    )
    adapter = routing.adapter_for_endpoint(manifest, endpoint)
    found = adapter.list_models()
    existing = set(
        CustomModel.objects.filter(tenant=tenant, provider=provider).values_list(
            "model_type", "model"
        )
    )
    return [
        Proposal(m.model, m.model_type, dict(m.details), (m.model_type, m.model) in existing)
        for m in found
        if m.model_type in manifest.supported_model_types
    ]


def import_models(
    *,
    tenant: Tenant,
    provider: str,
    values: dict[str, Any],
    models: list[tuple[str, str]],
    actor: Principal | None,
) -> tuple[list[CustomModel], dict[str, str]]:
    """Add each (model_type, model) as a custom model with `values`; returns what was added and,
    by model, why the others were not."""
    form_fields = {f.variable for f in services.model_form(selectors.manifest_get(provider))}
    added: list[CustomModel] = []
    refused: dict[str, str] = {}
    for model_type, model in models:
        per_model = dict(values)
        for name in MODEL_NAME_FIELDS:
            if name in form_fields:
                per_model[name] = model
        try:
            added.append(
                services.custom_model_create(
                    tenant=tenant,
                    provider=provider,
                    model=model,
                    model_type=model_type,
                    values=per_model,
                    actor=actor,
                )
            )
        except errors.ServiceError as exc:
            refused[model] = exc.message if not getattr(exc, "fields", None) else str(exc.fields)
    return added, refused
