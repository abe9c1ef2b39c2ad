"""Writes for tenants, members, API keys and key rotation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from config import errors, shared_state
from tenants import apikeys, audit, crypto, vault
from tenants.fields import SecretsJSONField, secret_place
from tenants.models import ApiKey, ApiKeyScope, Membership, Role, Tenant
from tenants.principals import Principal


def tenant_create(*, name: str, slug: str = "", owner: AbstractBaseUser | None = None) -> Tenant:
    """Create a workspace with a fresh key pair, and make `owner` its owner."""
    name = name.strip()
    if not name:
        raise errors.InvalidInput(fields={"name": [_("A workspace needs a name.")]})
    key_pair = crypto.generate_key_pair(vault.master_keyring())
    with transaction.atomic():
        tenant = Tenant.objects.create(
            name=name,
            slug=_unique_slug(slug or name),
            public_key=key_pair.public_pem,
            wrapped_private_key=key_pair.wrapped_private_key,
        )
        if owner is not None:
            Membership.objects.create(user=owner, tenant=tenant, role=Role.OWNER)
    return tenant


def _unique_slug(text: str) -> str:
    base = slugify(text)[:50] or "workspace"
    slug, n = base, 1
    while Tenant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def membership_set(*, tenant: Tenant, user: AbstractBaseUser, role: str) -> Membership:
    if role not in Role.values:
        raise errors.InvalidInput(fields={"role": [_("Unknown role %(role)r.") % {"role": role}]})
    membership, _created = Membership.objects.update_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    return membership


# --- API keys ---------------------------------------------------------------------------------


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: list[str],
    created_by: AbstractBaseUser | None = None,
    granted_by: Principal | None = None,
    raw_key: str | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    monthly_budget: Decimal | None = None,
    budget_currency: str = "USD",
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored and never shown again.

    `granted_by` is the API caller: a key may only mint keys with scopes it has itself.
    `raw_key` registers a given, well-formed key (the embedded demo keeps its key in `.env`).
    """
    unknown = sorted(set(scopes) - set(ApiKeyScope.values))
    if unknown or not scopes:
        message = (
            _("Unknown scopes: %(scopes)s.") % {"scopes": ", ".join(unknown)}
            if unknown
            else _("Give at least one scope.")
        )
        raise errors.InvalidInput(fields={"scopes": [message]})
    if granted_by is not None and granted_by.api_key is not None:
        beyond = sorted(set(scopes) - set(granted_by.api_key.scopes))
        if beyond:
            raise errors.PermissionDenied(
                f"An API key cannot grant scopes it does not have: {', '.join(beyond)}."
            )
    _within_callers_limits(
        granted_by,
        {
            "rpm_limit": rpm_limit,
            "tpm_limit": tpm_limit,
            "monthly_budget": monthly_budget,
            "budget_currency": budget_currency,
        },
    )
    if raw_key is None:
        raw_key = apikeys.new_raw_key()
    elif not apikeys.is_well_formed(raw_key):
        raise errors.InvalidInput(fields={"key": [_("Not a well-formed API key.")]})
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name.strip() or _("API key"),
        prefix=apikeys.visible_prefix(raw_key),
        key_hash=apikeys.hash_key(raw_key),
        scopes=sorted(set(scopes)),
        created_by=created_by,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        monthly_budget=monthly_budget,
        budget_currency=budget_currency,
    )
    return api_key, raw_key


LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "monthly_budget", "budget_currency")


def _within_callers_limits(granted_by: Principal | None, limits: dict[str, Any]) -> None:
    """A key held to limits cannot make (or change) a key that is held to less: otherwise it
    would lift its own limits by minting an unlimited key."""
    caller = granted_by.api_key if granted_by is not None else None
    if caller is None:
        return
    problems: dict[str, list[str]] = {}
    for name in ("rpm_limit", "tpm_limit"):
        own = getattr(caller, name)
        if own is not None and (limits[name] is None or limits[name] > own):
            problems[name] = [f"At most {own}: the key making this change is held to that."]
    budget = caller.monthly_budget
    if budget is not None and (
        limits["monthly_budget"] is None
        or limits["budget_currency"] != caller.budget_currency
        or limits["monthly_budget"] > budget
    ):
        problems["monthly_budget"] = [
            f"At most {budget} {caller.budget_currency} a month: the key making this change "
            "is held to that."
        ]
    if problems:
        raise errors.InvalidInput(fields=problems)


def api_key_set_limits(
    *, api_key: ApiKey, granted_by: Principal | None = None, **limits: Any
) -> ApiKey:
    """Change a key's per-minute limits and monthly budget (None: unlimited); the next call is
    held to them. `granted_by` is the API caller: a key cannot change its own limits, nor give
    another key more than it has."""
    if granted_by is not None and granted_by.api_key is not None:
        if granted_by.api_key.pk == api_key.pk:
            raise errors.PermissionDenied("An API key cannot change itself; a workspace admin can.")
        _within_callers_limits(
            granted_by, {name: limits.get(name, getattr(api_key, name)) for name in LIMIT_FIELDS}
        )
    changed = [name for name in LIMIT_FIELDS if name in limits]
    for name in changed:
        setattr(api_key, name, limits[name])
    api_key.save(update_fields=changed)
    return api_key


def tenant_set_budget(
    *,
    tenant: Tenant,
    monthly_budget: Decimal | None,
    currency: str,
    granted_by: Principal | None = None,
) -> Tenant:
    """The most the workspace's model calls may cost a month (None: no budget). A key that is
    itself held to limits may not change it: it would lift the budget that stops it."""
    key = granted_by.api_key if granted_by is not None else None
    if key is not None and (
        key.rpm_limit is not None or key.tpm_limit is not None or key.monthly_budget is not None
    ):
        raise errors.PermissionDenied(
            "An API key held to limits cannot change the workspace's budget; a workspace admin can."
        )
    before = {"monthly_budget": tenant.monthly_budget, "budget_currency": tenant.budget_currency}
    tenant.monthly_budget, tenant.budget_currency = monthly_budget, currency
    after = {"monthly_budget": tenant.monthly_budget, "budget_currency": tenant.budget_currency}
    tenant.save(update_fields=["monthly_budget", "budget_currency"])
    changes = {
        name: [_money(before[name]), _money(value)]
        for name, value in after.items()
        if value != before[name]
    }
    if changes:
        audit.record(
            tenant=tenant, actor=granted_by, action="workspace.budget", target=tenant.name,
            changes=changes,
        )  # fmt: skip
    return tenant


def _money(value: Decimal | str | None) -> str | None:
    """As the API writes it: a decimal as a string (JSON has no decimals)."""
    return None if value is None else str(value)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


# Known keys (with their workspace) are kept in process memory under a version in Redis that
# every key or workspace change replaces once committed, so a revoked key is refused by the next
# request in every process while a busy key costs no database query. Unknown keys are never kept.
KEYS_VERSION = "mps:api-keys"
_known: dict[str, tuple[str, ApiKey]] = {}
_KNOWN_SIZE = 10_000


def api_keys_changed() -> None:
    """Keys or workspaces changed: every process's known keys are stale."""
    shared_state.bump(KEYS_VERSION)


def known_tenant_id(raw_key: str) -> int | None:
    """The workspace of a key this process has seen (maybe since revoked: only a hint of which
    cache versions a request will read, never an authentication)."""
    if not apikeys.is_well_formed(raw_key):
        return None
    known = _known.get(apikeys.hash_key(raw_key))
    return known[1].tenant_id if known else None


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, with its tenant; None when unknown or revoked.

    `last_used_at` is written at most once per `API_KEY_LAST_USED_RESOLUTION` seconds per key, so
    a busy key does not turn every request into a write.
    """
    if not apikeys.is_well_formed(raw_key):
        return None
    digest = apikeys.hash_key(raw_key)
    version = shared_state.version(KEYS_VERSION)
    known = _known.get(digest)
    if version is not None and known is not None and known[0] == version:
        api_key: ApiKey | None = known[1]
    else:
        api_key = (
            ApiKey.objects.select_related("tenant")
            .filter(key_hash=digest, revoked_at__isnull=True)
            .first()
        )
        if api_key is not None and version is not None:
            if len(_known) >= _KNOWN_SIZE:
                _known.clear()
            _known[digest] = (version, api_key)
    if api_key is None:
        return None
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION)
    if api_key.last_used_at is None or now - api_key.last_used_at >= resolution:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


# --- Key rotation -----------------------------------------------------------------------------


def _secret_fields() -> Iterator[tuple[type[models.Model], SecretsJSONField]]:
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, SecretsJSONField):
                yield model, field


@transaction.atomic
def tenant_rotate_keys(*, tenant: Tenant) -> int:
    """Give the tenant a new key pair and re-encrypt every secret it has; returns how many.

    One transaction: if any secret fails to decrypt or any write fails, nothing changes.
    """
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    old = vault.cipher_for(tenant)
    master = vault.master_keyring()
    key_pair = crypto.generate_key_pair(master)
    new = crypto.KeyPairCipher(key_pair, master)
    rotated = 0
    for model, field in _secret_fields():
        for row in model._default_manager.select_for_update().filter(tenant=tenant).order_by("pk"):
            values = dict(getattr(row, field.attname) or {})
            for key, value in values.items():
                if crypto.is_envelope(value):
                    ctx = vault.context(tenant.pk, secret_place(row, field.name, key))
                    values[key] = new.seal(old.open(value, context=ctx), context=ctx)
                    rotated += 1
            setattr(row, field.attname, values)
            row.save(update_fields=[field.attname])
    tenant.public_key = key_pair.public_pem
    tenant.wrapped_private_key = key_pair.wrapped_private_key
    tenant.key_version += 1
    tenant.save(update_fields=["public_key", "wrapped_private_key", "key_version"])
    return rotated


@transaction.atomic
def master_key_rotate() -> int:
    """Re-wrap every tenant's private key under the first master key; returns how many.

    Every key must unwrap under the configured master keys, else nothing is written.
    """
    master = vault.master_keyring()
    count = 0
    for tenant in Tenant.objects.select_for_update().order_by("pk"):
        tenant.wrapped_private_key = master.rewrap(bytes(tenant.wrapped_private_key))
        tenant.save(update_fields=["wrapped_private_key"])
        count += 1
    return count


# --- Members ----------------------------------------------------------------------------------
# Added (an existing account, by username), re-roled and removed by owners and admins from the
# settings page; people are invited by e-mail in `tenants.invitations`. Every change is audited.
# Rules: only owners make owners or change or remove an owner; a workspace always keeps at least
# one owner (so its last owner can neither be demoted nor removed, not even by themselves).

from django.contrib.auth import get_user_model  # noqa: E402

from tenants.principals import Perm  # noqa: E402


def _require_manage_members(actor: Principal) -> None:
    if not actor.can(Perm.MANAGE_MEMBERS):
        raise errors.PermissionDenied(_("Only owners and admins can manage members."))


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise errors.InvalidInput(fields={"role": [_("Choose one of the listed roles.")]})


def _lock_tenant(tenant: Tenant) -> None:
    """Serialise member changes in one workspace, so two can't both remove "another" owner."""
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()


def _member_for_update(*, tenant: Tenant, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(tenant=tenant, pk=membership_id)
        .first()
    )
    if membership is None:
        raise errors.NotFound(_("No such member in this workspace."))
    return membership


def is_last_owner(membership: Membership) -> bool:
    if membership.role != Role.OWNER:
        return False
    return not (
        Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )


def _find_user(username: str) -> AbstractBaseUser:
    """The active account with this username (exactly). Never looked up by e-mail address: an
    address gets an invitation whether or not it has an account (`tenants.invitations`), so the
    page never tells whether one does."""
    user_model = get_user_model()
    found = (
        user_model._default_manager.filter(is_active=True)
        .filter(**{user_model.USERNAME_FIELD: username})
        .first()
    )
    if found is None:
        raise errors.InvalidInput(
            fields={
                "user": [
                    _(
                        "No account has this username. To invite someone without an account, "
                        "enter their e-mail address."
                    )
                ]
            }
        )
    return found


def member_add(*, tenant: Tenant, username: str, role: str, actor: Principal) -> Membership:
    """Add an existing account, named by its username, to the workspace with `role`."""
    _require_manage_members(actor)
    username = username.strip()
    if not username:
        raise errors.InvalidInput(fields={"user": [_("Enter a username or an e-mail address.")]})
    _check_role(role)
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise errors.PermissionDenied(_("Only owners can make someone an owner."))
    user = _find_user(username)
    with transaction.atomic():
        _lock_tenant(tenant)
        if Membership.objects.filter(tenant=tenant, user=user).exists():
            raise errors.InvalidInput(
                fields={
                    "user": [
                        _("%(name)s is already a member of this workspace.")
                        % {"name": user.get_username()}
                    ]
                }
            )
        membership = Membership.objects.create(tenant=tenant, user=user, role=role)
        audit.record(
            tenant=tenant,
            actor=actor,
            action="member.add",
            target=user.get_username(),
            changes={"role": role},
        )
        return membership


def member_role_set(
    *, tenant: Tenant, membership_id: int, role: str, actor: Principal
) -> Membership:
    """Change a member's role. Raises NotFound for a member of another workspace."""
    _require_manage_members(actor)
    with transaction.atomic():
        _lock_tenant(tenant)
        membership = _member_for_update(tenant=tenant, membership_id=membership_id)
        _check_role(role)
        if role == membership.role:
            return membership
        if actor.role != Role.OWNER:
            if membership.role == Role.OWNER:
                raise errors.PermissionDenied(_("Only owners can change an owner's role."))
            if role == Role.OWNER:
                raise errors.PermissionDenied(_("Only owners can make someone an owner."))
        if is_last_owner(membership):
            raise errors.InvalidInput(
                _(
                    "A workspace must keep at least one owner. "
                    "Make someone else an owner before changing this role."
                )
            )
        previous, membership.role = membership.role, role
        membership.save(update_fields=["role"])
        audit.record(
            tenant=tenant,
            actor=actor,
            action="member.role",
            target=membership.user.get_username(),
            changes={"role": [previous, role]},
        )
        return membership


def member_remove(*, tenant: Tenant, membership_id: int, actor: Principal) -> Membership:
    """Remove a member (their account stays). Raises NotFound for another workspace's member."""
    _require_manage_members(actor)
    with transaction.atomic():
        _lock_tenant(tenant)
        membership = _member_for_update(tenant=tenant, membership_id=membership_id)
        if membership.role == Role.OWNER and actor.role != Role.OWNER:
            raise errors.PermissionDenied(_("Only owners can remove an owner."))
        if is_last_owner(membership):
            raise errors.InvalidInput(
                _(
                    "A workspace must keep at least one owner. "
                    "Make someone else an owner before removing this one."
                )
            )
        membership.delete()
        audit.record(
            tenant=tenant,
            actor=actor,
            action="member.remove",
            target=membership.user.get_username(),
            changes={"role": membership.role},
        )
        return membership
