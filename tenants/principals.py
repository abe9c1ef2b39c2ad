"""Who is calling, for which tenant, and what they may do.

A request is made either by a member through the browser session (rights come from the role) or by
an API key (rights come from its scopes). Views ask `principal.can(Perm.X)`, never about roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tenants.models import ApiKey, ApiKeyScope, Membership, Role, Tenant


class Perm(StrEnum):
    READ_SETTINGS = "settings.read"
    CHANGE_SETTINGS = "settings.change"
    MANAGE_API_KEYS = "api_keys.manage"
    MANAGE_MEMBERS = "members.manage"
    INVOKE = "models.invoke"


_EVERYONE = frozenset({Perm.READ_SETTINGS, Perm.INVOKE})
_MANAGERS = _EVERYONE | {Perm.CHANGE_SETTINGS, Perm.MANAGE_API_KEYS, Perm.MANAGE_MEMBERS}

ROLE_PERMS: dict[str, frozenset[Perm]] = {
    Role.OWNER: _MANAGERS,
    Role.ADMIN: _MANAGERS,
    Role.EDITOR: _EVERYONE,
    Role.MEMBER: _EVERYONE,
}

SCOPE_PERMS: dict[str, frozenset[Perm]] = {
    ApiKeyScope.READ: frozenset({Perm.READ_SETTINGS}),
    ApiKeyScope.WRITE: frozenset({Perm.READ_SETTINGS, Perm.CHANGE_SETTINGS, Perm.MANAGE_API_KEYS}),
    ApiKeyScope.INVOKE: frozenset({Perm.INVOKE}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: Tenant
    perms: frozenset[Perm]
    membership: Membership | None = None
    api_key: ApiKey | None = None

    @property
    def role(self) -> str | None:
        return self.membership.role if self.membership else None

    def can(self, perm: Perm) -> bool:
        return perm in self.perms

    @classmethod
    def for_member(cls, membership: Membership) -> Principal:
        return cls(
            tenant=membership.tenant, perms=ROLE_PERMS[membership.role], membership=membership
        )

    @classmethod
    def for_api_key(cls, api_key: ApiKey) -> Principal:
        perms: frozenset[Perm] = frozenset()
        for scope in api_key.scopes:
            perms |= SCOPE_PERMS.get(scope, frozenset())
        return cls(tenant=api_key.tenant, perms=perms, api_key=api_key)
