"""Log lines never carry a secret, whatever part of the record it hides in."""

from __future__ import annotations

import io
import json
import logging

import pytest

from config.log import RedactingJsonFormatter, RedactingTextFormatter
from config.redact import scrub
from tenants import apikeys


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer abcdef123456", "abcdef123456"),
        ('{"openai_api_key": "sk-proj-Zz9aaaaaaaaa"}', "sk-proj-Zz9aaaaaaaaa"),
        ("calling with api_key=hunter2hunter2&x=1", "hunter2hunter2"),
        ("password: correct-horse", "correct-horse"),
        ("the key sk-ant-api03-abcdefgh was refused", "sk-ant-api03-abcdefgh"),
        ("'aws_secret_access_key': 'wJalrXUtnFEMI'", "wJalrXUtnFEMI"),
    ],
)
def test_scrub_masks_secret_values(line: str, secret: str) -> None:
    assert secret not in scrub(line)


def test_scrub_keeps_an_api_keys_visible_prefix() -> None:
    key = apikeys.new_raw_key()
    scrubbed = scrub(f"request with {key}")
    assert key not in scrubbed
    assert apikeys.visible_prefix(key) in scrubbed


@pytest.mark.parametrize(
    "formatter",
    [RedactingTextFormatter("%(message)s"), RedactingJsonFormatter("%(message)s")],
)
def test_formatters_scrub_messages_args_extras_and_tracebacks(
    formatter: logging.Formatter,
) -> None:
    key = apikeys.new_raw_key()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "auth failed for %s", key, extra={"headers": {"Authorization": f"Bearer {key}"}}
        )
        try:
            raise RuntimeError(f"upstream said: invalid api_key={key}")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert key not in output
    assert key.rpartition("_")[2] not in output
    assert "call failed" in output
    if isinstance(formatter, RedactingJsonFormatter):
        for line in output.splitlines():
            json.loads(line)  # still valid JSON lines
