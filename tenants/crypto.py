"""Per-tenant envelope encryption. Pure Python: the stdlib and `cryptography`, nothing of Django.

Each tenant owns an RSA-2048 key pair. A secret is sealed with a fresh AES-256-GCM data key, and
that data key with the tenant's public key (RSA-OAEP, SHA-256). The envelope is one ASCII string:

    enc1:<base64( fingerprint[8] | wrapped_data_key[256] | nonce[12] | ciphertext+tag )>

`fingerprint` names the key pair that sealed it (first 8 bytes of SHA-256 of the public key), so an
envelope opened with another tenant's key fails as `WrongKey`, not as noise. The associated data
binds the version, the fingerprint and the caller's `context` (tenant, row and field), so an
envelope copied to another row or field fails as `DecryptionFailed`.

The private key is never stored in the clear: `MasterKeyring` wraps its DER form with Fernet under
the first master key and unwraps with any of them (rotation without downtime).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENVELOPE_PREFIX = "enc1:"
_FINGERPRINT_LEN = 8
_WRAPPED_KEY_LEN = 256  # RSA-2048
_NONCE_LEN = 12
_TAG_LEN = 16
_HEADER_LEN = _FINGERPRINT_LEN + _WRAPPED_KEY_LEN + _NONCE_LEN
_OAEP = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


class CryptoError(Exception):
    """Root of every error this module raises; messages never contain key material."""


class MalformedEnvelope(CryptoError):
    """Not an envelope of a known version, bad base64, or truncated."""


class WrongKey(CryptoError):
    """The envelope was sealed for another key pair (another tenant, or before a key rotation)."""


class DecryptionFailed(CryptoError):
    """The envelope was tampered with, or opened with another context than it was sealed with."""


class MasterKeyError(CryptoError):
    """A master key is malformed, or none of the master keys unwraps a private key."""


def is_envelope(value: object) -> bool:
    return isinstance(value, str) and value.startswith(ENVELOPE_PREFIX)


def fingerprint(public_key: rsa.RSAPublicKey) -> bytes:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()[:_FINGERPRINT_LEN]


class MasterKeyring:
    """The master keys from the environment: the first wraps, all unwrap."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise MasterKeyError("At least one master key is required.")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, binascii.Error, TypeError) as exc:
            raise MasterKeyError(
                "A master key is not a valid Fernet key (32 url-safe base64 bytes)."
            ) from exc

    def wrap(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def unwrap(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise MasterKeyError("No configured master key unwraps this private key.") from exc

    def rewrap(self, token: bytes) -> bytes:
        """Re-wrap under the first master key (what `rotate_master_key` does to every tenant)."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as exc:
            raise MasterKeyError("No configured master key unwraps this private key.") from exc


def generate_master_key() -> str:
    return Fernet.generate_key().decode()


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A tenant's key pair as stored: the public key in PEM, the private key wrapped."""

    public_pem: str
    wrapped_private_key: bytes


def generate_key_pair(master: MasterKeyring) -> KeyPair:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(public_pem=public_pem.decode(), wrapped_private_key=master.wrap(der))


class Sealer:
    """Seals with a public key; needs no master key (anyone may encrypt for a tenant)."""

    def __init__(self, public_pem: str) -> None:
        key = serialization.load_pem_public_key(public_pem.encode())
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size != 2048:
            raise CryptoError("A tenant public key must be RSA-2048.")
        self._public_key = key
        self.fingerprint = fingerprint(key)

    def seal(self, plaintext: str, *, context: str) -> str:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE_LEN)
        wrapped = self._public_key.encrypt(data_key, _OAEP)
        ciphertext = AESGCM(data_key).encrypt(
            nonce, plaintext.encode(), _associated_data(self.fingerprint, context)
        )
        blob = self.fingerprint + wrapped + nonce + ciphertext
        return ENVELOPE_PREFIX + base64.b64encode(blob).decode("ascii")


class KeyPairCipher(Sealer):
    """Seals and opens: holds the unwrapped private key, so keep it in process memory only."""

    def __init__(self, key_pair: KeyPair, master: MasterKeyring) -> None:
        super().__init__(key_pair.public_pem)
        private_key = serialization.load_der_private_key(
            master.unwrap(key_pair.wrapped_private_key), password=None
        )
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise CryptoError("A tenant private key must be RSA.")
        if fingerprint(private_key.public_key()) != self.fingerprint:
            raise CryptoError("The private key does not match the public key.")
        self._private_key = private_key

    def open(self, envelope: str, *, context: str) -> str:
        blob = _decode(envelope)
        envelope_fingerprint = blob[:_FINGERPRINT_LEN]
        if envelope_fingerprint != self.fingerprint:
            raise WrongKey("This secret was sealed with another key pair.")
        wrapped = blob[_FINGERPRINT_LEN : _FINGERPRINT_LEN + _WRAPPED_KEY_LEN]
        nonce = blob[_FINGERPRINT_LEN + _WRAPPED_KEY_LEN : _HEADER_LEN]
        try:
            data_key = self._private_key.decrypt(wrapped, _OAEP)
            plaintext = AESGCM(data_key).decrypt(
                nonce, blob[_HEADER_LEN:], _associated_data(self.fingerprint, context)
            )
        except (ValueError, InvalidTag) as exc:
            raise DecryptionFailed(
                "The secret does not decrypt: it was altered, or belongs to another row or field."
            ) from exc
        return plaintext.decode()


def _associated_data(key_fingerprint: bytes, context: str) -> bytes:
    return ENVELOPE_PREFIX.encode() + key_fingerprint + context.encode()


def _decode(envelope: str) -> bytes:
    if not is_envelope(envelope):
        raise MalformedEnvelope("Not an encrypted value of a known version.")
    try:
        blob = base64.b64decode(envelope[len(ENVELOPE_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelope("The encrypted value is not valid base64.") from exc
    if len(blob) < _HEADER_LEN + _TAG_LEN:
        raise MalformedEnvelope("The encrypted value is truncated.")
    return blob
