"""Django admin as the operators' settings screen, in real Chromium: the provider chosen first
reloads the add page with its schema form; show_on hides and shows fields and options as the
operator chooses (admin.js, under the CSP); saving queues the check, whose verdict shows in the
change list."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from providers.models import CheckStatus, CustomModel
from tenants import services
from tests.e2e.conftest import assert_fits, screenshot
from tests.fakes.xinference_server import XinferenceFake

PASSWORD = "correct-horse-battery"
XINF_KEY = "xk-admin-browser-0001"


@pytest.fixture
def workspace(transactional_db):
    get_user_model().objects.create_superuser(
        username="root", email="root@example.com", password=PASSWORD
    )
    return services.tenant_create(name="Acme")


def admin_log_in(page: Page) -> None:
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")


def choose_provider(page: Page, tenant_id: int, provider: str) -> None:
    page.goto("/admin/providers/custommodel/add/")
    page.locator("#id_tenant").select_option(str(tenant_id))
    page.locator("#id_provider").select_option(provider)  # reloads with the provider's form
    page.wait_for_url(f"**provider={provider}**")
    expect(page.locator("#id_tenant")).to_have_value(str(tenant_id))  # carried along


def test_the_schema_form_follows_show_on(workspace, new_page) -> None:
    page = new_page()
    admin_log_in(page)
    choose_provider(page, workspace.pk, "azure_openai")

    api_key = page.locator(".form-row.field-openai_api_key")
    client_id = page.locator(".form-row.field-azure_client_id")
    expect(api_key).to_be_visible()
    expect(client_id).to_be_hidden()
    page.locator("#id_auth_method").select_option("entra_id_service_principal")
    expect(api_key).to_be_hidden()
    expect(client_id).to_be_visible()
    expect(page.locator("#id_openai_api_key")).to_be_disabled()  # hidden: not sent

    # Options with show_on follow the model type (__model_type).
    base_model = page.locator("#id_base_model_name")
    expect(base_model.locator('option[value="gpt-4o"]')).to_be_enabled()
    expect(base_model.locator('option[value="text-embedding-3-large"]')).to_be_disabled()
    page.locator("#id_model_type").select_option("text-embedding")
    expect(base_model.locator('option[value="gpt-4o"]')).to_be_disabled()
    base_model.select_option("text-embedding-3-small")

    page.locator("#id_model").fill("embed-deploy")
    page.locator("#id_openai_api_base").fill("https://example.openai.azure.com")
    page.locator("#id_azure_client_id").fill("client-1")
    page.locator("#id_azure_tenant_id").fill("directory-1")
    page.locator("#id_azure_client_secret").fill("entra-secret-value-0001")
    screenshot(page, "admin-01-azure-schema-form")
    assert_fits(page)
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    custom = CustomModel.objects.get(model="embed-deploy")
    assert custom.model_type == "text-embedding"
    assert custom.config["auth_method"] == "entra_id_service_principal"
    assert "openai_api_key" not in custom.config  # hidden by show_on: not stored
    assert custom.masked["azure_client_secret"] != "entra-secret-value-0001"


def test_saving_queues_the_check_and_the_change_list_shows_it(
    workspace, new_page, celery_worker_thread
) -> None:
    with XinferenceFake(api_key=XINF_KEY) as xinference:
        page = new_page()
        admin_log_in(page)
        choose_provider(page, workspace.pk, "xinference")
        page.locator("#id_model_type").select_option("llm")
        page.locator("#id_model").fill("qwen")
        page.locator("#id_server_url").fill(xinference.url)
        page.locator("#id_model_uid").fill("qwen2.5-instruct")
        page.locator("#id_api_key").fill(XINF_KEY)
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".messagelist")).to_contain_text("was added successfully")

        custom = CustomModel.objects.get(model="qwen")
        deadline = time.monotonic() + 15
        while custom.status != CheckStatus.VALID and time.monotonic() < deadline:
            time.sleep(0.2)
            custom.refresh_from_db()
        assert custom.status == CheckStatus.VALID, custom.last_error
    page.reload()
    row = page.locator("#result_list tbody tr", has_text="qwen")
    expect(row.locator(".check-status-valid")).to_have_text("Valid")
    expect(page.locator("#result_list")).not_to_contain_text(XINF_KEY)
    screenshot(page, "admin-02-custom-model-changelist")

    # The change page: the secret as its hint, the UID editable.
    row.get_by_role("link", name="qwen").click()
    expect(page.locator("#id_api_key")).to_have_value(custom.masked["api_key"])
    expect(page.locator("#id_model_uid")).to_have_value("qwen2.5-instruct")
    screenshot(page, "admin-03-custom-model-change")
