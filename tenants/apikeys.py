"""The API key format. Pure stdlib, so the run script can mint the demo key before Django starts.

A key looks like `mpk_<8 id chars>_<40 secret chars>` (base62, ~238 random bits). The part before
the last underscore is the visible prefix; only the SHA-256 of the whole key is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import string

PREFIX = "mpk_"
_ALPHABET = string.ascii_letters + string.digits
_ID_LEN = 8
_SECRET_LEN = 40


def new_raw_key() -> str:
    key_id = "".join(secrets.choice(_ALPHABET) for _ in range(_ID_LEN))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LEN))
    return f"{PREFIX}{key_id}_{secret}"


def is_well_formed(raw_key: str) -> bool:
    head, _, secret = raw_key.rpartition("_")
    return (
        head.startswith(PREFIX)
        and len(head) == len(PREFIX) + _ID_LEN
        and len(secret) == _SECRET_LEN
        and all(c in _ALPHABET for c in head[len(PREFIX) :] + secret)
    )


def visible_prefix(raw_key: str) -> str:
    return raw_key.rpartition("_")[0]


def hash_key(raw_key: str) -> str:
    # Keys carry ~238 random bits, so a fast hash is as safe as a slow one and keeps auth cheap.
    return hashlib.sha256(raw_key.encode()).hexdigest()


if __name__ == "__main__":
    print(new_raw_key())
