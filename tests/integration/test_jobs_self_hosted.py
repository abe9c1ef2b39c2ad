"""End to end with a real Celery worker on Redis: a workspace configures Xinference custom models
(server URL + model UID) against the Xinference fake, validation jobs check them, and embedding,
streamed chat, rerank and transcription jobs run; then the same path against the Anthropic and
Ollama fakes. Backend failures end as typed job errors after bounded retries."""

from __future__ import annotations

import base64
import time

import pytest

from providers import selectors
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.base import wav_with_text
from tests.fakes.ollama_server import OllamaFake
from tests.fakes.xinference_server import XinferenceFake, vector
from tests.jobs import finished

pytestmark = pytest.mark.usefixtures("celery_worker_thread")
XINF_KEY = "xinf-secret-key-0042"


@pytest.fixture(scope="module")
def xinference_server():
    with XinferenceFake(api_key=XINF_KEY) as server:
        yield server


@pytest.fixture
def xinference(xinference_server):
    xinference_server.reset()
    return xinference_server


@pytest.fixture
def client(tenant, key_client):
    return key_client()


def add_model(client, provider, model, model_type, **credentials) -> dict:
    response = client.post(
        f"/api/v1/model-providers/{provider}/models",
        {"model": model, "model_type": model_type, "credentials": credentials},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def settled(client, provider, model: dict) -> dict:
    """Wait for the check queued when the model was saved; returns the model."""
    url = f"/api/v1/model-providers/{provider}/models/{model['id']}"
    deadline = time.monotonic() + 20
    while (body := client.get(url).json())["status"] == "validating":
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


def checked(client, provider, model_id) -> dict:
    """Queue a check of the model and return the finished validation job."""
    job = client.post(f"/api/v1/model-providers/{provider}/models/{model_id}/validate")
    assert job.status_code == 202, job.content
    return finished(client, f"/api/v1/validations/{job.json()['id']}")


def add_xinference(client, xinference, model, model_type, uid=None, **extra) -> dict:
    return add_model(
        client,
        "xinference",
        model,
        model_type,
        server_url=xinference.url,
        model_uid=uid or model,
        api_key=XINF_KEY,
        **extra,
    )


def invoke(client, model_type, provider, model, payload) -> dict:
    response = client.post(
        "/api/v1/invocations",
        {"model_type": model_type, "provider": provider, "model": model, "input": payload},
        format="json",
    )
    assert response.status_code == 202, response.content
    return finished(client, f"/api/v1/invocations/{response.json()['id']}")


def test_xinference_models_validate_with_what_the_server_reports(client, xinference) -> None:
    llm = add_xinference(client, xinference, "qwen2.5-instruct", "llm")
    result = checked(client, "xinference", llm["id"])
    assert (result["valid"], result["error_code"]) == (True, ""), result
    assert result["details"]["model_type"] == "LLM"
    assert result["details"]["context_length"] == 32768
    assert "tools" in result["details"]["model_ability"]
    assert xinference.received[-1].path == "/v1/models/qwen2.5-instruct"  # describe, no inference
    assert xinference.received[-1].header("authorization") == f"Bearer {XINF_KEY}"

    model = client.get(f"/api/v1/model-providers/xinference/models/{llm['id']}").json()
    assert model["status"] == "valid"
    assert model["context_size"] == 32768  # what the server reported
    assert "tool-call" in model["features"]


def test_a_wrong_uid_and_a_wrong_type_fail_with_clear_messages(client, xinference) -> None:
    missing = add_xinference(client, xinference, "ghost", "llm", uid="no-such-uid")
    result = checked(client, "xinference", missing["id"])
    assert (result["valid"], result["error_code"]) == (False, "not_found")
    assert "Model not found in the model list, uid: no-such-uid" in result["error_message"]

    wrong = add_xinference(client, xinference, "bge-as-llm", "llm", uid="bge-m3")
    result = checked(client, "xinference", wrong["id"])
    assert (result["valid"], result["error_code"]) == (False, "bad_request")
    assert "embedding" in result["error_message"]
    assert "llm" in result["error_message"]
    assert XINF_KEY not in str(result)
    model = client.get(f"/api/v1/model-providers/xinference/models/{wrong['id']}").json()
    assert (model["status"], model["usable"]) == ("invalid", False)


def test_xinference_jobs_embed_chat_rerank_transcribe(client, xinference) -> None:
    add_xinference(client, xinference, "bge-m3", "text-embedding")
    add_xinference(client, xinference, "qwen2.5-instruct", "llm")
    add_xinference(client, xinference, "bge-reranker", "rerank")
    add_xinference(client, xinference, "whisper-small", "speech2text")

    texts = ["first", "second", "first"]
    embedded = invoke(client, "text-embedding", "xinference", "bge-m3", {"texts": texts})
    assert embedded["status"] == "succeeded", embedded
    assert embedded["result"]["embeddings"] == [vector(t, 8) for t in texts]  # bge-m3: 8 dims

    chat = invoke(
        client,
        "llm",
        "xinference",
        "qwen2.5-instruct",
        {"messages": [{"role": "user", "content": "how are you"}]},
    )
    assert chat["status"] == "succeeded", chat
    assert chat["result"]["text"] == "You said: how are you"
    assert chat["completion_tokens"] > 0
    assert chat["ttft_ms"] is not None
    assert xinference.received[-1].json()["stream"] is True  # streamed inside the worker

    docs = ["pandas eat bamboo", "the moon orbits the earth", "bamboo grows fast"]
    ranked = invoke(
        client,
        "rerank",
        "xinference",
        "bge-reranker",
        {"query": "what do pandas eat", "documents": docs, "top_n": 2},
    )
    assert ranked["status"] == "succeeded", ranked
    assert ranked["result"]["results"][0]["index"] == 0
    assert len(ranked["result"]["results"]) == 2

    wav = wav_with_text("remind me at noon")
    heard = invoke(
        client,
        "speech2text",
        "xinference",
        "whisper-small",
        {"audio": base64.b64encode(wav).decode(), "filename": "memo.wav"},
    )
    assert heard["status"] == "succeeded", heard
    assert heard["result"]["text"] == "remind me at noon"


@pytest.mark.parametrize(
    ("mode", "code", "tries"),
    [("401", "authorization", 1), ("429", "rate_limit", 3), ("500", "server_unavailable", 3)],
)
def test_xinference_failures_are_typed_after_bounded_retries(client, xinference, mode, code, tries):
    model = add_xinference(client, xinference, "bge-m3", "text-embedding", max_retries="2")
    assert settled(client, "xinference", model)["status"] == "valid"
    xinference.fail(mode, times=tries, retry_after=0)
    before = len(xinference.received)
    done = invoke(client, "text-embedding", "xinference", "bge-m3", {"texts": ["x"]})
    assert (done["status"], done["error_code"]) == ("failed", code), done
    assert len(xinference.received) - before == tries


def test_a_slow_xinference_server_times_out(client, xinference) -> None:
    add_xinference(
        client, xinference, "bge-m3", "text-embedding", invoke_timeout="1", max_retries="0"
    )
    time.sleep(0.5)  # let the check queued on save finish before slowing the server down
    xinference.fail("slow", seconds=2.5)
    done = invoke(client, "text-embedding", "xinference", "bge-m3", {"texts": ["x"]})
    assert (done["status"], done["error_code"]) == ("failed", "timeout"), done


def test_anthropic_credential_validates_and_chat_runs(client) -> None:
    with AnthropicFake(api_key="sk-ant-fake-0001") as fake:
        created = client.post(
            "/api/v1/model-providers/anthropic/credentials",
            {
                "credentials": {
                    "anthropic_api_key": "sk-ant-fake-0001",
                    "anthropic_api_url": fake.url,
                }
            },
            format="json",
        ).json()
        job = client.post(f"/api/v1/model-providers/anthropic/credentials/{created['id']}/validate")
        result = finished(client, f"/api/v1/validations/{job.json()['id']}")
        assert (result["valid"], result["model"]) == (True, "claude-sonnet-4-6"), result

        chat = invoke(
            client,
            "llm",
            "anthropic",
            "claude-sonnet-4-6",
            {
                "messages": [
                    {"role": "system", "content": "be kind"},
                    {"role": "user", "content": "hello claude"},
                ]
            },
        )
        assert chat["status"] == "succeeded", chat
        assert "hello claude" in chat["result"]["text"]
        assert chat["prompt_tokens"] > 0
        assert fake.received[-1].header("x-api-key") == "sk-ant-fake-0001"
        assert fake.received[-1].json()["system"] == "be kind"

        bad = client.post(
            "/api/v1/model-providers/anthropic/credentials",
            {
                "name": "bad",
                "credentials": {
                    "anthropic_api_key": "sk-ant-wrong-9",
                    "anthropic_api_url": fake.url,
                },
            },
            format="json",
        ).json()
        job = client.post(f"/api/v1/model-providers/anthropic/credentials/{bad['id']}/validate")
        failed = finished(client, f"/api/v1/validations/{job.json()['id']}")
        assert (failed["valid"], failed["error_code"]) == (False, "authorization")


def test_ollama_models_validate_and_run(client) -> None:
    with OllamaFake(api_key=None) as fake:
        llm = add_model(client, "ollama", "llama3.2:latest", "llm", base_url=fake.url)
        embedder = add_model(
            client, "ollama", "nomic-embed-text:latest", "text-embedding", base_url=fake.url
        )
        assert checked(client, "ollama", llm["id"])["valid"] is True
        assert checked(client, "ollama", embedder["id"])["details"]["dimensions"] > 0
        missing = add_model(client, "ollama", "mistral:7b", "llm", base_url=fake.url)
        result = checked(client, "ollama", missing["id"])
        assert (result["valid"], result["error_code"]) == (False, "not_found")

        chat = invoke(
            client,
            "llm",
            "ollama",
            "llama3.2:latest",
            {"messages": [{"role": "user", "content": "bonjour"}]},
        )
        assert chat["status"] == "succeeded", chat
        assert "bonjour" in chat["result"]["text"]
        embedded = invoke(
            client, "text-embedding", "ollama", "nomic-embed-text:latest", {"texts": ["a", "b"]}
        )
        assert len(embedded["result"]["embeddings"]) == 2


def test_model_ids_of_added_models_match_selectors(client, xinference) -> None:
    added = add_xinference(client, xinference, "bge-m3", "text-embedding")
    assert added["id"] == selectors.model_id("text-embedding", "bge-m3")
