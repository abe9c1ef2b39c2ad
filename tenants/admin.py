"""Operators' admin for workspaces, members and API keys.

Key material never shows: a tenant's wrapped private key and an API key's hash are not fields here.
A new API key is shown once, on the page that answers its creation, and never stored in a message
or the session. Member changes made here are audited as the members page's are, naming the operator.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from tenants import audit, crypto, services
from tenants.models import ApiKey, ApiKeyScope, Invitation, Membership, Role, Tenant

LAST_OWNER = _("A workspace keeps at least one owner: make another member owner first.")


class MembershipForm(forms.ModelForm):
    """Refuses to demote or move the last owner of a workspace (as the members page does)."""

    class Meta:
        model = Membership
        fields = ["user", "tenant", "role"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        stored = Membership.objects.filter(pk=self.instance.pk).first()
        moved = cleaned.get("tenant") not in (None, stored and stored.tenant)
        demoted = cleaned.get("role") != Role.OWNER
        if stored is not None and services.is_last_owner(stored) and (moved or demoted):
            raise forms.ValidationError(LAST_OWNER)
        return cleaned


class MembershipFormSet(forms.BaseInlineFormSet):
    """A workspace's members edited together: at least one owner remains."""

    def clean(self) -> None:
        super().clean()
        had_owner = (
            self.instance.pk is not None
            and Membership.objects.filter(tenant=self.instance, role=Role.OWNER).exists()
        )
        owners = [
            form
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("role") == Role.OWNER
        ]
        if had_owner and not owners:
            raise forms.ValidationError(LAST_OWNER)


def _audit_member(
    request: HttpRequest, membership: Membership, action: str, changes: dict[str, Any]
) -> None:
    audit.record(
        tenant=membership.tenant,
        user=request.user,
        action=action,
        target=membership.user.get_username(),
        changes=changes,
    )


def _audit_member_change(request: HttpRequest, before: Membership, after: Membership) -> None:
    """A saved change of a membership, in the members page's terms: moved to another workspace or
    account (removed there, added here), or its role changed."""
    if (before.tenant_id, before.user_id) != (after.tenant_id, after.user_id):
        _audit_member(request, before, "member.remove", {"role": before.role})
        _audit_member(request, after, "member.add", {"role": after.role})
    elif before.role != after.role:
        _audit_member(request, after, "member.role", {"role": [before.role, after.role]})


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "key_version", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["key_fingerprint", "key_version", "created_at"]
    inlines = [MembershipInline]
    actions = ["rotate_key_pair"]

    def get_fields(self, request: HttpRequest, obj: Tenant | None = None) -> list[str]:
        return ["name", "slug"] if obj is None else ["name", "slug", *self.readonly_fields]

    @admin.display(description=_("public key fingerprint (SHA-256)"))
    def key_fingerprint(self, obj: Tenant) -> str:
        return hashlib.sha256(obj.public_key.encode()).hexdigest()[:32]

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new workspace needs its key pair: made by the service, never by a bare save().
        created = services.tenant_create(name=obj.name, slug=obj.slug)
        obj.pk = created.pk
        obj.refresh_from_db()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        stored = Membership.objects.filter(
            pk__in=[f.instance.pk for f in formset.forms if f.instance.pk]
        ).select_related("tenant", "user")
        # Keyed by the form's instance: a deleted one has lost its pk once saved.
        by_pk = {m.pk: m for m in stored}
        before = {id(f.instance): by_pk.get(f.instance.pk) for f in formset.forms}
        super().save_formset(request, form, formset, change)
        for membership in formset.new_objects:
            _audit_member(request, membership, "member.add", {"role": membership.role})
        for membership, _fields in formset.changed_objects:
            _audit_member_change(request, before[id(membership)], membership)
        for membership in formset.deleted_objects:
            was = before[id(membership)]
            _audit_member(request, was, "member.remove", {"role": was.role})

    @admin.action(description=_("Rotate key pair"), permissions=["change"])
    def rotate_key_pair(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        """A new key pair for each workspace, every secret re-encrypted under it. Each workspace
        rotates in its own transaction: one that fails keeps its old key pair and secrets."""
        rotated = secrets = 0
        for tenant in queryset:
            try:
                secrets += services.tenant_rotate_keys(tenant=tenant)
            except crypto.CryptoError as exc:
                # CryptoError messages never contain key material.
                self.message_user(
                    request,
                    _(
                        "The key pair of %(tenant)s was not rotated, and nothing of it changed: "
                        "%(error)s"
                    )
                    % {"tenant": tenant, "error": exc},
                    messages.ERROR,
                )
            else:
                rotated += 1
        if rotated:
            self.message_user(
                request,
                _("Rotated the key pair of %(n)d workspace(s); re-encrypted %(secrets)d secret(s).")
                % {"n": rotated, "secrets": secrets},
                messages.SUCCESS,
            )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "user__email", "tenant__name"]
    autocomplete_fields = ["user", "tenant"]
    form = MembershipForm
    actions = ["delete_selected"]

    def has_delete_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        if obj is not None and services.is_last_owner(obj):
            return False  # no Delete link on its page
        return super().has_delete_permission(request, obj)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The last owner's delete page says why it cannot be deleted, not a bare 403."""
        membership = self.get_object(request, unquote(object_id))
        if membership is not None and services.is_last_owner(membership):
            self.message_user(request, LAST_OWNER, messages.ERROR)
            return redirect("admin:tenants_membership_change", membership.pk)
        return super().delete_view(request, object_id, extra_context)

    @admin.action(description=_("Delete selected %(verbose_name_plural)s"), permissions=["delete"])
    def delete_selected(
        self, request: HttpRequest, queryset: QuerySet[Membership]
    ) -> HttpResponse | None:
        """Django's delete action, refused at once (with the reason) when it would take a
        workspace's last owner, instead of its "no permission to delete" page."""
        if any(services.is_last_owner(m) for m in queryset.select_related("tenant")):
            self.message_user(request, LAST_OWNER, messages.ERROR)
            return None
        return admin_actions.delete_selected(self, request, queryset)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        before = (
            Membership.objects.select_related("tenant", "user").get(pk=obj.pk) if change else None
        )
        super().save_model(request, obj, form, change)
        if before is None:
            _audit_member(request, obj, "member.add", {"role": obj.role})
        else:
            _audit_member_change(request, before, obj)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        super().delete_model(request, obj)
        _audit_member(request, obj, "member.remove", {"role": obj.role})

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        """One by one: a workspace's last owner is kept (and the operator told)."""
        kept = 0
        for membership in queryset.select_related("tenant", "user"):
            if services.is_last_owner(membership):
                kept += 1
            else:
                self.delete_model(request, membership)
        if kept:
            self.message_user(request, LAST_OWNER, messages.WARNING)


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "tenant",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "tenant__name"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return ["tenant", "name", "scopes"]
        return ["tenant", "name", "scopes", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return self.readonly_fields if obj is None else ["tenant", "scopes", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        api_key, raw_key = services.api_key_create(
            tenant=obj.tenant,
            name=obj.name,
            scopes=form.cleaned_data["scopes"],
            created_by=request.user,
        )
        obj.pk = api_key.pk
        obj.refresh_from_db()
        request._new_api_key = raw_key  # read by response_add, on this same request only

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "api_key": obj,
            "raw_key": request._new_api_key,
            "title": _("Copy the new API key now"),
        }
        # Admin views are never_cache: the page with the key is not stored by the browser.
        return TemplateResponse(request, "admin/tenants/apikey/created.html", context)

    @admin.action(description=_("Revoke selected API keys"))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
        self.message_user(request, _("Revoked %(n)d key(s).") % {"n": queryset.count()})


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-only: invitations are sent from the members page, where the link goes by e-mail (the
    token's hash is not shown here)."""

    list_display = ["email", "tenant", "role", "sent_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role"]
    search_fields = ["email", "tenant__name"]
    list_select_related = ["tenant"]
    fields = [
        "tenant",
        "email",
        "role",
        "invited_by",
        "created_at",
        "sent_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
