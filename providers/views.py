"""Settings > Model Providers in the browser: a page and the htmx fragments it swaps in.

Views are thin: they read with selectors, write with the same services the API uses, and render
templates. Field errors come back inside the re-rendered form (status 200, so htmx swaps it).
Secrets are never sent to the page: secret inputs carry the obfuscated hint, which, sent back
unchanged, keeps the stored secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from config import errors
from providers import credentials, discovery, revisions, selectors, services, validation
from providers.models import (
    FINISHED,
    CheckStatus,
    CustomModel,
    ProviderCredential,
    ValidationJob,
)
from providers.schema import MODEL_TYPES, FormField, ProviderManifest
from providers.templatetags.provider_ui import tr
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
    return render(request, "providers/_card.html", {"p": view})


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


# --- Checks shown in a dialog -------------------------------------------------------------------

MAX_POLLS = 90  # a dialog asks about a check once a second, for at most this many seconds


def _jobs_since(since: datetime, target: Any) -> ValidationJob | None:
    """The check a save just queued for `target` (None when nothing needed checking)."""
    return validation.job_latest(target=target, since=since)


def _check_context(manifest: ProviderManifest, job: ValidationJob, then: str) -> dict[str, Any]:
    return {
        "job": job,
        "manifest": manifest,
        "polls": 0,
        "then": then,
        "poll_url": reverse("settings-check", args=[manifest.provider, job.pk]),
    }


@workspace_page
def check_status(request: HttpRequest, provider: str, job_id: int) -> HttpResponse:
    """A check a dialog waits for (polled once a second, at most MAX_POLLS times): "Checking…"
    while it runs; then the dialog closes (or shows the models) when it passed, or the form comes
    back with the provider's verdict when it failed."""
    manifest = selectors.manifest_get(provider)
    job = validation.job_get(tenant_id=request.tenant.pk, provider=provider, job_id=job_id)
    then = request.GET.get("then", "close")
    polls = min(id_param(request, "polls") or 0, MAX_POLLS)
    if job.status not in FINISHED:
        context = {**_check_context(manifest, job, then), "polls": polls + 1}
        context["gave_up"] = polls + 1 >= MAX_POLLS
        return render(request, "providers/_check.html", context)
    target = job.target
    if job.valid or target is None:
        if then == "models":
            response = provider_models(request, provider)
            response["HX-Retarget"] = "#dialog-body"
            response["HX-Reswap"] = "innerHTML"
            return _triggers(response, "defaults-changed", f"card-{provider}")
        return _triggers(HttpResponse(""), "close-dialog", "defaults-changed", f"card-{provider}")
    if isinstance(target, ProviderCredential):
        context = _setup_context(request, manifest, editing=target)
        if job.purpose == validation.REVISION and revisions.has_revision(target):
            context["values"] = revisions.shown(target)
        context["anyway"] = job.purpose in {validation.REVISION, validation.TAKE_OVER}
        template = "providers/_setup.html"
    else:
        context = _model_form_context(request, manifest, editing=target, then=then)
        template = "providers/_add_model.html"
    context["verdict"] = job
    response = render(request, template, context)
    response["HX-Retarget"] = "#dialog-body"
    response["HX-Reswap"] = "innerHTML"
    return _triggers(response, "defaults-changed", f"card-{provider}")


def _checking(
    request: HttpRequest, template: str, context: dict[str, Any], job: ValidationJob, then: str
) -> HttpResponse:
    """The dialog while the check the save queued runs."""
    context.update(_check_context(context["manifest"], job, then), checking=True)
    return _triggers(
        render(request, template, context),
        "defaults-changed",
        f"card-{context['manifest'].provider}",
    )


# --- Provider credentials -----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@workspace_page
def provider_setup(request: HttpRequest, provider: str) -> HttpResponse:
    """The set-up dialog: named credentials (activate, edit) and the form to add or edit one.

    A save stays in the dialog while its check runs. New values for a working active credential
    take over only when their check passes (or with "Save anyway"); see services.credential_*."""
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
    anyway = request.POST.get("anyway") == "1"
    since = timezone.now()
    try:
        if editing is None:
            saved = services.credential_create(
                tenant=request.tenant,
                provider=provider,
                name=name,
                values=values,
                actor=request.principal,
                take_over=True,
            )
            if anyway and not saved.is_active:
                services.credential_activate(credential=saved, actor=request.principal)
        else:
            saved = services.credential_update(
                credential=editing,
                values=values,
                name=name,
                partial=False,
                actor=request.principal,
                hold=not anyway,
            )
            if anyway and not saved.is_active:
                services.credential_activate(credential=saved, actor=request.principal)
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
    job = _jobs_since(since, saved)
    if job is not None:
        context = _setup_context(request, manifest, editing=saved)
        return _checking(request, "providers/_setup.html", context, job, "close")
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


# --- Models -------------------------------------------------------------------------------------


@workspace_page
def provider_models(request: HttpRequest, provider: str) -> HttpResponse:
    manifest = selectors.manifest_get(provider)
    models = selectors.provider_models(tenant=request.tenant, provider=provider)
    polls = min(id_param(request, "polls") or 0, MAX_POLLS)
    polling = polls < MAX_POLLS and any(
        m.status in POLL_STATUSES for m in models if m.source == "custom"
    )
    return render(
        request,
        "providers/_models.html",
        {
            "manifest": manifest,
            "models": models,
            "poll": polling,
            "polls": polls + 1,
            "discoverable": manifest.provider in DISCOVERABLE,
        },
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


# Self-hosted servers whose dialog offers "Discover models" (they list what they serve).
DISCOVERABLE = {"xinference", "ollama", "localai", "gpustack", "openai_api_compatible"}


def _model_form_context(
    request: HttpRequest,
    manifest: ProviderManifest,
    *,
    editing: CustomModel | None = None,
    then: str = "close",
) -> dict[str, Any]:
    return {
        "manifest": manifest,
        "editing": editing,
        "editing_id": selectors.model_id(editing.model_type, editing.model) if editing else "",
        "model": editing.model if editing else "",
        "model_type": editing.model_type if editing else manifest.supported_model_types[0],
        "values": credentials.shown(editing) if editing else {},
        "field_errors": {},
        "then": then,
        "discoverable": manifest.provider in DISCOVERABLE and editing is None,
    }


@require_http_methods(["GET", "POST"])
@workspace_page
def add_model(request: HttpRequest, provider: str) -> HttpResponse:
    """Add a custom model (e.g. Xinference: name, type, server URL, model UID), or edit one
    (`?model=<model id>`: pre-filled, secrets as hints). The dialog stays open while the save's
    check runs and shows the verdict; `then=models` returns to the models list when it passed."""
    manifest = selectors.manifest_get(provider)
    services.model_form(manifest)  # a provider without custom models: a clear 400
    editing = None
    model_key = request.GET.get("model") or request.POST.get("editing")
    if model_key:
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_key)
        if view.custom_model is None:
            raise errors.NotFound("Only custom models are edited here.")
        editing = view.custom_model
    then = (
        "models" if (request.GET.get("then") or request.POST.get("then")) == "models" else "close"
    )
    context = _model_form_context(request, manifest, editing=editing, then=then)
    if request.method == "GET":
        if editing is None and request.GET.get("model_type") in manifest.supported_model_types:
            context["model_type"] = request.GET["model_type"]
        return render(request, "providers/_add_model.html", context)
    require_change(request)
    if request.POST.get("action") in {"discover", "import"}:
        return _discovery(request, manifest, context)
    fields = manifest.model_credential_schema.fields if manifest.model_credential_schema else ()
    values = _values(request, fields)
    model = request.POST.get("model", "").strip()
    model_type = editing.model_type if editing else request.POST.get("model_type", "")
    since = timezone.now()
    try:
        if editing is None:
            saved = services.custom_model_create(
                tenant=request.tenant,
                provider=provider,
                model=model,
                model_type=model_type,
                values=values,
                actor=request.principal,
            )
        else:
            saved = services.custom_model_update(
                custom=editing, values=values, partial=False, model=model, actor=request.principal
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
    job = _jobs_since(since, saved)
    if job is not None:
        context = _model_form_context(request, manifest, editing=saved, then=then)
        return _checking(request, "providers/_add_model.html", context, job, then)
    if then == "models":
        return _triggers(provider_models(request, provider), "defaults-changed", f"card-{provider}")
    return _triggers(HttpResponse(""), "close-dialog", "defaults-changed", f"card-{provider}")


def _discovery(
    request: HttpRequest, manifest: ProviderManifest, context: dict[str, Any]
) -> HttpResponse:
    """ "Discover models": list what the server serves, with the form's server URL and key, into
    the dialog's #discovered (the form keeps what was typed; no secret is sent back). "Import":
    add the chosen ones, each then checked, and show the models list. Errors read inline."""
    fields = manifest.model_credential_schema.fields if manifest.model_credential_schema else ()
    values = {
        k: v for k, v in _values(request, fields).items() if k not in discovery.MODEL_NAME_FIELDS
    }
    provider = manifest.provider
    found: list[discovery.Proposal] = []
    problem = ""
    field_errors: dict[str, list[str]] = {}
    try:
        if request.POST.get("action") == "import":
            chosen = [c.partition(":")[::2] for c in request.POST.getlist("import")]
            chosen = [(t, m) for t, m in chosen if t and m]
            if not chosen:
                raise errors.InvalidInput(_("Choose at least one model to import."))
            _added, refused = discovery.import_models(
                tenant=request.tenant,
                provider=provider,
                values=values,
                models=chosen,
                actor=request.principal,
            )
            if not refused:
                response = provider_models(request, provider)
                response["HX-Retarget"] = "#dialog-body"
                response["HX-Reswap"] = "innerHTML"
                return _triggers(response, "defaults-changed", f"card-{provider}")
            problem = _("Not imported: %(models)s.") % {
                "models": "; ".join(f"{m} ({why})" for m, why in refused.items())
            }
        found = discovery.discover(tenant=request.tenant, provider=provider, values=values)
    except errors.InvalidInput as exc:
        field_errors = {
            k: v for k, v in (exc.fields or {}).items() if k not in discovery.MODEL_NAME_FIELDS
        }
        problem = "" if field_errors else exc.message
    except errors.ServiceError as exc:
        problem = _("The server could not be asked: %(reason)s") % {"reason": exc.message}
    labels = {f.variable: f.label for f in fields}
    context.update(
        found=[_proposal_row(p) for p in found],
        discovery_error=problem,
        discovery_fields=[
            (tr(labels[name]) if name in labels else name, message)
            for name, messages in field_errors.items()
            for message in messages
        ],
    )
    return render(request, "providers/_discovered.html", context)


def _proposal_row(proposal: discovery.Proposal) -> dict[str, Any]:
    """A discovered model as the list shows it: its abilities (Xinference), else a few facts
    the server gave (Ollama's family and size), else nothing."""
    details = proposal.details
    abilities = details.get("abilities") or [
        str(details[k])
        for k in ("family", "parameter_size", "quantization_level")
        if details.get(k)
    ]
    if not isinstance(abilities, list):
        abilities = [str(abilities)]
    return {
        "model": proposal.model,
        "model_type": proposal.model_type,
        "abilities": [str(a) for a in abilities][:8],
        "added": proposal.added,
    }


def _changed_fallbacks(view: selectors.ModelView, action: str, form: Any) -> list[dict[str, str]]:
    """The chain after a dialog action: add (a "provider/model" choice), remove or move up one."""
    chain = [dict(f) for f in view.fallbacks]
    if action == "fallback-add":
        provider, _slash, model = form.get("fallback", "").partition("/")
        return [*chain, {"provider": provider, "model": model}]
    position = int(form.get("position", -1))
    if not 0 <= position < len(chain):
        raise errors.InvalidInput(_("That fallback is no longer in the list."))
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
    polls = min(id_param(request, "polls") or 0, MAX_POLLS)
    available = selectors.available_models(tenant=request.tenant, model_type=view.model_type)
    labels = {(m.provider, m.model): m.label for m in available}
    return {
        "manifest": manifest,
        "model": view,
        # The chain as shown: each model by its label ("GPT-5"), or its name once unavailable.
        "fallbacks": [
            {**f, "label": labels.get((f["provider"], f["model"]), f["model"])}
            for f in view.fallbacks
        ],
        "fallback_choices": [
            m
            for m in available
            if (m.provider, m.model) not in {*chosen, (view.provider, view.model)}
        ],
        "entries": entries,
        "poll": polls < MAX_POLLS and any(e.status in POLL_STATUSES for e in entries),
        "polls": polls + 1,
        "editing": None,
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
    if request.method == "GET" and request.GET.get("edit"):
        entry = selectors.lb_entry_get(
            tenant=request.tenant, view=view, entry_id=id_param(request, "edit") or 0
        )
        context.update(editing=entry, values=credentials.shown(entry))
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
                if action == "edit":
                    services.lb_entry_update(
                        entry=entry,
                        view=view,
                        name=request.POST.get("name", ""),
                        weight=int(request.POST.get("weight") or entry.weight),
                        values=None if entry.credential_id else _values(request, context["fields"]),
                        actor=request.principal,
                    )
                elif action == "delete":
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
            if action == "edit" and isinstance(exc, errors.InvalidInput | errors.Conflict):
                context.update(
                    editing=selectors.lb_entry_get(
                        tenant=request.tenant, view=view, entry_id=int(request.POST["entry"])
                    ),
                    values=_values(request, context["fields"]),
                    entry_name=request.POST.get("name", ""),
                )
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
