"""The pages keep working under the Content-Security-Policy (config/security.py), in real
Chromium: the Swagger UI at /api/docs/, the Django admin (log in, create an API key), and the
settings pages' own behaviours that used to be inline handlers (copy a new key, confirm a revoke,
switch workspace, the usage charts). `new_page` (conftest) fails any test whose pages hit a CSP
violation."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect

from config.security import POLICY
from invocations.models import Invocation
from tenants import services
from tenants.models import ApiKey, Tenant
from tests.e2e.conftest import log_in, screenshot

PASSWORD = "correct-horse-battery"


@pytest.fixture
def owner(transactional_db):
    """ada: owner of Acme and of Globex, with some traffic in Acme."""
    user = get_user_model().objects.create_user(username="ada", password=PASSWORD)
    acme = services.tenant_create(name="Acme", owner=user)
    services.tenant_create(name="Globex", owner=user)
    for model, tokens in (("gpt-4o-mini", 10), ("claude-sonnet-4-6", 30)):
        Invocation.objects.create(
            tenant=acme,
            model_type="llm",
            provider="openai" if model.startswith("gpt") else "anthropic",
            model=model,
            status="succeeded",
            prompt_tokens=tokens,
            completion_tokens=5,
            latency_ms=120,
            created_at=timezone.now(),
        )
    return user


def test_the_api_docs_render_the_swagger_ui_under_the_policy(transactional_db, new_page) -> None:
    page = new_page()
    response = page.goto("/api/docs/")
    assert response is not None
    assert response.headers["content-security-policy"] == POLICY
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Model Provider Settings API")
    operation = page.locator(".opblock-summary", has_text="/api/v1/tenants/current").first
    expect(operation).to_be_visible()
    operation.click()
    expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
    screenshot(page, "csp-api-docs")


def test_the_admin_logs_in_and_shows_a_new_key_under_the_policy(owner, new_page) -> None:
    get_user_model().objects.create_superuser(username="root", password=PASSWORD)
    page = new_page()
    page.goto("/admin/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    page.goto("/admin/tenants/apikey/add/")
    page.get_by_label("Tenant").select_option(label="Acme")
    page.get_by_label("Name").fill("ops")
    page.locator("input[name=scopes][value=read]").check()
    page.get_by_role("button", name="Save", exact=True).click()
    shown = page.locator("#new-api-key")
    raw_key = shown.input_value()
    assert raw_key.startswith("mpk_")
    shown.click()  # selects the whole key (static/js/admin.js)
    selected = shown.evaluate("el => el.value.slice(el.selectionStart, el.selectionEnd)")
    assert selected == raw_key
    assert ApiKey.objects.filter(name="ops").exists()


def test_settings_pages_behave_under_the_policy(owner, new_page) -> None:
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "ada", PASSWORD)

    # Create a key, copy it (data-copy), then confirm its revocation (form data-confirm).
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Deploy bot")
    page.get_by_role("button", name="Create key").click()
    raw_key = page.locator("#new-key").inner_text().strip()
    copy = page.get_by_role("button", name="Copy to clipboard")
    copy.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == raw_key

    page.get_by_role("link", name="Done").click()
    revoke = page.get_by_role("button", name="Revoke the key “Deploy bot”")
    page.once("dialog", lambda dialog: dialog.dismiss())
    revoke.click()
    expect(page.locator("#api-keys")).to_contain_text("Active")
    assert ApiKey.objects.get(name="Deploy bot").revoked_at is None
    page.once("dialog", lambda dialog: dialog.accept())
    revoke.click()
    expect(page.locator("#api-keys")).to_contain_text("Revoked")

    # The usage charts and their legend: no style attribute left to refuse.
    page.get_by_role("link", name="Usage").click()
    expect(page.locator("figure.chart svg").first).to_be_visible()
    expect(page.locator(".legend-item").first).to_be_visible()
    screenshot(page, "csp-usage")

    # Switching workspace submits on change (data-submit-on-change).
    page.get_by_label("Workspace").select_option(label="Globex")
    page.wait_for_url("**/settings/model-providers/")
    expect(page.get_by_label("Workspace")).to_have_value(Tenant.objects.get(name="Globex").slug)


def test_a_violation_fails_the_test(transactional_db, new_page, csp_violations) -> None:
    """The hook itself: an inline script on a page of ours is refused and recorded."""
    page: Page = new_page()
    page.goto("/accounts/login/")
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.ran = true"; document.body.append(s); }"""
    )
    assert page.evaluate("window.ran === undefined")
    page.evaluate("0")
    assert any("Content Security Policy" in v for v in csp_violations)
    csp_violations.clear()  # expected here: the fixture would fail the test otherwise
