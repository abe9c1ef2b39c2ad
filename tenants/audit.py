"""Member and invitation changes for the audit log.

The log's table lives in `providers` (it began with provider settings), which stands on
`tenants`, never the reverse: so tenants sends this signal and `providers.signals` writes the
entry, in the same transaction as the change. `changes` carries names and roles, never a token.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.dispatch import Signal

from tenants.models import Tenant
from tenants.principals import Principal

# Sent with: tenant, user (who acted, or None), api_key (or None), action, target, changes.
member_change = Signal()


def record(
    *,
    tenant: Tenant,
    action: str,
    target: str,
    actor: Principal | None = None,
    user: AbstractBaseUser | None = None,
    changes: dict[str, Any] | None = None,
) -> None:
    """`actor` is who acted through a page or the API; `user` names the person when no member
    acted (someone accepting an invitation)."""
    if actor is not None and actor.membership is not None:
        user = actor.membership.user
    member_change.send(
        sender=Tenant,
        tenant=tenant,
        user=user,
        api_key=actor.api_key if actor is not None else None,
        action=action,
        target=target[:300],
        changes=changes or {},
    )
