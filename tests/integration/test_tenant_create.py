"""services.tenant_create: a workspace is born with a key pair, the private half only wrapped."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from django.db import connection

from config import errors
from tenants import crypto, services, vault
from tenants.models import Membership, Role, Tenant


def _stored_private_key_column(tenant: Tenant) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wrapped_private_key FROM tenants_tenant WHERE id = %s", [tenant.pk])
        return bytes(cursor.fetchone()[0])


def test_a_new_tenant_has_an_rsa_2048_key_pair(tenant: Tenant) -> None:
    public_key = serialization.load_pem_public_key(tenant.public_key.encode())
    assert public_key.key_size == 2048
    envelope = vault.encrypt(tenant, "sk-test", place="x:1/f/k")
    assert vault.decrypt(tenant, envelope, place="x:1/f/k") == "sk-test"


def test_the_private_key_is_never_stored_in_plaintext(tenant: Tenant) -> None:
    stored = _stored_private_key_column(tenant)
    assert b"PRIVATE KEY" not in stored
    assert b"BEGIN" not in stored
    with pytest.raises(ValueError):  # noqa: PT011 - the column is no DER or PEM key
        serialization.load_der_private_key(stored, password=None)
    with pytest.raises(ValueError):  # noqa: PT011
        serialization.load_pem_private_key(stored, password=None)
    # ...but the master key unwraps it into the private half of the stored public key.
    der = vault.master_keyring().unwrap(stored)
    private_key = serialization.load_der_private_key(der, password=None)
    assert crypto.fingerprint(private_key.public_key()) == crypto.fingerprint(
        serialization.load_pem_public_key(tenant.public_key.encode())
    )


def test_each_tenant_gets_its_own_key_pair(tenant: Tenant, other_tenant: Tenant) -> None:
    assert tenant.public_key != other_tenant.public_key
    envelope = vault.encrypt(tenant, "sk-acme", place="x:1/f/k")
    with pytest.raises(crypto.WrongKey):
        vault.decrypt(other_tenant, envelope, place="x:1/f/k")


def test_the_owner_becomes_a_member_and_slugs_stay_unique(django_user_model) -> None:
    owner = django_user_model.objects.create_user(username="ada")
    first = services.tenant_create(name="Acme Labs", owner=owner)
    second = services.tenant_create(name="Acme Labs")
    assert first.slug == "acme-labs"
    assert second.slug == "acme-labs-2"
    assert Membership.objects.get(tenant=first, user=owner).role == Role.OWNER
    assert not Membership.objects.filter(tenant=second).exists()


def test_a_blank_name_is_a_field_error(db: None) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        services.tenant_create(name="   ")
    assert "name" in caught.value.fields
