"""Provider cards in real Chromium (issue 13, items 3, 6, 8, 9): a card sums up its checks and
lists what failed one click away, then stops polling; the search finds providers by their models
and says when nothing matches; switching off the default model warns first and switching it on
brings the default back; the page fits a 390 px phone."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Dialog, expect

from providers import services as provider_services
from providers.models import DefaultModel
from tenants import services
from tests.e2e.conftest import assert_fits, log_in, screenshot
from tests.fakes.xinference_server import XinferenceFake

pytestmark = pytest.mark.usefixtures("celery_worker_thread")
XINF_KEY = "xk-cards-test-0001"
PASSWORD = "correct-horse-battery"


@pytest.fixture
def xinference():
    with XinferenceFake(api_key=XINF_KEY) as server:
        yield server


@pytest.fixture
def workspace(transactional_db):
    owner = get_user_model().objects.create_user(
        username="ada", email="ada@example.com", password=PASSWORD
    )
    return services.tenant_create(name="Acme", owner=owner)


def add_model(tenant, server, model: str, model_type: str, uid: str, key: str = XINF_KEY):
    """Saved as the API and the dialog save it: the worker checks it against the fake."""
    return provider_services.custom_model_create(
        tenant=tenant,
        provider="xinference",
        model=model,
        model_type=model_type,
        values={"server_url": server.url, "model_uid": uid, "api_key": key},
        actor=None,
    )


def test_a_card_sums_up_its_checks_and_shows_what_failed(workspace, xinference, new_page):
    add_model(workspace, xinference, "qwen", "llm", "qwen2.5-instruct")
    add_model(workspace, xinference, "ranker", "rerank", "bge-reranker", key="xk-wrong-key")
    page = new_page()
    log_in(page, "ada", PASSWORD)
    card = page.locator("#card-xinference")
    # The card follows the checks in the worker, then stops looking.
    expect(card.locator(".check-summary")).to_have_text("1 valid · 1 invalid")
    expect(card.locator("[data-polling]")).to_have_count(0)
    expect(card.locator(".status")).to_have_attribute("data-status", "partial")
    expect(card.locator(".badge[data-model-type='rerank']")).to_have_text("Rerank")

    problems = card.locator("details.problems")
    expect(problems.locator("li")).to_be_hidden()  # one click away
    problems.locator("summary").click()
    expect(problems.locator("li")).to_contain_text("ranker")
    expect(problems.locator("li")).to_contain_text("Could not validate credentials")
    assert "xk-wrong-key" not in page.content()
    screenshot(page, "cards-01-summary", full_page=False)


def test_search_matches_model_names_and_says_when_nothing_does(workspace, new_page):
    page = new_page()
    log_in(page, "ada", PASSWORD)
    search = page.get_by_label("Search providers")
    search.fill("claude")
    expect(page.locator("#card-anthropic")).to_be_visible()
    expect(page.locator("#card-bedrock")).to_be_visible()
    expect(page.locator("#card-openai")).to_be_hidden()
    screenshot(page, "cards-02-search-claude", full_page=False)

    search.fill("qwen")
    expect(page.locator("#card-tongyi")).to_be_visible()
    expect(page.locator("#card-anthropic")).to_be_hidden()

    search.fill("xyzzy")
    result = page.get_by_role("status").filter(has_text="No provider")
    expect(result).to_have_text("No provider matches “xyzzy”.")
    expect(page.locator(".card:visible")).to_have_count(0)
    expect(page.get_by_role("heading", name="To be configured")).to_be_hidden()
    screenshot(page, "cards-03-search-nothing", full_page=False)

    search.fill("")
    expect(page.locator("#provider-search-result")).to_have_text("")
    expect(page.locator("#card-openai")).to_be_visible()


def test_switching_off_the_default_warns_and_switching_on_restores_it(
    workspace, xinference, new_page
):
    add_model(workspace, xinference, "qwen", "llm", "qwen2.5-instruct")
    add_model(workspace, xinference, "backup", "llm", "qwen2.5-instruct")
    provider_services.default_model_set(
        tenant=workspace, model_type="llm", provider="xinference", model="qwen", actor=None
    )
    page = new_page()
    log_in(page, "ada", PASSWORD)
    expect(page.locator("#default-llm")).to_have_value("xinference/qwen")
    page.locator("#card-xinference").get_by_role("button", name="2 models").click()
    switch = page.locator("dialog tr[data-model='qwen']").get_by_role("checkbox")

    asked: list[str] = []

    def answer(accept: bool):
        def handle(dialog: Dialog) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))  # "no": nothing changes, the switch goes back
    switch.click()
    expect(switch).to_be_checked()
    assert asked == [
        "qwen is the default model of type “LLM”. Switched off, the next available model "
        "stands in until you switch it on again. Switch it off?"
    ]
    assert DefaultModel.objects.get(model_type="llm").model == "qwen"

    page.once("dialog", answer(True))
    with page.expect_response(lambda r: r.url.endswith("/disable")):
        switch.click()
    switch = page.locator("dialog tr[data-model='qwen']").get_by_role("checkbox")
    expect(switch).not_to_be_checked()
    assert not DefaultModel.objects.filter(model_type="llm").exists()
    screenshot(page, "cards-04-default-switched-off", full_page=False)

    with page.expect_response(lambda r: r.url.endswith("/enable")):
        switch.click()  # no warning switching on
    expect(page.locator("dialog tr[data-model='qwen']").get_by_role("checkbox")).to_be_checked()
    assert len(asked) == 2
    page.keyboard.press("Escape")
    expect(page.locator("#default-llm")).to_have_value("xinference/qwen")
    assert DefaultModel.objects.get(model_type="llm").model == "qwen"


def test_the_providers_page_fits_a_phone(workspace, xinference, new_page):
    add_model(workspace, xinference, "qwen", "llm", "qwen2.5-instruct")
    add_model(
        workspace, xinference, "a-model-with-a-rather-long-name", "rerank", "no-such-uid-at-all"
    )
    page = new_page(width=390, height=844)
    log_in(page, "ada", PASSWORD)
    card = page.locator("#card-xinference")
    expect(card.locator(".check-summary")).to_have_text("1 valid · 1 invalid")
    card.locator("details.problems summary").click()
    expect(card.locator("details.problems li")).to_be_visible()
    assert_fits(page, "providers page at 390 px")
    screenshot(page, "cards-05-phone", full_page=False)
    page.get_by_label("Search providers").fill("nothing-serves-this")
    expect(page.locator("#provider-search-result")).to_contain_text("No provider matches")
    assert_fits(page, "providers page at 390 px, nothing found")
    screenshot(page, "cards-06-phone-nothing-found", full_page=False)
