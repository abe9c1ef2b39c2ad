"""tenants.crypto: the envelope, its typed errors, and master-key wrapping. No database."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from tenants import crypto

MASTER = crypto.generate_master_key()


@pytest.fixture(scope="module")
def keyring() -> crypto.MasterKeyring:
    return crypto.MasterKeyring([MASTER])


@pytest.fixture(scope="module")
def cipher(keyring: crypto.MasterKeyring) -> crypto.KeyPairCipher:
    return crypto.KeyPairCipher(crypto.generate_key_pair(keyring), keyring)


@pytest.fixture(scope="module")
def other_cipher(keyring: crypto.MasterKeyring) -> crypto.KeyPairCipher:
    return crypto.KeyPairCipher(crypto.generate_key_pair(keyring), keyring)


def _flip(envelope: str, index: int) -> str:
    blob = bytearray(base64.b64decode(envelope.removeprefix(crypto.ENVELOPE_PREFIX)))
    blob[index] ^= 0x01
    return crypto.ENVELOPE_PREFIX + base64.b64encode(bytes(blob)).decode()


def test_round_trip_keeps_the_exact_text(cipher: crypto.KeyPairCipher) -> None:
    for secret in ["sk-proj-abc123", "", "密钥 with ünïcode and spaces ", "x" * 10_000]:
        envelope = cipher.seal(secret, context="tenant:1/credential:7/openai_api_key")
        assert crypto.is_envelope(envelope)
        assert cipher.open(envelope, context="tenant:1/credential:7/openai_api_key") == secret


def test_each_seal_uses_a_fresh_data_key_and_never_shows_the_plaintext(
    cipher: crypto.KeyPairCipher,
) -> None:
    first = cipher.seal("sk-same-secret", context="c")
    second = cipher.seal("sk-same-secret", context="c")
    assert first != second
    assert "sk-same-secret" not in first
    assert b"sk-same-secret" not in base64.b64decode(first.removeprefix(crypto.ENVELOPE_PREFIX))


def test_a_public_key_alone_seals_what_the_key_pair_opens(cipher: crypto.KeyPairCipher) -> None:
    public_pem = cipher._public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    envelope = crypto.Sealer(public_pem).seal("only the tenant reads this", context="c")
    assert cipher.open(envelope, context="c") == "only the tenant reads this"


@pytest.mark.parametrize(
    ("region", "index"),
    [("fingerprint", 0), ("wrapped data key", 20), ("nonce", 8 + 256 + 3), ("ciphertext", -20)],
)
def test_tampering_anywhere_is_a_typed_error(
    cipher: crypto.KeyPairCipher, region: str, index: int
) -> None:
    envelope = cipher.seal("sk-secret-value-123456", context="c")
    expected = crypto.WrongKey if region == "fingerprint" else crypto.DecryptionFailed
    with pytest.raises(expected):
        cipher.open(_flip(envelope, index), context="c")


def test_another_tenants_key_cannot_open_it(
    cipher: crypto.KeyPairCipher, other_cipher: crypto.KeyPairCipher
) -> None:
    envelope = cipher.seal("sk-secret", context="tenant:1/x")
    with pytest.raises(crypto.WrongKey, match="another key pair"):
        other_cipher.open(envelope, context="tenant:1/x")


def test_an_envelope_moved_to_another_place_does_not_open(cipher: crypto.KeyPairCipher) -> None:
    envelope = cipher.seal("sk-secret", context="tenant:1/credential:7/api_key")
    for elsewhere in ["tenant:2/credential:7/api_key", "tenant:1/credential:8/api_key", ""]:
        with pytest.raises(crypto.DecryptionFailed):
            cipher.open(envelope, context=elsewhere)


@pytest.mark.parametrize("keep", [4, 40, 300, -8])
def test_truncated_envelopes_are_typed_errors(cipher: crypto.KeyPairCipher, keep: int) -> None:
    envelope = cipher.seal("sk-secret", context="c")
    with pytest.raises((crypto.MalformedEnvelope, crypto.DecryptionFailed)):
        cipher.open(envelope[: len(crypto.ENVELOPE_PREFIX) + keep], context="c")


@pytest.mark.parametrize("value", ["sk-plain", "enc1:not base64!!", "enc9:AAAA", ""])
def test_values_that_are_no_envelope_are_malformed(
    cipher: crypto.KeyPairCipher, value: str
) -> None:
    with pytest.raises(crypto.MalformedEnvelope):
        cipher.open(value, context="c")


def test_the_wrapped_private_key_is_not_a_plain_key(keyring: crypto.MasterKeyring) -> None:
    pair = crypto.generate_key_pair(keyring)
    assert b"PRIVATE KEY" not in pair.wrapped_private_key
    with pytest.raises(ValueError):  # noqa: PT011 - whatever cryptography says: it is no key
        serialization.load_der_private_key(pair.wrapped_private_key, password=None)
    with pytest.raises(crypto.MasterKeyError):
        crypto.KeyPairCipher(pair, crypto.MasterKeyring([crypto.generate_master_key()]))


def test_master_keyring_wraps_with_the_first_and_unwraps_with_any() -> None:
    old, new = crypto.generate_master_key(), crypto.generate_master_key()
    token = crypto.MasterKeyring([old]).wrap(b"private der")
    both = crypto.MasterKeyring([new, old])
    assert both.unwrap(token) == b"private der"
    rewrapped = both.rewrap(token)
    assert crypto.MasterKeyring([new]).unwrap(rewrapped) == b"private der"
    with pytest.raises(crypto.MasterKeyError):
        crypto.MasterKeyring([old]).unwrap(rewrapped)


@pytest.mark.parametrize("keys", [[], ["not-a-fernet-key"], ["c2hvcnQ="]])
def test_bad_master_keys_are_refused(keys: list[str]) -> None:
    with pytest.raises(crypto.MasterKeyError):
        crypto.MasterKeyring(keys)


def test_error_messages_carry_no_key_material(cipher: crypto.KeyPairCipher) -> None:
    envelope = cipher.seal("sk-very-secret", context="c")
    with pytest.raises(crypto.CryptoError) as caught:
        cipher.open(_flip(envelope, -1), context="c")
    assert "sk-very-secret" not in str(caught.value)
    assert envelope[10:40] not in str(caught.value)
