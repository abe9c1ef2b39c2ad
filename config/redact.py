"""Mask secrets in text: log lines, error messages, upstream replies. Pure stdlib, so the runtime
adapters may use it too."""

from __future__ import annotations

import re
from collections.abc import Iterable

_MASK = "***"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Our own API keys keep their visible prefix.
    (re.compile(r"\b(mpk_[A-Za-z0-9]{8})_[A-Za-z0-9]{8,}"), rf"\1_{_MASK}"),
    # Authorization headers, in any quoting.
    (
        re.compile(
            r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token)?\s*)[^\s\"',}]+"
        ),
        rf"\1{_MASK}",
    ),
    # key=value / "key": "value" pairs whose key names a secret.
    (
        re.compile(
            r"(?i)([\"']?[\w-]*(?:api[_-]?key|secret|password|passwd|token|private[_-]?key|access[_-]?key)"
            r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',}&]+)"
        ),
        rf"\1{_MASK}",
    ),
    # Well-known provider key shapes (OpenAI, Anthropic, ...).
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), f"sk-{_MASK}"),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        f"[private key {_MASK}]",
    ),
]


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_values(text: str, secrets: Iterable[str]) -> str:
    """`scrub`, and also mask the given secret values wherever they appear."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _MASK)
    return scrub(text)
