"""Settings > Members and Settings > API keys in real Chromium: an owner invites someone by
e-mail, the invitee opens the link from the e-mail in another browser, sets a password and lands
in the workspace; both pages fit a 390 px phone with their buttons on screen."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from playwright.sync_api import Page, expect

from tenants import services
from tenants.models import Membership, Role
from tests.e2e.conftest import assert_fits, log_in, screenshot

PASSWORD = "correct-horse-battery"
PHONE = 390


@pytest.fixture
def workspace(transactional_db):
    users = get_user_model().objects
    owner = users.create_user(username="ada", email="ada@example.com", password=PASSWORD)
    tenant = services.tenant_create(name="Acme", owner=owner)
    editor = users.create_user(username="edwin-the-long-named", email="edwin@example.com")
    services.membership_set(tenant=tenant, user=editor, role=Role.EDITOR)
    for name in ("CI pipeline for the nightly evaluation runs", "Deploy bot"):
        services.api_key_create(tenant=tenant, name=name, scopes=["read", "write", "invoke"])
    return tenant


def on_screen(page: Page, locator) -> None:
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= page.viewport_size["width"], box


def test_invite_by_email_and_join(workspace, new_page) -> None:
    mail.outbox.clear()
    page = new_page()
    log_in(page, "ada", PASSWORD)
    page.get_by_role("link", name="Members").click()
    page.get_by_label("E-mail address or username").fill("new@example.com")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(page.locator(".messages")).to_contain_text(
        "An invitation to join as Member was sent to new@example.com."
    )
    row = page.locator("#invitations tr[data-status='pending']")
    expect(row).to_contain_text("new@example.com")
    screenshot(page, "members-invitation-1280")

    # The live server runs in this process: its locmem outbox is this one.
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/invite/\S+/", mail.outbox[0].body).group(0)

    invitee = new_page(width=PHONE)
    invitee.goto(link)
    expect(invitee).to_have_url(re.compile(r"/invite/$"))  # the token left the address bar
    expect(invitee.get_by_role("heading", name="Join Acme")).to_be_visible()
    assert_fits(invitee, "invitation page at 390 px")
    invitee.get_by_label("Username").fill("newbie")
    invitee.get_by_label("Password", exact=True).fill(PASSWORD)
    invitee.get_by_label("Password again").fill("not the same")
    invitee.get_by_role("button", name="Create account and join").click()
    expect(invitee.locator("#id_password2-error")).to_be_visible()
    screenshot(invitee, "invitation-sign-up-error-390")
    invitee.get_by_label("Password", exact=True).fill(PASSWORD)
    invitee.get_by_label("Password again").fill(PASSWORD)
    invitee.get_by_role("button", name="Create account and join").click()
    invitee.wait_for_url("**/settings/model-providers/")
    expect(invitee.locator(".messages")).to_contain_text(
        "Welcome to Acme. You are a member, as Member."
    )
    expect(invitee.locator(".read-only-note")).to_be_visible()
    screenshot(invitee, "invitation-joined-390", full_page=False)
    assert Membership.objects.get(user__username="newbie").tenant == workspace

    # The link works once.
    again = new_page(width=PHONE)
    again.goto(link)
    expect(again.locator("#invitation-refusal")).to_have_text(
        "This invitation has already been used."
    )

    page.reload()
    expect(page.locator("#invitations")).to_have_count(0)
    expect(page.locator("#members")).to_contain_text("newbie")


def test_members_and_api_keys_fit_a_phone(workspace, new_page) -> None:
    page = new_page(width=PHONE)
    log_in(page, "ada", PASSWORD)
    page.goto("/settings/members/")
    page.get_by_label("E-mail address or username").fill("someone.with.a.long.address@example.com")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(page.locator("#invitations")).to_be_visible()
    assert_fits(page, "members page at 390 px")
    on_screen(page, page.locator("#invitations").get_by_role("button", name="Revoke").first)
    on_screen(page, page.locator("#members").get_by_role("button", name="Change role").first)
    screenshot(page, "members-390")

    page.goto("/settings/api-keys/")
    assert_fits(page, "API keys page at 390 px")
    revoke = page.locator("#api-keys").get_by_role("button", name=re.compile("^Revoke"))
    expect(revoke).to_have_count(2)
    on_screen(page, revoke.first)
    screenshot(page, "api-keys-390")
