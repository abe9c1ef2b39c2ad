"""Models of a provider: predefined and custom, enable/disable, delete, load-balancing entries."""

from __future__ import annotations

import pytest

from providers import credentials, selectors
from providers.models import CustomModel, LoadBalancingEntry, ModelSetting

pytestmark = pytest.mark.django_db

XINFERENCE = "/api/v1/model-providers/xinference/models"


@pytest.fixture
def client(key_client):
    return key_client()


def add_xinference(client, model="qwen2.5", model_type="llm", **values):
    body = {
        "model": model,
        "model_type": model_type,
        "credentials": {
            "server_url": "http://192.168.1.20:9997",
            "model_uid": model,
            "api_key": "xinf-secret-api-key-42",
            **values,
        },
    }
    return client.post(XINFERENCE, body, format="json")


def test_a_custom_xinference_model_is_added_with_sealed_credentials(client) -> None:
    response = add_xinference(client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "custom"
    assert body["credentials"]["api_key"] == "xin…y-42"
    assert body["credentials"]["server_url"] == "http://192.168.1.20:9997"
    assert body["credentials"]["invoke_timeout"] == "60"
    custom = CustomModel.objects.get(pk=body["custom_model_id"])
    assert "xinf-secret" not in str(custom.config)
    assert credentials.reveal(custom)["api_key"] == "xinf-secret-api-key-42"

    listed = client.get(XINFERENCE).json()
    assert [(m["model"], m["model_type"]) for m in listed] == [("qwen2.5", "llm")]
    provider = client.get("/api/v1/model-providers/xinference").json()
    assert (provider["configured"], provider["custom_model_count"]) == (True, 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "model_type": "vision", "credentials": {}}, "model_type"),
        ({"model": "", "model_type": "llm", "credentials": {}}, "model"),
        ({"model": "m", "model_type": "llm", "credentials": {"model_uid": "m"}}, "server_url"),
        (
            {
                "model": "m",
                "model_type": "llm",
                "credentials": {"server_url": "http://h:1", "model_uid": "m", "cache": "yes"},
            },
            "cache",
        ),
    ],
)
def test_bad_custom_models_are_400(client, body, field) -> None:
    response = client.post(XINFERENCE, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not CustomModel.objects.exists()


def test_a_type_the_provider_does_not_offer_is_refused(client) -> None:
    response = client.post(
        "/api/v1/model-providers/ollama/models",
        {"model": "m", "model_type": "tts", "credentials": {}},
        format="json",
    )
    assert response.status_code == 400
    assert "model_type" in response.json()["error"]["fields"]


def test_duplicates_conflict(client) -> None:
    assert add_xinference(client).status_code == 201
    assert add_xinference(client).status_code == 409
    assert add_xinference(client, model_type="text-embedding").status_code == 201


def test_predefined_models_are_listed_with_their_facts(client) -> None:
    models = {m["model"]: m for m in client.get("/api/v1/model-providers/openai/models").json()}
    gpt = models["gpt-4o"]
    assert gpt["source"] == "predefined"
    assert {"tool-call", "vision"} <= set(gpt["features"])
    assert gpt["context_size"] == 128000
    assert gpt["pricing"] == {
        "input": "2.500000",
        "output": "10.000000",
        "currency": "USD",
        "unit": "1M-tokens",
    }
    assert (gpt["enabled"], gpt["status"], gpt["usable"]) == (True, "unconfigured", False)


def test_enable_and_disable_a_model(client) -> None:
    client.post(
        "/api/v1/model-providers/openai/credentials",
        {"credentials": {"openai_api_key": "sk-000000000000000"}},
        format="json",
    )
    model_id = selectors.model_id("llm", "gpt-4o")
    url = f"/api/v1/model-providers/openai/models/{model_id}"
    assert client.get(url).json()["usable"] is True

    off = client.patch(url, {"enabled": False}, format="json")
    assert (off.json()["enabled"], off.json()["usable"]) == (False, False)
    assert "gpt-4o" not in {m["model"] for m in client.get("/api/v1/models").json()}
    on = client.patch(url, {"enabled": True}, format="json")
    assert on.json()["usable"] is True


def test_models_with_slashes_and_colons_are_addressable(client) -> None:
    assert add_xinference(client, model="org/model:7b").status_code == 201
    model_id = selectors.model_id("llm", "org/model:7b")
    response = client.get(f"{XINFERENCE}/{model_id}")
    assert response.status_code == 200
    assert response.json()["model"] == "org/model:7b"
    assert client.get(f"{XINFERENCE}/not-a-model-id").status_code == 404


def test_editing_a_custom_models_credentials(client) -> None:
    body = add_xinference(client).json()
    url = f"{XINFERENCE}/{body['id']}"
    response = client.patch(
        url, {"credentials": {"server_url": "http://192.168.1.21:9997"}}, format="json"
    )
    assert response.status_code == 200, response.content
    custom = CustomModel.objects.get(pk=body["custom_model_id"])
    values = credentials.reveal(custom)
    assert values["server_url"] == "http://192.168.1.21:9997"
    assert values["api_key"] == "xinf-secret-api-key-42"  # kept

    predefined = f"/api/v1/model-providers/openai/models/{selectors.model_id('llm', 'gpt-4o')}"
    refused = client.patch(predefined, {"credentials": {"openai_api_key": "x"}}, format="json")
    assert refused.status_code == 400


def test_deleting_a_custom_model_cascades_and_predefined_ones_cannot_be_deleted(client) -> None:
    body = add_xinference(client).json()
    url = f"{XINFERENCE}/{body['id']}"
    client.patch(url, {"enabled": False, "load_balancing_enabled": True}, format="json")
    client.post(
        f"{url}/load-balancing",
        {
            "name": "second",
            "credentials": {"server_url": "http://192.168.1.22:9997", "model_uid": "qwen2.5"},
        },
        format="json",
    )
    assert ModelSetting.objects.count() == 1
    assert LoadBalancingEntry.objects.count() == 1

    assert client.delete(url).status_code == 204
    assert not CustomModel.objects.exists()
    assert not ModelSetting.objects.exists()
    assert not LoadBalancingEntry.objects.exists()

    predefined = f"/api/v1/model-providers/openai/models/{selectors.model_id('llm', 'gpt-4o')}"
    response = client.delete(predefined)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "predefined_model"


def test_load_balancing_entries(client) -> None:
    first = client.post(
        "/api/v1/model-providers/openai/credentials",
        {"name": "a", "credentials": {"openai_api_key": "sk-aaaaaaaaaaaaaaaa"}},
        format="json",
    ).json()
    url = f"/api/v1/model-providers/openai/models/{selectors.model_id('llm', 'gpt-4o')}"
    lb = f"{url}/load-balancing"

    by_reference = client.post(lb, {"credential_id": first["id"], "weight": 3}, format="json")
    assert by_reference.status_code == 201, by_reference.content
    assert by_reference.json()["credential_name"] == "a"
    own = client.post(
        lb,
        {"name": "backup", "weight": 1, "credentials": {"openai_api_key": "sk-bbbbbbbbbbbbbbbb"}},
        format="json",
    )
    assert own.status_code == 201, own.content
    assert own.json()["credentials"]["openai_api_key"] == "sk-…bbbb"

    both = client.post(
        lb,
        {"name": "x", "credential_id": first["id"], "credentials": {"openai_api_key": "sk-1"}},
        format="json",
    )
    assert both.status_code == 400
    heavy = client.post(
        lb, {"name": "y", "weight": 1000, "credentials": {"openai_api_key": "sk-1"}}, format="json"
    )
    assert "weight" in heavy.json()["error"]["fields"]

    entry_url = f"{lb}/{own.json()['id']}"
    patched = client.patch(entry_url, {"weight": 5, "enabled": False}, format="json").json()
    assert (patched["weight"], patched["enabled"]) == (5, False)
    assert [e["name"] for e in client.get(lb).json()] == ["a", "backup"]
    assert client.delete(entry_url).status_code == 204

    # Deleting the named credential removes the entry that used it.
    client.delete(f"/api/v1/model-providers/openai/credentials/{first['id']}")
    assert client.get(lb).json() == []
