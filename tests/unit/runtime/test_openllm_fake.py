"""The OpenLLM fake is trusted because the official `openai` client (what OpenLLM documents for
its server: `OpenAI(base_url="http://localhost:3000/v1", api_key="na")`) talks to it."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.openllm_server import OpenLLMFake

LLM = "google/gemma-3-1b-it"
EMBEDDER = "BAAI/bge-small-en-v1.5"


@pytest.fixture(scope="module")
def fake():
    with OpenLLMFake() as server:
        yield server


@pytest.fixture
def client(fake):
    return openai.OpenAI(api_key="na", base_url=f"{fake.url}/v1", max_retries=0)


def test_models_chat_and_stream(client) -> None:
    assert [m.id for m in client.models.list()] == [LLM, EMBEDDER]
    reply = client.chat.completions.create(
        model=LLM, messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "You said: hello there"
    chunks = list(
        client.chat.completions.create(
            model=LLM, messages=[{"role": "user", "content": "a b"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "You said: a b"
    )


def test_embeddings(client) -> None:
    made = client.embeddings.create(model=EMBEDDER, input=["a", "b", "a"])
    assert made.data[0].embedding == made.data[2].embedding != made.data[1].embedding


def test_vllm_errors(client, fake) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["message"] == "The model `nope` does not exist."
    with pytest.raises(openai.BadRequestError) as wrong_task:
        client.embeddings.create(model=LLM, input=["a"])
    assert "Embeddings API" in wrong_task.value.body["message"]
    fake.fail("401")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
