"""Operators' admin for provider settings: a full settings screen for any workspace.

Credentials, custom models, load-balancing entries, model settings (switches, alias, fallbacks)
and default models are added and changed with the product's own forms: the provider's schema
form generated per request (providers/admin_forms.py), saved through the same services as the
API and the pages, so checks, encryption, validation queueing and the audit entry (naming the
operator) are the product's. Secrets never show: the sealed `config` and `masked` are not fields
of any form; secret inputs carry only the obfuscated hint, and Django's change messages name the
fields changed, never their values. Quota limits are adjusted here too; validation jobs, the audit
log and invocations are read-only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from config import errors
from providers import admin_forms, balancing, credentials, selectors, services, validation
from providers.models import (
    AuditLogEntry,
    CheckedConfig,
    CustomModel,
    DefaultModel,
    LoadBalancingEntry,
    ModelSetting,
    ProviderCredential,
    ProviderQuota,
    ValidationJob,
)
from tenants.principals import Principal


def _pretty_json(value: Any) -> str:
    if not value:
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


class ProviderFilter(admin.SimpleListFilter):
    """The change lists' provider filter, naming each provider as the forms do ("OpenAI
    (openai)"), not by its bare key."""

    title = _("provider")
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        keys = model_admin.get_queryset(request).order_by().values_list("provider", flat=True)
        catalog = selectors.catalog()
        return [
            (key, admin_forms.provider_label(manifest) if (manifest := catalog.get(key)) else key)
            for key in sorted(set(keys) - {""})
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(provider=self.value()) if self.value() else queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by whoever has the view permission; nobody adds, changes or deletes here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ServiceFormAdmin(admin.ModelAdmin):
    """Add and change pages whose form is built per request (`form_builder`, see
    providers/admin_forms.py) and saved through the services while it validates; deletes go
    through the services too. The operator is the actor of every audit entry."""

    form_builder: Callable[..., type[admin_forms.ServiceForm]]
    list_select_related = ["tenant"]

    class Media:
        js = ["js/admin.js"]
        css = {"all": ["css/admin.css"]}

    def _form(self, request: HttpRequest, obj: Any) -> type[admin_forms.ServiceForm]:
        # Built once per request and object: the page asks for fieldsets, form and read-only names.
        cache = request.__dict__.setdefault("_service_forms", {})
        key = (self.model, obj.pk if obj is not None else None)
        if key not in cache:
            source = request.POST if request.method == "POST" else request.GET
            cache[key] = type(self).form_builder(operator=request.user, obj=obj, source=source)
        return cache[key]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        return self._form(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = self._form(request, obj).admin_fieldsets
        if obj is not None and not self.has_change_permission(request, obj):
            # A viewer sees the values (secrets as hints), not the inputs.
            values = [f for f in ("form_values",) if hasattr(self, f)]
            return [*fieldsets, (_("Form values"), {"fields": values})] if values else fieldsets
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self._form(request, obj).admin_readonly

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        return form.saved  # written by the service while the form validated

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def principal(self, request: HttpRequest, obj: Any) -> Principal:
        return admin_forms.operator_principal(request.user, obj.tenant)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # Rows that go with it (validation jobs, entries) are the service's to delete; their own
        # admins being read-only does not stop an operator who may delete this one.
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset.select_related("tenant"):
            self.delete_model(request, obj)

    @admin.display(description=_("provider"), ordering="provider")
    def provider_name(self, obj: Any) -> str:
        manifest = selectors.catalog().get(obj.provider)
        return admin_forms.provider_label(manifest) if manifest else obj.provider


class CheckedConfigAdmin(ServiceFormAdmin):
    """Credentials, custom models, load-balancing entries: the schema form (secrets as hints),
    their check's status, and a re-validate action."""

    actions = ["revalidate"]

    def has_revalidate_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: CheckedConfig) -> str:
        return format_html(
            '<span class="check-status check-status-{}">{}</span>',
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description=_("last checked"), ordering="validated_at")
    def last_checked(self, obj: CheckedConfig) -> str:
        # Localised, and "-" when never checked, on the change form as in the list.
        return display_for_value(obj.validated_at, self.get_empty_value_display())

    @admin.display(description=_("last error"))
    def error_summary(self, obj: CheckedConfig) -> str:
        return Truncator(obj.last_error).chars(80) if obj.last_error else ""

    @admin.display(description=_("form values (secrets obfuscated)"))
    def form_values(self, obj: CheckedConfig) -> str:
        values = credentials.shown(obj)
        if not values:
            return "-"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td></tr>",
            ((name, "" if value is None else str(value)) for name, value in sorted(values.items())),
        )
        return format_html("<table>{}</table>", rows)

    @admin.action(description=_("Re-validate selected"), permissions=["revalidate"])
    def revalidate(self, request: HttpRequest, queryset: QuerySet[CheckedConfig]) -> None:
        queued = 0
        for target in queryset.select_related("tenant"):
            try:
                # Job and status commit together; the task is sent once they are committed.
                with transaction.atomic():
                    validation.validation_queue(target=target)
            except errors.ServiceError as exc:
                self.message_user(
                    request,
                    _("%(target)s (%(tenant)s) was not re-validated: %(error)s")
                    % {"target": target, "tenant": target.tenant, "error": exc.message},
                    messages.WARNING,
                )
            else:
                queued += 1
        if queued:
            self.message_user(
                request, _("Queued %(n)d validation(s).") % {"n": queued}, messages.SUCCESS
            )


_STATUS_COLUMNS = ["status_badge", "last_checked", "error_summary"]


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(CheckedConfigAdmin):
    form_builder = staticmethod(admin_forms.credential_form)
    list_display = ["name", "tenant", "provider_name", "is_active", *_STATUS_COLUMNS]
    list_filter = ["status", ProviderFilter, "is_active"]
    search_fields = ["name", "provider", "tenant__name"]

    def delete_model(self, request: HttpRequest, obj: ProviderCredential) -> None:
        # The product's delete: the newest other credential takes over; stale defaults go.
        services.credential_delete(credential=obj, actor=self.principal(request, obj))


@admin.register(CustomModel)
class CustomModelAdmin(CheckedConfigAdmin):
    form_builder = staticmethod(admin_forms.custom_model_form)
    list_display = ["model", "model_type", "tenant", "provider_name", *_STATUS_COLUMNS]
    list_filter = ["status", ProviderFilter, "model_type"]
    search_fields = ["model", "provider", "tenant__name"]

    @admin.display(description=_("details reported by the last check"))
    def check_details(self, obj: CustomModel) -> str:
        return _pretty_json(obj.details)

    def delete_model(self, request: HttpRequest, obj: CustomModel) -> None:
        services.custom_model_delete(custom=obj, actor=self.principal(request, obj))


@admin.register(LoadBalancingEntry)
class LoadBalancingEntryAdmin(CheckedConfigAdmin):
    form_builder = staticmethod(admin_forms.lb_entry_form)
    list_display = [
        "name",
        "model",
        "tenant",
        "provider_name",
        "weight",
        "enabled",
        *_STATUS_COLUMNS,
    ]
    list_filter = ["status", ProviderFilter, "model_type", "enabled"]
    search_fields = ["name", "model", "provider", "tenant__name"]

    @admin.display(description=_("cooling down"))
    def cooling_down(self, obj: LoadBalancingEntry) -> str:
        key = balancing.lb_entry_key(obj.pk)
        found = balancing.cooldowns(obj.tenant_id, [key]).get(key)
        return f"{found.reason} until {found.ends_at:%Y-%m-%d %H:%M:%S} UTC" if found else "—"

    def delete_model(self, request: HttpRequest, obj: LoadBalancingEntry) -> None:
        services.lb_entry_delete(entry=obj, actor=self.principal(request, obj))


@admin.register(ModelSetting)
class ModelSettingAdmin(ServiceFormAdmin):
    """A model's switches, gateway alias and fallback chain. A model without a row has the
    defaults (enabled, no load balancing, no fallbacks); adding a row sets them for a model."""

    form_builder = staticmethod(admin_forms.model_setting_form)
    list_display = [
        "model",
        "model_type",
        "tenant",
        "provider_name",
        "enabled",
        "load_balancing_enabled",
        "fallback_chain",
        "alias",
        "updated_at",
    ]
    list_filter = ["enabled", "load_balancing_enabled", ProviderFilter, "model_type"]
    search_fields = ["model", "provider", "alias", "tenant__name"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a row is the model's settings: switch them instead

    @admin.display(description=_("fallbacks"))
    def fallback_chain(self, obj: ModelSetting) -> str:
        return " → ".join(f"{f['provider']}/{f['model']}" for f in obj.fallbacks) or "—"


@admin.register(DefaultModel)
class DefaultModelAdmin(ServiceFormAdmin):
    """A workspace's default model per type: one of its usable models (the service checks)."""

    form_builder = staticmethod(admin_forms.default_model_form)
    list_display = ["tenant", "model_type", "provider_name", "model", "updated_at"]
    list_filter = ["model_type", ProviderFilter]
    search_fields = ["model", "provider", "tenant__name"]

    def delete_model(self, request: HttpRequest, obj: DefaultModel) -> None:
        services.default_model_clear(
            tenant=obj.tenant, model_type=obj.model_type, actor=self.principal(request, obj)
        )


def _provider_choices() -> list[tuple[str, str]]:
    return [(m.provider, f"{m.label.en_US} ({m.provider})") for m in selectors.catalog()]


class ProviderQuotaForm(forms.ModelForm):
    class Meta:
        model = ProviderQuota
        fields = ["tenant", "provider", "quota_type", "limit"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "provider" in self.fields:  # on the add page only
            self.fields["provider"] = forms.ChoiceField(
                label=_("provider"), choices=_provider_choices()
            )

    def clean_limit(self) -> int:
        limit = self.cleaned_data["limit"]
        if limit < -1:
            raise forms.ValidationError(_("Give a number of tokens, or -1 for unlimited."))
        used = self.instance.used if self.instance.pk else 0
        if limit >= 0 and limit < used:
            raise forms.ValidationError(
                _("%(used)d tokens are already used: the limit cannot be lower.") % {"used": used}
            )
        return limit


@admin.register(ProviderQuota)
class ProviderQuotaAdmin(admin.ModelAdmin):
    """Limits are adjustable; `used` only grows through calls. No delete: to lift a quota, set
    its limit to -1."""

    form = ProviderQuotaForm
    list_display = ["tenant", "provider", "quota_type", "used", "limit", "updated_at"]
    list_filter = ["quota_type", ProviderFilter]
    search_fields = ["tenant__name", "provider"]
    list_select_related = ["tenant"]
    autocomplete_fields = ["tenant"]

    def get_fields(self, request: HttpRequest, obj: ProviderQuota | None = None) -> list[str]:
        if obj is None:
            return ["tenant", "provider", "quota_type", "limit"]
        return ["tenant", "provider", "quota_type", "limit", "used", "updated_at"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: ProviderQuota | None = None
    ) -> list[str]:
        if obj is None:
            return []
        return ["tenant", "provider", "quota_type", "used", "updated_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ProviderQuota, form: Any, change: bool) -> None:
        if change:
            # Only the limit: a full save would write back a stale `used` over concurrent calls.
            obj.save(update_fields=["limit", "updated_at"])
        else:
            obj.save()
        AuditLogEntry.objects.create(
            tenant=obj.tenant,
            actor=request.user,
            action="quota.update" if change else "quota.create",
            provider=obj.provider,
            target=obj.quota_type,
            changes={"limit": obj.limit},
        )


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "action", "provider", "target", "actor", "api_key"]
    list_filter = ["action", ProviderFilter]
    search_fields = ["action", "target", "provider", "tenant__name"]
    list_select_related = ["tenant", "actor", "api_key"]
    date_hierarchy = "created_at"


@admin.register(ValidationJob)
class ValidationJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "tenant",
        "provider",
        "model_type",
        "model",
        "status",
        "valid",
        "error_code",
        "latency_ms",
        "attempts",
    ]
    list_filter = ["status", "valid", ProviderFilter, "model_type", "error_code"]
    search_fields = ["model", "provider", "tenant__name"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
