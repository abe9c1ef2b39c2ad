"""The provider settings pages' server side: forms from the schema, errors inline, secrets never
sent to the page, read-only roles refused, load-balancing entries."""

from __future__ import annotations

import pytest

from providers import credentials, selectors, services
from providers.models import LoadBalancingEntry, ModelSetting, ProviderCredential
from tenants.models import Role

pytestmark = pytest.mark.django_db
SECRET = "sk-page-secret-0000009999"


@pytest.fixture
def owner(tenant, make_member, client):
    client.force_login(make_member(tenant, Role.OWNER))
    return client


@pytest.fixture
def member(tenant, make_member, client):
    client.force_login(make_member(tenant, Role.MEMBER))
    return client


def test_the_page_lists_every_provider_and_the_defaults(owner) -> None:
    page = owner.get("/settings/model-providers/").content.decode()
    assert page.count('<article class="card') == len(selectors.catalog())
    assert 'id="default-text-embedding"' in page
    assert "System model settings" in page


def test_setup_form_is_generated_from_the_schema_with_inline_errors(owner) -> None:
    form = owner.get("/settings/model-providers/openai/setup").content.decode()
    assert 'name="openai_api_key"' in form
    assert 'type="password"' in form
    assert 'name="api_protocol"' in form  # a select from the manifest
    invalid = owner.post(
        "/settings/model-providers/openai/setup",
        {"name": "main", "openai_api_base": "api.openai.com/v1"},
    ).content.decode()
    assert "This field is required." in invalid
    assert "Enter a full http:// or https:// URL." in invalid
    assert not ProviderCredential.objects.exists()


def test_saving_returns_the_card_and_never_the_secret(owner) -> None:
    response = owner.post(
        "/settings/model-providers/openai/setup", {"name": "main", "openai_api_key": SECRET}
    )
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#card-openai"
    assert "close-dialog" in response["HX-Trigger"]
    credential = ProviderCredential.objects.get()
    edit = owner.get(f"/settings/model-providers/openai/setup?credential={credential.pk}")
    for page in (response, edit, owner.get("/settings/model-providers/")):
        assert SECRET not in page.content.decode()
    assert credentials.obfuscate(SECRET) in edit.content.decode()
    # Saving the edit form as shown (the hint sent back) keeps the secret.
    owner.post(
        "/settings/model-providers/openai/setup",
        {
            "credential": credential.pk,
            "name": "main",
            "openai_api_key": credentials.obfuscate(SECRET),
        },
    )
    credential.refresh_from_db()
    assert credentials.reveal(credential)["openai_api_key"] == SECRET


def test_members_read_but_every_change_is_403(tenant, member) -> None:
    services.credential_create(
        tenant=tenant, provider="openai", name="main", values={"openai_api_key": SECRET}, actor=None
    )
    gpt = selectors.model_id("llm", "gpt-4o")
    assert member.get("/settings/model-providers/").status_code == 200
    assert member.get("/settings/model-providers/openai/models").status_code == 200
    for url, data in [
        ("/settings/model-providers/openai/setup", {"openai_api_key": "x"}),
        ("/settings/model-providers/defaults", {"model_type": "llm", "choice": "openai/gpt-4o"}),
        (f"/settings/model-providers/openai/models/{gpt}/disable", {}),
        (f"/settings/model-providers/openai/models/{gpt}/load-balancing", {"action": "on"}),
        ("/settings/model-providers/xinference/models/add", {"model": "m"}),
    ]:
        assert member.post(url, data).status_code == 403, url


def test_load_balancing_entries_from_the_page(tenant, owner) -> None:
    named = services.credential_create(
        tenant=tenant, provider="openai", name="main", values={"openai_api_key": SECRET}, actor=None
    )
    gpt = selectors.model_id("llm", "gpt-4o")
    url = f"/settings/model-providers/openai/models/{gpt}/load-balancing"
    assert "No other entries yet." in owner.get(url).content.decode()
    owner.post(url, {"action": "on"})
    owner.post(url, {"action": "add", "name": "team", "weight": "3", "credential_id": named.pk})
    owner.post(
        url,
        {
            "action": "add",
            "name": "own",
            "weight": "1",
            "openai_api_key": "sk-own-lb-key-000000001",
        },
    )
    bad = owner.post(
        url, {"action": "add", "name": "heavy", "weight": "500", "credential_id": named.pk}
    ).content.decode()
    assert "Give a weight from 1 to 100." in bad
    entries = {e.name: e for e in LoadBalancingEntry.objects.all()}
    assert set(entries) == {"team", "own"}
    assert (entries["team"].weight, entries["team"].credential_id) == (3, named.pk)
    owner.post(url, {"action": "weight", "entry": entries["own"].pk, "weight": "7"})
    owner.post(url, {"action": "disable", "entry": entries["own"].pk})
    own = LoadBalancingEntry.objects.get(name="own")
    assert (own.weight, own.enabled) == (7, False)
    page = owner.get(url).content.decode()
    assert "sk-own-lb-key-000000001" not in page
    assert selectors.model_get(
        tenant=tenant, provider="openai", model_key=selectors.model_id("llm", "gpt-4o")
    ).load_balancing_enabled
    owner.post(url, {"action": "delete", "entry": own.pk})
    assert set(LoadBalancingEntry.objects.values_list("name", flat=True)) == {"team"}


def test_fallbacks_from_the_page(tenant, owner) -> None:
    services.credential_create(
        tenant=tenant, provider="openai", name="main", values={"openai_api_key": SECRET}, actor=None
    )
    gpt = selectors.model_id("llm", "gpt-4o")
    url = f"/settings/model-providers/openai/models/{gpt}/load-balancing"
    page = owner.get(url).content.decode()
    assert "No fallbacks." in page
    assert 'value="openai/gpt-4o-mini"' in page  # offered: usable llms of the workspace
    assert 'value="openai/gpt-4o"' not in page  # not itself
    owner.post(url, {"action": "fallback-add", "fallback": "openai/gpt-4o-mini"})
    page = owner.post(url, {"action": "fallback-add", "fallback": "openai/gpt-4.1"}).content
    assert 'data-fallback="openai/gpt-4o-mini"' in page.decode()
    owner.post(url, {"action": "fallback-up", "position": "1"})
    setting = ModelSetting.objects.get(model="gpt-4o")
    assert setting.fallbacks == [
        {"provider": "openai", "model": "gpt-4.1"},
        {"provider": "openai", "model": "gpt-4o-mini"},
    ]
    refused = owner.post(url, {"action": "fallback-add", "fallback": "openai/gpt-4.1"})
    assert "is listed twice" in refused.content.decode()
    assert "Invalid input." not in refused.content.decode()
    owner.post(url, {"action": "fallback-remove", "position": "0"})
    setting.refresh_from_db()
    assert setting.fallbacks == [{"provider": "openai", "model": "gpt-4o-mini"}]


def test_the_load_balancing_dialog_explains_stale_or_odd_values(session_client, tenant) -> None:
    """An entry another admin just deleted, a number that is no number, a huge fallback name:
    the dialog says what is wrong, never a 500 or a Python error, never echoes a page of input."""
    from providers import selectors, services

    services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": "sk-dialog-0000000001"},
        actor=None,
    )
    owner = session_client(tenant, "owner")
    model_id = selectors.model_id("llm", "gpt-4o-mini")
    url = f"/settings/model-providers/openai/models/{model_id}/load-balancing"
    for form, expected in (
        ({"action": "weight", "entry": "999", "weight": "3"}, "no longer exists"),
        ({"action": "validate", "entry": "9" * 30}, "no longer exists"),
        ({"action": "validate", "entry": "abc"}, "Give a whole number."),
    ):
        page = owner.post(url, form)
        assert page.status_code == 200, form
        assert expected in page.content.decode()
        assert "invalid literal" not in page.content.decode()
    huge = owner.post(url, {"action": "fallback-add", "fallback": "openai/" + "x" * 5000})
    assert huge.status_code == 200
    assert "x" * 101 not in huge.content.decode()
