"""Settings > Model Providers in real Chromium: configure Xinference against its fake, watch the
check run in the worker, add a model, make it the default, disable a model, see a provider's error,
read-only pages for a member, and 简体中文."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from providers.models import DefaultModel
from tenants import services
from tenants.models import Role
from tests.e2e.conftest import log_in, screenshot
from tests.fakes.xinference_server import XinferenceFake

pytestmark = pytest.mark.usefixtures("celery_worker_thread")
XINF_KEY = "xk-browser-test-0001"
PASSWORD = "correct-horse-battery"


@pytest.fixture
def xinference():
    with XinferenceFake(api_key=XINF_KEY) as server:
        yield server


@pytest.fixture
def workspace(transactional_db):
    users = get_user_model().objects
    owner = users.create_user(username="ada", email="ada@example.com", password=PASSWORD)
    member = users.create_user(username="mo", email="mo@example.com", password=PASSWORD)
    tenant = services.tenant_create(name="Acme", owner=owner)
    services.membership_set(tenant=tenant, user=member, role=Role.MEMBER)
    return tenant


def open_add_model(page: Page) -> None:
    card = page.locator("#card-xinference")
    card.get_by_role("button", name="Add model").click()
    expect(page.locator("dialog#dialog")).to_be_visible()


def open_models(page: Page) -> None:
    page.locator("#card-xinference").get_by_role(
        "button", name=re.compile(r"^\d+ models?$")
    ).click()
    expect(page.locator("dialog#dialog h2")).to_have_text(re.compile("models"))


def add_xinference_model(
    page: Page, server_url: str, model_type: str, name: str, uid: str, key: str
) -> None:
    open_add_model(page)
    dialog = page.locator("dialog#dialog")
    dialog.get_by_label("Model type").select_option(model_type)
    dialog.get_by_label("Model Name").fill(name)
    dialog.get_by_label("Server URL").fill(server_url)
    dialog.get_by_label("Model UID").fill(uid)
    dialog.get_by_label("API Key").fill(key)
    dialog.get_by_role("button", name="Save").click()


def test_configure_xinference_end_to_end(workspace, xinference, new_page) -> None:
    page = new_page()
    log_in(page, "ada", PASSWORD)
    expect(page.get_by_role("heading", name="System model settings")).to_be_visible()
    screenshot(page, "01-providers-empty")

    page.get_by_label("Search providers").fill("xorbits")
    expect(page.locator("#card-xinference")).to_be_visible()
    expect(page.locator("#card-openai")).to_be_hidden()

    # Configure: an LLM served by the fake; the dialog shows the check and closes when it passed.
    add_xinference_model(page, xinference.url, "llm", "qwen", "qwen2.5-instruct", XINF_KEY)
    expect(page.locator("dialog#dialog")).to_be_hidden()
    open_models(page)
    row = page.locator("dialog tr[data-model='qwen']")
    expect(row).to_be_visible()
    expect(row.locator(".status")).to_have_text("Valid")
    expect(row).to_contain_text("32K")  # the context length the server reported (32768)
    screenshot(page, "02-xinference-models")

    # Add a model, then make it the default embedding model.
    add_dialog = page.locator("dialog#dialog")
    add_dialog.get_by_role("button", name="Add model").click()
    add_dialog.get_by_label("Model type").select_option("text-embedding")
    add_dialog.get_by_label("Model Name").fill("bge")
    add_dialog.get_by_label("Server URL").fill(xinference.url)
    add_dialog.get_by_label("Model UID").fill("bge-m3")
    add_dialog.get_by_label("API Key").fill(XINF_KEY)
    add_dialog.get_by_role("button", name="Save").click()
    expect(page.locator("dialog tr[data-model='bge'] .status")).to_have_text("Valid")
    page.keyboard.press("Escape")
    expect(page.locator("dialog#dialog")).to_be_hidden()

    embedding = page.locator("#default-text-embedding")
    expect(embedding.locator("option", has_text="bge")).to_have_count(1)
    with page.expect_response(lambda r: r.url.endswith("/defaults") and r.request.method == "POST"):
        embedding.select_option(label="Xorbits Inference · bge")
    expect(page.locator("#default-text-embedding")).to_have_value("xinference/bge")
    assert DefaultModel.objects.get(model_type="text-embedding").model == "bge"
    expect(page.locator("#card-xinference .check-summary")).to_have_text("2 valid")
    screenshot(page, "03-providers-configured")
    page.reload()  # configured providers first, as a user coming back sees them
    expect(page.locator("#card-xinference")).to_be_visible()
    screenshot(page, "readme-providers-page", full_page=False)  # docs/providers-page.png

    # Disable the model (it is the default: a warning asks first): it leaves the default selector.
    page.locator("#card-xinference").get_by_role("button", name=re.compile("models")).click()
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: r.url.endswith("/disable")):
        page.locator("dialog tr[data-model='bge']").get_by_role("checkbox").uncheck()
    expect(page.locator("dialog tr[data-model='bge']").get_by_role("checkbox")).not_to_be_checked()
    page.keyboard.press("Escape")
    expect(page.locator("#default-text-embedding option", has_text="bge")).to_have_count(0)
    assert not DefaultModel.objects.filter(model_type="text-embedding").exists()

    # A wrong key: the provider's own error is shown in the dialog, then in the models list.
    add_xinference_model(page, xinference.url, "rerank", "ranker", "bge-reranker", "xk-wrong")
    verdict = page.locator("dialog [data-verdict]")
    expect(verdict).to_contain_text("Could not validate credentials")
    page.keyboard.press("Escape")
    open_models(page)
    wrong = page.locator("dialog tr[data-model='ranker']")
    expect(wrong.locator(".status")).to_have_text("Invalid")
    expect(wrong).to_contain_text("Could not validate credentials")
    screenshot(page, "04-provider-error")
    assert "xk-wrong" not in page.content()
    assert XINF_KEY not in page.content()


def test_members_see_read_only_pages(workspace, new_page) -> None:
    page = new_page()
    log_in(page, "mo", PASSWORD)
    expect(page.get_by_text("Read-only: only owners and admins change settings")).to_be_visible()
    expect(
        page.locator("#card-xinference").get_by_role("button", name="Add model")
    ).to_be_disabled()
    expect(page.locator("#default-llm")).to_be_disabled()
    for path in ("/settings/usage/", "/settings/api-keys/", "/settings/members/"):
        response = page.goto(path)
        assert response.status == 200, path
        screenshot(page, "member-" + path.strip("/").replace("/", "-"))


def test_phone_width_and_keyboard(workspace, new_page) -> None:
    page = new_page(width=390, height=844)
    log_in(page, "ada", PASSWORD)
    page.locator("#card-openai").get_by_role("button", name="Set up").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Credential name")).to_be_visible()
    page.keyboard.press("Tab")
    focused_in_dialog = page.evaluate(
        "document.getElementById('dialog').contains(document.activeElement)"
    )
    assert focused_in_dialog
    dialog.get_by_role("button", name="Save").click()  # empty form: inline field errors
    expect(dialog.locator(".field-error").first).to_contain_text("required")
    screenshot(page, "06-setup-dialog-phone")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow


def test_the_pages_switch_to_simplified_chinese(workspace, new_page) -> None:
    page = new_page()
    log_in(page, "ada", PASSWORD)
    page.get_by_label("Language").select_option("zh-hans")
    expect(page.get_by_role("heading", name="系统模型设置")).to_be_visible()
    expect(page.locator("#card-tongyi h3")).to_have_text("通义千问")
    expect(page.get_by_role("link", name="用量")).to_be_visible()
    page.locator("#card-openai").get_by_role("button", name="设置").click()
    expect(page.locator("dialog#dialog").get_by_label("组织 ID")).to_be_visible()
    screenshot(page, "07-setup-dialog-zh-hans")
    page.keyboard.press("Escape")
    screenshot(page, "05-providers-zh-hans")
    for path in ("/settings/usage/", "/settings/api-keys/", "/settings/members/"):
        page.goto(path)
        assert "Usage" not in page.locator("nav").inner_text()  # the navigation is translated too
        screenshot(page, "zh-" + path.strip("/").replace("/", "-"))


def test_fallbacks_in_the_models_dialog(workspace, xinference, new_page) -> None:
    page = new_page()
    log_in(page, "ada", PASSWORD)
    add_xinference_model(page, xinference.url, "llm", "qwen", "qwen2.5-instruct", XINF_KEY)
    dialog = page.locator("dialog#dialog")
    expect(dialog).to_be_hidden()
    open_models(page)
    expect(dialog.locator("tr[data-model='qwen'] .status")).to_have_text("Valid")
    dialog.get_by_role("button", name="Add model").click()
    dialog.get_by_label("Model type").select_option("llm")
    dialog.get_by_label("Model Name").fill("qwen-backup")
    dialog.get_by_label("Server URL").fill(xinference.url)
    dialog.get_by_label("Model UID").fill("qwen2.5-instruct")
    dialog.get_by_label("API Key").fill(XINF_KEY)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("tr[data-model='qwen-backup'] .status")).to_have_text("Valid")

    dialog.locator("tr[data-model='qwen']").get_by_role("button", name="Load balancing").click()
    expect(dialog.get_by_role("heading", name="Fallbacks")).to_be_visible()
    expect(dialog.get_by_text("No fallbacks.")).to_be_visible()
    dialog.get_by_label("Add a fallback").select_option("xinference/qwen-backup")
    dialog.locator("form:has(#fallback-choice)").get_by_role("button", name="Add").click()
    expect(dialog.locator("li[data-fallback='xinference/qwen-backup']")).to_contain_text(
        "Xorbits Inference · qwen-backup"
    )
    screenshot(page, "09-fallbacks")


def test_the_add_model_dialog_offers_only_the_options_of_the_chosen_type(workspace, new_page):
    """Azure's base models depend on the model type: the dialog offers those of the type chosen,
    and what it offers saves (here a text-to-speech deployment)."""
    page = new_page()
    log_in(page, "ada", PASSWORD)
    page.locator("#card-azure_openai").get_by_role("button", name="Add model").click()
    dialog = page.locator("dialog#dialog")
    base = dialog.get_by_label("Base Model")
    dialog.get_by_label("Model type").select_option("tts")
    offered = base.locator("option:not([disabled])").evaluate_all("os => os.map(o => o.value)")
    assert offered
    assert "gpt-5.5" not in offered
    assert "tts-1" in offered
    assert base.input_value() in offered
    dialog.get_by_label("Model type").select_option("llm")
    assert base.locator("option[value='gpt-5.5']").is_enabled()
    base.select_option("gpt-5.5")
    dialog.get_by_label("Model type").select_option("tts")
    assert base.input_value() in offered  # the llm choice gave way

    dialog.get_by_label("Deployment Name").fill("voice")
    dialog.get_by_label("API Base URL").fill("http://127.0.0.1:9")  # nothing listens: no traffic
    dialog.get_by_label("API Key").fill("azure-key-0123456789")
    dialog.get_by_role("button", name="Save").click()
    # Saved, and checked in the dialog: nothing listens there, so it says so.
    expect(dialog.locator("[data-verdict]")).to_be_visible()
    expect(dialog.get_by_role("heading", name="Edit the model voice")).to_be_visible()
