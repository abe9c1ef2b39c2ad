"""The Jina fake is trusted because the official `openai` client talks to its embeddings endpoint
successfully (Jina's embeddings follow OpenAI's shape; there is no official Jina Python client for
this API: the `jina` package on PyPI is an unrelated serving framework). Rerank has no OpenAI
equivalent, so it is checked with plain HTTP against the documented shape."""

from __future__ import annotations

import openai
import pytest
import requests

from tests.fakes.base import embed_text
from tests.fakes.jina_server import JinaFake


@pytest.fixture(scope="module")
def fake():
    with JinaFake() as server:
        yield server


@pytest.fixture
def client(fake):
    return openai.OpenAI(api_key="fake-key", base_url=f"{fake.url}/v1", max_retries=0)


def test_embeddings_keep_order_and_report_usage(client, fake) -> None:
    result = client.embeddings.create(
        model="jina-embeddings-v3",
        input=["a b", "c", "a b"],
        encoding_format="float",
        extra_body={"task": "retrieval.query"},
    )
    vectors = [row.embedding for row in result.data]
    assert vectors[0] == vectors[2] == embed_text("a b")
    assert vectors[1] == embed_text("c")
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (5, 5)
    assert fake.received[-1].json()["task"] == "retrieval.query"
    assert fake.received[-1].header("authorization") == "Bearer fake-key"


def test_the_clients_default_base64_encoding_decodes(client) -> None:
    result = client.embeddings.create(model="jina-embeddings-v2-base-zh", input="hello")
    assert result.data[0].embedding == pytest.approx(embed_text("hello"), rel=1e-6)


def test_multimodal_models_take_text_objects(client) -> None:
    result = client.embeddings.create(
        model="jina-clip-v2",
        input=[],  # the typed signature wants strings; send Jina's objects through extra_body
        encoding_format="float",
        extra_body={"input": [{"text": "a cat"}, {"image": "https://x/cat.png"}]},
    )
    assert [row.embedding for row in result.data] == [
        embed_text("a cat"),
        embed_text("[image] https://x/cat.png"),
    ]


def test_embedding_errors_are_the_clients_typed_errors(client, fake) -> None:
    with pytest.raises(openai.BadRequestError) as missing:
        client.embeddings.create(model="jina-nope", input=["x"], encoding_format="float")
    assert missing.value.body == {"detail": "Model 'jina-nope' not found"}
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.embeddings.create(
            model="jina-embeddings-v2-base-zh",
            input=["x"],
            encoding_format="float",
            extra_body={"task": "retrieval.passage"},
        )
    assert caught.value.body["errors"][0]["type"] == "extra_forbidden"
    bad = openai.OpenAI(api_key="wrong", base_url=f"{fake.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.embeddings.create(model="jina-embeddings-v3", input=["x"])
    fake.fail("404")
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="jina-embeddings-v3", input=["x"])
    fake.fail("429", retry_after=0)
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="jina-embeddings-v3", input=["x"])
    fake.fail("500")
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="jina-embeddings-v3", input=["x"])


def test_rerank_over_plain_http(fake) -> None:
    headers = {"Authorization": "Bearer fake-key"}
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    reply = requests.post(
        f"{fake.url}/v1/rerank",
        json={
            "model": "jina-reranker-v2-base-multilingual",
            "query": "capital of France",
            "documents": docs,
            "top_n": 2,
            "return_documents": False,
        },
        headers=headers,
        timeout=5,
    )
    assert reply.status_code == 200
    data = reply.json()
    assert [r["index"] for r in data["results"]] == [1, 2]
    assert "document" not in data["results"][0]
    assert data["usage"]["total_tokens"] > 0
    wrong = requests.post(
        f"{fake.url}/v1/rerank",
        json={"model": "jina-reranker-v2-base-multilingual", "query": "q", "documents": ["d"]},
        headers={"Authorization": "Bearer nope"},
        timeout=5,
    )
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid API key"})
