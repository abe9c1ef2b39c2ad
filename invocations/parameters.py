"""An invocation's `parameters` checked against what its model takes, before anything is queued.

A catalog model takes the parameters its manifest's `parameter_rules` name, within their bounds; a
custom model (its provider's manifest names none) takes the common sampling settings. Nothing may
set what the call builds itself (the model, the messages, streaming, tools): a `model` among the
parameters would otherwise reach the backend in place of the model that was checked and priced.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from config import errors
from providers.runtime.base import RESERVED_PARAMETERS
from providers.schema import ParameterRule

MAX_STOPS = 4
MAX_TEXT = 100_000


@dataclass(frozen=True, slots=True)
class _Shape:
    type: str  # float | int | boolean | string | text | stop | format (string or object)
    min: float | None = None
    max: float | None = None


# What a rule made from a template takes when it gives no type or bounds of its own.
TEMPLATES = {
    "temperature": _Shape("float", 0.0, 2.0),
    "top_p": _Shape("float", 0.0, 1.0),
    "top_k": _Shape("int", 0),
    "max_tokens": _Shape("int", 1),
    "presence_penalty": _Shape("float", -2.0, 2.0),
    "frequency_penalty": _Shape("float", -2.0, 2.0),
    "response_format": _Shape("format"),
    "json_schema": _Shape("format"),
}
# A custom model's parameters: the sampling settings every family translates.
COMMON = {
    **{name: shape for name, shape in TEMPLATES.items() if name != "json_schema"},
    "seed": _Shape("int", -(2**63), 2**63 - 1),
    "stop": _Shape("stop"),
}


def _shape(rule: ParameterRule) -> _Shape:
    template = TEMPLATES.get(rule.use_template or "", _Shape(rule.type or "string"))
    return _Shape(
        rule.type or template.type,
        template.min if rule.min is None else rule.min,
        template.max if rule.max is None else rule.max,
    )


def _bounds(shape: _Shape) -> str:
    if shape.min is not None and shape.max is not None:
        return f" from {shape.min:g} to {shape.max:g}"
    if shape.min is not None:
        return f" of at least {shape.min:g}"
    return f" of at most {shape.max:g}" if shape.max is not None else ""


def _problem(value: Any, shape: _Shape, options: tuple[str, ...]) -> str | None:
    """Why `value` does not fit, or None."""
    if shape.type in ("float", "int"):
        number = shape.type == "float" and isinstance(value, float) and math.isfinite(value)
        if isinstance(value, bool) or not (isinstance(value, int) or number):
            kind = "a number" if shape.type == "float" else "a whole number"
            return f"Give {kind}{_bounds(shape)}."
        if (shape.min is not None and value < shape.min) or (
            shape.max is not None and value > shape.max
        ):
            return f"Give a number{_bounds(shape)}."
        return None
    if shape.type == "boolean":
        return None if isinstance(value, bool) else "Give true or false."
    if shape.type == "stop":
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            return "Give a string or a list of strings."
        return None if len(stops) <= MAX_STOPS else f"At most {MAX_STOPS} stop sequences."
    if shape.type == "format" and isinstance(value, dict):
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        return "Give a string." if shape.type != "format" else "Give a string or an object."
    if options and value not in options:
        return f"Give one of: {', '.join(options)}."
    return None


def check(parameters: Mapping[str, Any], rules: Iterable[ParameterRule]) -> None:
    """Raise InvalidInput naming each parameter the model does not take, or takes otherwise."""
    allowed = {rule.name: (_shape(rule), rule.options) for rule in rules} or {
        name: (shape, ()) for name, shape in COMMON.items()
    }
    problems: dict[str, list[str]] = {}
    for name, value in parameters.items():
        if name in RESERVED_PARAMETERS:
            problem = f"'{name}' is set by the invocation itself, not by parameters."
        elif name not in allowed:
            problem = f"This model takes no parameter '{name}'; it takes: {', '.join(allowed)}."
        elif value is None:
            continue
        else:
            problem = _problem(value, *allowed[name])
        if problem:
            problems[f"input.parameters.{name}"] = [problem]
    if problems:
        raise errors.InvalidInput("Some parameters are not accepted.", fields=problems)
