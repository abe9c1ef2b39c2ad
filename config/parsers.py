"""JSON bodies as the API (and the /v1 gateway) accepts them: strict JSON, no number that
overflows to infinity (`1e999`), which no database column can store, no nesting deeper than
MAX_DEPTH (deeper still, Python's parser runs out of stack), and no string or key holding a NUL
(`"\u0000"`, which PostgreSQL cannot store) or a lone surrogate (`"\ud800"`: valid JSON, but
not text; it cannot be encoded as UTF-8, so it would break every page and response showing it).
Refusals name where the string is, never what it holds (it may be a secret)."""

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


MAX_INT_DIGITS = 100  # Python refuses over 4,300 with words about sys.set_int_max_str_digits()


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"The number {text[:40]}… has more than {MAX_INT_DIGITS} digits.")
    return int(text)


MAX_DEPTH = 100
TOO_DEEP = f"Nested deeper than {MAX_DEPTH} levels."

# A \u0000 or \uD800-\uDFFF escape: only a body that has one can hold a string we refuse.
_NOT_TEXT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def loads(text: str) -> Any:
    """Strict JSON (see the module's docstring); ValueError, which says why, when refused."""
    try:
        data = json.loads(text, parse_float=_finite, parse_int=_int, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    if text.count("[") + text.count("{") > MAX_DEPTH:  # cheap: only then can it nest so deep
        _refuse_deep(data)
    if _NOT_TEXT_ESCAPE.search(text):
        _refuse_non_text(data)
    return data


def text_problem(value: str) -> str | None:
    """Why `value` cannot be taken as text, or None."""
    if "\x00" in value:
        return "holds a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (\\ud800-\\udfff): not text"
    return None


def _refuse_deep(data: Any) -> None:
    pending: list[tuple[int, Any]] = [(1, data)]
    while pending:
        depth, item = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise ValueError(TOO_DEEP)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((depth + 1, child) for child in children)


def _refuse_non_text(data: Any) -> None:
    # A list, not recursion, as in _refuse_deep.
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if problem := text_problem(key):
                    raise ValueError(f"A key in {path[:200] or 'the body'} {problem}.")
                pending.append((f"{path}.{key}" if path else key, value))
        elif isinstance(item, list):
            pending.extend(
                (f"{path}.{index}" if path else str(index), v) for index, v in enumerate(item)
            )
        elif isinstance(item, str) and (problem := text_problem(item)):
            raise ValueError(f"The string at {path[:200] or 'the top'} {problem}.")


class FiniteJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads(codecs.getreader(encoding)(stream).read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


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
