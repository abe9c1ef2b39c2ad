"""Template helpers for the provider pages: manifest texts in the page's language, form values."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from django import template
from django.http import HttpRequest
from django.utils.translation import get_language, gettext

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
        return {
            "valid": gettext("Valid"),
            "invalid": gettext("Invalid"),
            "validating": gettext("Checking…"),
        }.get(view.status, gettext("Unchecked"))
    parts = [
        (checks.valid, gettext("%(count)s valid")),
        (checks.invalid, gettext("%(count)s invalid")),
        (checks.checking, gettext("%(count)s checking")),
        (checks.unchecked, gettext("%(count)s unchecked")),
    ]
    return " · ".join(text % {"count": count} for count, text in parts if count)


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
