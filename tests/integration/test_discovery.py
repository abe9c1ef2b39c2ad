"""Model discovery: a server's served models are proposed with their types and imported as custom
models (each validated like one added by hand)."""

from __future__ import annotations

import pytest

from providers import credentials
from providers.models import CustomModel, ValidationJob
from tests.fakes.ollama_server import OllamaFake
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.xinference_server import XinferenceFake

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(key_client):
    return key_client()


def test_xinference_proposes_its_models_with_their_types_and_imports_them(client) -> None:
    with XinferenceFake(api_key="xk-discover-0001") as fake:
        form = {"server_url": fake.url, "api_key": "xk-discover-0001"}
        response = client.post(
            "/api/v1/model-providers/xinference/discover", {"credentials": form}, format="json"
        )
        assert response.status_code == 200, response.content
        proposed = {p["model"]: p["model_type"] for p in response.json()}
        assert proposed["qwen2.5-instruct"] == "llm"
        assert proposed["bge-m3"] == "text-embedding"
        assert proposed["bge-reranker"] == "rerank"
        assert proposed["whisper-small"] == "speech2text"
        assert proposed["ChatTTS"] == "tts"

        imported = client.post(
            "/api/v1/model-providers/xinference/models/import",
            {
                "credentials": form,
                "models": [
                    {"model": "bge-m3", "model_type": "text-embedding"},
                    {"model": "qwen2.5-instruct", "model_type": "llm"},
                ],
            },
            format="json",
        )
        assert imported.status_code == 201, imported.content
        assert {m["model"] for m in imported.json()["added"]} == {"bge-m3", "qwen2.5-instruct"}
        custom = CustomModel.objects.get(model="bge-m3")
        values = credentials.reveal(custom)
        assert (values["model_uid"], values["api_key"]) == ("bge-m3", "xk-discover-0001")
        assert ValidationJob.objects.filter(custom_model__isnull=False).count() == 2

        again = client.post(
            "/api/v1/model-providers/xinference/discover", {"credentials": form}, format="json"
        ).json()
        assert {p["model"] for p in again if p["added"]} == {"bge-m3", "qwen2.5-instruct"}
        duplicate = client.post(
            "/api/v1/model-providers/xinference/models/import",
            {"credentials": form, "models": [{"model": "bge-m3", "model_type": "text-embedding"}]},
            format="json",
        ).json()
        assert duplicate["added"] == []
        assert "already has" in duplicate["refused"]["bge-m3"]


def test_ollama_and_openai_compatible_servers_are_discovered(client) -> None:
    with OllamaFake(api_key=None) as ollama, OpenAIFake(api_key="sk-compat-0001") as compat:
        found = client.post(
            "/api/v1/model-providers/ollama/discover",
            {"credentials": {"base_url": ollama.url}},
            format="json",
        ).json()
        kinds = {p["model"]: p["model_type"] for p in found}
        assert kinds["llama3.2:latest"] == "llm"
        assert kinds["nomic-embed-text:latest"] == "text-embedding"

        found = client.post(
            "/api/v1/model-providers/openai_api_compatible/discover",
            {"credentials": {"endpoint_url": f"{compat.url}/v1", "api_key": "sk-compat-0001"}},
            format="json",
        ).json()
        kinds = {p["model"]: p["model_type"] for p in found}
        assert kinds["gpt-4o-mini"] == "llm"
        assert kinds["text-embedding-3-small"] == "text-embedding"
        assert "tts-1" not in kinds  # openai_api_compatible offers no tts: not proposed


def test_discovery_errors_are_clear(client) -> None:
    with XinferenceFake(api_key="xk-right") as fake:
        wrong = client.post(
            "/api/v1/model-providers/xinference/discover",
            {"credentials": {"server_url": fake.url, "api_key": "xk-wrong-key"}},
            format="json",
        )
    assert wrong.status_code == 502
    assert wrong.json()["error"]["code"] == "authorization"
    assert "xk-wrong-key" not in wrong.content.decode()
    bad_form = client.post(
        "/api/v1/model-providers/xinference/discover",
        {"credentials": {"server_url": "not a url"}},
        format="json",
    )
    assert bad_form.status_code == 400
    assert "server_url" in bad_form.json()["error"]["fields"]
    unsupported = client.post(
        "/api/v1/model-providers/azure_openai/discover",
        {
            "credentials": {
                "openai_api_base": "https://x.openai.azure.com",
                "openai_api_key": "k",
                "base_model_name": "gpt-4o",
            }
        },
        format="json",
    )
    assert unsupported.status_code == 400
