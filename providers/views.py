"""Settings > Model Providers in the browser: a page and the htmx fragments it swaps in.

Views are thin: they read with selectors, write with the same services the API uses, and render
templates. Field errors come back inside the re-rendered form (status 200, so htmx swaps it).
Secrets are never sent to the page: secret inputs carry the obfuscated hint, which, sent back
unchanged, keeps the stored secret.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from config import errors
from providers import credentials, selectors, services, validation
from providers.models import CheckStatus, ProviderCredential
from providers.schema import MODEL_TYPES, FormField, ProviderManifest
from tenants.web import id_param, require_change, workspace_page

DEFAULT_TYPES = [t for t in MODEL_TYPES if t != "moderation"]
POLL_STATUSES = {CheckStatus.VALIDATING}


def _values(request: HttpRequest, fields: tuple[FormField, ...]) -> dict[str, Any]:
    """The declared fields the form sent (hidden fields are disabled, so absent)."""
    values: dict[str, Any] = {}
    for form_field in fields:
        sent = request.POST.getlist(form_field.variable)
        if sent:
            values[form_field.variable] = sent[-1]
    return values


def _triggers(response: HttpResponse, *events: str) -> HttpResponse:
    response["HX-Trigger"] = ", ".join(events)
    return response


def _card(request: HttpRequest, provider: str) -> HttpResponse:
    view = selectors.provider_get(tenant=request.tenant, provider=provider)
    response = render(
        request, "providers/_card.html", {"p": view, "poll": view.status in POLL_STATUSES}
    )
    return response


@workspace_page
def providers_page(request: HttpRequest) -> HttpResponse:
    views = selectors.provider_list(tenant=request.tenant)
    return render(
        request,
        "settings/providers.html",
        {
            "configured": [v for v in views if v.configured],
            "unconfigured": [v for v in views if not v.configured],
            "model_types": DEFAULT_TYPES,
            **_defaults_context(request),
        },
    )


def _defaults_context(request: HttpRequest) -> dict[str, Any]:
    available = selectors.available_models(tenant=request.tenant)
    catalog = selectors.catalog()
    rows = []
    for default in selectors.default_models(tenant=request.tenant):
        rows.append(
            {
                "model_type": default.model_type,
                "current": default.model,
                "source": default.source,
                "choices": [
                    (m, catalog.get(m.provider))
                    for m in available
                    if m.model_type == default.model_type
                ],
            }
        )
    return {"defaults": rows}


@require_http_methods(["GET", "POST"])
@workspace_page
def defaults_section(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        require_change(request)
        model_type = request.POST.get("model_type", "")
        provider, _, model = request.POST.get("choice", "").partition("/")
        try:
            if provider and model:
                services.default_model_set(
                    tenant=request.tenant,
                    model_type=model_type,
                    provider=provider,
                    model=model,
                    actor=request.principal,
                )
            else:
                services.default_model_clear(
                    tenant=request.tenant, model_type=model_type, actor=request.principal
                )
        except errors.ServiceError as exc:
            error = exc.message
    return render(
        request, "providers/_defaults.html", {**_defaults_context(request), "error": error}
    )


@workspace_page
def provider_card(request: HttpRequest, provider: str) -> HttpResponse:
    response = _card(request, provider)
    view = selectors.provider_get(tenant=request.tenant, provider=provider)
    if view.status not in POLL_STATUSES:
        _triggers(response, "defaults-changed")  # a finished check may change what is usable
    return response


def _setup_context(
    request: HttpRequest, manifest: ProviderManifest, *, editing: ProviderCredential | None = None
) -> dict[str, Any]:
    return {
        "manifest": manifest,
        "credentials": selectors.credential_list(tenant=request.tenant, provider=manifest.provider),
        "editing": editing,
        "values": credentials.shown(editing) if editing else {},
        "name": editing.name if editing else "",
        "field_errors": {},
    }


@require_http_methods(["GET", "POST"])
@workspace_page
def provider_setup(request: HttpRequest, provider: str) -> HttpResponse:
    """The set-up dialog: named credentials (activate, edit) and the form to add or edit one."""
    manifest = selectors.manifest_get(provider)
    editing = None
    credential_id = id_param(request, "credential")
    if credential_id is not None:
        editing = selectors.credential_get(
            tenant=request.tenant, provider=provider, credential_id=credential_id
        )
    if request.method == "GET":
        return render(
            request, "providers/_setup.html", _setup_context(request, manifest, editing=editing)
        )
    require_change(request)
    values = _values(request, manifest.provider_credential_schema)
    name = request.POST.get("name", "").strip()
    try:
        if editing is None:
            services.credential_create(
                tenant=request.tenant,
                provider=provider,
                name=name,
                values=values,
                actor=request.principal,
            )
        else:
            services.credential_update(
                credential=editing,
                values=values,
                name=name,
                partial=False,
                actor=request.principal,
            )
    except (errors.InvalidInput, errors.Conflict) as exc:
        context = _setup_context(request, manifest, editing=editing)
        fields = getattr(exc, "fields", {}) or {}
        context.update(
            values=values,
            name=name,
            field_errors=fields,
            form_error="" if fields else exc.message,
        )
        return render(request, "providers/_setup.html", context)
    response = _card(request, provider)
    response["HX-Retarget"] = f"#card-{provider}"
    response["HX-Reswap"] = "outerHTML"
    return _triggers(response, "close-dialog", "defaults-changed", "providers-changed")


@require_POST
@workspace_page
def credential_action(
    request: HttpRequest, provider: str, credential_id: int, action: str
) -> HttpResponse:
    require_change(request)
    credential = selectors.credential_get(
        tenant=request.tenant, provider=provider, credential_id=credential_id
    )
    if action == "activate":
        services.credential_activate(credential=credential, actor=request.principal)
    elif action == "delete":
        services.credential_delete(credential=credential, actor=request.principal)
    elif action == "validate":
        validation.validation_queue(target=credential)
    else:
        raise errors.NotFound(f"No action {action!r} on a credential.")
    manifest = selectors.manifest_get(provider)
    response = render(request, "providers/_setup.html", _setup_context(request, manifest))
    return _triggers(response, "defaults-changed", f"card-{provider}")


@workspace_page
def provider_models(request: HttpRequest, provider: str) -> HttpResponse:
    manifest = selectors.manifest_get(provider)
    models = selectors.provider_models(tenant=request.tenant, provider=provider)
    polling = any(m.status in POLL_STATUSES for m in models if m.source == "custom")
    return render(
        request, "providers/_models.html", {"manifest": manifest, "models": models, "poll": polling}
    )


@require_POST
@workspace_page
def model_action(request: HttpRequest, provider: str, model_id: str, action: str) -> HttpResponse:
    require_change(request)
    view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
    if action in {"enable", "disable"}:
        services.model_setting_update(
            tenant=request.tenant, view=view, enabled=action == "enable", actor=request.principal
        )
    elif action == "delete" and view.custom_model is not None:
        services.custom_model_delete(custom=view.custom_model, actor=request.principal)
    elif action == "validate" and view.custom_model is not None:
        validation.validation_queue(target=view.custom_model)
    elif action not in {"delete", "validate"}:
        raise errors.NotFound(f"No action {action!r} on a model.")
    return _triggers(provider_models(request, provider), "defaults-changed", f"card-{provider}")


@require_http_methods(["GET", "POST"])
@workspace_page
def add_model(request: HttpRequest, provider: str) -> HttpResponse:
    """Add a custom model (e.g. Xinference: name, type, server URL, model UID)."""
    manifest = selectors.manifest_get(provider)
    context: dict[str, Any] = {"manifest": manifest, "values": {}, "field_errors": {}}
    if request.method == "GET":
        context["model_type"] = request.GET.get("model_type") or manifest.supported_model_types[0]
        return render(request, "providers/_add_model.html", context)
    require_change(request)
    fields = manifest.model_credential_schema.fields if manifest.model_credential_schema else ()
    values = _values(request, fields)
    model, model_type = request.POST.get("model", "").strip(), request.POST.get("model_type", "")
    try:
        services.custom_model_create(
            tenant=request.tenant,
            provider=provider,
            model=model,
            model_type=model_type,
            values=values,
            actor=request.principal,
        )
    except (errors.InvalidInput, errors.Conflict) as exc:
        fields_errors = getattr(exc, "fields", {}) or {}
        context.update(
            values=values,
            model=model,
            model_type=model_type,
            field_errors=fields_errors,
            form_error="" if fields_errors else exc.message,
        )
        return render(request, "providers/_add_model.html", context)
    return _triggers(provider_models(request, provider), "defaults-changed", f"card-{provider}")


def _changed_fallbacks(view: selectors.ModelView, action: str, form: Any) -> list[dict[str, str]]:
    """The chain after a dialog action: add (a "provider/model" choice), remove or move up one."""
    chain = [dict(f) for f in view.fallbacks]
    if action == "fallback-add":
        provider, _, model = form.get("fallback", "").partition("/")
        return [*chain, {"provider": provider, "model": model}]
    position = int(form.get("position", -1))
    if not 0 <= position < len(chain):
        raise errors.InvalidInput("That fallback is no longer in the list.")
    moved = chain.pop(position)
    if action == "fallback-up":
        chain.insert(max(0, position - 1), moved)
    return chain


def _lb_context(request: HttpRequest, provider: str, model_id: str) -> dict[str, Any]:
    manifest = selectors.manifest_get(provider)
    view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
    form = (
        manifest.model_credential_schema.fields
        if view.source == "custom" and manifest.model_credential_schema
        else manifest.provider_credential_schema
    )
    chosen = [(f["provider"], f["model"]) for f in view.fallbacks]
    entries = selectors.lb_entry_list(tenant=request.tenant, view=view)
    return {
        "manifest": manifest,
        "model": view,
        "fallback_choices": [
            m
            for m in selectors.available_models(tenant=request.tenant, model_type=view.model_type)
            if (m.provider, m.model) not in {*chosen, (view.provider, view.model)}
        ],
        "entries": entries,
        "poll": any(e.status in POLL_STATUSES for e in entries),
        "named": selectors.credential_list(tenant=request.tenant, provider=provider),
        "fields": form,
        "values": {},
        "field_errors": {},
    }


@require_http_methods(["GET", "POST"])
@workspace_page
def load_balancing(request: HttpRequest, provider: str, model_id: str) -> HttpResponse:
    """A model's load-balancing entries: switch it on, add entries (a named credential of the
    provider, or credentials of their own), set weights, enable, check again or drop entries."""
    context = _lb_context(request, provider, model_id)
    view = context["model"]
    if request.method == "POST":
        require_change(request)
        action = request.POST.get("action", "")
        try:
            if action in {"on", "off"}:
                services.model_setting_update(
                    tenant=request.tenant,
                    view=view,
                    load_balancing_enabled=action == "on",
                    actor=request.principal,
                )
            elif action == "alias":
                services.model_setting_update(
                    tenant=request.tenant,
                    view=view,
                    alias=request.POST.get("alias", ""),
                    actor=request.principal,
                )
            elif action.startswith("fallback-"):
                services.model_setting_update(
                    tenant=request.tenant,
                    view=view,
                    fallbacks=_changed_fallbacks(view, action, request.POST),
                    actor=request.principal,
                )
            elif action == "add":
                named = request.POST.get("credential_id") or None
                services.lb_entry_create(
                    tenant=request.tenant,
                    view=view,
                    name=request.POST.get("name", ""),
                    credential_id=int(named) if named else None,
                    values=None if named else _values(request, context["fields"]),
                    weight=int(request.POST.get("weight") or 1),
                    enabled=True,
                    actor=request.principal,
                )
            else:
                entry = selectors.lb_entry_get(
                    tenant=request.tenant, view=view, entry_id=int(request.POST.get("entry", 0))
                )
                if action == "delete":
                    services.lb_entry_delete(entry=entry, actor=request.principal)
                elif action == "validate":
                    validation.validation_queue(target=entry)
                else:
                    services.lb_entry_update(
                        entry=entry,
                        view=view,
                        weight=int(request.POST["weight"]) if action == "weight" else None,
                        enabled={"enable": True, "disable": False}.get(action),
                        actor=request.principal,
                    )
        except (errors.InvalidInput, errors.Conflict, errors.NotFound, ValueError) as exc:
            context = _lb_context(request, provider, model_id)
            context["field_errors"] = getattr(exc, "fields", {}) or {}
            if isinstance(exc, errors.NotFound):
                message = "That entry no longer exists: the list is up to date now."
            elif isinstance(exc, ValueError):  # a number field that holds no number
                message = "Give a whole number."
            else:
                message = exc.message
            context["form_error"] = "" if context["field_errors"] else message
            return render(request, "providers/_load_balancing.html", context)
        context = _lb_context(request, provider, model_id)
    return render(request, "providers/_load_balancing.html", context)
