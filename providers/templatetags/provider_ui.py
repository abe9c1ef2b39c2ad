"""Template helpers for the provider pages: manifest texts in the page's language, form values."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.translation import get_language

from providers.models import ModelType
from providers.schema import I18n

register = template.Library()


@register.filter
def tr(text: I18n | None) -> str:
    """An English/简体中文 manifest text, in the current language."""
    if text is None:
        return ""
    return text.get(get_language() or "en")


@register.filter
def value_of(values: dict[str, Any], name: str) -> Any:
    return values.get(name, "")


@register.filter
def show_on_json(conditions: Any) -> str:
    return json.dumps([{"variable": c.variable, "value": c.value} for c in conditions])


@register.filter
def model_type_label(model_type: str) -> str:
    return dict(ModelType.choices).get(model_type, model_type)
