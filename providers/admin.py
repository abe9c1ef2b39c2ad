"""Operators' admin for provider settings.

Secrets never show: the `config` (sealed envelopes) and `masked` fields are not fields of any form
here; form values appear only through `credentials.shown`, with secrets as their obfuscated hints.
Credentials and custom models are made and changed through the product, which checks the forms;
the admin shows them, re-validates them, and lets operators adjust what needs no form: quota
limits, load-balancing weights, model switches. Those writes go through the services (or write an
audit entry) like the product's own.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from config import errors
from providers import balancing, credentials, selectors, services, validation
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

# Shown on every page of a checked config; `config` and `masked` are never among them.
_CHECK_FIELDS = ["status", "last_error", "validated_at", "form_values", "created_at", "updated_at"]


def _pretty_json(value: Any) -> str:
    if not value:
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by whoever has the view permission; nobody adds, changes or deletes here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CheckedConfigAdmin(admin.ModelAdmin):
    """Credentials, custom models, load-balancing entries: status and obfuscated values only.

    Rows are created (and their forms checked) by the product, so there is no add here, and no
    delete (the product's delete also hands over the active credential and prunes defaults)."""

    exclude = ["config", "masked"]
    list_select_related = ["tenant"]
    actions = ["revalidate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revalidate_permission(self, request: HttpRequest) -> bool:
        # The model's change permission, even where the change page itself is view-only.
        return admin.ModelAdmin.has_change_permission(self, request)

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


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(CheckedConfigAdmin):
    list_display = ["name", "tenant", "provider", "is_active", "status", "validated_at"]
    list_filter = ["status", "provider", "is_active"]
    search_fields = ["name", "provider", "tenant__name"]
    fields = ["tenant", "provider", "name", "is_active", "created_by", *_CHECK_FIELDS]
    readonly_fields = fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # renames, new values, activation: through the product, which checks them


@admin.register(CustomModel)
class CustomModelAdmin(CheckedConfigAdmin):
    list_display = ["model", "model_type", "tenant", "provider", "status", "validated_at"]
    list_filter = ["status", "provider", "model_type"]
    search_fields = ["model", "provider", "tenant__name"]
    fields = ["tenant", "provider", "model", "model_type", *_CHECK_FIELDS, "check_details"]
    readonly_fields = fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("details reported by the last check"))
    def check_details(self, obj: CustomModel) -> str:
        return _pretty_json(obj.details)


class LoadBalancingEntryForm(forms.ModelForm):
    class Meta:
        model = LoadBalancingEntry
        fields = ["weight", "enabled"]

    def clean_weight(self) -> int:
        weight = self.cleaned_data["weight"]
        if not 1 <= weight <= 100:
            raise forms.ValidationError(_("Give a weight from 1 to 100."))
        return weight

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        entry = self.instance
        try:
            self.view = selectors.model_get(
                tenant=entry.tenant,
                provider=entry.provider,
                model_key=selectors.model_id(entry.model_type, entry.model),
            )
        except errors.ServiceError as exc:
            raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.register(LoadBalancingEntry)
class LoadBalancingEntryAdmin(CheckedConfigAdmin):
    form = LoadBalancingEntryForm
    list_display = [
        "name",
        "model",
        "tenant",
        "provider",
        "weight",
        "enabled",
        "status",
        "validated_at",
    ]
    list_filter = ["status", "provider", "model_type", "enabled"]
    search_fields = ["name", "model", "provider", "tenant__name"]
    fields = [
        "tenant",
        "provider",
        "model_type",
        "model",
        "name",
        "credential",
        "weight",
        "enabled",
        "cooling_down",
        *_CHECK_FIELDS,
    ]
    readonly_fields = [f for f in fields if f not in ("weight", "enabled")]

    @admin.display(description="Cooling down")
    def cooling_down(self, obj: LoadBalancingEntry) -> str:
        key = balancing.lb_entry_key(obj.pk)
        found = balancing.cooldowns(obj.tenant_id, [key]).get(key)
        return f"{found.reason} until {found.ends_at:%Y-%m-%d %H:%M:%S} UTC" if found else "—"

    def save_model(
        self, request: HttpRequest, obj: LoadBalancingEntry, form: Any, change: bool
    ) -> None:
        services.lb_entry_update(
            entry=obj,
            view=form.view,
            weight=form.cleaned_data["weight"],
            enabled=form.cleaned_data["enabled"],
            actor=None,
        )


class ModelSettingForm(forms.ModelForm):
    class Meta:
        model = ModelSetting
        fields = ["enabled", "load_balancing_enabled"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        setting = self.instance
        try:
            self.view = selectors.model_get(
                tenant=setting.tenant,
                provider=setting.provider,
                model_key=selectors.model_id(setting.model_type, setting.model),
            )
        except errors.ServiceError as exc:
            raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.register(ModelSetting)
class ModelSettingAdmin(admin.ModelAdmin):
    """Editable switches; rows appear when the product first changes a model's defaults."""

    form = ModelSettingForm
    list_display = [
        "model",
        "model_type",
        "tenant",
        "provider",
        "enabled",
        "load_balancing_enabled",
        "updated_at",
    ]
    list_filter = ["enabled", "load_balancing_enabled", "provider", "model_type"]
    search_fields = ["model", "provider", "tenant__name"]
    list_select_related = ["tenant"]
    fields = [
        "tenant",
        "provider",
        "model_type",
        "model",
        "enabled",
        "load_balancing_enabled",
        "updated_at",
    ]
    readonly_fields = ["tenant", "provider", "model_type", "model", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ModelSetting, form: Any, change: bool) -> None:
        # Through the service: disabling a model also drops a default that named it.
        services.model_setting_update(
            tenant=obj.tenant,
            view=form.view,
            enabled=form.cleaned_data["enabled"],
            load_balancing_enabled=form.cleaned_data["load_balancing_enabled"],
            actor=None,
        )


@admin.register(DefaultModel)
class DefaultModelAdmin(ReadOnlyAdmin):
    """Read-only: a default must name a usable model, which the product's setter checks."""

    list_display = ["tenant", "model_type", "provider", "model", "updated_at"]
    list_filter = ["model_type", "provider"]
    search_fields = ["model", "provider", "tenant__name"]
    list_select_related = ["tenant"]


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
    list_filter = ["quota_type", "provider"]
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
    list_filter = ["action", "provider"]
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
    list_filter = ["status", "valid", "provider", "model_type", "error_code"]
    search_fields = ["model", "provider", "tenant__name"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
