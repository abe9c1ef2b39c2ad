"""Settings > API keys and Settings > Members in the browser.

Plain HTML forms, posted to small endpoints that write through `tenants.services` and then
redirect back (post/redirect/get), except key creation: its response is the page itself, showing
the new key once. The key is never put in the session or a message, so it cannot be shown again.

Everyone in a workspace sees these pages; only owners and admins see the forms, and a POST from
anyone else is refused with 403. Rule violations (an admin touching an owner, removing the last
owner, an unknown user) come back as the page with the reason, not as a server error.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from config import errors
from tenants import invitations, selectors, services
from tenants.models import ApiKey, ApiKeyScope, Membership, Role
from tenants.principals import Perm
from tenants.web import workspace_page

DEFAULT_SCOPES = [ApiKeyScope.INVOKE.value]


def _require(request: HttpRequest, perm: Perm) -> None:
    if not request.principal.can(perm):
        raise PermissionDenied(_("Only owners and admins change settings."))


# --- API keys ---------------------------------------------------------------------------------


def _api_keys_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "keys": selectors.api_key_list(tenant=request.tenant),
        "scope_choices": ApiKeyScope.choices,
        "can_manage": request.principal.can(Perm.MANAGE_API_KEYS),
        "name": "",
        "scopes": DEFAULT_SCOPES,
        "field_errors": {},
        "form_error": "",
        "new_key": None,
        "raw_key": "",
    }
    context.update(extra)
    return context


@require_safe
@workspace_page
def api_keys_page(request: HttpRequest) -> HttpResponse:
    return render(request, "settings/api_keys.html", _api_keys_context(request))


@require_POST
@workspace_page
def api_key_create(request: HttpRequest) -> HttpResponse:
    _require(request, Perm.MANAGE_API_KEYS)
    name = request.POST.get("name", "").strip()[:100]
    scopes = request.POST.getlist("scopes")
    try:
        api_key, raw_key = services.api_key_create(
            tenant=request.tenant,
            name=name,
            scopes=scopes,
            created_by=request.user,
            granted_by=request.principal,
        )
    except errors.ServiceError as exc:
        fields = getattr(exc, "fields", {}) or {}
        if "scopes" in fields:  # the service's wording names codes; the form shows checkboxes
            fields = {**fields, "scopes": [_("Choose at least one of the listed scopes.")]}
        context = _api_keys_context(
            request,
            name=name,
            scopes=scopes,
            field_errors=fields,
            form_error="" if fields else exc.message,
        )
        return render(request, "settings/api_keys.html", context, status=exc.http_status)
    context = _api_keys_context(request, new_key=api_key, raw_key=raw_key)
    response = render(request, "settings/api_keys.html", context)
    response["Cache-Control"] = "no-store"  # the one response that carries the key
    return response


@require_POST
@workspace_page
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    _require(request, Perm.MANAGE_API_KEYS)
    api_key = _api_key_or_404(request, key_id)
    was_active = api_key.is_active
    services.api_key_revoke(api_key=api_key)
    if was_active:
        messages.success(
            request,
            _("The key “%(name)s” (%(prefix)s) is revoked and no longer works.")
            % {"name": api_key.name, "prefix": api_key.prefix},
        )
    return redirect("settings-api-keys")


def _api_key_or_404(request: HttpRequest, key_id: int) -> ApiKey:
    try:
        return selectors.api_key_get(tenant=request.tenant, key_id=key_id)
    except errors.NotFound as exc:
        raise Http404(exc.message) from exc


# --- Members ----------------------------------------------------------------------------------


def _members_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    principal = request.principal
    can_manage = principal.can(Perm.MANAGE_MEMBERS)
    is_owner = principal.role == Role.OWNER
    memberships = list(
        Membership.objects.filter(tenant=request.tenant)
        .select_related("user")
        .order_by("user__username")
    )
    owners = sum(1 for m in memberships if m.role == Role.OWNER)
    rows = []
    for membership in memberships:
        last_owner = membership.role == Role.OWNER and owners == 1
        may_touch = can_manage and (is_owner or membership.role != Role.OWNER) and not last_owner
        rows.append(
            {
                "membership": membership,
                "is_you": membership.user_id == request.user.pk,
                "last_owner": last_owner,
                "can_edit": may_touch,
            }
        )
    role_choices = [
        (value, label) for value, label in Role.choices if is_owner or value != Role.OWNER
    ]
    now = timezone.now()
    invitation_rows = [
        {
            "invitation": invitation,
            "status": invitation.status_at(now),
            "can_edit": can_manage and (is_owner or invitation.role != Role.OWNER),
        }
        for invitation in selectors.invitation_list_open(tenant=request.tenant)
    ]
    context: dict[str, Any] = {
        "rows": rows,
        "invitations": invitation_rows,
        "invitation_days": settings.INVITATION_MAX_AGE_DAYS,
        "can_manage": can_manage,
        "role_choices": role_choices,
        "invite_user": "",
        "invite_role": Role.MEMBER.value,
        "field_errors": {},
        "form_error": "",
    }
    context.update(extra)
    return context


def _members_error(request: HttpRequest, exc: errors.ServiceError, **extra: Any) -> HttpResponse:
    if isinstance(exc, errors.NotFound):
        raise Http404(exc.message) from exc
    fields = getattr(exc, "fields", {}) or {}
    context = _members_context(
        request,
        field_errors=fields,
        form_error="" if fields else exc.message,
        **extra,
    )
    return render(request, "settings/members.html", context, status=exc.http_status)


@require_safe
@workspace_page
def members_page(request: HttpRequest) -> HttpResponse:
    return render(request, "settings/members.html", _members_context(request))


def _link_for(request: HttpRequest) -> invitations.LinkFor:
    return lambda token: request.build_absolute_uri(reverse("invitation-open", args=[token]))


@require_POST
@workspace_page
def member_invite(request: HttpRequest) -> HttpResponse:
    """One field: an e-mail address gets an invitation by e-mail (whether or not it has an
    account, which is never told); a username adds that existing account at once."""
    _require(request, Perm.MANAGE_MEMBERS)
    identifier = request.POST.get("user", "").strip()[:254]
    role = request.POST.get("role", "")
    try:
        if "@" in identifier:
            invitation = invitations.invitation_create(
                tenant=request.tenant,
                email=identifier,
                role=role,
                actor=request.principal,
                link_for=_link_for(request),
            )
        else:
            membership = services.member_add(
                tenant=request.tenant, username=identifier, role=role, actor=request.principal
            )
    except errors.ServiceError as exc:
        fields = getattr(exc, "fields", None)
        if fields and "email" in fields:  # the form's one field is "user"
            exc.fields = {("user" if k == "email" else k): v for k, v in fields.items()}
        return _members_error(request, exc, invite_user=identifier, invite_role=role)
    if "@" in identifier:
        messages.success(
            request,
            _("An invitation to join as %(role)s was sent to %(email)s.")
            % {"email": invitation.email, "role": invitation.get_role_display()},
        )
    else:
        messages.success(
            request,
            _("%(name)s is now a member of this workspace, as %(role)s.")
            % {"name": membership.user.get_username(), "role": membership.get_role_display()},
        )
    return redirect("settings-members")


@require_POST
@workspace_page
def invitation_resend(request: HttpRequest, invitation_id: int) -> HttpResponse:
    _require(request, Perm.MANAGE_MEMBERS)
    try:
        invitation = invitations.invitation_resend(
            tenant=request.tenant,
            invitation_id=invitation_id,
            actor=request.principal,
            link_for=_link_for(request),
        )
    except errors.ServiceError as exc:
        return _members_error(request, exc)
    messages.success(
        request,
        _(
            "The invitation was sent again to %(email)s, with a new link; "
            "the old link no longer works."
        )
        % {"email": invitation.email},
    )
    return redirect("settings-members")


@require_POST
@workspace_page
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    _require(request, Perm.MANAGE_MEMBERS)
    try:
        invitation = invitations.invitation_revoke(
            tenant=request.tenant, invitation_id=invitation_id, actor=request.principal
        )
    except errors.ServiceError as exc:
        return _members_error(request, exc)
    messages.success(
        request,
        _("The invitation to %(email)s is revoked; its link no longer works.")
        % {"email": invitation.email},
    )
    return redirect("settings-members")


@require_POST
@workspace_page
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    _require(request, Perm.MANAGE_MEMBERS)
    try:
        membership = services.member_role_set(
            tenant=request.tenant,
            membership_id=membership_id,
            role=request.POST.get("role", ""),
            actor=request.principal,
        )
    except errors.ServiceError as exc:
        return _members_error(request, exc)
    messages.success(
        request,
        _("%(name)s is now %(role)s.")
        % {"name": membership.user.get_username(), "role": membership.get_role_display()},
    )
    return redirect("settings-members")


@require_POST
@workspace_page
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    _require(request, Perm.MANAGE_MEMBERS)
    try:
        membership = services.member_remove(
            tenant=request.tenant, membership_id=membership_id, actor=request.principal
        )
    except errors.ServiceError as exc:
        return _members_error(request, exc)
    if membership.user_id == request.user.pk:
        messages.success(request, _("You left the workspace."))
        return redirect("settings-providers")
    messages.success(
        request,
        _("%(name)s is no longer a member of this workspace.")
        % {"name": membership.user.get_username()},
    )
    return redirect("settings-members")
