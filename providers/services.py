"""Writes for provider settings. Each service checks its input against the catalog, owns its
transaction, writes an audit entry (never a secret) and leaves no dangling default model."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from config import errors
from providers import credentials, revisions, selectors, validation
from providers.models import (
    AuditLogEntry,
    CheckedConfig,
    CheckStatus,
    CustomModel,
    DefaultModel,
    LoadBalancingEntry,
    ModelSetting,
    ProviderCredential,
)
from providers.runtime import registry
from providers.schema import FormField, ProviderManifest
from tenants.models import Tenant
from tenants.principals import Principal


def _audit(
    *,
    tenant: Tenant,
    actor: Principal | None,
    action: str,
    provider: str = "",
    target: str = "",
    changes: dict[str, Any] | None = None,
) -> None:
    AuditLogEntry.objects.create(
        tenant=tenant,
        actor=actor.membership.user if actor and actor.membership else None,
        api_key=actor.api_key if actor else None,
        action=action,
        provider=provider,
        target=target[:300],
        changes=changes or {},
    )


def prune_defaults(tenant: Tenant) -> None:
    """Drop configured defaults whose model is no longer usable (deleted, disabled, invalid)."""
    defaults = list(DefaultModel.objects.filter(tenant=tenant))
    if not defaults:
        return
    usable = {
        (m.model_type, m.provider, m.model) for m in selectors.available_models(tenant=tenant)
    }
    stale = [d.pk for d in defaults if (d.model_type, d.provider, d.model) not in usable]
    if stale:
        DefaultModel.objects.filter(pk__in=stale).delete()


def _provider_form(manifest: ProviderManifest) -> tuple[FormField, ...]:
    if not manifest.provider_credential_schema:
        raise errors.InvalidInput(
            f"{manifest.label.en_US} is configured per model: add a custom model instead.",
            code="configured_per_model",
        )
    return manifest.provider_credential_schema


def model_form(manifest: ProviderManifest) -> tuple[FormField, ...]:
    if manifest.model_credential_schema is None:
        raise errors.InvalidInput(
            f"{manifest.label.en_US} offers only its predefined models.",
            code="not_customizable",
        )
    return manifest.model_credential_schema.fields


def checkable(provider: str) -> bool:
    """Whether the provider's protocol family can be called, so a check can run."""
    return selectors.manifest_get(provider).runtime.family in registry.ADAPTERS


def _check_later(target: CheckedConfig, *, purpose: str = "") -> None:
    """Queue a validation of what was just saved, when its protocol family can be called."""
    if checkable(target.provider):
        validation.validation_queue(target=target, purpose=purpose)


def _name_conflict(message: str) -> errors.Conflict:
    return errors.Conflict(message, code="duplicate")


# --- Provider credentials ---------------------------------------------------------------------


def _working(credential: ProviderCredential | None) -> bool:
    """A credential whose last check succeeded: one typo must not replace it unchecked."""
    return credential is not None and credential.status == CheckStatus.VALID


@transaction.atomic
def credential_create(
    *,
    tenant: Tenant,
    provider: str,
    name: str,
    values: dict[str, Any],
    actor: Principal | None,
    take_over: bool = False,
) -> ProviderCredential:
    """Add a named credential; the provider's first one becomes active. Status starts unchecked.

    With `take_over` (the settings page) the new credential is to become the active one: at once
    when the provider has no working active credential, else only when its check succeeds."""
    manifest = selectors.manifest_get(provider)
    cleaned = credentials.clean_form(_provider_form(manifest), values)
    name = name.strip() or "Default"
    if ProviderCredential.objects.filter(tenant=tenant, provider=provider, name=name).exists():
        raise _name_conflict(
            gettext("A credential named %(name)r already exists for this provider.")
            % {"name": name}
        )
    active = ProviderCredential.objects.filter(
        tenant=tenant, provider=provider, is_active=True
    ).first()
    at_once = active is None or (take_over and not _working(active))
    if at_once and active is not None:
        ProviderCredential.objects.filter(pk=active.pk).update(is_active=False)
    credential = ProviderCredential.objects.create(
        tenant=tenant,
        provider=provider,
        name=name,
        is_active=at_once,
        created_by=actor.membership.user if actor and actor.membership else None,
    )
    credentials.seal(credential, cleaned)
    credential.save(update_fields=["config", "masked"])
    _check_later(credential, purpose="take_over" if take_over and not at_once else "")
    _audit(
        tenant=tenant,
        actor=actor,
        action="credential.create",
        provider=provider,
        target=name,
        changes=cleaned.changed_fields({}),
    )
    return credential


@transaction.atomic
def credential_update(
    *,
    credential: ProviderCredential,
    values: dict[str, Any] | None,
    name: str | None = None,
    partial: bool,
    actor: Principal | None,
    hold: bool = False,
) -> ProviderCredential:
    """Replace (PUT) or patch (PATCH) a credential. Changed values put it back to unchecked.

    With `hold` (the settings page), new values for the active credential, while it works, are
    held as a pending revision (`providers.revisions`) and replace the stored ones only when
    their check succeeds; meanwhile calls keep using the stored values."""
    manifest = selectors.manifest_get(credential.provider)
    before = credentials.shown(credential)
    changes: dict[str, Any] = {}
    revising = (
        hold and credential.is_active and _working(credential) and checkable(credential.provider)
    )
    if revising and values is not None:
        sent = dict(values)
        cleaned = credentials.clean_form(
            _provider_form(manifest),
            revisions.carried(credential, sent),
            stored=credential,
            partial=partial,
        )
        changes = cleaned.changed_fields(before)
        if changes or revisions.carried_names(credential, sent):
            revisions.stash(credential, cleaned, sent=sent)
            changes["pending"] = True
        else:
            revisions.clear(credential)  # the stored values again: nothing to check
    elif values is not None or not partial:
        sent = dict(values or {})
        cleaned = credentials.clean_form(
            _provider_form(manifest),
            revisions.carried(credential, sent),
            stored=credential,
            partial=partial,
        )
        revisions.take_carried(credential, cleaned, sent=sent)
        revisions.clear(credential)  # newer values than any revision
        changes = cleaned.changed_fields(before)
        credentials.seal(credential, cleaned)
        if changes:
            credential.status = CheckStatus.UNCHECKED
            credential.last_error = ""
            credential.validated_at = None
    if name is not None and name.strip() and name.strip() != credential.name:
        name = name.strip()
        taken = ProviderCredential.objects.filter(
            tenant=credential.tenant, provider=credential.provider, name=name
        ).exclude(pk=credential.pk)
        if taken.exists():
            raise _name_conflict(
                gettext("A credential named %(name)r already exists for this provider.")
                % {"name": name}
            )
        changes["name"] = name
        credential.name = name
    credential.save()
    if changes.get("pending"):
        _check_later(credential, purpose="revision")
    elif credential.status == CheckStatus.UNCHECKED:
        _check_later(credential)
    _audit(
        tenant=credential.tenant,
        actor=actor,
        action="credential.update",
        provider=credential.provider,
        target=credential.name,
        changes=changes,
    )
    prune_defaults(credential.tenant)
    return credential


@transaction.atomic
def credential_revision_apply(*, credential_id: int) -> None:
    """A revision's check succeeded: its values replace the stored ones (validation calls this;
    a revision replaced or dropped since is left alone)."""
    credential = ProviderCredential.objects.select_for_update().filter(pk=credential_id).first()
    if credential is None or not revisions.has_revision(credential):
        return
    revisions.apply(credential)
    credential.status = CheckStatus.VALID
    credential.last_error = ""
    credential.validated_at = timezone.now()
    credential.save()
    _audit(
        tenant=credential.tenant,
        actor=None,
        action="credential.revision_applied",
        provider=credential.provider,
        target=credential.name,
    )


@transaction.atomic
def credential_activate(
    *, credential: ProviderCredential, actor: Principal | None
) -> ProviderCredential:
    ProviderCredential.objects.filter(
        tenant=credential.tenant, provider=credential.provider, is_active=True
    ).exclude(pk=credential.pk).update(is_active=False)
    credential.is_active = True
    credential.save(update_fields=["is_active", "updated_at"])
    _audit(
        tenant=credential.tenant,
        actor=actor,
        action="credential.activate",
        provider=credential.provider,
        target=credential.name,
    )
    prune_defaults(credential.tenant)
    return credential


@transaction.atomic
def credential_delete(*, credential: ProviderCredential, actor: Principal | None) -> None:
    """Delete a credential (and the load-balancing entries using it). If it was active, the most
    recently created remaining one takes over; defaults that lose their model are dropped."""
    tenant, provider, was_active = credential.tenant, credential.provider, credential.is_active
    credential.delete()
    if was_active:
        successor = (
            ProviderCredential.objects.filter(tenant=tenant, provider=provider)
            .order_by("-created_at", "-id")
            .first()
        )
        if successor is not None:
            successor.is_active = True
            successor.save(update_fields=["is_active", "updated_at"])
    _audit(
        tenant=tenant,
        actor=actor,
        action="credential.delete",
        provider=provider,
        target=credential.name,
    )
    prune_defaults(tenant)


# --- Custom models ----------------------------------------------------------------------------


def _check_model_type(manifest: ProviderManifest, model_type: str) -> None:
    if model_type not in manifest.supported_model_types:
        raise errors.InvalidInput(
            fields={
                "model_type": [
                    f"{manifest.label.en_US} offers {', '.join(manifest.supported_model_types)}."
                ]
            }
        )


def _checked_model_form(
    manifest: ProviderManifest,
    form: tuple[FormField, ...],
    model: str,
    model_type: str,
    values: dict[str, Any],
    *,
    stored: CustomModel | None = None,
    partial: bool = False,
) -> credentials.CleanedForm:
    """The model form's values, or one InvalidInput with every field's errors at once."""
    problems: dict[str, list[str]] = {}
    try:
        _check_model_type(manifest, model_type)
    except errors.InvalidInput as exc:
        problems.update(exc.fields)
    if not model:
        problems["model"] = [gettext("A model needs a name.")]
    try:
        cleaned = credentials.clean_form(
            form, values, model_type=model_type, stored=stored, partial=partial
        )
    except errors.InvalidInput as exc:
        problems.update(exc.fields)
    if problems:
        raise errors.InvalidInput(gettext("Some fields are not valid."), fields=problems)
    return cleaned


def _check_model_free(
    tenant: Tenant,
    manifest: ProviderManifest,
    model_type: str,
    model: str,
    *,
    renamed: CustomModel | None = None,
) -> None:
    taken = CustomModel.objects.filter(
        tenant=tenant, provider=manifest.provider, model_type=model_type, model=model
    )
    if renamed is not None:
        taken = taken.exclude(pk=renamed.pk)
    if taken.exists() or (model_type, model) in {(m.model_type, m.model) for m in manifest.models}:
        raise _name_conflict(
            gettext("This provider already has the %(model_type)s model %(model)r.")
            % {"model_type": model_type, "model": model}
        )


@transaction.atomic
def custom_model_create(
    *,
    tenant: Tenant,
    provider: str,
    model: str,
    model_type: str,
    values: dict[str, Any],
    actor: Principal | None,
) -> CustomModel:
    manifest = selectors.manifest_get(provider)
    form = model_form(manifest)
    model = model.strip()
    cleaned = _checked_model_form(manifest, form, model, model_type, values)
    _check_model_free(tenant, manifest, model_type, model)
    try:
        with transaction.atomic():
            custom = CustomModel.objects.create(
                tenant=tenant, provider=provider, model=model, model_type=model_type
            )
    except IntegrityError as exc:  # a concurrent create won the race
        raise _name_conflict(
            gettext("This provider already has the %(model_type)s model %(model)r.")
            % {"model_type": model_type, "model": model}
        ) from exc
    credentials.seal(custom, cleaned)
    custom.save(update_fields=["config", "masked"])
    _check_later(custom)
    _audit(
        tenant=tenant,
        actor=actor,
        action="custom_model.create",
        provider=provider,
        target=f"{model_type}:{model}",
        changes=cleaned.changed_fields({}),
    )
    return custom


@transaction.atomic
def custom_model_update(
    *,
    custom: CustomModel,
    values: dict[str, Any],
    partial: bool,
    actor: Principal | None,
    model: str | None = None,
) -> CustomModel:
    """Change a custom model's form values (the model UID, the key...) or, with `model`, its
    name: its settings, load-balancing entries, default and the fallbacks naming it follow."""
    manifest = selectors.manifest_get(custom.provider)
    before = credentials.shown(custom)
    new_name = custom.model if model is None else model.strip()
    cleaned = _checked_model_form(
        manifest,
        model_form(manifest),
        new_name,
        custom.model_type,
        values,
        stored=custom,
        partial=partial,
    )
    changes = cleaned.changed_fields(before)
    if new_name != custom.model:
        _check_model_free(custom.tenant, manifest, custom.model_type, new_name, renamed=custom)
        _rename_model(custom, new_name)
        changes["model"] = new_name
    credentials.seal(custom, cleaned)
    if changes:
        custom.status = CheckStatus.UNCHECKED
        custom.last_error = ""
        custom.validated_at = None
        custom.details = {}
    custom.save()
    if changes:
        _check_later(custom)
    _audit(
        tenant=custom.tenant,
        actor=actor,
        action="custom_model.update",
        provider=custom.provider,
        target=f"{custom.model_type}:{custom.model}",
        changes=changes,
    )
    prune_defaults(custom.tenant)
    return custom


def _rename_model(custom: CustomModel, new_name: str) -> None:
    """Move what names the model (provider, type, name) to its new name."""
    scope = {
        "tenant": custom.tenant,
        "provider": custom.provider,
        "model_type": custom.model_type,
        "model": custom.model,
    }
    ModelSetting.objects.filter(**scope).update(model=new_name)
    LoadBalancingEntry.objects.filter(**scope).update(model=new_name)
    DefaultModel.objects.filter(**scope).update(model=new_name)
    old = {"provider": custom.provider, "model": custom.model}
    for setting in ModelSetting.objects.filter(
        tenant=custom.tenant, model_type=custom.model_type
    ).exclude(fallbacks=[]):
        if old in setting.fallbacks:
            setting.fallbacks = [
                {"provider": custom.provider, "model": new_name} if f == old else f
                for f in setting.fallbacks
            ]
            setting.save(update_fields=["fallbacks", "updated_at"])
    custom.model = new_name


@transaction.atomic
def custom_model_delete(*, custom: CustomModel, actor: Principal | None) -> None:
    """Delete a custom model with its settings and load-balancing entries."""
    scope = {
        "tenant": custom.tenant,
        "provider": custom.provider,
        "model_type": custom.model_type,
        "model": custom.model,
    }
    ModelSetting.objects.filter(**scope).delete()
    LoadBalancingEntry.objects.filter(**scope).delete()
    custom.delete()
    _audit(
        tenant=scope["tenant"],
        actor=actor,
        action="custom_model.delete",
        provider=scope["provider"],
        target=f"{scope['model_type']}:{scope['model']}",
    )
    prune_defaults(scope["tenant"])


# --- Model settings ---------------------------------------------------------------------------


@transaction.atomic
def model_setting_update(
    *,
    tenant: Tenant,
    view: selectors.ModelView,
    enabled: bool | None = None,
    load_balancing_enabled: bool | None = None,
    fallbacks: list[dict[str, str]] | None = None,
    alias: str | None = None,
    actor: Principal | None,
) -> ModelSetting:
    """Switch a model on or off, switch its load balancing, set its fallback chain, or name it
    in the OpenAI-compatible gateway (`alias`, "" for none).

    Switching off the workspace's default model drops it as the default (the next usable model
    stands in) and remembers it; switched on again, it is the default again, unless a default
    of its type was chosen or cleared meanwhile (`default_model_set`/`_clear` forget it)."""
    chain = _checked_fallbacks(tenant, view, fallbacks) if fallbacks is not None else None
    name = _checked_alias(tenant, view, alias) if alias is not None else None
    setting, _ = ModelSetting.objects.get_or_create(
        tenant=tenant, provider=view.provider, model_type=view.model_type, model=view.model
    )
    changes: dict[str, Any] = {}
    restore = False
    if enabled is not None and enabled != setting.enabled:
        setting.enabled = changes["enabled"] = enabled
        if not enabled and view.is_default:
            setting.was_default = True
        elif enabled and setting.was_default:
            setting.was_default = False
            restore = not DefaultModel.objects.filter(
                tenant=tenant, model_type=view.model_type
            ).exists()
    if (
        load_balancing_enabled is not None
        and load_balancing_enabled != setting.load_balancing_enabled
    ):
        setting.load_balancing_enabled = changes["load_balancing_enabled"] = load_balancing_enabled
    if chain is not None and chain != setting.fallbacks:
        setting.fallbacks = changes["fallbacks"] = chain
    if name is not None and name != setting.alias:
        setting.alias = changes["alias"] = name
    try:
        with transaction.atomic():
            setting.save()
    except IntegrityError as exc:  # the same alias, given to another model at the same moment
        raise errors.InvalidInput(fields={"alias": [_alias_taken()]}) from exc
    if changes:
        _audit(
            tenant=tenant,
            actor=actor,
            action="model.update",
            provider=view.provider,
            target=f"{view.model_type}:{view.model}",
            changes=changes,
        )
    prune_defaults(tenant)
    if restore:
        _default_restore(tenant=tenant, view=view, actor=actor)
    return setting


def _default_restore(*, tenant: Tenant, view: selectors.ModelView, actor: Principal | None) -> None:
    """Make a model switched on again the default it was, if it is usable now."""
    usable = selectors.available_models(tenant=tenant, model_type=view.model_type)
    if not any((m.provider, m.model) == (view.provider, view.model) for m in usable):
        return  # e.g. its credential failed meanwhile: the stand-in stays
    DefaultModel.objects.create(
        tenant=tenant, model_type=view.model_type, provider=view.provider, model=view.model
    )
    _audit(
        tenant=tenant,
        actor=actor,
        action="default_model.restore",
        provider=view.provider,
        target=f"{view.model_type}:{view.model}",
    )


MAX_FALLBACKS = 5
ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def _alias_taken() -> str:
    return gettext("Another model of this workspace has this alias.")


def _checked_alias(tenant: Tenant, view: selectors.ModelView, alias: str) -> str:
    """An alias names one model of the workspace in the gateway; "default" is the gateway's."""
    alias = alias.strip()
    if not alias:
        return ""
    if not ALIAS.fullmatch(alias) or alias.lower() == "default":
        rule = gettext(
            "Give 1 to 64 letters, digits and . _ : - (no /), starting with a letter or digit. "
            "Not 'default'."
        )
        raise errors.InvalidInput(fields={"alias": [rule]})
    taken = (
        ModelSetting.objects.filter(tenant=tenant, alias=alias)
        .exclude(provider=view.provider, model_type=view.model_type, model=view.model)
        .exists()
    )
    if taken:
        raise errors.InvalidInput(fields={"alias": [_alias_taken()]})
    return alias


def _checked_fallbacks(
    tenant: Tenant, view: selectors.ModelView, given: list[dict[str, str]]
) -> list[dict[str, str]]:
    """Each fallback names another model of the same type this workspace has (any provider)."""
    problems: list[str] = []
    chain: list[dict[str, str]] = []
    if len(given) > MAX_FALLBACKS:
        problems.append(f"Give at most {MAX_FALLBACKS} fallbacks.")
    for position, item in enumerate(given[:MAX_FALLBACKS], start=1):
        pair = {"provider": item["provider"], "model": item["model"]}
        named = f"{pair['provider'][:64]}/{pair['model'][:100]}"  # as messages show it
        if (pair["provider"], pair["model"]) == (view.provider, view.model):
            problems.append(f"#{position}: a model cannot fall back to itself.")
        elif pair in chain:
            problems.append(f"#{position}: {named} is listed twice.")
        else:
            try:
                selectors.model_get(
                    tenant=tenant,
                    provider=pair["provider"],
                    model_key=selectors.model_id(view.model_type, pair["model"]),
                )
            except errors.NotFound:
                problems.append(
                    f"#{position}: this workspace has no {view.model_type} model {named}."
                )
            else:
                chain.append(pair)
    if problems:
        raise errors.InvalidInput(fields={"fallbacks": problems})
    return chain


# --- Load balancing ---------------------------------------------------------------------------


def _lb_form(manifest: ProviderManifest, view: selectors.ModelView) -> tuple[FormField, ...]:
    return model_form(manifest) if view.source == "custom" else _provider_form(manifest)


def _check_weight(weight: int) -> None:
    if not 1 <= weight <= 100:
        raise errors.InvalidInput(fields={"weight": [gettext("Give a weight from 1 to 100.")]})


@transaction.atomic
def lb_entry_create(
    *,
    tenant: Tenant,
    view: selectors.ModelView,
    name: str,
    credential_id: int | None,
    values: dict[str, Any] | None,
    weight: int,
    enabled: bool,
    actor: Principal | None,
) -> LoadBalancingEntry:
    """Add a credential to a model's rotation: an existing named credential of the provider
    (`credential_id`), or a form of its own (`values`), never both."""
    manifest = selectors.manifest_get(view.provider)
    _check_weight(weight)
    if (credential_id is None) == (values is None):
        raise errors.InvalidInput(
            fields={"credentials": ["Give one of credential_id and credentials (not both)."]}
        )
    credential = None
    cleaned = None
    if credential_id is not None:
        credential = selectors.credential_get(
            tenant=tenant, provider=view.provider, credential_id=credential_id
        )
    else:
        cleaned = credentials.clean_form(
            _lb_form(manifest, view), values or {}, model_type=view.model_type
        )
    name = name.strip() or (credential.name if credential else "Entry")
    scope = {
        "tenant": tenant,
        "provider": view.provider,
        "model_type": view.model_type,
        "model": view.model,
    }
    if LoadBalancingEntry.objects.filter(**scope, name=name).exists():
        raise _name_conflict(
            gettext("This model already has a load-balancing entry named %(name)r.")
            % {"name": name}
        )
    entry = LoadBalancingEntry.objects.create(
        **scope, name=name, credential=credential, weight=weight, enabled=enabled
    )
    if cleaned is not None:
        credentials.seal(entry, cleaned)
        entry.save(update_fields=["config", "masked"])
        _check_later(entry)
    _audit(
        tenant=tenant,
        actor=actor,
        action="lb_entry.create",
        provider=view.provider,
        target=f"{view.model_type}:{view.model}/{name}",
        changes={
            "weight": weight,
            "enabled": enabled,
            **(cleaned.changed_fields({}) if cleaned else {}),
        },
    )
    return entry


@transaction.atomic
def lb_entry_update(
    *,
    entry: LoadBalancingEntry,
    view: selectors.ModelView,
    weight: int | None = None,
    enabled: bool | None = None,
    values: dict[str, Any] | None = None,
    name: str | None = None,
    actor: Principal | None,
) -> LoadBalancingEntry:
    changes: dict[str, Any] = {}
    if name is not None and name.strip() and name.strip() != entry.name:
        taken = LoadBalancingEntry.objects.filter(
            tenant=entry.tenant,
            provider=entry.provider,
            model_type=entry.model_type,
            model=entry.model,
            name=name.strip(),
        ).exclude(pk=entry.pk)
        if taken.exists():
            raise _name_conflict(
                f"This model already has a load-balancing entry named {name.strip()!r}."
            )
        entry.name = changes["name"] = name.strip()
    if weight is not None:
        _check_weight(weight)
        entry.weight = changes["weight"] = weight
    if enabled is not None:
        entry.enabled = changes["enabled"] = enabled
    if values is not None:
        if entry.credential_id is not None:
            raise errors.InvalidInput(
                fields={
                    "credentials": [
                        gettext("This entry uses a named credential: edit that instead.")
                    ]
                }
            )
        manifest = selectors.manifest_get(view.provider)
        cleaned = credentials.clean_form(
            _lb_form(manifest, view), values, model_type=view.model_type, stored=entry, partial=True
        )
        changes.update(cleaned.changed_fields(credentials.shown(entry)))
        credentials.seal(entry, cleaned)
        entry.status = CheckStatus.UNCHECKED
    entry.save()
    if values is not None:
        _check_later(entry)
    _audit(
        tenant=entry.tenant,
        actor=actor,
        action="lb_entry.update",
        provider=view.provider,
        target=f"{view.model_type}:{view.model}/{entry.name}",
        changes=changes,
    )
    return entry


@transaction.atomic
def lb_entry_delete(*, entry: LoadBalancingEntry, actor: Principal | None) -> None:
    entry.delete()
    _audit(
        tenant=entry.tenant,
        actor=actor,
        action="lb_entry.delete",
        provider=entry.provider,
        target=f"{entry.model_type}:{entry.model}/{entry.name}",
    )


# --- Default models ---------------------------------------------------------------------------


@transaction.atomic
def default_model_set(
    *, tenant: Tenant, model_type: str, provider: str, model: str, actor: Principal | None
) -> DefaultModel:
    """Make a model the workspace default for its type. It must be enabled and usable."""
    selectors.manifest_get(provider)
    usable = selectors.available_models(tenant=tenant, model_type=model_type)
    if not any((m.provider, m.model) == (provider, model) for m in usable):
        raise errors.InvalidInput(
            f"{provider}/{model} is not an enabled, configured {model_type} model.",
            fields={
                "model": [gettext("Pick an enabled model of this type from a configured provider.")]
            },
        )
    default, _ = DefaultModel.objects.update_or_create(
        tenant=tenant, model_type=model_type, defaults={"provider": provider, "model": model}
    )
    _forget_dropped_default(tenant, model_type)
    _audit(
        tenant=tenant,
        actor=actor,
        action="default_model.set",
        provider=provider,
        target=f"{model_type}:{model}",
    )
    return default


@transaction.atomic
def default_model_clear(*, tenant: Tenant, model_type: str, actor: Principal | None) -> None:
    deleted, _ = DefaultModel.objects.filter(tenant=tenant, model_type=model_type).delete()
    _forget_dropped_default(tenant, model_type)
    if deleted:
        _audit(tenant=tenant, actor=actor, action="default_model.clear", target=model_type)


def _forget_dropped_default(tenant: Tenant, model_type: str) -> None:
    """A default of this type was chosen (or cleared): a model switched off while it was the
    default no longer comes back as the default when switched on."""
    ModelSetting.objects.filter(tenant=tenant, model_type=model_type, was_default=True).update(
        was_default=False
    )
