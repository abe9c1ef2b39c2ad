"""Template helpers for the provider pages: manifest texts in the page's language, form values,
and the words people read instead of the catalog's keys (model types, statuses, features, prices,
context sizes, provider names)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import template
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from providers import selectors
from providers.models import ModelType
from providers.schema import I18n, Pricing
from tenants.models import ApiKeyScope

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
    """`text-embedding` -> "Text embedding" (文本嵌入)."""
    return str(dict(ModelType.choices).get(model_type, model_type))


_STATUS_LABELS = {
    "valid": gettext_lazy("Valid"),
    "invalid": gettext_lazy("Invalid"),
    "validating": gettext_lazy("Checking…"),
    "unchecked": gettext_lazy("Unchecked"),
}


@register.filter
def status_label(status: str) -> str:
    """A check's status (CheckStatus) as a word: `validating` -> "Checking…"."""
    return str(_STATUS_LABELS.get(status, status))


_FEATURE_LABELS = {
    "tool-call": gettext_lazy("Tool calling"),
    "multi-tool-call": gettext_lazy("Parallel tool calls"),
    "stream-tool-call": gettext_lazy("Streamed tool calls"),
    "agent-thought": gettext_lazy("Agent reasoning"),
    "vision": gettext_lazy("Vision"),
    "document": gettext_lazy("Documents"),
    "video": gettext_lazy("Video"),
    "audio": gettext_lazy("Audio"),
    "structured-output": gettext_lazy("Structured output"),
    "stream": gettext_lazy("Streaming"),
}


@register.filter
def feature_label(feature: str) -> str:
    """A model feature key as a name: `tool-call` -> "Tool calling"."""
    return str(_FEATURE_LABELS.get(feature, feature))


_CURRENCY_SYMBOLS = {"USD": "$", "CNY": "¥", "EUR": "€", "GBP": "£", "JPY": "¥"}


@register.filter
def money(amount: Decimal | str | int | float | None, currency: str) -> str:
    """An amount with its currency's symbol and no trailing zeros: (1.2500, USD) -> "$1.25";
    a currency without a known symbol keeps its code: "3 CHF"."""
    if amount is None or amount == "":
        return "—"
    number = format(Decimal(str(amount)).normalize(), "f")
    symbol = _CURRENCY_SYMBOLS.get(currency.upper())
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


@register.filter
def price(pricing: Pricing | None) -> str:
    """A model's price, input then output: "$1.25 / $10" per 1M tokens (the table head names the
    unit). Other units say theirs: "$15 per 1M characters", "$0.006 per minute"."""
    if pricing is None:
        return "—"
    text = money(pricing.input, pricing.currency)
    if pricing.output is not None:
        text = f"{text} / {money(pricing.output, pricing.currency)}"
    if pricing.unit == "1M-characters":
        return _("%(price)s per 1M characters") % {"price": text}
    if pricing.unit == "minute":
        return _("%(price)s per minute") % {"price": text}
    return text


def _rounded(value: float) -> tuple[float, float]:
    """`value` to one decimal, and how far that is from it (relative)."""
    shown = round(value, 1)
    return shown, abs(shown - value) / value


@register.filter
def context_size(tokens: int | None) -> str:
    """A context window as people say it: 1047576 -> "1M", 131072 -> "128K", 200000 -> "200K".
    Binary (1024) or decimal (1000) multiples, whichever the number is closer to."""
    if not tokens:
        return "—"
    tokens = int(tokens)
    for suffix, binary, decimal in (("M", 1 << 20, 1_000_000), ("K", 1 << 10, 1_000)):
        if tokens >= decimal:
            # 128000 is exactly 128K and 125 KiB: on a tie the decimal reading (first) wins.
            candidates = (_rounded(tokens / decimal), _rounded(tokens / binary))
            shown = min(candidates, key=lambda r: r[1])
            return f"{shown[0]:.1f}".removesuffix(".0") + suffix
    return str(tokens)


@register.filter
def scope_label(scope: str) -> str:
    """An API key scope as words: `invoke` -> "Invoke models"."""
    return str(dict(ApiKeyScope.choices).get(scope, scope))


@register.filter
def provider_label(provider: str) -> str:
    """A provider key as its manifest's label in the page's language: `openai` -> "OpenAI";
    a provider no longer in the catalog keeps its key."""
    manifest = selectors.catalog().get(provider)
    return tr(manifest.label) if manifest is not None else provider
