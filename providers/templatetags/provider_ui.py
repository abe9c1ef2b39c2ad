"""Template helpers for the provider pages: manifest texts in the page's language, form values,
and the words people read instead of the catalog's keys (model types, statuses, features, prices,
context sizes, provider names)."""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import template
from django.http import HttpRequest
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import get_language, gettext, gettext_lazy

from config import errors
from providers import selectors
from providers.models import ModelType
from providers.runtime import failures
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


# --- Provider cards (issue 13, items 3 and 9) --------------------------------------------------

CARD_POLL_FOR = 300  # seconds a card follows its checks; then it offers a refresh instead
CARD_POLL_FAST = 20  # the first seconds it looks every second, then every CARD_POLL_SLOW
CARD_POLL_SLOW = 5


@dataclass(frozen=True, slots=True)
class CardPolling:
    active: bool  # look again after `delay` seconds
    delay: int
    since: int  # when this run of looking began (epoch seconds), carried by each look
    expired: bool  # still checking, but the card stopped looking: it offers a refresh


@register.simple_tag
def card_polling(view: Any, request: HttpRequest) -> CardPolling:
    """Whether a provider card looks again at its checks, and when. A card follows a check for
    CARD_POLL_FOR seconds at most (each look carries when the run began), so a check that never
    ends cannot keep a page polling; a refresh, or any change to the provider, starts anew."""
    now = int(time.time())
    try:
        since = int(request.GET.get("polling_since", now))
    except ValueError:
        since = now
    since = min(max(since, now - 86_400), now)
    if not view.checking:
        return CardPolling(False, 0, since, False)
    elapsed = now - since
    if elapsed >= CARD_POLL_FOR:
        return CardPolling(False, 0, since, True)
    return CardPolling(True, 1 if elapsed < CARD_POLL_FAST else CARD_POLL_SLOW, since, False)


@register.filter
def check_summary(view: Any) -> str:
    """ "4 valid · 1 invalid · 1 checking" (one credential or model: "Valid", "Checking…")."""
    checks = view.checks
    if checks.total == 1:
        return status_label(view.status if view.status in _STATUS_LABELS else "unchecked")
    parts = [
        (checks.valid, gettext("%(count)s valid")),
        (checks.invalid, gettext("%(count)s invalid")),
        (checks.checking, gettext("%(count)s checking")),
        (checks.unchecked, gettext("%(count)s unchecked")),
    ]
    return " · ".join(text % {"count": count} for count, text in parts if count)


@register.filter
def checked_when(when: datetime) -> str:
    """When a card's last check ended: "checked just now" in its first minute (not "0 minutes
    ago"), then "checked 5 minutes ago"."""
    if timezone.now() - when < timedelta(minutes=1):
        return gettext("checked just now")
    return gettext("checked %(when)s ago") % {"when": timesince(when)}


@register.filter
def search_text(view: Any) -> str:
    """What the provider search matches a card by, lower-cased: the provider's key, names and
    descriptions in both languages, its catalog models' names and labels, and this workspace's
    custom models."""
    manifest = view.manifest
    words = [
        manifest.provider,
        manifest.label.en_US,
        manifest.label.zh_Hans,
        manifest.description.en_US,
        manifest.description.zh_Hans,
    ]
    for model in manifest.models:
        words += [model.model, model.label.en_US, model.label.zh_Hans]
    words += list(view.custom_model_names)
    return " ".join(dict.fromkeys(w.lower() for w in words if w))


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


_FAILURE_LABELS = {
    "rate_limit": gettext_lazy("Rate limited"),
    "quota": gettext_lazy("Quota used up"),
    "authorization": gettext_lazy("Key refused"),
    "server_unavailable": gettext_lazy("Server error"),
    "bad_response": gettext_lazy("Server error"),
    "connection": gettext_lazy("Unreachable"),
    "timeout": gettext_lazy("Timed out"),
}


@register.filter
def failure_label(code: str) -> str:
    """Why an entry rests (an upstream error code) as words: `rate_limit` -> "Rate limited"."""
    return str(_FAILURE_LABELS.get(code, code))


_PART = re.compile(r"\{(\w+)\}")


@functools.cache
def _sentence_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Each of our failure sentences with the pattern that finds it in a stored message, the most
    specific first ("Could not connect to {target} in time (...)" before "... to {target}.")."""
    found = []
    for sentence in failures.SENTENCES:
        pieces = _PART.split(sentence)  # text, part name, text, ...
        literal = "".join(pieces[::2])
        regex = "".join(
            re.escape(piece) if n % 2 == 0 else f"(?P<{piece}>.+?)"
            for n, piece in enumerate(pieces)
        )
        found.append((len(literal), sentence, re.compile(f"^{regex}$", re.DOTALL)))
    return [(sentence, pattern) for _, sentence, pattern in sorted(found, reverse=True)]


@register.filter
def in_reader_language(message: str) -> str:
    """A stored failure message in the page's language when it is one of our own sentences
    (failures.SENTENCES, stored in English); a provider's own words stay as it said them."""
    if not message:
        return message
    for sentence, pattern in _sentence_patterns():
        found = pattern.match(message)
        if found is None:
            continue
        parts = found.groupdict()
        if "reason" in parts:
            parts["reason"] = in_reader_language(parts["reason"])
        if "message" in parts:  # a sentence without its full stop
            parts["message"] = in_reader_language(parts["message"] + ".").rstrip(".。")
        try:
            return gettext(sentence).format(**parts)
        except (KeyError, IndexError, ValueError):  # a translation that lost a part
            return message
    return message


def _codes(kind: type[errors.ServiceError]) -> set[str]:
    return {kind.code} | {code for sub in kind.__subclasses__() for code in _codes(sub)}


# A check that ended so says nothing against what it checked: it is left unchecked.
_UNFINISHED = {code for kind in errors.RETRYABLE for code in _codes(kind)}


@register.filter
def check_unfinished(code: str) -> bool:
    """Whether a failed check's error left what it checked unchecked (a rate limit, a server
    error, no connection, a timeout) rather than found it invalid."""
    return code in _UNFINISHED


# Failures where the backend said nothing: its own words would misquote the provider.
_UNREACHED = {"connection", "timeout", "forbidden_address", "lost"}


@register.filter
def verdict_lead(code: str, provider_label: str) -> str:
    """What introduces a failed check's message: the provider's answer, or that it was not reached
    (a refused connection is not something "OpenAI answered")."""
    if code in _UNREACHED:
        return gettext("Could not reach %(name)s:") % {"name": provider_label}
    return gettext("%(name)s answered:") % {"name": provider_label}


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
        return gettext("%(price)s per 1M characters") % {"price": text}
    if pricing.unit == "minute":
        return gettext("%(price)s per minute") % {"price": text}
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
