"""NvidiaAdapter against the NVIDIA fake: chat through the OpenAI-compatible adapter, embeddings
with NVIDIA's `input_type`/`truncate`, rerank in NVIDIA's retrieval shape at each model's path,
and the catalog's errors as typed errors.

Rerank's wire shape is NVIDIA's documented one (no official client exists on PyPI besides
LangChain's): https://docs.api.nvidia.com/nim/reference/nvidia-llama-3_2-nv-rerankqa-1b-v2-infer
and https://docs.nvidia.com/nim/nemo-retriever/text-reranking/latest/using-reranking.html."""

from __future__ import annotations

import math

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.nvidia import NvidiaAdapter, sigmoid
from providers.runtime.openai_compat import OpenAICompatAdapter
from tests.fakes.base import embed_text, overlap_score
from tests.fakes.nvidia_server import NvidiaFake, aim

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
KEY = "nvapi-test-key"
LLM = "meta/llama-3.1-8b-instruct"
EMBEDDER = "nvidia/nv-embedqa-e5-v5"
RERANKER = "nvidia/llama-3.2-nv-rerankqa-1b-v2"


@pytest.fixture(scope="module")
def fake():
    with NvidiaFake(api_key=KEY) as server:
        yield server


def adapter(fake, *, key=KEY, retry=FAST_RETRY, read=5.0, **options) -> NvidiaAdapter:
    endpoint = Endpoint(
        base_url="https://integrate.api.nvidia.com/v1",
        credentials={"api_key": key},
        options=options,
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
        secret_names=frozenset({"api_key"}),
    )
    return NvidiaAdapter(aim(endpoint, fake.url), http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_is_the_openai_compatible_adapter(fake) -> None:
    assert issubclass(NvidiaAdapter, OpenAICompatAdapter)
    result = adapter(fake).chat(LLM, ask("hello world", parameters={"temperature": 0.2}))
    assert result.text == "You said: hello world"
    sent = fake.received[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.header("authorization") == f"Bearer {KEY}"
    assert sent.json()["temperature"] == 0.2


def test_stream_and_tool_calls(fake) -> None:
    chunks = list(adapter(fake).stream(LLM, ask("a b c")))
    assert accumulate(iter(chunks)).text == "You said: a b c"
    tools = (Tool("search", "look up", {"type": "object"}),)
    streamed = accumulate(adapter(fake).stream(LLM, ask("weather?", tools=tools)))
    assert streamed.tool_calls[0].name == "search"
    assert streamed.tool_calls[0].arguments == '{"query": "weather"}'


def test_embeddings_send_input_type_and_truncate(fake) -> None:
    result = adapter(fake).embed(EMBEDDER, ["alpha", "beta", "alpha"])
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]
    assert list(result.vectors[0]) == embed_text("query:alpha")
    sent = fake.received[-1]
    assert sent.path == "/v1/embeddings"
    assert sent.json() == {
        "model": EMBEDDER,
        "input": ["alpha", "beta", "alpha"],
        "input_type": "query",
        "encoding_format": "float",
        "truncate": "END",
    }
    assert result.usage.prompt_tokens == 3
    assert not result.usage.counted
    passages = adapter(fake, input_type="passage", truncate="NONE").embed(EMBEDDER, ["alpha"])
    assert list(passages.vectors[0]) == embed_text("passage:alpha")
    with pytest.raises(errors.UpstreamBadRequest, match="exceeds"):
        adapter(fake, truncate="NONE").embed(EMBEDDER, ["word " * 100])


def test_embeddings_are_sent_in_batches(fake) -> None:
    before = len(fake.received)
    texts = [f"text {i}" for i in range(120)]
    result = adapter(fake).embed(EMBEDDER, texts)
    assert [len(r.json()["input"]) for r in fake.received[before:]] == [50, 50, 20]
    assert list(result.vectors[119]) == embed_text("query:text 119")


def test_the_older_retrieval_models_use_their_shared_paths(fake) -> None:
    adapter(fake).embed("NV-Embed-QA", ["alpha"])
    assert fake.received[-1].path == "/v1/retrieval/nvidia/embeddings"
    hits = adapter(fake).rerank("nv-rerank-qa-mistral-4b:1", "red apple", ["red apple", "pear"])
    assert fake.received[-1].path == "/v1/retrieval/nvidia/reranking"
    assert [h.index for h in hits.hits] == [0, 1]


def test_rerank_sends_nvidias_shape_and_scores_logits(fake) -> None:
    documents = ["green pear", "red apple pie", "a red car"]
    result = adapter(fake).rerank(RERANKER, "red apple", documents, top_n=2)
    sent = fake.received[-1]
    assert sent.path == "/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"
    assert sent.json() == {
        "model": RERANKER,
        "query": {"text": "red apple"},
        "passages": [{"text": d} for d in documents],
        "truncate": "END",
    }
    assert [h.index for h in result.hits] == [1, 2]
    logit = overlap_score("red apple", "red apple pie") * 10 - 5
    assert result.hits[0].score == pytest.approx(1 / (1 + math.exp(-logit)))
    assert result.hits[0].document == "red apple pie"
    assert result.usage.counted


def test_sigmoid_holds_extreme_logits() -> None:
    assert sigmoid(-1000.0) == 0.0
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(0.0) == 0.5


@pytest.mark.parametrize(
    ("model_type", "model"),
    [("llm", LLM), ("text-embedding", EMBEDDER), ("rerank", RERANKER)],
)
def test_validation_probes_each_type(fake, model_type, model) -> None:
    assert adapter(fake).validate(model, model_type).details


def test_a_wrong_key_is_authorization_and_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match="Authorization failed") as caught:
        adapter(fake, key="nvapi-wrong-key-123").chat(LLM, ask("x"))
    assert "nvapi-wrong-key-123" not in str(caught.value)
    with pytest.raises(errors.UpstreamAuth, match="missing"):
        adapter(fake, key="").rerank(RERANKER, "q", ["a"])


def test_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="does not exist"):
        adapter(fake).chat("meta/nope", ask("x"))
    with pytest.raises(errors.UpstreamNotFound, match="not found"):
        adapter(fake).rerank("nvidia/nope-reranker", "q", ["a"])


def test_429_is_retried_after_retry_after_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).embed(EMBEDDER, ["a"]).dimensions == 8
    assert len(fake.received) - before == 3


def test_5xx_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).rerank(RERANKER, "q", ["a"])
    assert len(fake.received) - before == 3


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).embed(EMBEDDER, ["a"])


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ask("one two three four five")))


def test_a_reply_without_rankings_is_a_typed_error(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).rerank(RERANKER, "q", ["a"])


def test_the_manifest_hosts_are_nvidias() -> None:
    endpoint = Endpoint(
        base_url="https://integrate.api.nvidia.com/v1", credentials={"api_key": "k"}
    )
    nvidia = NvidiaAdapter(endpoint, http.pool())
    assert nvidia.http.base_url == "https://integrate.api.nvidia.com/v1"
    assert nvidia.retrieval_url(RERANKER, "reranking") == (
        "https://ai.api.nvidia.com/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"
    )
    assert nvidia.retrieval_url("nv-rerank-qa-mistral-4b:1", "reranking") == (
        "https://ai.api.nvidia.com/v1/retrieval/nvidia/reranking"
    )
