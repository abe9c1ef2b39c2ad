"""The settings pages print words, not the catalog's keys (issue 13 item 4): model types, check
statuses, features, prices per 1M tokens with the currency symbol, context sizes, provider names;
and the same in 简体中文, validation messages and dates included."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from invocations import pages
from invocations.models import Invocation
from providers import services
from tenants.models import Role

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def owner(tenant, make_member, client):
    client.force_login(make_member(tenant, Role.OWNER))
    return client


@pytest.fixture
def openai(tenant):
    services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": "sk-words-test-000000000001"},
        actor=None,
    )


def row(page: str, model: str) -> str:
    """The model's table row, its cells without their data-label (shown beside them on phones)."""
    match = re.search(rf'<tr data-model="{re.escape(model)}">(.*?)</tr>', page, re.S)
    assert match, model
    return re.sub(r'<td data-label="[^"]*">', "<td>", match.group(1))


def test_the_models_dialog_reads_as_words(owner, openai) -> None:
    page = owner.get("/settings/model-providers/openai/models").content.decode()
    assert "Price per 1M tokens (input / output)" in page
    gpt = row(page, "gpt-4.1")
    assert "<td>LLM</td>" in gpt
    assert "<td>1M</td>" in gpt  # 1047576 tokens
    assert "<td>$2 / $8</td>" in gpt  # 2.00 and 8.00 USD per 1M tokens
    assert "Tool calling" in gpt
    assert "Vision" in gpt
    assert "tool-call" not in gpt
    assert "1047576" not in gpt
    assert "<td>Text embedding</td>" in row(page, "text-embedding-3-small")

    zh = owner.get("/settings/model-providers/openai/models", **ZH).content.decode()
    gpt = row(zh, "gpt-4.1")
    assert "工具调用" in gpt
    assert "视觉" in gpt
    assert "每百万 Token 价格" in zh


def test_the_type_filter_and_badges_name_model_types(owner) -> None:
    page = owner.get("/settings/model-providers/").content.decode()
    assert '<option value="text-embedding">Text embedding</option>' in page
    assert '<option value="speech2text">Speech to text</option>' in page
    assert '<span class="badge" data-model-type="tts">Text to speech</span>' in page
    assert ">tts</span>" not in page
    zh = owner.get("/settings/model-providers/", **ZH).content.decode()
    assert '<option value="text-embedding">文本嵌入</option>' in zh


def test_the_language_switcher_names_each_language_in_its_own_name(owner) -> None:
    for headers in ({}, ZH):
        page = owner.get("/settings/model-providers/", **headers).content.decode()
        options = re.findall(r'<option value="(en|zh-hans)"[^>]*>([^<]*)</option>', page)
        assert options == [("en", "English"), ("zh-hans", "简体中文")], headers


def test_setup_errors_are_translated(owner) -> None:
    page = owner.post(
        "/settings/model-providers/openai/setup",
        {"name": "main", "openai_api_base": "api.openai.com/v1"},
        **ZH,
    ).content.decode()
    assert "该字段是必填项。" in page
    assert "请输入以 http:// 或 https:// 开头的完整 URL。" in page
    assert "This field is required." not in page


def test_the_usage_page_names_providers_and_shows_currency_symbols(tenant, owner) -> None:
    Invocation.objects.create(
        tenant=tenant,
        provider="tongyi",
        model="qwen-plus",
        model_type="text-embedding",
        status="succeeded",
        cost=Decimal("0.50"),
        currency="CNY",
        source="gateway",
    )
    page = owner.get("/settings/usage/").content.decode()
    assert ">Tongyi</option>" in page  # the filter names the provider
    assert "¥0.5" in page
    assert "0.5 CNY" not in page
    assert "Text embedding" in page
    zh = owner.get("/settings/usage/", **ZH).content.decode()
    assert ">通义千问</td>" in zh
    assert "文本嵌入" in zh
    assert ">网关</span>" in zh


def test_chart_dates_are_localised() -> None:
    bucket = pages.usage.Bucket(start=datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    with timezone.override("UTC"):
        with translation.override("en"):
            assert pages._bucket_label(bucket, hourly=False) == "Nov 27"
            assert pages._bucket_label(bucket, hourly=True, long=True) == "Nov 27 14:00"
        with translation.override("zh-hans"):
            assert pages._bucket_label(bucket, hourly=False) == "11月27日"
            assert pages._bucket_label(bucket, hourly=True) == "14:00"
