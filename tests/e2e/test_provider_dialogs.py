"""The provider dialogs in real Chromium (issue 13): checks run inside the dialog, a wrong key
never replaces a working one unless saved anyway, custom models are edited, a server's models are
discovered and imported, every field error shows at once, and each dialog fits 390 px."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from providers import credentials
from providers.models import CheckStatus, CustomModel, ProviderCredential
from tenants import services
from tenants.models import Role
from tests.e2e.conftest import assert_fits, log_in, screenshot
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.xinference_server import XinferenceFake

pytestmark = pytest.mark.usefixtures("celery_worker_thread")
PASSWORD = "correct-horse-battery"
OPENAI_KEY = "sk-dialogs-good-key-00001"
WRONG_KEY = "sk-dialogs-wrong-key-0002"
XINF_KEY = "xk-dialogs-0001"


@pytest.fixture
def workspace(transactional_db):
    users = get_user_model().objects
    owner = users.create_user(username="ada", email="ada@example.com", password=PASSWORD)
    member = users.create_user(username="mo", email="mo@example.com", password=PASSWORD)
    tenant = services.tenant_create(name="Acme", owner=owner)
    services.membership_set(tenant=tenant, user=member, role=Role.MEMBER)
    return tenant


@pytest.fixture
def openai_fake():
    with OpenAIFake(api_key=OPENAI_KEY) as server:
        yield server


@pytest.fixture
def xinference():
    with XinferenceFake(api_key=XINF_KEY) as server:
        yield server


def dialog(page: Page):
    return page.locator("dialog#dialog")


def open_add_model(page: Page) -> None:
    """Open Xinference's add-model dialog; its first field takes the focus (typing before that
    could land in the wrong field)."""
    page.locator("#card-xinference").get_by_role("button", name="Add model").click()
    expect(dialog(page).get_by_label("Model Name")).to_be_focused()


def save_openai(page: Page, key: str, base: str) -> None:
    d = dialog(page)
    d.get_by_label("API Key").fill(key)
    d.get_by_label("API Base URL").fill(base)
    d.get_by_role("button", name="Save", exact=True).click()


def test_a_wrong_key_keeps_the_working_credential_until_saved_anyway(
    workspace, openai_fake, new_page
) -> None:
    page = new_page()
    log_in(page, "ada", PASSWORD)
    page.locator("#card-openai").get_by_role("button", name="Set up").click()
    expect(dialog(page).get_by_label("Credential name")).to_be_focused()  # not the close button
    save_openai(page, OPENAI_KEY, openai_fake.url)
    expect(dialog(page)).to_be_hidden()  # checked and passed: the dialog closes
    expect(page.locator("#card-openai .status")).to_have_text(re.compile("Valid"))

    page.locator("#card-openai").get_by_role("button", name="Credentials").click()
    dialog(page).locator("tr[data-credential='Default']").get_by_role("button", name="Edit").click()
    # The edit form replaces the add form (whose first field also takes the focus).
    expect(dialog(page).get_by_role("heading", name="Edit “Default”")).to_be_visible()
    expect(dialog(page).get_by_label("Credential name")).to_be_focused()
    save_openai(page, WRONG_KEY, openai_fake.url)
    expect(dialog(page).locator("[data-verdict]")).to_contain_text("Incorrect API key")
    expect(dialog(page).locator("[data-kept]")).to_be_visible()
    screenshot(page, "dialogs-01-wrong-key-kept", full_page=False)
    active = ProviderCredential.objects.get(is_active=True)
    assert credentials.reveal(active)["openai_api_key"] == OPENAI_KEY
    assert active.status == CheckStatus.VALID
    expect(page.locator("#card-openai .status")).to_have_text(re.compile("Valid"))
    assert WRONG_KEY not in page.content()

    with page.expect_response(lambda r: r.request.method == "POST"):
        dialog(page).get_by_role("button", name="Save anyway").click()
    # Saved anyway, then checked: the verdict comes back, with nothing left to keep.
    expect(dialog(page).get_by_role("button", name="Save", exact=True)).to_be_visible()
    expect(dialog(page).locator("[data-verdict]")).to_contain_text("Incorrect API key")
    expect(dialog(page).get_by_role("button", name="Save anyway")).to_have_count(0)
    active.refresh_from_db()
    assert credentials.reveal(active)["openai_api_key"] == WRONG_KEY
    assert active.status == CheckStatus.INVALID
    expect(page.locator("#card-openai .status")).to_have_text(re.compile("Invalid"))


def add_model_form(page: Page, server: str, name: str, uid: str, key: str = XINF_KEY) -> None:
    d = dialog(page)
    d.get_by_label("Model type").select_option("llm")
    d.get_by_label("Model Name").fill(name)
    d.get_by_label("Server URL").fill(server)
    d.get_by_label("Model UID").fill(uid)
    d.get_by_label("API Key").fill(key)
    d.get_by_role("button", name="Save").click()


def test_a_custom_models_uid_is_edited_and_checked_again(workspace, xinference, new_page) -> None:
    page = new_page()
    log_in(page, "ada", PASSWORD)
    card = page.locator("#card-xinference")
    open_add_model(page)
    expect(dialog(page).locator("h2")).to_have_text("Add a model to Xorbits Inference")
    # An empty form: every required field's error at once.
    dialog(page).get_by_role("button", name="Save").click()
    errors = dialog(page).locator(".field-error")
    expect(errors.first).to_be_visible()
    expect(dialog(page).locator("#f-model-error")).to_have_text("A model needs a name.")
    expect(dialog(page).locator("#f-server_url-error")).to_have_text("This field is required.")
    expect(dialog(page).locator("#f-model_uid-error")).to_have_text("This field is required.")
    screenshot(page, "dialogs-02-all-errors", full_page=False)

    add_model_form(page, xinference.url, "qwen", "qwen2.5-instrukt")
    expect(dialog(page).locator("[data-verdict]")).to_be_visible()
    page.keyboard.press("Escape")
    card.get_by_role("button", name=re.compile(r"^\d+ models?$")).click()
    row = dialog(page).locator("tr[data-model='qwen']")
    expect(row.locator(".status")).to_have_text("Invalid")
    row.get_by_role("button", name="Edit qwen").click()
    expect(dialog(page).get_by_label("Model Name")).to_be_focused()
    expect(dialog(page).get_by_label("Model UID")).to_have_value("qwen2.5-instrukt")
    expect(dialog(page).get_by_label("API Key")).not_to_have_value(XINF_KEY)  # a hint only
    dialog(page).get_by_label("Model Name").fill("qwen-chat")
    dialog(page).get_by_label("Model UID").fill("qwen2.5-instruct")
    dialog(page).get_by_role("button", name="Save").click()
    renamed = dialog(page).locator("tr[data-model='qwen-chat']")
    expect(renamed.locator(".status")).to_have_text("Valid")
    screenshot(page, "dialogs-03-model-edited", full_page=False)
    custom = CustomModel.objects.get()
    assert (custom.model, custom.config["model_uid"]) == ("qwen-chat", "qwen2.5-instruct")
    assert credentials.reveal(custom)["api_key"] == XINF_KEY  # the hint kept the key


def test_discover_and_import_from_the_xinference_server(workspace, xinference, new_page) -> None:
    page = new_page()
    log_in(page, "ada", PASSWORD)
    open_add_model(page)
    d = dialog(page)
    d.get_by_label("Server URL").fill("http://127.0.0.1:1")
    d.get_by_role("button", name="Discover models").click()
    expect(d.locator("[data-discovery-error]").first).to_contain_text("127.0.0.1")
    d.get_by_label("Server URL").fill(xinference.url)
    d.get_by_label("API Key").fill("xk-wrong-key-00000")
    d.get_by_role("button", name="Discover models").click()
    expect(d.locator("[data-discovery-error]").first).to_contain_text("could not be asked")
    d.get_by_label("API Key").fill(XINF_KEY)
    d.get_by_role("button", name="Discover models").click()
    found = d.locator("tr[data-found='qwen2.5-instruct']")
    expect(found).to_contain_text("chat")  # its abilities
    d.get_by_label("Import qwen2.5-instruct").check()
    d.get_by_label("Import bge-m3").check()
    screenshot(page, "dialogs-04-discovered", full_page=False)
    d.get_by_role("button", name="Import selected").click()
    expect(d.locator("tr[data-model='qwen2.5-instruct'] .status")).to_have_text("Valid")
    expect(d.locator("tr[data-model='bge-m3'] .status")).to_have_text("Valid")
    screenshot(page, "dialogs-05-imported", full_page=False)


def test_each_dialog_fits_a_phone(workspace, xinference, new_page) -> None:
    page = new_page(width=390, height=844)
    log_in(page, "ada", PASSWORD)
    page.locator("#card-openai").get_by_role("button", name="Set up").click()
    expect(dialog(page).get_by_label("Credential name")).to_be_focused()
    assert_fits(page, "set-up dialog")
    screenshot(page, "dialogs-phone-setup", full_page=False)
    page.keyboard.press("Escape")

    open_add_model(page)
    d = dialog(page)
    d.get_by_label("Server URL").fill(xinference.url)
    d.get_by_label("API Key").fill(XINF_KEY)
    d.get_by_role("button", name="Discover models").click()
    expect(d.locator("tr[data-found='bge-m3']")).to_be_visible()
    assert_fits(page, "add-model dialog with discovered models")
    d.locator("table[data-discovered]").scroll_into_view_if_needed()
    screenshot(page, "dialogs-phone-discover", full_page=False)
    d.get_by_label("Import qwen2.5-instruct").check()
    d.get_by_role("button", name="Import selected").click()
    row = d.locator("tr[data-model='qwen2.5-instruct']")
    expect(row.locator(".status")).to_have_text("Valid")
    assert_fits(page, "models dialog")
    expect(row.get_by_role("checkbox")).to_be_in_viewport()  # the enable switch is on screen
    screenshot(page, "dialogs-phone-models", full_page=False)

    row.get_by_role("button", name="Load balancing").click()
    expect(d.get_by_role("heading", name="Fallbacks")).to_be_visible()
    d.get_by_label("Name", exact=True).fill("second")
    d.get_by_label("Server URL").fill(xinference.url)
    d.get_by_label("Model UID").fill("qwen2.5-instruct")
    d.get_by_label("API Key").fill(XINF_KEY)
    d.get_by_role("button", name="Add", exact=True).click()
    entry = d.locator("tr[data-entry='second']")
    expect(entry.locator(".status")).to_have_text("Valid")  # updates by itself
    assert_fits(page, "load-balancing dialog")
    screenshot(page, "dialogs-phone-load-balancing", full_page=False)
    entry.get_by_role("button", name="Edit second").click()
    expect(d.get_by_role("heading", name="Edit the entry “second”")).to_be_visible()
    assert_fits(page, "load-balancing entry form")


def test_a_member_sees_credentials_read_only(workspace, new_page) -> None:
    page = new_page()
    log_in(page, "mo", PASSWORD)
    page.locator("#card-openai").get_by_role("button", name="Set up").click()
    expect(dialog(page).get_by_role("heading", name="OpenAI credentials")).to_be_visible()
    expect(dialog(page).locator("form")).to_have_count(0)
