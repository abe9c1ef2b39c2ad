"""Default model per type: only enabled usable models; a documented fallback; never dangling."""

from __future__ import annotations

import pytest

from providers import selectors
from providers.models import CheckStatus, DefaultModel, ProviderCredential

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(key_client):
    return key_client()


def defaults(client) -> dict[str, tuple]:
    return {
        d["model_type"]: (d["provider"], d["model"], d["source"])
        for d in client.get("/api/v1/default-models").json()
    }


def put_default(client, model_type, provider, model):
    body = {"model_type": model_type, "provider": provider, "model": model}
    return client.put("/api/v1/default-models", body, format="json")


def add_embedding(client, model="bge-m3"):
    return client.post(
        "/api/v1/model-providers/xinference/models",
        {
            "model": model,
            "model_type": "text-embedding",
            "credentials": {"server_url": "http://10.1.1.1:9997", "model_uid": model},
        },
        format="json",
    ).json()


def configure_openai(client):
    return client.post(
        "/api/v1/model-providers/openai/credentials",
        {"credentials": {"openai_api_key": "sk-000000000000000"}},
        format="json",
    ).json()


def test_nothing_configured_means_no_default(client) -> None:
    assert set(defaults(client).values()) == {(None, None, "none")}


def test_unset_defaults_fall_back_to_the_first_usable_model_in_catalog_order(client) -> None:
    configure_openai(client)
    result = defaults(client)
    first_llm = next(m for m in selectors.catalog().get("openai").models if m.model_type == "llm")
    assert result["llm"] == ("openai", first_llm.model, "fallback")
    assert result["rerank"] == (None, None, "none")


def test_setting_a_default_requires_an_enabled_usable_model_of_that_type(client) -> None:
    configure_openai(client)
    add_embedding(client)
    ok = put_default(client, "text-embedding", "xinference", "bge-m3")
    assert ok.status_code == 200
    assert defaults(client)["text-embedding"] == ("xinference", "bge-m3", "configured")

    for args in [
        ("llm", "xinference", "bge-m3"),  # wrong type
        ("rerank", "openai", "gpt-4o"),  # wrong type
        ("llm", "anthropic", "claude-sonnet-4-5"),  # provider not configured
        ("llm", "openai", "gpt-404"),  # no such model
    ]:
        response = put_default(client, *args)
        assert response.status_code == 400, args
        assert "model" in response.json()["error"]["fields"]
    assert put_default(client, "llm", "nope", "x").status_code == 404
    half = client.put(
        "/api/v1/default-models", {"model_type": "llm", "provider": "openai"}, format="json"
    )
    assert half.status_code == 400


def test_disabling_the_default_model_drops_it(client) -> None:
    configure_openai(client)
    put_default(client, "llm", "openai", "gpt-4o")
    url = f"/api/v1/model-providers/openai/models/{selectors.model_id('llm', 'gpt-4o')}"
    client.patch(url, {"enabled": False}, format="json")
    assert not DefaultModel.objects.filter(model_type="llm").exists()
    assert defaults(client)["llm"][1] != "gpt-4o"
    assert put_default(client, "llm", "openai", "gpt-4o").status_code == 400


def test_deleting_a_credential_or_model_never_leaves_a_dangling_default(client) -> None:
    credential = configure_openai(client)
    custom = add_embedding(client)
    put_default(client, "llm", "openai", "gpt-4o")
    put_default(client, "text-embedding", "xinference", "bge-m3")
    assert DefaultModel.objects.count() == 2

    client.delete(f"/api/v1/model-providers/xinference/models/{custom['id']}")
    assert list(DefaultModel.objects.values_list("model_type", flat=True)) == ["llm"]
    client.delete(f"/api/v1/model-providers/openai/credentials/{credential['id']}")
    assert not DefaultModel.objects.exists()
    assert set(defaults(client).values()) == {(None, None, "none")}


def test_a_default_can_be_cleared(client) -> None:
    configure_openai(client)
    put_default(client, "llm", "openai", "gpt-4o")
    cleared = put_default(client, "llm", None, None)
    assert cleared.status_code == 200
    assert not DefaultModel.objects.exists()


def test_models_endpoint_filters_by_type_and_feature(client) -> None:
    configure_openai(client)
    add_embedding(client)
    embeddings = client.get("/api/v1/models?model_type=text-embedding").json()
    assert {(m["provider"], m["model"]) for m in embeddings} >= {
        ("xinference", "bge-m3"),
        ("openai", "text-embedding-3-small"),
    }
    assert all(m["model_type"] == "text-embedding" for m in embeddings)
    vision = client.get("/api/v1/models?feature=vision").json()
    assert vision
    assert all("vision" in m["features"] for m in vision)
    assert client.get("/api/v1/models?model_type=image").status_code == 400
    assert client.get("/api/v1/models?feature=telepathy").status_code == 400


# --- A default switched off comes back when switched on (issue 13, item 8) -------------------


def set_enabled(client, provider, model_type, model, enabled: bool):
    url = f"/api/v1/model-providers/{provider}/models/{selectors.model_id(model_type, model)}"
    response = client.patch(url, {"enabled": enabled}, format="json")
    assert response.status_code == 200, response.content
    return response


def test_the_default_comes_back_when_its_model_is_switched_on_again(client, tenant) -> None:
    configure_openai(client)
    put_default(client, "llm", "openai", "gpt-4o")
    set_enabled(client, "openai", "llm", "gpt-4o", False)
    assert defaults(client)["llm"][2] == "fallback"  # another model stands in meanwhile

    set_enabled(client, "openai", "llm", "gpt-4o", True)
    assert defaults(client)["llm"] == ("openai", "gpt-4o", "configured")
    actions = [e.action for e in selectors.audit_log(tenant=tenant).order_by("id")]
    assert actions[-1] == "default_model.restore"


def test_a_default_chosen_meanwhile_wins(client) -> None:
    configure_openai(client)
    put_default(client, "llm", "openai", "gpt-4o")
    set_enabled(client, "openai", "llm", "gpt-4o", False)
    put_default(client, "llm", "openai", "gpt-4o-mini")

    set_enabled(client, "openai", "llm", "gpt-4o", True)
    assert defaults(client)["llm"] == ("openai", "gpt-4o-mini", "configured")


def test_a_default_cleared_meanwhile_stays_cleared(client) -> None:
    configure_openai(client)
    put_default(client, "llm", "openai", "gpt-4o")
    set_enabled(client, "openai", "llm", "gpt-4o", False)
    put_default(client, "llm", None, None)

    set_enabled(client, "openai", "llm", "gpt-4o", True)
    assert not DefaultModel.objects.exists()
    assert defaults(client)["llm"][2] == "fallback"


def test_only_the_model_that_was_the_default_comes_back(client) -> None:
    """Switching another model off and on does not make it the default; switching the default's
    model off twice over (off, on, off, on) restores it each time."""
    configure_openai(client)
    add_embedding(client)
    put_default(client, "text-embedding", "xinference", "bge-m3")
    set_enabled(client, "openai", "text-embedding", "text-embedding-3-small", False)
    set_enabled(client, "openai", "text-embedding", "text-embedding-3-small", True)
    assert defaults(client)["text-embedding"] == ("xinference", "bge-m3", "configured")

    for _ in range(2):
        set_enabled(client, "xinference", "text-embedding", "bge-m3", False)
        assert defaults(client)["text-embedding"][1] != "bge-m3"
        set_enabled(client, "xinference", "text-embedding", "bge-m3", True)
        assert defaults(client)["text-embedding"] == ("xinference", "bge-m3", "configured")


def test_a_model_switched_on_while_unusable_does_not_come_back(client, tenant) -> None:
    """Its credential failed meanwhile: the stand-in stays rather than an unusable default."""
    credential = configure_openai(client)
    put_default(client, "llm", "openai", "gpt-4o")
    set_enabled(client, "openai", "llm", "gpt-4o", False)
    ProviderCredential.objects.filter(pk=credential["id"]).update(status=CheckStatus.INVALID)

    set_enabled(client, "openai", "llm", "gpt-4o", True)
    assert not DefaultModel.objects.exists()


def test_the_models_view_says_which_model_is_the_default(client, tenant) -> None:
    configure_openai(client)
    put_default(client, "llm", "openai", "gpt-4o")
    views = selectors.provider_models(tenant=tenant, provider="openai")
    assert [(v.model_type, v.model) for v in views if v.is_default] == [("llm", "gpt-4o")]
