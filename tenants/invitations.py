"""Invitations by e-mail: an owner or admin names an address and a role; the person opens the
link in the e-mail, creates an account (or logs in) and joins the workspace with that role.

The link carries a random token; only its SHA-256 is stored, so the database cannot give a link
back, and the token is never logged nor put in a Celery message (the e-mail is sent by the web
process, for that reason). A link works once, until it expires (INVITATION_MAX_AGE_DAYS), is
revoked or is replaced by a resend. Whether an address has an account is never told: an address
always gets an invitation. A workspace sends at most INVITATIONS_PER_HOUR invitations an hour
(new and resent), counted in Redis like the other limits (`throttling`). Every change is audited.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from config import errors
from tenants import audit, throttling
from tenants.models import Invitation, InvitationStatus, Membership, Role, Tenant
from tenants.principals import Perm, Principal

logger = logging.getLogger(__name__)

# Builds the absolute URL of the page that opens an invitation, from its token (the view knows
# the host the request came to).
LinkFor = Callable[[str], str]


class EmailNotSent(errors.ServiceError):
    """The e-mail backend refused or could not be reached; nothing was saved."""

    code = "email_not_sent"
    http_status = 503


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _require_manage_members(actor: Principal, role: str) -> None:
    if not actor.can(Perm.MANAGE_MEMBERS):
        raise errors.PermissionDenied(_("Only owners and admins can manage members."))
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise errors.PermissionDenied(_("Only owners can invite an owner."))


def _clean_email(email: str) -> str:
    email = BaseUserManager.normalize_email(email.strip())
    try:
        validate_email(email)
    except ValidationError:
        raise errors.InvalidInput(fields={"email": [_("Enter a valid e-mail address.")]}) from None
    return email


def _send(*, invitation: Invitation, token: str, link_for: LinkFor, inviter: str) -> None:
    """Send the invitation's e-mail: the workspace, the role, who invited and the link; nothing
    else (no account detail, no other secret)."""
    values = {
        "inviter": inviter,
        "workspace": invitation.tenant.name,
        "role": invitation.get_role_display(),
        "link": link_for(token),
        "until": date_format(timezone.localtime(invitation.expires_at), "DATETIME_FORMAT"),
    }
    subject = _("You are invited to the workspace “%(workspace)s”") % values
    body = (
        _(
            "%(inviter)s invites you to join the workspace “%(workspace)s” as %(role)s.\n\n"
            "Open this link to accept (it works once, until %(until)s):\n\n%(link)s\n\n"
            "If you did not expect this invitation, ignore this e-mail."
        )
        % values
    )
    try:
        send_mail(subject, body, None, [invitation.email])
    except (smtplib.SMTPException, OSError) as exc:
        # The exception's class only: its text may quote the message, and with it the link.
        logger.warning(
            "Invitation e-mail for workspace %s not sent: %s", invitation.tenant_id, type(exc)
        )
        raise EmailNotSent(
            _("The invitation e-mail could not be sent. Check the e-mail settings, then try again.")
        ) from None


def _new_token(invitation: Invitation) -> str:
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    invitation.token_hash = token_hash(token)
    invitation.sent_at = now
    invitation.expires_at = now + timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
    return token


def _inviter(actor: Principal) -> str:
    return actor.membership.user.get_username() if actor.membership else _("A workspace admin")


def invitation_create(
    *, tenant: Tenant, email: str, role: str, actor: Principal, link_for: LinkFor
) -> Invitation:
    """Invite `email` with `role` and send the link. An earlier invitation to the same address
    that is still open stops working. Raises RateLimited past the workspace's hourly limit and
    EmailNotSent (saving nothing) when the e-mail cannot be sent."""
    if role not in Role.values:
        raise errors.InvalidInput(fields={"role": [_("Choose one of the listed roles.")]})
    _require_manage_members(actor, role)
    email = _clean_email(email)
    user_model = get_user_model()
    email_field = user_model.get_email_field_name()
    # Only what the members page already shows: a member's address.
    if Membership.objects.filter(tenant=tenant, **{f"user__{email_field}__iexact": email}).exists():
        raise errors.InvalidInput(
            fields={"email": [_("A member of this workspace already uses this e-mail address.")]}
        )
    throttling.invitation_sent(tenant.pk)
    invitation = Invitation(tenant=tenant, email=email, role=role, invited_by=_user_of(actor))
    token = _new_token(invitation)
    # Sent before anything is saved: a failed send leaves no invitation behind, and no database
    # transaction waits on the mail server.
    _send(invitation=invitation, token=token, link_for=link_for, inviter=_inviter(actor))
    with transaction.atomic():
        now = timezone.now()
        Invitation.objects.filter(
            tenant=tenant,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        ).update(revoked_at=now)
        invitation.save()
        audit.record(
            tenant=tenant,
            actor=actor,
            action="invitation.create",
            target=email,
            changes={"role": role},
        )
    return invitation


def _user_of(actor: Principal) -> AbstractBaseUser | None:
    return actor.membership.user if actor.membership else None


def _open_invitation(*, tenant: Tenant, invitation_id: int) -> Invitation:
    """One of the workspace's invitations not accepted nor revoked (expired ones may be resent
    or revoked), locked. NotFound otherwise, another workspace's included."""
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .filter(tenant=tenant, pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if invitation is None:
        raise errors.NotFound(_("No open invitation with this id in this workspace."))
    return invitation


def invitation_resend(
    *, tenant: Tenant, invitation_id: int, actor: Principal, link_for: LinkFor
) -> Invitation:
    """Send the invitation again with a new link, valid for the full time again; the old link
    stops working."""
    with transaction.atomic():
        invitation = _open_invitation(tenant=tenant, invitation_id=invitation_id)
    _require_manage_members(actor, invitation.role)
    throttling.invitation_sent(tenant.pk)
    token = _new_token(invitation)
    _send(invitation=invitation, token=token, link_for=link_for, inviter=_inviter(actor))
    with transaction.atomic():
        # Only if it is still open: revoked or accepted meanwhile, the new link never works.
        Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(
            token_hash=invitation.token_hash,
            sent_at=invitation.sent_at,
            expires_at=invitation.expires_at,
        )
        audit.record(
            tenant=tenant,
            actor=actor,
            action="invitation.resend",
            target=invitation.email,
            changes={"role": invitation.role},
        )
    return invitation


def invitation_revoke(*, tenant: Tenant, invitation_id: int, actor: Principal) -> Invitation:
    """Withdraw an invitation: its link stops working."""
    with transaction.atomic():
        invitation = _open_invitation(tenant=tenant, invitation_id=invitation_id)
        _require_manage_members(actor, invitation.role)
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit.record(
            tenant=tenant,
            actor=actor,
            action="invitation.revoke",
            target=invitation.email,
            changes={"role": invitation.role},
        )
    return invitation


# --- Accepting ----------------------------------------------------------------------------------


def _usable_for_update(*, invitation_id: int, hashed: str) -> Invitation:
    """The invitation, locked, if its link still works; else Conflict whose code is its status
    (accepted, revoked, expired), or NotFound when the link was replaced or never existed."""
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .filter(pk=invitation_id, token_hash=hashed)
        .first()
    )
    if invitation is None:
        raise errors.NotFound(_("This invitation link is not valid."))
    status = invitation.status_at(timezone.now())
    if status != InvitationStatus.PENDING:
        raise errors.Conflict(status, code=status)
    return invitation


def invitation_accept(*, invitation_id: int, hashed: str, user: AbstractBaseUser) -> Membership:
    """`user` (logged in) joins the invitation's workspace with its role. Someone who is
    already a member keeps their role; the link is used either way."""
    with transaction.atomic():
        invitation = _usable_for_update(invitation_id=invitation_id, hashed=hashed)
        membership = Membership.objects.filter(tenant=invitation.tenant, user=user).first()
        if membership is None:
            membership = Membership.objects.create(
                tenant=invitation.tenant, user=user, role=invitation.role
            )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit.record(
            tenant=invitation.tenant,
            user=user,
            action="invitation.accept",
            target=invitation.email,
            changes={"username": user.get_username(), "role": membership.role},
        )
    return membership


def invitation_sign_up(
    *, invitation_id: int, hashed: str, username: str, password: str
) -> Membership:
    """Create an account (with the invitation's e-mail address) and join with it, together: a
    link that no longer works creates no account. The caller has checked the username and the
    password (Django's password validators)."""
    with transaction.atomic():
        invitation = _usable_for_update(invitation_id=invitation_id, hashed=hashed)
        user = get_user_model()._default_manager.create_user(
            username=username, email=invitation.email, password=password
        )
        return invitation_accept(invitation_id=invitation_id, hashed=hashed, user=user)
