"""The words pages print instead of catalog keys, in English and 简体中文 (issue 13 item 4)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from providers.schema import Pricing
from providers.templatetags import provider_ui


@pytest.mark.parametrize(
    ("tokens", "shown"),
    [
        (1047576, "1M"),  # GPT-4.1: 1M minus 1000
        (1048576, "1M"),
        (2000000, "2M"),
        (131072, "128K"),
        (128000, "128K"),
        (200000, "200K"),
        (32768, "32K"),
        (16385, "16K"),
        (64000, "64K"),
        (1500, "1.5K"),
        (999, "999"),
        (None, "—"),
        (0, "—"),
    ],
)
def test_context_sizes_read_as_people_say_them(tokens, shown) -> None:
    assert provider_ui.context_size(tokens) == shown


def test_prices_carry_the_currency_symbol_without_trailing_zeros() -> None:
    usd = Pricing(input=Decimal("1.2500"), output=Decimal("10.00"), currency="USD")
    assert provider_ui.price(usd) == "$1.25 / $10"
    cny = Pricing(input=Decimal("0.8"), output=Decimal("2"), currency="CNY")
    assert provider_ui.price(cny) == "¥0.8 / ¥2"
    embedding = Pricing(input=Decimal("0.0200"), output=None, currency="USD")
    assert provider_ui.price(embedding) == "$0.02"
    assert provider_ui.price(None) == "—"
    assert provider_ui.money(Decimal("1E+1"), "USD") == "$10"  # no exponent
    assert provider_ui.money("3.50", "CHF") == "3.5 CHF"  # no symbol known: the code


def test_prices_in_other_units_name_their_unit() -> None:
    tts = Pricing(input=Decimal("15"), output=None, currency="USD", unit="1M-characters")
    assert provider_ui.price(tts) == "$15 per 1M characters"
    whisper = Pricing(input=Decimal("0.006"), output=None, currency="USD", unit="minute")
    with translation.override("zh-hans"):
        assert provider_ui.price(whisper) == "$0.006/分钟"


def test_keys_become_words_in_both_languages() -> None:
    with translation.override("en"):
        assert provider_ui.model_type_label("text-embedding") == "Text embedding"
        assert provider_ui.model_type_label("speech2text") == "Speech to text"
        assert provider_ui.status_label("validating") == "Checking…"
        assert provider_ui.status_label("invalid") == "Invalid"
        assert provider_ui.feature_label("tool-call") == "Tool calling"
        assert provider_ui.feature_label("vision") == "Vision"
        assert provider_ui.provider_label("openai") == "OpenAI"
        assert provider_ui.scope_label("invoke") == "Invoke models"
    with translation.override("zh-hans"):
        assert provider_ui.model_type_label("text-embedding") == "文本嵌入"
        assert provider_ui.status_label("valid") == "有效"
        assert provider_ui.status_label("validating") == "校验中…"
        assert provider_ui.feature_label("tool-call") == "工具调用"
        assert provider_ui.provider_label("tongyi") == "通义千问"
        assert provider_ui.scope_label("read") == "读取设置"


def test_unknown_keys_are_shown_as_they_are() -> None:
    assert provider_ui.model_type_label("hologram") == "hologram"
    assert provider_ui.status_label("pondering") == "pondering"
    assert provider_ui.feature_label("telepathy") == "telepathy"
    assert provider_ui.provider_label("gone-provider") == "gone-provider"
    assert provider_ui.scope_label("admin") == "admin"
