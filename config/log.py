"""Log formatters that scrub secrets (`config.redact`) from every line they write.

The scrub runs on the finished line (message, extra fields and traceback alike), so a secret that
slips into an exception message or a third-party library's log call is still masked.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

from config.redact import scrub


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class RedactingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))
