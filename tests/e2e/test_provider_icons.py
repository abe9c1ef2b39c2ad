"""The provider cards show their logos in Chromium: every card's icon loads from our origin and
draws something at 36 px (no broken image), and /favicon.ico leads to an icon the browser draws."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tenants import services
from tests.e2e.conftest import log_in, screenshot

PASSWORD = "correct-horse-battery"


@pytest.fixture
def owner(transactional_db) -> str:
    user = get_user_model().objects.create_user(username="ada", password=PASSWORD)
    services.tenant_create(name="Acme", owner=user)
    return user.username


def test_every_card_shows_its_logo(owner, new_page, live_server) -> None:
    page = new_page()
    log_in(page, owner, PASSWORD)
    expect(page.locator("article.card")).to_have_count(45)
    page.wait_for_load_state("load")
    icons = page.eval_on_selector_all(
        ".card-head img",
        """imgs => imgs.map(img => ({
          src: img.getAttribute("src"),
          loaded: img.complete && img.naturalWidth > 0,
          box: [img.getBoundingClientRect().width, img.getBoundingClientRect().height],
        }))""",
    )
    assert len(icons) == 45
    assert [i["src"] for i in icons if not i["loaded"]] == []
    assert {tuple(i["box"]) for i in icons} == {(36, 36)}
    assert all(i["src"].startswith("/static/providers/icons/") for i in icons)
    page.locator("#card-openai").scroll_into_view_if_needed()
    screenshot(page, "providers-logos")

    favicon = page.goto(f"{live_server.url}/favicon.ico")
    assert favicon.ok
    assert favicon.headers["content-type"].startswith("image/svg+xml")
    assert page.url.endswith("/static/providers/icons/openai_api_compatible.svg")
