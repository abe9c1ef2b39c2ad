"""Master and tenant key rotation: every secret stays readable; a failed one changes nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tenants import crypto, services, vault
from tenants.fields import secret_place
from tenants.models import Tenant
from tests.secretsapp.models import SecretHolder


def _holder(
    tenant: Tenant, label: str, secrets: dict[str, str], plain: dict[str, str]
) -> SecretHolder:
    holder = SecretHolder.objects.create(tenant=tenant, label=label, config=dict(plain))
    for key, value in secrets.items():
        holder.config[key] = vault.encrypt(tenant, value, place=secret_place(holder, "config", key))
    holder.save()
    return holder


def _read(holder: SecretHolder, key: str) -> str:
    holder.refresh_from_db()
    tenant = Tenant.objects.get(pk=holder.tenant_id)
    return vault.decrypt(tenant, holder.config[key], place=secret_place(holder, "config", key))


@pytest.fixture
def holders(tenant: Tenant, other_tenant: Tenant) -> list[SecretHolder]:
    return [
        _holder(tenant, "openai", {"api_key": "sk-openai-1"}, {"base_url": "https://x.test"}),
        _holder(tenant, "azure", {"api_key": "az-2", "secret": "s-3"}, {"version": "2024"}),
        _holder(other_tenant, "other", {"api_key": "sk-other-9"}, {}),
    ]


def test_an_envelope_copied_to_another_row_does_not_decrypt(holders: list[SecretHolder]) -> None:
    first, second, _ = holders
    second.config["api_key"] = first.config["api_key"]
    second.save()
    with pytest.raises(crypto.DecryptionFailed):
        _read(second, "api_key")


def test_tenant_key_rotation_re_encrypts_every_secret_of_that_tenant_only(
    tenant: Tenant, holders: list[SecretHolder]
) -> None:
    before = {h.pk: dict(h.config) for h in holders}
    old_public_key = tenant.public_key

    assert services.tenant_rotate_keys(tenant=tenant) == 3

    tenant.refresh_from_db()
    assert tenant.public_key != old_public_key
    assert tenant.key_version == 2
    openai, azure, other = holders
    assert _read(openai, "api_key") == "sk-openai-1"
    assert (_read(azure, "api_key"), _read(azure, "secret")) == ("az-2", "s-3")
    assert openai.config["base_url"] == "https://x.test"  # plain fields untouched
    assert openai.config["api_key"] != before[openai.pk]["api_key"]
    assert other.config == before[other.pk]  # another tenant's rows are not touched
    assert _read(other, "api_key") == "sk-other-9"


def test_a_tenant_rotation_that_fails_half_way_changes_nothing(
    tenant: Tenant, holders: list[SecretHolder]
) -> None:
    openai, azure, _ = holders
    # Corrupt the second row's secret: the rotation gets past the first row, then must fail.
    broken = azure.config["secret"]
    azure.config["secret"] = broken[:-8] + ("A" * 8 if not broken.endswith("A" * 8) else "B" * 8)
    azure.save()
    snapshot = {h.pk: dict(SecretHolder.objects.get(pk=h.pk).config) for h in holders}
    wrapped_before = bytes(Tenant.objects.get(pk=tenant.pk).wrapped_private_key)

    with pytest.raises(crypto.CryptoError):
        services.tenant_rotate_keys(tenant=tenant)

    tenant.refresh_from_db()
    assert tenant.key_version == 1
    assert bytes(tenant.wrapped_private_key) == wrapped_before
    for holder in holders:
        holder.refresh_from_db()
        assert holder.config == snapshot[holder.pk]
    assert _read(openai, "api_key") == "sk-openai-1"


def test_master_key_rotation_keeps_every_secret_readable(
    settings, holders: list[SecretHolder]
) -> None:
    old_key = settings.MASTER_KEYS[0]
    new_key = crypto.generate_master_key()
    with override_settings(MASTER_KEYS=[new_key, old_key]):
        assert services.master_key_rotate() == 2
    with override_settings(MASTER_KEYS=[new_key]):  # the old key is gone for good
        assert [_read(h, "api_key") for h in holders] == ["sk-openai-1", "az-2", "sk-other-9"]


def test_a_master_rotation_without_the_old_key_fails_and_changes_nothing(
    holders: list[SecretHolder],
) -> None:
    wrapped_before = {t.pk: bytes(t.wrapped_private_key) for t in Tenant.objects.all()}
    with (
        override_settings(MASTER_KEYS=[crypto.generate_master_key()]),
        pytest.raises(crypto.MasterKeyError),
    ):
        services.master_key_rotate()
    assert {t.pk: bytes(t.wrapped_private_key) for t in Tenant.objects.all()} == wrapped_before
    assert _read(holders[0], "api_key") == "sk-openai-1"


def test_rotation_commands_report_and_refuse_clearly(tenant: Tenant, holders, capsys) -> None:
    call_command("rotate_tenant_keys", tenant.slug)
    assert f"{tenant.slug}: new key pair (version 2), 3 secret(s)" in capsys.readouterr().out
    call_command("rotate_master_key")
    assert "2 workspace key(s) re-wrapped" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No workspace"):
        call_command("rotate_tenant_keys", "nope")
    call_command("rotate_master_key", "--generate")
    crypto.MasterKeyring([capsys.readouterr().out.strip()])  # a valid new master key


def test_tenant_rotation_covers_provider_credentials_models_and_lb_entries(tenant) -> None:
    from providers import credentials, selectors
    from providers import services as provider_services

    credential = provider_services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": "sk-rotate-me-000000001"},
        actor=None,
    )
    custom = provider_services.custom_model_create(
        tenant=tenant,
        provider="xinference",
        model="m",
        model_type="llm",
        values={"server_url": "http://10.0.0.1:9997", "model_uid": "m", "api_key": "xk-0000000001"},
        actor=None,
    )
    view = selectors.model_get(
        tenant=tenant, provider="openai", model_key=selectors.model_id("llm", "gpt-4o")
    )
    entry = provider_services.lb_entry_create(
        tenant=tenant,
        view=view,
        name="b",
        credential_id=None,
        weight=1,
        enabled=True,
        values={"openai_api_key": "sk-lb-entry-0000000002"},
        actor=None,
    )
    before = credential.config["openai_api_key"]

    assert services.tenant_rotate_keys(tenant=tenant) == 3

    for row in (credential, custom, entry):
        row.refresh_from_db()
    assert credential.config["openai_api_key"] != before
    assert credentials.reveal(credential)["openai_api_key"] == "sk-rotate-me-000000001"
    assert credentials.reveal(custom)["api_key"] == "xk-0000000001"
    assert credentials.reveal(entry)["openai_api_key"] == "sk-lb-entry-0000000002"
