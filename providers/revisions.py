"""A pending revision of an active credential: values held until their check succeeds.

Editing the credential a provider uses in the settings page must not break a working setup with
one typo: the new values are kept beside the stored ones (`pending`, secrets sealed to their own
place), checked by a validation job of purpose "revision", and copied over the stored ones only
when the check succeeds (or the user saves anyway). A secret sent back as its hint is "kept": the
revision names it in `pending_masked` only, and applying leaves the stored secret as it is.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from providers import credentials
from providers.credentials import CleanedForm
from providers.models import ProviderCredential
from tenants import vault
from tenants.fields import secret_place

FIELD = "pending"


def has_revision(credential: ProviderCredential) -> bool:
    return credential.pending_at is not None


def carried(credential: ProviderCredential, values: dict[str, Any]) -> dict[str, Any]:
    """`values` with each secret sent back as the revision's own hint swapped for the stored
    hint, so `clean_form` keeps it; `stash` then keeps the revision's secret (see `_carried`)."""
    swapped = dict(values)
    for name in carried_names(credential, values):
        swapped[name] = credential.masked[name]
    return swapped


def carried_names(credential: ProviderCredential, values: dict[str, Any]) -> set[str]:
    return {
        name
        for name, hint in credential.pending_masked.items()
        if name in credential.pending and values.get(name) == hint and name in credential.masked
    }


def stash(credential: ProviderCredential, cleaned: CleanedForm, *, sent: dict[str, Any]) -> None:
    """Hold `cleaned` as the credential's revision (the row is saved by the caller)."""
    keep_pending = carried_names(credential, sent)
    pending: dict[str, Any] = dict(cleaned.plain)
    masked: dict[str, str] = {}
    for name in cleaned.kept:
        if name in keep_pending:
            pending[name] = credential.pending[name]
            masked[name] = credential.pending_masked[name]
        else:
            masked[name] = credential.masked[name]
    for name, secret in cleaned.secrets.items():
        pending[name] = vault.encrypt(
            credential.tenant, secret, place=secret_place(credential, FIELD, name)
        )
        masked[name] = credentials.obfuscate(secret)
    credential.pending, credential.pending_masked = pending, masked
    credential.pending_at = timezone.now()


def shown(credential: ProviderCredential) -> dict[str, Any]:
    """The revision's form values as the page shows them: secrets as hints."""
    plain = {k: v for k, v in credential.pending.items() if k not in credential.pending_masked}
    return {**plain, **credential.pending_masked}


def reveal(credential: ProviderCredential) -> dict[str, Any]:
    """The revision's values in plaintext: only for the worker that checks or applies it."""
    values = {k: v for k, v in credential.pending.items() if k not in credential.pending_masked}
    for name in credential.pending_masked:
        if name in credential.pending:
            place = secret_place(credential, FIELD, name)
            values[name] = vault.decrypt(credential.tenant, credential.pending[name], place=place)
        else:
            place = secret_place(credential, "config", name)
            values[name] = vault.decrypt(credential.tenant, credential.config[name], place=place)
    return values


def take_carried(
    credential: ProviderCredential, cleaned: CleanedForm, *, sent: dict[str, Any]
) -> None:
    """For values saved in place ("Save anyway"): a secret sent back as the revision's hint is
    the revision's secret, not the stored one."""
    for name in carried_names(credential, sent):
        if name in cleaned.kept:
            cleaned.kept.discard(name)
            place = secret_place(credential, FIELD, name)
            cleaned.secrets[name] = vault.decrypt(
                credential.tenant, credential.pending[name], place=place
            )


def apply(credential: ProviderCredential) -> None:
    """Copy the revision over the stored values and drop it (the caller saves the row)."""
    values = reveal(credential)
    new_secrets = {n for n in credential.pending_masked if n in credential.pending}
    cleaned = CleanedForm(
        plain={k: v for k, v in values.items() if k not in credential.pending_masked},
        secrets={n: values[n] for n in new_secrets},
        kept=set(credential.pending_masked) - new_secrets,
    )
    credentials.seal(credential, cleaned)
    clear(credential)


def clear(credential: ProviderCredential) -> None:
    credential.pending, credential.pending_masked, credential.pending_at = {}, {}, None
