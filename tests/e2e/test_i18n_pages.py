"""简体中文 in real Chromium: the pages a workspace admin reads (providers, the set-up dialog with
its field errors, usage with calls in it, API keys, members) show no English from our message
catalog, Django's or DRF's; and the usage page reads at 390 px (issue 13 items 4 and 6).

How the check works: take the text the browser renders (body, which holds an open dialog), cut
out what is data rather than words of ours (the catalog's own 简体中文 texts, which may name
"API Key" or "OpenAI"; addresses; numbers; identifiers), and every Latin word left must be on a
short allow-list of names, units and acronyms. A message that gettext did not translate leaves
its English words, and the test names them."""

from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import timedelta
from decimal import Decimal
from functools import cache

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect

from invocations.models import Invocation
from providers import selectors
from providers.schema import I18n
from tenants import services
from tenants.models import Role
from tests.e2e.conftest import assert_fits, log_in, screenshot

PASSWORD = "correct-horse-battery"

# Names, units and acronyms a Chinese page writes in Latin letters, and this test's own data
# (workspace, users, key names).
ALLOWED = {
    # the language switcher names each language in its own name
    "English",
    # acronyms and units
    "API",
    "ID",
    "UID",
    "URL",
    "LLM",
    "Token",
    "Tokens",
    "ms",
    "K",
    "M",
    "p50",
    "p95",
    "UTC",
    "CNY",
    "USD",
    # this test's data
    "Acme",
    "ada",
    "mo",
    "Batch",
}
_ADDRESS = re.compile(r"\S+@\S+|https?://\S*|/\S*")  # e-mail addresses, URLs, paths
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.'\u2019-]*")


@cache
def _catalog_texts() -> list[str]:
    """Every 简体中文 text of the provider catalog (labels, descriptions, form labels, help...),
    longest first. They are the catalog's data, shown as written."""
    texts: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, I18n):
            texts.add(value.zh_Hans)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    for manifest in selectors.catalog():
        walk(manifest)
    return sorted((t for t in texts if t.strip()), key=len, reverse=True)


def untranslated_words(text: str, *, data: tuple[str, ...] = ()) -> list[str]:
    """The Latin words in `text` that are neither data nor allowed (see the module docstring)."""
    for shown_as_is in (*_catalog_texts(), *data):
        text = text.replace(shown_as_is, " ")
    text = _ADDRESS.sub(" ", text)
    found = []
    for word in _WORD.findall(text):
        word = word.rstrip(".'\u2019-")
        if any(c.isdigit() for c in word) or "_" in word or "." in word:
            continue  # a model name (gpt-4o-mini), a version, an identifier, a host name
        if word not in ALLOWED:
            found.append(word)
    return found


def visible_text(page: Page) -> str:
    return page.locator("body").inner_text()


def assert_all_chinese(page: Page, what: str) -> None:
    code = tuple(page.locator("code").all_inner_texts())  # API names, key prefixes: as written
    words = untranslated_words(visible_text(page), data=code)
    assert words == [], f"{what} shows English in 简体中文: {sorted(set(words))}"


def test_the_check_finds_english_and_lets_names_through() -> None:
    """The check itself: it can fail."""
    assert untranslated_words("该字段是必填项。 This field is required.") == [
        "This",
        "field",
        "is",
        "required",
    ]
    assert untranslated_words("状态 Checking… 有效") == ["Checking"]
    assert (
        untranslated_words(
            "OpenAI 的 API Key · gpt-4o-mini · 128K · 12 ms · ¥0.8 / ¥2 · https://api.openai.com/v1"
        )
        == []
    )


@pytest.fixture
def workspace(transactional_db):
    users = get_user_model().objects
    owner = users.create_user(username="ada", email="ada@example.com", password=PASSWORD)
    member = users.create_user(username="mo", email="mo@example.com", password=PASSWORD)
    tenant = services.tenant_create(name="Acme", owner=owner)
    services.membership_set(tenant=tenant, user=member, role=Role.MEMBER)
    return tenant


def add_usage(tenant) -> None:
    """Calls of two providers and both sources, one failed, one with an API key and a cost in
    each currency, spread over a week (as tests/integration/test_pages_usage.py makes them)."""
    key, _ = services.api_key_create(tenant=tenant, name="Batch", scopes=["invoke"])
    now = timezone.now()
    rows = [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "cost": Decimal("0.0012"),
            "currency": "USD",
        },
        {"provider": "tongyi", "model": "qwen-plus", "cost": Decimal("0.5"), "currency": "CNY"},
        {"provider": "openai", "model": "text-embedding-3-small", "model_type": "text-embedding"},
        {"provider": "openai", "model": "gpt-4o", "status": "failed", "error_code": "rate_limit"},
        {"provider": "tongyi", "model": "qwen-plus", "source": "gateway", "api_key": key},
    ]
    for days, values in enumerate(rows * 3):
        invocation = Invocation.objects.create(
            tenant=tenant,
            **{
                "model_type": "llm",
                "status": "succeeded",
                "prompt_tokens": 120,
                "completion_tokens": 30,
                "latency_ms": 250,
                **values,
            },
        )
        Invocation.objects.filter(pk=invocation.pk).update(
            created_at=now - timedelta(days=days % 7, minutes=5)
        )


def test_simplified_chinese_pages_have_no_untranslated_english(workspace, new_page) -> None:
    add_usage(workspace)
    page = new_page()
    log_in(page, "ada", PASSWORD)
    page.get_by_label("Language").select_option("zh-hans")
    expect(page.get_by_role("heading", name="系统模型设置")).to_be_visible()
    # Each language in its own name, whatever the page's language.
    assert page.locator("#language-switch option").all_inner_texts() == ["English", "简体中文"]
    assert_all_chinese(page, "the providers page")
    screenshot(page, "i18n-providers-zh-hans")

    # The set-up dialog, submitted empty: its field errors are translated too.
    page.locator("#card-openai").get_by_role("button", name="设置").click()
    dialog = page.locator("dialog#dialog")
    expect(dialog.get_by_label("组织 ID")).to_be_visible()
    dialog.locator("form").first.evaluate("form => { form.noValidate = true }")
    dialog.get_by_label("API Base URL").fill("not-a-url")  # a message of ours, not Django's
    dialog.get_by_role("button", name="保存").click()
    expect(dialog.locator(".field-error")).to_have_count(2)
    assert_all_chinese(page, "the set-up dialog with field errors")
    screenshot(page, "i18n-setup-errors-zh-hans", full_page=False)
    page.keyboard.press("Escape")

    for path, what in (
        ("/settings/usage/", "the usage page"),
        ("/settings/usage/?period=24h", "the usage page, hourly"),
        ("/settings/api-keys/", "the API keys page"),
        ("/settings/members/", "the members page"),
    ):
        page.goto(path)
        assert_all_chinese(page, what)
    page.goto("/settings/usage/")
    expect(page.locator("#usage-by-model")).to_contain_text("通义千问")  # provider labels
    page.locator("#usage-by-model").scroll_into_view_if_needed()
    screenshot(page, "i18n-usage-zh-hans")


def test_usage_page_at_phone_width(workspace, new_page) -> None:
    """At 390 px: nothing scrolls sideways, tables stack, and the charts' axis labels are drawn
    at a readable size (the narrow drawing, not the wide one scaled down)."""
    add_usage(workspace)
    page = new_page(width=390, height=844)
    log_in(page, "ada", PASSWORD)
    for period in ("7d", "24h"):
        page.goto(f"/settings/usage/?period={period}")
        assert_fits(page, f"usage ({period}) at 390 px")
        expect(page.locator("#calls-chart")).to_be_hidden()
        narrow = page.locator("#calls-chart-narrow")
        expect(narrow).to_be_visible()
        heights = narrow.locator("text").evaluate_all(
            "texts => texts.map(t => t.getBoundingClientRect().height)"
        )
        assert heights, "the narrow chart has axis labels"
        assert min(heights) >= 10, f"axis labels {min(heights):.1f} px high at 390 px"
        spans = narrow.locator("text[text-anchor='middle']").evaluate_all(
            "texts => texts.map(t => t.getBoundingClientRect()).map(r => [r.left, r.right])"
        )
        assert len(spans) >= 3, spans
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), (
            f"x-axis labels overlap: {spans}"
        )
        narrow.scroll_into_view_if_needed()
        screenshot(page, f"i18n-usage-390-chart-{period}", full_page=False)
    page.locator("details summary").click()  # the numbers as a table
    page.locator("#usage-by-model").scroll_into_view_if_needed()
    screenshot(page, "i18n-usage-390-tables", full_page=False)
    row = page.locator("#usage-by-model tbody tr").first
    cells = row.locator("td").evaluate_all("tds => tds.map(td => td.getBoundingClientRect().left)")
    assert len(set(cells)) == 1, "the table's cells stack one under the other at 390 px"
    wide = new_page(width=1280)
    log_in(wide, "ada", PASSWORD)
    wide.goto("/settings/usage/")
    expect(wide.locator("#calls-chart")).to_be_visible()
    expect(wide.locator("#calls-chart-narrow")).to_be_hidden()
