"""Every provider-settings endpoint checks the role (or key scope) and the workspace."""

from __future__ import annotations

import pytest

from providers import selectors, services
from providers.models import CustomModel, ProviderCredential
from tenants.models import Role
from tenants.principals import Perm

pytestmark = pytest.mark.django_db

GPT = selectors.model_id("llm", "gpt-4o")


@pytest.fixture
def acme_setup(tenant):
    credential = services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": "sk-acme-000000000000"},
        actor=None,
    )
    custom = services.custom_model_create(
        tenant=tenant,
        provider="xinference",
        model="acme-private-llm",
        model_type="llm",
        values={"server_url": "http://10.0.0.1:9997", "model_uid": "acme-private-llm"},
        actor=None,
    )
    view = selectors.model_get(tenant=tenant, provider="openai", model_key=GPT)
    entry = services.lb_entry_create(
        tenant=tenant,
        view=view,
        name="lb",
        credential_id=credential.pk,
        values=None,
        weight=1,
        enabled=True,
        actor=None,
    )
    return {
        "cred": credential.pk,
        "custom": selectors.model_id("llm", custom.model),
        "entry": entry.pk,
    }


def endpoints(ids):
    p = "/api/v1/model-providers"
    lb = f"{p}/openai/models/{GPT}/load-balancing"
    good_cred = {"name": "n2", "credentials": {"openai_api_key": "sk-new-000000000000"}}
    return [
        ("get", f"{p}", None),
        ("get", f"{p}/openai", None),
        ("get", f"{p}/openai/credentials", None),
        ("post", f"{p}/openai/credentials", good_cred),
        ("get", f"{p}/openai/credentials/{ids['cred']}", None),
        ("put", f"{p}/openai/credentials/{ids['cred']}", {**good_cred, "name": "main"}),
        ("patch", f"{p}/openai/credentials/{ids['cred']}", {"name": "renamed"}),
        ("post", f"{p}/openai/credentials/{ids['cred']}/activate", None),
        ("get", f"{p}/xinference/models", None),
        (
            "post",
            f"{p}/xinference/models",
            {
                "model": "m2",
                "model_type": "llm",
                "credentials": {"server_url": "http://10.0.0.1:9997", "model_uid": "m2"},
            },
        ),
        ("get", f"{p}/xinference/models/{ids['custom']}", None),
        ("patch", f"{p}/xinference/models/{ids['custom']}", {"enabled": False}),
        ("get", lb, None),
        ("post", lb, {"name": "lb2", "credential_id": ids["cred"]}),
        ("get", f"{lb}/{ids['entry']}", None),
        ("patch", f"{lb}/{ids['entry']}", {"weight": 2}),
        ("get", "/api/v1/default-models", None),
        ("put", "/api/v1/default-models", {"model_type": "llm", "provider": None, "model": None}),
        ("get", "/api/v1/models", None),
        ("get", "/api/v1/audit-log", None),
        ("delete", f"{lb}/{ids['entry']}", None),
        ("delete", f"{p}/xinference/models/{ids['custom']}", None),
        ("delete", f"{p}/openai/credentials/{ids['cred']}", None),
    ]


def _call(client, method, url, body):
    return (
        getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
    )


@pytest.mark.parametrize("role", [Role.EDITOR, Role.MEMBER])
def test_editors_and_members_read_but_never_change(tenant, session_client, acme_setup, role):
    client = session_client(tenant, role)
    for method, url, body in endpoints(acme_setup):
        response = _call(client, method, url, body)
        if method == "get" and "audit-log" not in url:
            assert response.status_code == 200, (method, url, response.content)
        else:
            assert response.status_code == 403, (method, url, response.status_code)
    assert ProviderCredential.objects.get(pk=acme_setup["cred"]).name == "main"
    assert CustomModel.objects.count() == 1


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_may_do_everything(tenant, session_client, acme_setup, role):
    client = session_client(tenant, role)
    for method, url, body in endpoints(acme_setup):
        response = _call(client, method, url, body)
        assert response.status_code in {200, 201, 204}, (method, url, response.content)


def test_a_read_only_key_reads_and_an_invoke_key_sees_nothing(tenant, key_client, acme_setup):
    reader = key_client(scopes=["read"])
    invoker = key_client(scopes=["invoke"])
    for method, url, body in endpoints(acme_setup):
        if method == "get" and "audit-log" not in url:
            assert _call(reader, method, url, body).status_code == 200, url
        else:
            assert _call(reader, method, url, body).status_code == 403, url
        assert _call(invoker, method, url, body).status_code == 403, url


def test_another_workspace_sees_none_of_it(tenant, other_tenant, key_client, acme_setup):
    outsider = key_client(for_tenant=other_tenant)
    foreign_refs = [
        f"/credentials/{acme_setup['cred']}",
        acme_setup["custom"],
        f"/load-balancing/{acme_setup['entry']}",
    ]
    for method, url, body in endpoints(acme_setup):
        response = _call(outsider, method, url, body)
        names_acme_row = any(ref in url for ref in foreign_refs) or (
            body is not None and body.get("credential_id") == acme_setup["cred"]
        )
        if names_acme_row:
            assert response.status_code == 404, (method, url, response.status_code)
        content = response.content.decode()
        assert "acme-private-llm" not in content, url
        assert "sk-acm" not in content, url
    assert ProviderCredential.objects.filter(tenant=tenant).count() == 1
    assert ProviderCredential.objects.get(pk=acme_setup["cred"]).name == "main"
    assert CustomModel.objects.filter(tenant=tenant).count() == 1


def test_every_write_perm_is_change_settings() -> None:
    from providers.api import READ_WRITE

    assert {m for m, p in READ_WRITE.items() if p == Perm.CHANGE_SETTINGS} == {
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
    }
