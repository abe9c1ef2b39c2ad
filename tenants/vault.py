"""Encrypt and decrypt a tenant's secrets: `tenants.crypto` bound to settings and the Tenant row.

Unwrapping a private key costs a Fernet decrypt and an RSA key load, so the ready cipher is kept in
process memory (never in Redis), keyed by everything it was made from: a key rotation bumps
`key_version` and a master-key rotation changes the wrapped bytes, so a stale entry is never used.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings

from tenants import crypto

if TYPE_CHECKING:
    from tenants.models import Tenant


def master_keyring() -> crypto.MasterKeyring:
    return _keyring(tuple(settings.MASTER_KEYS))


@lru_cache(maxsize=4)
def _keyring(keys: tuple[str, ...]) -> crypto.MasterKeyring:
    return crypto.MasterKeyring(keys)


def cipher_for(tenant: Tenant) -> crypto.KeyPairCipher:
    return _cipher(
        tenant.pk,
        tenant.key_version,
        tenant.public_key,
        bytes(tenant.wrapped_private_key),  # PostgreSQL hands back a memoryview
        tuple(settings.MASTER_KEYS),
    )


@lru_cache(maxsize=1024)
def _cipher(
    tenant_id: int, key_version: int, public_pem: str, wrapped: bytes, master_keys: tuple[str, ...]
) -> crypto.KeyPairCipher:
    key_pair = crypto.KeyPair(public_pem=public_pem, wrapped_private_key=wrapped)
    return crypto.KeyPairCipher(key_pair, _keyring(master_keys))


def context(tenant_id: int, place: str) -> str:
    """The associated data binding a secret to its tenant and its place (row and field)."""
    return f"tenant:{tenant_id}/{place}"


def encrypt(tenant: Tenant, plaintext: str, *, place: str) -> str:
    return cipher_for(tenant).seal(plaintext, context=context(tenant.pk, place))


def decrypt(tenant: Tenant, envelope: str, *, place: str) -> str:
    return cipher_for(tenant).open(envelope, context=context(tenant.pk, place))
