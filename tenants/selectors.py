"""Reads for tenants, members and API keys. Each takes the tenant (or user) it is scoped to."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from config import errors
from tenants.models import ApiKey, Invitation, Membership, Tenant


def membership_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")


def membership_current(*, user: AbstractBaseUser, tenant_id: int | None) -> Membership | None:
    """The user's membership in `tenant_id`, else in their first workspace by name; None if none."""
    memberships = membership_list_for_user(user=user)
    if tenant_id is not None:
        chosen = memberships.filter(tenant_id=tenant_id).first()
        if chosen is not None:
            return chosen
    return memberships.first()


def membership_get_by_slug(*, user: AbstractBaseUser, slug: str) -> Membership:
    membership = membership_list_for_user(user=user).filter(tenant__slug=slug).first()
    if membership is None:
        raise errors.NotFound("No workspace with that slug among yours.")
    return membership


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant=tenant).select_related("created_by")


def api_key_get(*, tenant: Tenant, key_id: int) -> ApiKey:
    api_key = api_key_list(tenant=tenant).filter(pk=key_id).first()
    if api_key is None:
        raise errors.NotFound("No such API key in this workspace.")
    return api_key


def invitation_list_open(*, tenant: Tenant) -> QuerySet[Invitation]:
    """The workspace's invitations neither accepted nor revoked (expired ones included: they
    may be resent)."""
    return Invitation.objects.filter(
        tenant=tenant, accepted_at__isnull=True, revoked_at__isnull=True
    ).select_related("invited_by")


def invitation_by_token_hash(*, invitation_id: int, hashed: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("tenant")
        .filter(pk=invitation_id, token_hash=hashed)
        .first()
    )


def invitation_by_token(*, hashed: str) -> Invitation | None:
    return Invitation.objects.select_related("tenant").filter(token_hash=hashed).first()
