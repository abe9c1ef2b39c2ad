"""JSON bodies as the API (and the /v1 gateway) accepts them: strict JSON, no number that
overflows to infinity (`1e999`), which no database column can store, no nesting past Python's
recursion limit, and no string holding a lone surrogate (`"\ud800"`: valid JSON, but not text;
it cannot be encoded as UTF-8, so it would break every page and response showing it)."""

from __future__ import annotations

import codecs
import io
import json
import math
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"The number {text[:40]} is too large.")
    return value


# A \uD800-\uDFFF escape: only a body that has one can hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def loads(text: str) -> Any:
    """Strict JSON (see the module's docstring); ValueError or RecursionError when refused."""
    data = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                "A string holds a lone surrogate (\\ud800-\\udfff): not text."
            ) from exc
    return data


class FiniteJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads(codecs.getreader(encoding)(stream).read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc


class InlineMediaJSONParser(BaseParser):
    """FiniteJSONParser's JSON, up to INVOCATION_MAX_BODY bytes instead of Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE, for the endpoint that takes audio and images inline. Not a
    JSONParser: DRF gives those `request.body`, read under Django's limit; this reads the stream.
    A larger body is RequestDataTooBig (the API's JSON 413)."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.INVOCATION_MAX_BODY
        request = parser_context["request"]
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
            raise RequestDataTooBig(f"The request body is larger than {limit} bytes.")
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestDataTooBig(f"The request body is larger than {limit} bytes.")
        return FiniteJSONParser().parse(io.BytesIO(body), media_type, parser_context)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON.")
