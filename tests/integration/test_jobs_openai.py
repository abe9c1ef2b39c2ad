"""Validation and invocation jobs, end to end: API -> database row -> Redis -> a real Celery
worker -> the OpenAI adapter -> the OpenAI fake -> results, usage and cost back through the API."""

from __future__ import annotations

import base64
import time
from decimal import Decimal

import pytest

from invocations.models import Invocation
from providers.models import CheckStatus, ProviderCredential
from tests.fakes.base import embed_text, text_in_wav, wav_with_text
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import finished

pytestmark = pytest.mark.usefixtures("celery_worker_thread")


@pytest.fixture(scope="module")
def openai_fake():
    with OpenAIFake(api_key="sk-fake-openai-key-0001") as server:
        yield server


@pytest.fixture
def fake(openai_fake):
    openai_fake.reset()
    return openai_fake


@pytest.fixture
def client(tenant, key_client):
    return key_client()


def configure(client, fake, key="sk-fake-openai-key-0001") -> dict:
    """Save a credential and wait for the check that saving queued."""
    response = client.post(
        "/api/v1/model-providers/openai/credentials",
        {"credentials": {"openai_api_key": key, "openai_api_base": fake.url}},
        format="json",
    )
    assert response.status_code == 201, response.content
    deadline = time.monotonic() + 15
    while ProviderCredential.objects.get(pk=response.json()["id"]).status == CheckStatus.VALIDATING:
        assert time.monotonic() < deadline, "the validation queued on save never finished"
        time.sleep(0.05)
    return response.json()


def invoke(client, model_type, model, payload, **extra):
    body = {
        "model_type": model_type,
        "provider": "openai",
        "model": model,
        "input": payload,
        **extra,
    }
    response = client.post("/api/v1/invocations", body, format="json")
    assert response.status_code == 202, response.content
    return finished(client, f"/api/v1/invocations/{response.json()['id']}")


def test_saving_a_credential_validates_it_in_the_worker(client, fake) -> None:
    credential = configure(client, fake)
    assert credential["status"] == "validating"  # as the save answered
    shown = client.get(f"/api/v1/model-providers/openai/credentials/{credential['id']}").json()
    assert (shown["status"], shown["last_error"]) == ("valid", "")
    probe = fake.received[-1]
    assert probe.path == "/v1/chat/completions"
    assert probe.json()["max_tokens"] == 1  # the cheapest probe
    assert probe.json()["model"] == "gpt-4o-mini"

    job = client.post(f"/api/v1/model-providers/openai/credentials/{credential['id']}/validate")
    assert job.status_code == 202
    result = finished(client, f"/api/v1/validations/{job.json()['id']}")
    assert (result["valid"], result["error_code"]) == (True, "")
    assert result["latency_ms"] is not None


def test_a_wrong_key_fails_validation_with_the_providers_message(client, fake) -> None:
    credential = configure(client, fake, key="sk-not-the-right-key-99")
    job = client.post(f"/api/v1/model-providers/openai/credentials/{credential['id']}/validate")
    result = finished(client, f"/api/v1/validations/{job.json()['id']}")
    assert (result["valid"], result["error_code"]) == (False, "authorization")
    assert "Incorrect API key" in result["error_message"]
    assert "sk-not-the-right-key-99" not in str(result)
    assert ProviderCredential.objects.get(pk=credential["id"]).status == CheckStatus.INVALID


def test_chat_is_streamed_in_the_worker_with_usage_cost_and_timings(client, fake) -> None:
    configure(client, fake)
    done = invoke(
        client,
        "llm",
        "gpt-4o-mini",
        {
            "messages": [{"role": "user", "content": "tell me a story"}],
            "parameters": {"temperature": 0.1, "top_p": 0.5, "max_tokens": 40},
        },
    )
    assert done["status"] == "succeeded", done
    assert done["result"]["text"] == "You said: tell me a story"
    assert (done["prompt_tokens"], done["completion_tokens"]) == (4, 6)
    assert done["ttft_ms"] is not None
    assert done["ttft_ms"] <= done["latency_ms"]
    sent = fake.received[-1].json()
    assert sent["stream"] is True
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.1, 0.5, 40)
    # gpt-4o-mini: $0.15 in, $0.60 out per 1M tokens.
    assert (
        Decimal(done["cost"])
        == (Decimal(4) * Decimal("0.15") + Decimal(6) * Decimal("0.60")) / 10**6
    )
    assert done["currency"] == "USD"


def test_a_model_among_the_parameters_never_reaches_the_backend(client, fake) -> None:
    """Issue 14 item 4: `parameters: {"model": "gpt-5"}` on gpt-4o-mini sent gpt-5 to the
    backend at gpt-4o-mini's price. Now a 400: nothing is queued, nothing is sent."""
    configure(client, fake)
    sent_before = len(fake.received)
    body = {
        "model_type": "llm",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input": {
            "messages": [{"role": "user", "content": "hi"}],
            "parameters": {"model": "gpt-5"},
        },
    }
    response = client.post("/api/v1/invocations?wait=5", body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["input.parameters.model"]
    assert not Invocation.objects.exists()
    time.sleep(0.2)
    assert len(fake.received) == sent_before


def test_embeddings_rerank_free_audio_jobs(client, fake) -> None:
    configure(client, fake)
    texts = ["alpha", "beta", "alpha"]
    done = invoke(client, "text-embedding", "text-embedding-3-small", {"texts": texts})
    assert done["status"] == "succeeded", done
    assert done["result"]["embeddings"] == [embed_text(t) for t in texts]
    assert done["prompt_tokens"] == 3

    wav = wav_with_text("schedule a meeting")
    heard = invoke(
        client,
        "speech2text",
        "whisper-1",
        {"audio": base64.b64encode(wav).decode(), "filename": "note.wav"},
    )
    assert heard["status"] == "succeeded", heard
    assert heard["result"]["text"] == "schedule a meeting"

    spoken = invoke(
        client, "tts", "tts-1", {"text": "good night", "voice": "nova", "format": "wav"}
    )
    assert spoken["status"] == "succeeded", spoken
    assert spoken["characters"] == 10
    audio = client.get(spoken["audio_url"])
    assert audio.status_code == 200
    assert text_in_wav(b"".join(audio.streaming_content)) == "nova: good night"


@pytest.mark.parametrize(
    ("mode", "code"),
    [("429", "rate_limit"), ("500", "server_unavailable"), ("401", "authorization")],
)
def test_backend_failures_end_as_typed_errors_after_bounded_retries(client, fake, mode, code):
    configure(client, fake)
    fake.fail(mode, times=3, retry_after=0)
    before = len(fake.received)
    done = invoke(client, "llm", "gpt-4o-mini", {"messages": [{"role": "user", "content": "x"}]})
    assert (done["status"], done["error_code"]) == ("failed", code)
    assert done["error_message"]
    tries = len(fake.received) - before
    assert tries == (1 if mode == "401" else 3)


def test_the_idempotency_key_returns_the_first_invocation(client, fake) -> None:
    configure(client, fake)
    body = {
        "model_type": "text-embedding",
        "provider": "openai",
        "model": "text-embedding-3-small",
        "input": {"texts": ["x"]},
        "idempotency_key": "k-1",
    }
    first = client.post("/api/v1/invocations", body, format="json")
    second = client.post("/api/v1/invocations", body, format="json")
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Invocation.objects.count() == 1


def test_long_poll_returns_when_the_job_ends(client, fake) -> None:
    configure(client, fake)
    created = client.post(
        "/api/v1/invocations",
        {
            "model_type": "llm",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "input": {"messages": [{"role": "user", "content": "hi"}]},
        },
        format="json",
    ).json()
    waited = client.get(f"/api/v1/invocations/{created['id']}?wait=10").json()
    assert waited["status"] == "succeeded"
    listed = client.get("/api/v1/invocations?status=succeeded&model_type=llm").json()
    assert created["id"] in {row["id"] for row in listed["results"]}


def test_no_secret_travels_in_a_celery_message(client, fake) -> None:
    """Tasks take ids: what goes to Redis names rows, never a credential."""
    from celery.signals import before_task_publish

    published: list[str] = []

    def record(body=None, headers=None, **kwargs) -> None:
        published.append(repr(body) + repr(headers))

    before_task_publish.connect(record, weak=False)
    try:
        configure(client, fake)
        invoke(client, "llm", "gpt-4o-mini", {"messages": [{"role": "user", "content": "hi"}]})
    finally:
        before_task_publish.disconnect(record)
    assert len(published) >= 2  # the validation queued on save, and the invocation
    for message in published:
        assert "sk-fake-openai-key-0001" not in message
        assert "enc1:" not in message
