"""/api/v1/tenants and /api/v1/tenants/current: who you are, where, and switching workspaces."""

from __future__ import annotations

import pytest

from tenants import services
from tenants.models import Role

pytestmark = pytest.mark.django_db


def test_current_tenant_for_an_api_key(tenant, key_client) -> None:
    body = key_client(scopes=["invoke"]).get("/api/v1/tenants/current").json()
    assert body == {
        "name": "Acme",
        "slug": tenant.slug,
        "role": None,
        "auth": "api_key",
        "permissions": ["models.invoke"],
        "monthly_budget": None,
        "budget_currency": "USD",
    }


@pytest.mark.parametrize(
    ("role", "can_change"),
    [(Role.OWNER, True), (Role.ADMIN, True), (Role.EDITOR, False), (Role.MEMBER, False)],
)
def test_current_tenant_for_a_member_shows_the_role(tenant, session_client, role, can_change):
    body = session_client(tenant, role).get("/api/v1/tenants/current").json()
    assert body["role"] == role
    assert body["auth"] == "session"
    assert ("settings.change" in body["permissions"]) is can_change
    assert "settings.read" in body["permissions"]


def test_a_member_of_two_workspaces_lists_and_switches(tenant, other_tenant, session_client):
    client = session_client(tenant, Role.ADMIN)
    services.membership_set(tenant=other_tenant, user=client.user, role=Role.MEMBER)

    listed = client.get("/api/v1/tenants").json()
    assert [(t["slug"], t["role"], t["current"]) for t in listed] == [
        (tenant.slug, "admin", True),
        (other_tenant.slug, "member", False),
    ]

    switched = client.put("/api/v1/tenants/current", {"slug": other_tenant.slug}, format="json")
    assert switched.status_code == 200
    assert switched.json()["role"] == "member"
    after = client.get("/api/v1/tenants/current").json()
    assert (after["slug"], after["role"]) == (other_tenant.slug, "member")
    # The switch is real: the member of the other workspace cannot create keys there.
    assert client.post("/api/v1/api-keys", {"name": "x"}, format="json").status_code == 403


def test_switching_to_a_workspace_you_are_not_in_is_404(tenant, other_tenant, session_client):
    client = session_client(tenant, Role.OWNER)
    response = client.put("/api/v1/tenants/current", {"slug": other_tenant.slug}, format="json")
    assert response.status_code == 404
    assert client.get("/api/v1/tenants/current").json()["slug"] == tenant.slug


def test_an_api_key_cannot_switch(tenant, other_tenant, key_client) -> None:
    response = key_client().put(
        "/api/v1/tenants/current", {"slug": other_tenant.slug}, format="json"
    )
    assert response.status_code == 403  # a well-formed request this principal may not make


def test_a_bad_switch_body_is_a_field_error(tenant, session_client) -> None:
    response = session_client(tenant).put("/api/v1/tenants/current", {}, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["error"]["fields"]


def test_a_user_in_no_workspace_is_refused(django_user_model, api_client) -> None:
    user = django_user_model.objects.create_user(username="loner", password="pw")
    api_client.force_login(user)
    response = api_client.get("/api/v1/tenants/current")
    assert response.status_code == 403


def test_session_writes_need_the_csrf_token(tenant, session_client) -> None:
    client = session_client(tenant, Role.OWNER, csrf=False)
    response = client.post("/api/v1/api-keys", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
