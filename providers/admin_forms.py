"""Forms for the operators' admin: the product's schema-generated credential forms, saved through
the product's services.

A form here is built per request (`type(...)`), because its fields depend on what was chosen:
a provider's credential form, a model's fallback choices. The choices that shape it (workspace,
provider, model, model type) come first; admin.js reloads the add page when one changes, and
without script a changed choice re-renders the form with a note instead of saving.

Writes happen while the form validates (`_post_clean`, the last step), inside the admin's
transaction: the service checks the values, seals the secrets, queues the validation and writes
the audit entry, and what it refuses (`InvalidInput`, field by field; `Conflict`) becomes form
errors. Nothing is written when an earlier step of the form found an error.

Secrets: a secret input shows the stored secret's obfuscated hint and nothing else — never what
was typed, not even when the form comes back with errors; sent back unchanged, the hint keeps the
stored secret (as in the product's dialogs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from config import errors
from providers import credentials, selectors, services
from providers.models import (
    CheckedConfig,
    CustomModel,
    DefaultModel,
    LoadBalancingEntry,
    ModelSetting,
    ModelType,
    ProviderCredential,
)
from providers.schema import FormField, ProviderManifest, ShowOn
from tenants.models import Membership, Role, Tenant
from tenants.principals import Perm, Principal

# --- Who acts --------------------------------------------------------------------------------


def operator_principal(user: AbstractBaseUser, tenant: Tenant) -> Principal:
    """An operator acts for any workspace with every right. The services name the actor of an
    audit entry through its membership's user: this stand-in membership (never saved) makes that
    the operator."""
    membership = Membership(user=user, tenant=tenant, role=Role.OWNER)
    return Principal(tenant=tenant, perms=frozenset(Perm), membership=membership)


# --- Widgets ---------------------------------------------------------------------------------


def _conditions(show_on: Iterable[ShowOn]) -> str:
    return json.dumps([{"variable": c.variable, "value": c.value} for c in show_on])


class SecretHintInput(forms.PasswordInput):
    """A password input whose value is always `hint` (the stored secret's obfuscated form, or
    nothing): what an operator typed never comes back in the page."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, render_value=True)
        self.hint = ""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        return super().get_context(name, self.hint or None, attrs)


class FixedHiddenInput(forms.HiddenInput):
    """A hidden input that always carries `fixed`, whatever was posted."""

    fixed = ""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        return super().get_context(name, self.fixed, attrs)


class _OptionConditions:
    """Options with show_on carry them as data-option-show-on (admin.js hides them)."""

    option_show_on: ClassVar[dict[str, str]]

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)  # type: ignore[misc]
        conditions = self.option_show_on.get(str(value))
        if conditions:
            option["attrs"] = {**option["attrs"], "data-option-show-on": conditions}
        return option


class SchemaSelect(_OptionConditions, forms.Select):
    option_show_on: ClassVar[dict[str, str]] = {}


class SchemaRadioSelect(_OptionConditions, forms.RadioSelect):
    option_show_on: ClassVar[dict[str, str]] = {}


# --- Schema fields ---------------------------------------------------------------------------


class _CheckedByService:
    """Required fields (under show_on), options, formats and URLs are checked by the service,
    which knows which fields show; the label still says "required"."""

    def validate(self, value: Any) -> None:
        return None


class SchemaCharField(_CheckedByService, forms.CharField):
    pass


class SchemaChoiceField(_CheckedByService, forms.ChoiceField):
    pass


class SchemaBooleanField(_CheckedByService, forms.BooleanField):
    pass


def _text(text: Any) -> str:
    return text.get(get_language() or "en") if text is not None else ""


def schema_field(form_field: FormField) -> forms.Field:
    """The Django field for one manifest form field (labels in the request's language)."""
    attrs: dict[str, Any] = {}
    if form_field.show_on:
        attrs["data-show-on"] = _conditions(form_field.show_on)
    common: dict[str, Any] = {
        "label": _text(form_field.label),
        "help_text": _text(form_field.help),
        "required": form_field.required,
    }
    if form_field.type == "switch":
        return SchemaBooleanField(
            widget=forms.CheckboxInput(attrs), initial=form_field.default is True, **common
        )
    if form_field.type in {"select", "radio"}:
        choices = [(o.value, _text(o.label)) for o in form_field.options]
        if form_field.type == "select" and not form_field.required:
            choices.insert(0, ("", "—"))
        widget_class = SchemaSelect if form_field.type == "select" else SchemaRadioSelect
        widget = type(
            widget_class.__name__,
            (widget_class,),
            {
                "option_show_on": {
                    o.value: _conditions(o.show_on) for o in form_field.options if o.show_on
                }
            },
        )(attrs)
        initial = form_field.default if isinstance(form_field.default, str) else None
        return SchemaChoiceField(choices=choices, widget=widget, initial=initial, **common)
    if form_field.placeholder:
        attrs["placeholder"] = _text(form_field.placeholder)
    if form_field.is_secret:
        attrs["autocomplete"] = "new-password"
        widget: forms.Widget = SecretHintInput(attrs)
    else:
        attrs["autocomplete"] = "off"
        widget = forms.TextInput(attrs)
    initial = form_field.default if isinstance(form_field.default, str) else None
    return SchemaCharField(
        max_length=form_field.max_length, widget=widget, initial=initial, **common
    )


# --- The base form ---------------------------------------------------------------------------

RESHAPED = _("The form changed with your choice: fill in the fields it shows now, then save.")
SECRETS_NOTE = _(
    "Secrets are stored encrypted and shown only as a masked hint: leave a hint as it is to keep "
    "the secret. Saving queues a check of the values."
)

Fieldsets = list[tuple[Any, dict[str, Any]]]


class ServiceForm(forms.ModelForm):
    """A form saved by a service while it validates (see the module docstring). Subclasses are
    built per request (`_build`) with the context below, and implement `save_through_service`."""

    operator: ClassVar[AbstractBaseUser]
    workspace: ClassVar[Tenant | None] = None  # fixed (a change page) or chosen first (add)
    schema: ClassVar[tuple[FormField, ...]] = ()  # the manifest form shown, if any
    model_type_fixed: ClassVar[str] = ""  # the model type of __model_type show_on, when fixed
    shape: ClassVar[dict[str, str]] = {}  # the choices this form was built for
    error_fields: ClassVar[dict[str, str]] = {}  # a service's field name -> this form's
    admin_fieldsets: ClassVar[Fieldsets] = []
    admin_readonly: ClassVar[list[str]] = []

    form_shape = forms.CharField(required=False, widget=FixedHiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.saved: Any = None
        shape_field = self.fields["form_shape"]
        shape_field.initial = shape_field.widget.fixed = urlencode(sorted(self.shape.items()))
        if self.model_type_fixed:
            shape_field.widget.attrs["data-model-type"] = self.model_type_fixed
        instance = self.instance
        if isinstance(instance, CheckedConfig) and instance.pk:
            for name, value in credentials.shown(instance).items():
                if name in self.fields:
                    self.initial.setdefault(name, value)
            for form_field in self.schema:
                if form_field.is_secret:
                    hint = instance.masked.get(form_field.variable, "")
                    self.fields[form_field.variable].widget.hint = hint

    def values(self) -> dict[str, Any]:
        """The schema fields' values, for the service. Fields hidden by show_on are disabled in
        the page, so absent ("" or False here): the service skips what does not show."""
        return {
            f.variable: self.cleaned_data[f.variable]
            for f in self.schema
            if self.cleaned_data.get(f.variable) is not None
        }

    def schema_changed(self) -> bool:
        return any(f.variable in self.changed_data for f in self.schema)

    def chosen_tenant(self) -> Tenant:
        tenant = self.workspace or self.cleaned_data.get("tenant")
        if tenant is None:
            raise errors.NotFound(str(_("Choose a workspace.")))
        return tenant

    def principal(self) -> Principal:
        return operator_principal(self.operator, self.chosen_tenant())

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.data.get("form_shape", "") != self.fields["form_shape"].initial:
            raise forms.ValidationError(RESHAPED, code="reshaped")
        return cleaned

    def _post_clean(self) -> None:
        # No model validation of `instance` here: the service checks, and writes its own rows.
        if self._errors:
            return
        if self.instance.pk and not self.has_changed():
            self.saved = self.instance
            return
        try:
            with transaction.atomic():
                self.saved = self.save_through_service()
        except errors.InvalidInput as exc:
            self._service_errors(exc)
        except (errors.Conflict, errors.NotFound) as exc:
            self.add_error(None, exc.message)

    def _service_errors(self, exc: errors.InvalidInput) -> None:
        fields = getattr(exc, "fields", None) or {}
        for name, messages in fields.items():
            target = self.error_fields.get(name, name)
            if target in self.fields and not self.fields[target].widget.is_hidden:
                self.add_error(target, list(messages))
            else:
                self.add_error(None, list(messages))
        if not fields:
            self.add_error(None, exc.message)

    def save_through_service(self) -> Any:
        raise NotImplementedError


def _build(base: type[ServiceForm], model_class: type, /, **attrs: Any) -> type[ServiceForm]:
    """A form class for this request: `attrs` holds its context and its declared fields."""
    meta = type("Meta", (), {"model": model_class, "fields": []})
    return type(base.__name__, (base,), {"Meta": meta, **attrs})


def _check_section(readonly: list[str]) -> tuple[Any, dict[str, Any]]:
    return (_("Check"), {"fields": readonly})


# --- Choices ---------------------------------------------------------------------------------


def provider_label(manifest: ProviderManifest) -> str:
    return f"{_text(manifest.label)} ({manifest.provider})"


def model_type_label(model_type: str) -> str:
    return str(dict(ModelType.choices).get(model_type, model_type))


def _tenant_field(*, reshapes: bool) -> forms.ModelChoiceField:
    """The workspace, chosen first; the add page reloads (or carries it along) when it changes."""
    return forms.ModelChoiceField(
        queryset=Tenant.objects.order_by("name"),
        label=_("Workspace"),
        widget=forms.Select(attrs={"data-reload" if reshapes else "data-carry": ""}),
    )


def _choice(label: Any, choices: Iterable[tuple[str, str]], *, reshapes: bool) -> forms.Field:
    attrs = {"data-reload": ""} if reshapes else {}
    return forms.ChoiceField(
        label=label, choices=[("", "—"), *choices], widget=forms.Select(attrs=attrs)
    )


def _tenant_from(value: str) -> Tenant | None:
    return Tenant.objects.filter(pk=int(value)).first() if value.isdigit() else None


def _models(tenant: Tenant, manifest: ProviderManifest) -> list[selectors.ModelView]:
    """A provider's models in a workspace (no Redis round trip: cool-downs are not shown)."""
    return list(selectors.iter_models(manifest, selectors.workspace_state(tenant=tenant)))


def _model_view(tenant: Tenant, provider: str, model_type: str, model: str) -> selectors.ModelView:
    return selectors.model_get(
        tenant=tenant, provider=provider, model_key=selectors.model_id(model_type, model)
    )


def _pair(value: str) -> tuple[str, str]:
    """ "provider/model" (a model name may hold "/"; a provider key never does)."""
    provider, _sep, model = value.partition("/")
    return provider, model


def _model_choices(views: Iterable[selectors.ModelView]) -> list[tuple[str, str]]:
    catalog = selectors.catalog()
    choices = []
    for view in views:
        manifest = catalog.get(view.provider)
        provider = _text(manifest.label) if manifest else view.provider
        choices.append((f"{view.provider}/{view.model}", f"{provider} · {view.model}"))
    return choices


def _schema_fields(fields: Iterable[FormField]) -> dict[str, forms.Field]:
    return {f.variable: schema_field(f) for f in fields}


def _manifest(provider: str) -> ProviderManifest | None:
    return selectors.catalog().get(provider) if provider else None


# --- Provider credentials --------------------------------------------------------------------


class CredentialForm(ServiceForm):
    manifest: ClassVar[ProviderManifest | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("name", self.instance.name)

    def save_through_service(self) -> Any:
        if self.manifest is None:
            raise errors.NotFound(str(_("Choose a provider.")))
        principal = self.principal()
        credential = self.instance
        name = self.cleaned_data.get("name", "")
        if credential.pk is None:
            credential = services.credential_create(
                tenant=self.chosen_tenant(),
                provider=self.manifest.provider,
                name=name,
                values=self.values(),
                actor=principal,
            )
        elif self.schema_changed() or "name" in self.changed_data:
            credential = services.credential_update(
                credential=credential,
                values=self.values(),
                name=name,
                partial=False,
                actor=principal,
            )
        if self.cleaned_data.get("make_active") and not credential.is_active:
            credential = services.credential_activate(credential=credential, actor=principal)
        return credential


def credential_form(*, operator: AbstractBaseUser, obj: Any, source: Any) -> type[ServiceForm]:
    """Add: workspace, then provider (which shapes the form), then name and the provider's
    credential form. Change: name, the form with hints, and activation."""
    attrs: dict[str, Any] = {"operator": operator}
    if obj is not None:
        manifest = _manifest(obj.provider)
        attrs.update(workspace=obj.tenant)
        head = ["tenant", "provider_name", "name", "is_active", "make_active"]
        readonly = ["tenant", "provider_name", "is_active"]
    else:
        manifest = _manifest(source.get("provider", ""))
        if manifest is not None and not manifest.provider_credential_schema:
            manifest = None
        attrs.update(
            tenant=_tenant_field(reshapes=False),
            provider=_choice(
                _("Provider"),
                [
                    (m.provider, provider_label(m))
                    for m in selectors.catalog()
                    if m.provider_credential_schema
                ],
                reshapes=True,
            ),
            shape={"provider": manifest.provider if manifest else ""},
        )
        head, readonly = ["tenant", "provider", "name", "make_active"], []
    schema = manifest.provider_credential_schema if manifest else ()
    attrs.update(
        manifest=manifest,
        schema=schema,
        name=forms.CharField(
            label=_("Credential name"),
            max_length=100,
            required=False,
            help_text=_("“Default” when left empty."),
        ),
        make_active=forms.BooleanField(
            label=_("Make it the active credential"),
            required=False,
            help_text=_("A provider's first credential is made active anyway."),
        ),
        **_schema_fields(schema),
    )
    if obj is not None and obj.is_active:
        head.remove("make_active")
    fieldsets: Fieldsets = [(None, {"fields": [*head, "form_shape"]})]
    if schema:
        fieldsets.append(
            (
                _("Credentials"),
                {"fields": [f.variable for f in schema], "description": SECRETS_NOTE},
            )
        )
    if obj is not None:
        check = [
            "status_badge",
            "last_error",
            "last_checked",
            "created_by",
            "created_at",
            "updated_at",
        ]
        fieldsets.append(_check_section(check))
        readonly += check
    attrs.update(admin_fieldsets=fieldsets, admin_readonly=readonly)
    return _build(CredentialForm, ProviderCredential, **attrs)


# --- Custom models ---------------------------------------------------------------------------


class CustomModelForm(ServiceForm):
    manifest: ClassVar[ProviderManifest | None] = None

    def save_through_service(self) -> Any:
        if self.manifest is None:
            raise errors.NotFound(str(_("Choose a provider.")))
        if self.instance.pk is None:
            return services.custom_model_create(
                tenant=self.chosen_tenant(),
                provider=self.manifest.provider,
                model=self.cleaned_data["model"],
                model_type=self.cleaned_data["model_type"],
                values=self.values(),
                actor=self.principal(),
            )
        return services.custom_model_update(
            custom=self.instance, values=self.values(), partial=False, actor=self.principal()
        )


def custom_model_form(*, operator: AbstractBaseUser, obj: Any, source: Any) -> type[ServiceForm]:
    """Add: workspace, then a customizable provider (which shapes the form), then model type,
    name and the provider's model form. Change: the model form, with hints."""
    attrs: dict[str, Any] = {"operator": operator}
    if obj is not None:
        manifest = _manifest(obj.provider)
        attrs.update(workspace=obj.tenant, model_type_fixed=obj.model_type)
        head = ["tenant", "provider_name", "model_type", "model"]
        readonly = list(head)
    else:
        manifest = _manifest(source.get("provider", ""))
        if manifest is not None and manifest.model_credential_schema is None:
            manifest = None
        customizable = [m for m in selectors.catalog() if m.model_credential_schema is not None]
        types = manifest.supported_model_types if manifest else ()
        model_schema = manifest.model_credential_schema if manifest else None
        attrs.update(
            tenant=_tenant_field(reshapes=False),
            provider=_choice(
                _("Provider"),
                [(m.provider, provider_label(m)) for m in customizable],
                reshapes=True,
            ),
            model_type=forms.ChoiceField(
                label=_("Model type"), choices=[(t, model_type_label(t)) for t in types]
            ),
            model=forms.CharField(
                label=_text(model_schema.model_label) if model_schema else _("Model"),
                max_length=255,
                widget=forms.TextInput(
                    attrs={"placeholder": _text(model_schema.model_placeholder)}
                    if model_schema and model_schema.model_placeholder
                    else {}
                ),
            ),
            shape={"provider": manifest.provider if manifest else ""},
        )
        head, readonly = ["tenant", "provider", "model_type", "model"], []
    schema = (
        manifest.model_credential_schema.fields
        if manifest and manifest.model_credential_schema
        else ()
    )
    attrs.update(manifest=manifest, schema=schema, **_schema_fields(schema))
    fieldsets: Fieldsets = [(None, {"fields": [*head, "form_shape"]})]
    if schema:
        fieldsets.append(
            (
                _("Credentials"),
                {"fields": [f.variable for f in schema], "description": SECRETS_NOTE},
            )
        )
    if obj is not None:
        check = ["status_badge", "last_error", "last_checked", "check_details", "created_at"]
        fieldsets.append(_check_section(check))
        readonly += check
    attrs.update(admin_fieldsets=fieldsets, admin_readonly=readonly)
    return _build(CustomModelForm, CustomModel, **attrs)


# --- Load-balancing entries ------------------------------------------------------------------


class LoadBalancingEntryForm(ServiceForm):
    view: ClassVar[selectors.ModelView | None] = None
    error_fields: ClassVar[dict[str, str]] = {"credential_id": "credential"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("weight", self.instance.weight)
            self.initial.setdefault("enabled", self.instance.enabled)

    def save_through_service(self) -> Any:
        if self.view is None:
            raise errors.NotFound(str(_("Choose one of the workspace's models.")))
        tenant = self.chosen_tenant()
        # The model's state now (the form was built from a snapshot).
        view = _model_view(tenant, self.view.provider, self.view.model_type, self.view.model)
        if self.instance.pk is None:
            named = self.cleaned_data.get("credential") or ""
            return services.lb_entry_create(
                tenant=tenant,
                view=view,
                name=self.cleaned_data.get("name", ""),
                credential_id=int(named) if named else None,
                values=None if named else self.values(),
                weight=self.cleaned_data["weight"],
                enabled=self.cleaned_data["enabled"],
                actor=self.principal(),
            )
        return services.lb_entry_update(
            entry=self.instance,
            view=view,
            weight=self.cleaned_data["weight"],
            enabled=self.cleaned_data["enabled"],
            values=self.values() if self.schema_changed() else None,
            actor=self.principal(),
        )


def _lb_schema(view: selectors.ModelView | None) -> tuple[FormField, ...]:
    if view is None:
        return ()
    manifest = selectors.manifest_get(view.provider)
    if view.source == "custom":
        return manifest.model_credential_schema.fields if manifest.model_credential_schema else ()
    return manifest.provider_credential_schema


def lb_entry_form(*, operator: AbstractBaseUser, obj: Any, source: Any) -> type[ServiceForm]:
    """Add: workspace, provider and model (which shape the form), then a named credential of the
    provider or credentials of its own, weight and switch. Change: weight, switch, and its own
    credentials (with hints) if it has them."""
    attrs: dict[str, Any] = {"operator": operator}
    weight = forms.IntegerField(label=_("Weight"), initial=1, help_text=_("From 1 to 100."))
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    if obj is not None:
        view = next(
            (
                m
                for m in _models(obj.tenant, selectors.manifest_get(obj.provider))
                if (m.model_type, m.model) == (obj.model_type, obj.model)
            ),
            None,
        )
        schema = _lb_schema(view) if obj.credential_id is None else ()
        attrs.update(workspace=obj.tenant, view=view, model_type_fixed=obj.model_type)
        head = ["tenant", "provider_name", "model_type", "model", "name", "credential"]
        readonly = list(head)
        head += ["weight", "enabled", "cooling_down"]
        readonly.append("cooling_down")
    else:
        tenant = _tenant_from(source.get("tenant", ""))
        manifest = _manifest(source.get("provider", ""))
        models = _models(tenant, manifest) if tenant and manifest else []
        view = next((m for m in models if m.id == source.get("model", "")), None)
        named = (
            selectors.credential_list(tenant=tenant, provider=manifest.provider)
            if tenant and manifest
            else []
        )
        schema = _lb_schema(view)
        attrs.update(
            view=view,
            model_type_fixed=view.model_type if view else "",
            tenant=_tenant_field(reshapes=True),
            provider=_choice(
                _("Provider"),
                [(m.provider, provider_label(m)) for m in selectors.catalog()],
                reshapes=True,
            ),
            model=_choice(
                _("Model"),
                [(m.id, f"{m.model} · {model_type_label(m.model_type)}") for m in models],
                reshapes=True,
            ),
            name=forms.CharField(label=_("Name"), max_length=100, required=False),
            credential=forms.ChoiceField(
                label=_("Credential"),
                required=False,
                choices=[
                    ("", _("Its own credentials (below)")),
                    *((str(c.pk), c.name) for c in named),
                ],
                help_text=_("A named credential of the provider, or the form below."),
            ),
            shape={
                "tenant": str(tenant.pk) if tenant else "",
                "provider": manifest.provider if manifest else "",
                "model": view.id if view else "",
            },
        )
        head = ["tenant", "provider", "model", "name", "credential", "weight", "enabled"]
        readonly = []
    attrs.update(schema=schema, weight=weight, enabled=enabled, **_schema_fields(schema))
    fieldsets: Fieldsets = [(None, {"fields": [*head, "form_shape"]})]
    if schema:
        fieldsets.append(
            (
                _("Credentials of its own"),
                {"fields": [f.variable for f in schema], "description": SECRETS_NOTE},
            )
        )
    if obj is not None:
        check = ["status_badge", "last_error", "last_checked", "created_at"]
        fieldsets.append(_check_section(check))
        readonly += check
    attrs.update(admin_fieldsets=fieldsets, admin_readonly=readonly)
    return _build(LoadBalancingEntryForm, LoadBalancingEntry, **attrs)


# --- Model settings: switches, alias, fallbacks ----------------------------------------------

FALLBACK_FIELDS = [f"fallback_{n}" for n in range(1, services.MAX_FALLBACKS + 1)]


class ModelSettingForm(ServiceForm):
    view: ClassVar[selectors.ModelView | None] = None
    error_fields: ClassVar[dict[str, str]] = {"fallbacks": "", "alias": "alias"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        setting = self.instance
        if setting.pk:
            for name in ("enabled", "load_balancing_enabled", "alias"):
                self.initial.setdefault(name, getattr(setting, name))
            for name, item in zip(FALLBACK_FIELDS, setting.fallbacks, strict=False):
                self.initial.setdefault(name, f"{item['provider']}/{item['model']}")

    def save_through_service(self) -> Any:
        if self.view is None:
            raise errors.NotFound(str(_("Choose one of the workspace's models.")))
        tenant = self.chosen_tenant()
        view = _model_view(tenant, self.view.provider, self.view.model_type, self.view.model)
        chain = []
        for name in FALLBACK_FIELDS:
            provider, model = _pair(self.cleaned_data.get(name) or "")
            if provider and model:
                chain.append({"provider": provider, "model": model})
        return services.model_setting_update(
            tenant=tenant,
            view=view,
            enabled=self.cleaned_data["enabled"],
            load_balancing_enabled=self.cleaned_data["load_balancing_enabled"],
            fallbacks=chain,
            alias=self.cleaned_data.get("alias", ""),
            actor=self.principal(),
        )


def _fallback_choices(
    tenant: Tenant, view: selectors.ModelView, current: Iterable[dict[str, str]]
) -> list[tuple[str, str]]:
    """Usable models of the same type (any provider), and those the chain names already."""
    usable = selectors.available_models(tenant=tenant, model_type=view.model_type)
    choices = _model_choices(
        m for m in usable if (m.provider, m.model) != (view.provider, view.model)
    )
    offered = {value for value, _label in choices}
    for item in current:
        value = f"{item['provider']}/{item['model']}"
        if value not in offered:
            choices.append((value, value))
    return choices


def model_setting_form(*, operator: AbstractBaseUser, obj: Any, source: Any) -> type[ServiceForm]:
    """Add: workspace, provider and model (which shape the form). Both: the model's switches, its
    gateway alias, and its fallback chain (tried in order)."""
    attrs: dict[str, Any] = {"operator": operator}
    if obj is not None:
        tenant = obj.tenant
        view = next(
            (
                m
                for m in _models(tenant, selectors.manifest_get(obj.provider))
                if (m.model_type, m.model) == (obj.model_type, obj.model)
            ),
            None,
        )
        attrs.update(workspace=tenant, view=view)
        head = ["tenant", "provider_name", "model_type", "model"]
        readonly = [*head, "updated_at"]
        current = obj.fallbacks
    else:
        tenant = _tenant_from(source.get("tenant", ""))
        manifest = _manifest(source.get("provider", ""))
        models = _models(tenant, manifest) if tenant and manifest else []
        view = next((m for m in models if m.id == source.get("model", "")), None)
        attrs.update(
            view=view,
            tenant=_tenant_field(reshapes=True),
            provider=_choice(
                _("Provider"),
                [(m.provider, provider_label(m)) for m in selectors.catalog()],
                reshapes=True,
            ),
            model=_choice(
                _("Model"),
                [(m.id, f"{m.model} · {model_type_label(m.model_type)}") for m in models],
                reshapes=True,
            ),
            shape={
                "tenant": str(tenant.pk) if tenant else "",
                "provider": manifest.provider if manifest else "",
                "model": view.id if view else "",
            },
        )
        head, readonly, current = ["tenant", "provider", "model"], [], []
    choices = _fallback_choices(tenant, view, current) if tenant and view else []
    for position, name in enumerate(FALLBACK_FIELDS, start=1):
        attrs[name] = forms.ChoiceField(
            label=_("Fallback %(n)d") % {"n": position},
            required=False,
            choices=[("", "—"), *choices],
        )
    attrs.update(
        enabled=forms.BooleanField(label=_("Enabled"), required=False, initial=True),
        load_balancing_enabled=forms.BooleanField(label=_("Load balancing"), required=False),
        alias=forms.CharField(
            label=_("Gateway alias"),
            required=False,
            max_length=64,
            help_text=_("Another name for this model in the OpenAI-compatible /v1 API."),
        ),
    )
    fieldsets: Fieldsets = [
        (None, {"fields": [*head, "enabled", "load_balancing_enabled", "alias", "form_shape"]}),
        (
            _("Fallbacks"),
            {
                "fields": FALLBACK_FIELDS,
                "description": _(
                    "Models of the same type tried in this order when every credential of this "
                    "one fails with an error another backend could fix."
                ),
            },
        ),
    ]
    if obj is not None:
        fieldsets.append((None, {"fields": ["updated_at"]}))
    attrs.update(admin_fieldsets=fieldsets, admin_readonly=readonly)
    return _build(ModelSettingForm, ModelSetting, **attrs)


# --- Default models --------------------------------------------------------------------------

DEFAULT_TYPES = [t for t in ModelType.values if t != ModelType.MODERATION]


class DefaultModelForm(ServiceForm):
    model_type_chosen: ClassVar[str] = ""
    error_fields: ClassVar[dict[str, str]] = {"model": "choice"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("choice", f"{self.instance.provider}/{self.instance.model}")

    def save_through_service(self) -> Any:
        provider, model = _pair(self.cleaned_data["choice"])
        return services.default_model_set(
            tenant=self.chosen_tenant(),
            model_type=self.model_type_chosen,
            provider=provider,
            model=model,
            actor=self.principal(),
        )


def default_model_form(*, operator: AbstractBaseUser, obj: Any, source: Any) -> type[ServiceForm]:
    """Add: workspace and model type (which shape the form), then one of the workspace's usable
    models of that type. Change: the model."""
    attrs: dict[str, Any] = {"operator": operator}
    if obj is not None:
        tenant, model_type = obj.tenant, obj.model_type
        attrs.update(workspace=tenant)
        head = ["tenant", "model_type"]
        readonly = [*head, "updated_at"]
    else:
        tenant = _tenant_from(source.get("tenant", ""))
        model_type = source.get("model_type", "")
        model_type = model_type if model_type in DEFAULT_TYPES else ""
        attrs.update(
            tenant=_tenant_field(reshapes=True),
            model_type=_choice(
                _("Model type"), [(t, model_type_label(t)) for t in DEFAULT_TYPES], reshapes=True
            ),
            shape={"tenant": str(tenant.pk) if tenant else "", "model_type": model_type},
        )
        head, readonly = ["tenant", "model_type"], []
    usable = (
        selectors.available_models(tenant=tenant, model_type=model_type)
        if tenant and model_type
        else []
    )
    attrs.update(
        model_type_chosen=model_type,
        choice=forms.ChoiceField(
            label=_("Model"),
            choices=[("", "—"), *_model_choices(usable)],
            help_text=_("Enabled models of this type from the workspace's configured providers."),
        ),
    )
    fieldsets: Fieldsets = [(None, {"fields": [*head, "choice", "form_shape"]})]
    if obj is not None:
        fieldsets[0][1]["fields"].append("updated_at")
    attrs.update(admin_fieldsets=fieldsets, admin_readonly=readonly)
    return _build(DefaultModelForm, DefaultModel, **attrs)
