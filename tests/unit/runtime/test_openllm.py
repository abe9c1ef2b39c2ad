"""OpenLLMAdapter against the OpenLLM fake: vLLM's OpenAI-compatible routes under the server URL's
/v1, validation from /v1/models, and vLLM's errors as typed errors."""

from __future__ import annotations

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.openai_compat import OpenAICompatAdapter
from providers.runtime.openllm import OpenLLMAdapter
from tests.fakes.base import Reply, embed_text
from tests.fakes.openllm_server import CONTEXT, OpenLLMFake

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLM = "google/gemma-3-1b-it"
EMBEDDER = "BAAI/bge-small-en-v1.5"


@pytest.fixture(scope="module")
def fake():
    with OpenLLMFake() as server:
        yield server


def adapter(fake, *, retry=FAST_RETRY, read=5.0, base=None) -> OpenLLMAdapter:
    endpoint = Endpoint(
        base_url="",
        credentials={"base_url": base or fake.url},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
        secret_names=frozenset(),
    )
    return OpenLLMAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_the_server_url_gets_v1_once(fake) -> None:
    assert issubclass(OpenLLMAdapter, OpenAICompatAdapter)
    assert adapter(fake).http.base_url == f"{fake.url}/v1"
    assert adapter(fake, base=f"{fake.url}/v1/").http.base_url == f"{fake.url}/v1"
    with pytest.raises(errors.InvalidInput, match="server URL"):
        OpenLLMAdapter(Endpoint(base_url=""), http.pool())


def test_chat_sends_openai_messages_without_a_key(fake) -> None:
    result = adapter(fake).chat(LLM, ask("hello world", parameters={"max_tokens": 64}))
    assert result.text == "You said: hello world"
    sent = fake.received[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json()["messages"][1] == {"role": "user", "content": "hello world"}
    assert sent.json()["max_tokens"] == 64
    assert sent.header("authorization") == ""


def test_stream_and_tool_calls(fake) -> None:
    assert accumulate(adapter(fake).stream(LLM, ask("a b c"))).text == "You said: a b c"
    tools = (Tool("search", "look up", {"type": "object"}),)
    result = adapter(fake).chat(LLM, ask("weather?", tools=tools))
    assert result.tool_calls[0].name == "search"


def test_embeddings(fake) -> None:
    result = adapter(fake).embed(EMBEDDER, ["alpha", "beta"])
    assert list(result.vectors[1]) == embed_text("beta")
    assert fake.received[-1].json() == {"model": EMBEDDER, "input": ["alpha", "beta"]}


def test_llm_validation_reads_the_served_models_without_inference(fake) -> None:
    before = len(fake.received)
    details = adapter(fake).validate(LLM, "llm").details
    assert details == {"model": LLM, "context_size": CONTEXT}
    assert [r.path for r in fake.received[before:]] == ["/v1/models"]
    with pytest.raises(errors.UpstreamNotFound, match=r"does not serve 'other'.*gemma"):
        adapter(fake).validate("other", "llm")


def test_embedding_validation_embeds_a_ping(fake) -> None:
    assert adapter(fake).validate(EMBEDDER, "text-embedding").details == {"dimensions": 8}
    with pytest.raises(errors.UpstreamBadRequest, match="does not support Embeddings API"):
        adapter(fake).validate(LLM, "text-embedding")


def test_what_openllm_lacks_is_unsupported(fake) -> None:
    for call in (
        lambda a: a.rerank(LLM, "q", ["a"]),
        lambda a: a.transcribe(LLM, b"", "a.wav"),
        lambda a: a.speak(LLM, "hi", "alloy"),
    ):
        with pytest.raises(errors.InvalidInput) as refused:
            call(adapter(fake))
        assert refused.value.code == "unsupported"


def test_vllm_errors_are_typed(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="The model `nope` does not exist"):
        adapter(fake).chat("nope", ask("x"))
    with pytest.raises(errors.UpstreamBadRequest, match="Chat Completions API"):
        adapter(fake).chat(EMBEDDER, ask("x"))
    fake.fail("401")  # a proxy in front of the server
    with pytest.raises(errors.UpstreamAuth, match="Unauthorized"):
        adapter(fake).chat(LLM, ask("x"))


def test_an_error_inside_the_stream_is_typed() -> None:
    frames = (
        b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
        b'data: {"error": {"object": "error", "message": "CUDA out of memory", '
        b'"type": "InternalServerError", "code": 500}}\n\n'
    )
    with OpenLLMFake() as other:
        other.route(
            "POST",
            "/v1/chat/completions",
            lambda r: Reply(body=frames, content_type="text/event-stream"),
        )
        other._routes.reverse()  # ours first
        with pytest.raises(errors.UpstreamUnavailable, match="CUDA out of memory"):
            list(adapter(other).stream(LLM, ask("x")))


def test_429_is_retried_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_5xx_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).embed(EMBEDDER, ["a"])
    assert len(fake.received) - before == 3


def test_a_slow_server_times_out(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(LLM, ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ask("one two three four five")))
