"""Every foundation endpoint is scoped to the caller's workspace: another's object is a 404."""

from __future__ import annotations

import pytest

from tenants import services
from tenants.models import ApiKey, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_key_id(other_tenant) -> int:
    api_key, _ = services.api_key_create(tenant=other_tenant, name="theirs", scopes=["read"])
    return api_key.pk


@pytest.fixture(params=["api_key", "session"])
def acme_client(request, tenant, key_client, session_client):
    return key_client() if request.param == "api_key" else session_client(tenant, Role.OWNER)


def test_lists_show_only_the_callers_workspace(acme_client, tenant, foreign_key_id) -> None:
    services.api_key_create(tenant=tenant, name="ours", scopes=["read"])
    names = {k["name"] for k in acme_client.get("/api/v1/api-keys").json()}
    assert "theirs" not in names
    assert "ours" in names
    assert [t["slug"] for t in acme_client.get("/api/v1/tenants").json()] == [tenant.slug]


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/api-keys/{id}"), ("post", "/api/v1/api-keys/{id}/revoke")],
)
def test_another_workspaces_key_is_a_404(acme_client, foreign_key_id, method, path) -> None:
    response = getattr(acme_client, method)(path.format(id=foreign_key_id))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert ApiKey.objects.get(pk=foreign_key_id).revoked_at is None


def test_a_key_only_ever_sees_its_own_workspace(tenant, other_tenant, key_client) -> None:
    theirs = key_client(for_tenant=other_tenant).get("/api/v1/tenants/current").json()
    ours = key_client().get("/api/v1/tenants/current").json()
    assert (ours["slug"], theirs["slug"]) == (tenant.slug, other_tenant.slug)
