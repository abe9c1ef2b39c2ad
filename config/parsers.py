"""JSON bodies as the API accepts them: DRF's strict parser, no number that overflows to infinity
(`1e999`), which no database column can store, and no nesting past Python's recursion limit."""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"The number {text[:40]} is too large.")
    return value


class FiniteJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.load(
                codecs.getreader(encoding)(stream),
                parse_float=_finite,
                parse_constant=_no_constant,  # NaN, Infinity: not JSON
            )
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON.")
