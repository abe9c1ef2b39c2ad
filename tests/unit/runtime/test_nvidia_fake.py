"""The NVIDIA fake is trusted because the official `openai` client (what NVIDIA's API Catalog
documents for its /v1 endpoints) talks to it: chat, streaming, embeddings with NVIDIA's extra
fields, and the catalog's 401/403 problems. Rerank has no official client on PyPI (only the
LangChain integration), so its shape is checked against NVIDIA's documented request and reply in
test_nvidia.py."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.nvidia_server import NvidiaFake

KEY = "nvapi-test-key"
LLM = "meta/llama-3.1-8b-instruct"
EMBEDDER = "nvidia/nv-embedqa-e5-v5"


@pytest.fixture(scope="module")
def fake():
    with NvidiaFake(api_key=KEY) as server:
        yield server


@pytest.fixture
def client(fake):
    return openai.OpenAI(api_key=KEY, base_url=f"{fake.url}/v1", max_retries=0)


def test_chat_and_stream(client) -> None:
    reply = client.chat.completions.create(
        model=LLM, messages=[{"role": "user", "content": "hello there"}], max_tokens=16
    )
    assert reply.choices[0].message.content == "You said: hello there"
    chunks = list(
        client.chat.completions.create(
            model=LLM,
            messages=[{"role": "user", "content": "one two"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "You said: one two"
    )
    assert chunks[-1].usage.completion_tokens == 4


def test_embeddings_take_input_type_and_truncate_as_extra_body(client) -> None:
    made = client.embeddings.create(
        model=EMBEDDER,
        input=["a b", "c"],
        encoding_format="float",
        extra_body={"input_type": "passage", "truncate": "END"},
    )
    assert len(made.data) == 2
    query = client.embeddings.create(
        model=EMBEDDER, input=["a b"], extra_body={"input_type": "query"}, encoding_format="float"
    )
    assert query.data[0].embedding != made.data[0].embedding  # made for another use
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model=EMBEDDER, input=["a"], encoding_format="float")
    assert "input_type" in refused.value.body["detail"]


def test_keys_are_refused_as_the_catalog_does(fake) -> None:
    wrong = openai.OpenAI(api_key="nvapi-wrong", base_url=f"{fake.url}/v1", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        wrong.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "x"}])
    assert refused.value.body == {
        "status": 403,
        "title": "Forbidden",
        "detail": "Authorization failed",
    }
    fake.fail("401")
    with pytest.raises(openai.AuthenticationError) as missing:
        wrong.models.list()
    assert missing.value.body["title"] == "Unauthorized"


def test_unknown_model_and_rate_limit(client, fake) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    fake.fail("429", retry_after=0)
    with pytest.raises(openai.RateLimitError):
        client.models.list()
