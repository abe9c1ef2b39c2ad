"""The workspace switch goes back to the page it was asked from, on this site only."""

from __future__ import annotations

import pytest

from tenants import services as tenant_services
from tenants.models import Role


@pytest.mark.parametrize(
    ("wanted", "lands_on"),
    [
        ("/settings/usage/", "/settings/usage/"),
        ("https://evil.example/x", "/settings/model-providers/"),
        ("//evil.example/x", "/settings/model-providers/"),
        ("/\\evil.example/x", "/settings/model-providers/"),
        ("", "/settings/model-providers/"),
    ],
)
def test_the_workspace_switch_goes_back_to_this_site_only(
    wanted, lands_on, tenant, other_tenant, session_client
) -> None:
    client = session_client(tenant, Role.OWNER)
    tenant_services.membership_set(tenant=other_tenant, user=client.user, role=Role.MEMBER)
    response = client.post(
        "/settings/workspace", {"slug": other_tenant.slug, "next": wanted}, format="multipart"
    )
    assert response.status_code == 302
    assert response["Location"] == lands_on
