"""Opening an invitation's link: create an account (or log in) and join the workspace.

The link (/invite/<token>/) only puts the invitation's id and its token's hash in the session
and redirects to /invite/, so the token is in no page, no Referer and no Django log line (a
refused request is logged with its path: /invite/ has none). Whatever state the invitation is
in, the page says so: used, revoked, expired or unknown (a 404 or 410 page, never a 500).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from config import errors
from tenants import invitations, selectors
from tenants.authentication import SESSION_TENANT_KEY
from tenants.models import Invitation, InvitationStatus, Membership

SESSION_KEY = "invitation"  # [invitation id, token hash], or None for a link that matched none
TEMPLATE = "registration/accept_invite.html"


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)


@require_safe
def open_link(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_by_token(hashed=invitations.token_hash(token))
    request.session[SESSION_KEY] = (
        [invitation.pk, invitation.token_hash] if invitation is not None else None
    )
    return redirect("invitation")


def _refusal(request: HttpRequest, invitation: Invitation | None, status: str) -> HttpResponse:
    reasons = {
        "unknown": _(
            "This invitation link is not valid. If the invitation was sent again, only the "
            "newest e-mail's link works."
        ),
        "missing": _("Open the link in your invitation e-mail to accept it."),
        InvitationStatus.ACCEPTED: _("This invitation has already been used."),
        InvitationStatus.REVOKED: _("This invitation was withdrawn by the workspace."),
        InvitationStatus.EXPIRED: _(
            "This invitation has expired. Ask a workspace owner or admin to send it again."
        ),
    }
    context = {"invitation": invitation, "refusal": reasons[status], "status": status}
    return render(
        request, TEMPLATE, context, status=404 if status in ("unknown", "missing") else 410
    )


def _joined(request: HttpRequest, membership: Membership) -> HttpResponse:
    request.session.pop(SESSION_KEY, None)
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    messages.success(
        request,
        _("Welcome to %(workspace)s. You are a member, as %(role)s.")
        % {"workspace": membership.tenant.name, "role": membership.get_role_display()},
    )
    return redirect("settings-providers")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_page(request: HttpRequest) -> HttpResponse:
    held = request.session.get(SESSION_KEY, "missing")
    if held == "missing" or held is None or not isinstance(held, list) or len(held) != 2:
        return _refusal(request, None, "missing" if held == "missing" else "unknown")
    invitation_id, hashed = held
    invitation = selectors.invitation_by_token_hash(invitation_id=invitation_id, hashed=hashed)
    if invitation is None:
        return _refusal(request, None, "unknown")
    status = invitation.status_at(timezone.now())
    if status != InvitationStatus.PENDING:
        return _refusal(request, invitation, status)

    user = request.user
    form = SignUpForm(instance=get_user_model()(email=invitation.email))
    if request.method == "POST":
        try:
            if user.is_authenticated:
                membership = invitations.invitation_accept(
                    invitation_id=invitation_id, hashed=hashed, user=user
                )
                return _joined(request, membership)
            form = SignUpForm(request.POST, instance=get_user_model()(email=invitation.email))
            if form.is_valid():
                membership = invitations.invitation_sign_up(
                    invitation_id=invitation_id,
                    hashed=hashed,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                )
                login(request, membership.user)
                return _joined(request, membership)
        except errors.NotFound:
            return _refusal(request, None, "unknown")
        except errors.Conflict as exc:  # used, revoked or expired meanwhile
            return _refusal(request, invitation, exc.code)
    context: dict[str, Any] = {"invitation": invitation, "form": form}
    return render(request, TEMPLATE, context, status=400 if form.errors else 200)
