"""Log formatters that scrub secrets from every line they write.

The scrub runs on the finished line (message, extra fields and traceback alike), so a secret that
slips into an exception message or a third-party library's log call is still masked.
"""

from __future__ import annotations

import logging
import re

from pythonjsonlogger.json import JsonFormatter

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


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class RedactingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))
