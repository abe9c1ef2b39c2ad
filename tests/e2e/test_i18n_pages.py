"""简体中文 in real Chromium: the pages a workspace admin reads (providers, the set-up dialog with
its field errors and with a failed check, the models dialog with custom models, Discover models,
usage with calls in it, API keys, members with an invitation, the invitation's page and e-mail,
the Django admin's change forms) show no English from our message catalog, Django's or DRF's;
and the usage page reads at 390 px (issue 13 items 4 and 6).

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
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone, translation
from playwright.sync_api import Page, expect

from invocations.models import Invocation
from providers import selectors
from providers import services as provider_services
from providers.schema import I18n
from tenants import invitations, services
from tenants.models import Membership, Role
from tenants.principals import Principal
from tests.e2e.conftest import assert_fits, log_in, screenshot
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.xinference_server import XinferenceFake

PASSWORD = "correct-horse-battery"

# Names, units and acronyms a Chinese page writes in Latin letters, and this test's own data
# (workspace, users, key names).
ALLOWED = {
    # the language switcher names each language in its own name; Django's admin names Django
    "English",
    "Django",
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
    "newbie",
}
OPENAI_KEY = "sk-i18n-good-key-000001"
CHECKED = 30_000  # ms: a check by the worker, under the load of the whole suite
XINF_KEY = "xk-i18n-0001"
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


def assert_all_chinese(page: Page, what: str, *, data: tuple[str, ...] = ()) -> None:
    code = tuple(page.locator("code").all_inner_texts())  # API names, key prefixes: as written
    words = untranslated_words(visible_text(page), data=(*code, *data))
    assert words == [], f"{what} shows English in 简体中文: {sorted(set(words))}"


def in_chinese(page: Page, base_url: str) -> Page:
    """A page whose browser has chosen 简体中文 (the switcher's cookie) before its first request."""
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": "zh-hans", "url": base_url}]
    )
    return page


def invite(tenant, email: str, base_url: str) -> str:
    """An invitation made by the owner in 简体中文, as the members page makes it; its link."""
    owner = Membership.objects.get(tenant=tenant, user__username="ada")
    links = []

    def link_for(token: str) -> str:
        links.append(f"{base_url}/invite/{token}/")
        return links[-1]

    with translation.override("zh-hans"):
        invitations.invitation_create(
            tenant=tenant,
            email=email,
            role=Role.EDITOR,
            actor=Principal.for_member(owner),
            link_for=link_for,
        )
    return links[-1]


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


def test_simplified_chinese_pages_have_no_untranslated_english(
    workspace, new_page, live_server
) -> None:
    add_usage(workspace)
    mail.outbox.clear()
    link = invite(workspace, "new@example.com", live_server.url)
    # The e-mail, written in the inviter's language: only the link, names and a date are Latin.
    (sent,) = mail.outbox
    assert untranslated_words(f"{sent.subject}\n{sent.body}") == [], sent.body
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
        ("/settings/members/", "the members page, with an invitation"),
    ):
        page.goto(path)
        assert_all_chinese(page, what)
    expect(page.locator("#invitations")).to_contain_text("new@example.com")
    screenshot(page, "i18n-members-zh-hans")
    page.goto("/settings/usage/")
    expect(page.locator("#usage-by-model")).to_contain_text("通义千问")  # provider labels
    page.locator("#usage-by-model").scroll_into_view_if_needed()
    screenshot(page, "i18n-usage-zh-hans")

    # The invitation's page, opened from the e-mail by someone without an account, and its
    # sign-up form with Django's own field errors.
    invitee = in_chinese(new_page(), live_server.url)
    invitee.goto(link)
    expect(invitee.get_by_role("heading", name="加入 Acme")).to_be_visible()
    assert_all_chinese(invitee, "the invitation page")
    invitee.locator("#id_username").fill("newbie")
    invitee.locator("#id_password1").fill(PASSWORD)
    invitee.locator("#id_password2").fill("not the same")
    invitee.get_by_role("button", name="创建账号并加入").click()
    expect(invitee.locator("#id_password2-error")).to_be_visible()
    assert_all_chinese(invitee, "the invitation page with field errors")
    screenshot(invitee, "i18n-invitation-zh-hans")

    # Django admin's change forms: Django's words are Django's; our labels and help are ours.
    users = get_user_model().objects
    users.filter(username="ada").update(is_staff=True, is_superuser=True)
    credential = provider_services.credential_create(
        tenant=workspace,
        provider="openai",
        name="",
        values={"openai_api_key": OPENAI_KEY},
        actor=None,
    )
    custom = provider_services.custom_model_create(
        tenant=workspace,
        provider="xinference",
        model="qwen2.5-chat",
        model_type="llm",
        values={"server_url": "http://127.0.0.1:9997", "model_uid": "qwen2.5-instruct"},
        actor=None,
    )
    for path, what in (
        (f"/admin/providers/providercredential/{credential.pk}/change/", "a credential"),
        (f"/admin/providers/custommodel/{custom.pk}/change/", "a custom model"),
        ("/admin/providers/modelsetting/add/", "a model's settings (fallbacks)"),
        ("/admin/providers/custommodel/", "the custom models' list"),
    ):
        page.goto(path)
        expect(page.locator("#content")).to_be_visible()
        # Objects are named as stored ("openai: Default"), a provider's key follows its label
        # ("OpenAI (openai)"); the admin writes the user in capitals.
        keys = tuple(f"({m.provider})" for m in selectors.catalog())
        names = (str(credential), str(custom), *keys, "Default", "ADA")
        assert_all_chinese(page, f"the admin's {what}", data=names)
        if "custommodel/" + str(custom.pk) in path:
            screenshot(page, "i18n-admin-custom-model-zh-hans")


@pytest.fixture
def openai_fake():
    with OpenAIFake(api_key=OPENAI_KEY) as server:
        yield server


@pytest.fixture
def xinference():
    with XinferenceFake(api_key=XINF_KEY) as server:
        yield server


def shown_as_said(locator) -> tuple[str, ...]:
    """What a provider or model server said (its error, the abilities it lists): its own words."""
    return tuple(locator.all_inner_texts())


@pytest.mark.usefixtures("celery_worker_thread")
def test_simplified_chinese_dialogs_have_no_untranslated_english(
    workspace, openai_fake, xinference, new_page, live_server
) -> None:
    """The dialogs of items 1-3 in 简体中文: a failed check that keeps the working credential
    ("Save anyway"), a card's summary and what failed, the models dialog with a valid and an
    invalid custom model, a custom model's edit form, and Discover models listing the
    Xinference fake's models."""
    provider_services.credential_create(
        tenant=workspace,
        provider="openai",
        name="",
        values={"openai_api_key": OPENAI_KEY, "openai_api_base": openai_fake.url},
        actor=None,
    )
    for model, uid in (("qwen2.5-chat", "qwen2.5-instruct"), ("llama-3-typo", "llama-3-typo")):
        provider_services.custom_model_create(
            tenant=workspace,
            provider="xinference",
            model=model,
            model_type="llm",
            values={"server_url": xinference.url, "model_uid": uid, "api_key": XINF_KEY},
            actor=None,
        )
    page = new_page()
    log_in(page, "ada", PASSWORD)
    in_chinese(page, live_server.url).goto("/settings/model-providers/")
    dialog = page.locator("dialog#dialog")

    card = page.locator("#card-xinference")
    # Checked by the worker (slower while the whole suite runs): one model failed.
    expect(card.locator("[data-problems]")).to_be_visible(timeout=CHECKED)
    expect(page.locator("#card-openai .status")).to_have_text("有效", timeout=CHECKED)
    card.locator("[data-problems] summary").click()
    errors = shown_as_said(card.locator("[data-problems] .error-text"))  # open behind dialogs
    assert_all_chinese(page, "the cards with what failed", data=errors)
    card.scroll_into_view_if_needed()
    screenshot(page, "i18n-card-what-failed-zh-hans", full_page=False)

    # A wrong key, checked in the dialog: the working credential stays in use.
    page.locator("#card-openai").get_by_role("button", name="凭据").click()
    dialog.locator("tr[data-credential='Default']").get_by_role("button", name="编辑").click()
    # The edit form replaces the add form: filling before it arrived would fill the add form.
    expect(dialog.get_by_role("heading", name="编辑“Default”")).to_be_visible()
    dialog.get_by_label("API Key").fill("sk-i18n-wrong-key-00002")
    dialog.get_by_role("button", name="保存", exact=True).click()
    expect(dialog.locator("[data-kept]")).to_be_visible(timeout=CHECKED)
    expect(dialog.get_by_role("button", name="仍然保存")).to_be_visible()
    answer = shown_as_said(dialog.locator("[data-verdict] .error-text"))
    assert_all_chinese(
        page, "the set-up dialog with a failed check", data=("Default", *answer, *errors)
    )
    screenshot(page, "i18n-setup-failed-check-zh-hans", full_page=False)
    page.keyboard.press("Escape")

    card.get_by_role("button", name=re.compile(r"^\d+ 个模型$")).click()
    expect(dialog.locator("tr[data-model='llama-3-typo'] .status")).to_have_text("无效")
    expect(dialog.locator("tr[data-model='qwen2.5-chat'] .status")).to_have_text("有效")
    assert_all_chinese(page, "the models dialog with custom models", data=errors)
    screenshot(page, "i18n-models-dialog-zh-hans", full_page=False)
    dialog.get_by_role("button", name="编辑 llama-3-typo").click()
    expect(dialog.locator("h2")).to_have_text("编辑模型 llama-3-typo")
    answer = shown_as_said(dialog.locator("[data-verdict] .error-text"))
    assert_all_chinese(page, "a custom model's edit form", data=(*answer, *errors))
    page.keyboard.press("Escape")

    card.get_by_role("button", name="添加模型").click()
    dialog.locator("input[name='server_url']").fill(xinference.url)
    dialog.locator("input[name='api_key']").fill(XINF_KEY)
    dialog.get_by_role("button", name="发现模型").click()
    expect(dialog.locator("tr[data-found='bge-m3']")).to_be_visible(timeout=CHECKED)
    served = shown_as_said(dialog.locator("tr[data-found] label"))  # the models' names
    abilities = shown_as_said(dialog.locator("[data-discovered] .badges .badge"))
    assert_all_chinese(page, "Discover models", data=(*served, *abilities, *errors))
    screenshot(page, "i18n-discover-zh-hans", full_page=False)


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
