"""WenxinAdapter against the Qianfan v2 fake: chat, streaming, tools, embeddings in Qianfan's
batches, validation probes, and each failure mode ending as a typed error."""

from __future__ import annotations

import json

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.wenxin import WenxinAdapter
from tests.fakes.base import Reply, embed_text
from tests.fakes.wenxin_server import QianfanFake

KEY = "bce-v3/ALTAK-unit0001/fedcba9876543210"
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLM = "ernie-4.5-turbo-128k"


@pytest.fixture(scope="module")
def fake():
    with QianfanFake(api_key=KEY) as server:
        yield server


def adapter(fake, *, key=KEY, retry=FAST_RETRY, read=5.0) -> WenxinAdapter:
    endpoint = Endpoint(
        base_url=f"{fake.url}/v2",
        credentials={"api_key": key},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return WenxinAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_sends_the_openai_body_with_the_v2_key(fake) -> None:
    result = adapter(fake).chat(LLM, ask("hello world", parameters={"temperature": 0.3}))
    assert result.text == "You said: hello world"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    sent = fake.received[-1]
    assert sent.path == "/v2/chat/completions"
    assert sent.header("authorization") == f"Bearer {KEY}"
    assert sent.json() == {
        "model": LLM,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello world"},
        ],
        "temperature": 0.3,
    }


def test_streaming_yields_chunks_and_usage(fake) -> None:
    chunks = list(adapter(fake).stream(LLM, ask("a b c")))
    assert len([c for c in chunks if c.text]) > 3
    assert fake.received[-1].json()["stream_options"] == {"include_usage": True}
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c"
    assert (result.usage.completion_tokens, result.usage.counted) == (5, False)


def test_tool_calls_complete_and_streamed(fake) -> None:
    request = ask("weather?", tools=(Tool("search", "find things"),))
    result = adapter(fake).chat(LLM, request)
    assert result.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("search", {"query": "weather"})
    ]
    assert fake.received[-1].json()["tools"][0]["function"]["name"] == "search"
    streamed = accumulate(adapter(fake).stream(LLM, request))
    assert streamed.tool_calls == result.tool_calls


def test_embeddings_go_16_a_request_and_tao_8k_one(fake) -> None:
    texts = [f"text {i}" for i in range(35)]
    before = len(fake.received)
    result = adapter(fake).embed("embedding-v1", texts)
    assert [len(r.json()["input"]) for r in fake.received[before:]] == [16, 16, 3]
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    assert (result.usage.prompt_tokens, result.usage.counted) == (70, False)
    before = len(fake.received)
    assert adapter(fake).embed("tao-8k", ["a", "b"]).dimensions == 8
    assert [r.json()["input"] for r in fake.received[before:]] == [["a"], ["b"]]
    assert adapter(fake).embed("embedding-v1", []).vectors == ()


def test_validation_probes(fake) -> None:
    assert adapter(fake).validate(LLM, "llm").details == {"model": LLM}
    assert fake.received[-1].json()["max_tokens"] == 5  # Qianfan refuses fewer than 2
    assert adapter(fake).validate("bge-large-zh", "text-embedding").details == {"dimensions": 8}
    assert fake.received[-1].json()["input"] == ["ping"]


def test_a_wrong_key_is_authorization_and_never_shows(fake) -> None:
    wrong = "bce-v3/ALTAK-wrong0001/deadbeef"
    with pytest.raises(
        errors.UpstreamAuth, match=r"IAM Certification failed \(invalid_iam_token\)"
    ):
        adapter(fake, key=wrong).chat(LLM, ask("x"))
    fake.fail("echo_key", status=401)
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key=wrong).embed("embedding-v1", ["a"])
    assert wrong not in str(caught.value)
    assert "***" in caught.value.message


def test_a_model_the_key_may_not_use_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="invalid_model"):
        adapter(fake).chat("ernie-9", ask("x"))
    with pytest.raises(errors.UpstreamNotFound):  # an LLM is no embedder
        adapter(fake).embed(LLM, ["a"])


def test_a_refused_parameter_is_a_bad_request() -> None:
    refusal = {
        "error": {"code": "no_parameter_permission", "message": "no permission for web_search",
                  "type": "access_denied"},
        "id": "as-1",
    }  # fmt: skip
    with QianfanFake(api_key=KEY) as other:
        other.route("POST", "/v2/chat/completions", lambda request: Reply(401, refusal))
        other._routes.reverse()  # ours first
        with pytest.raises(errors.UpstreamBadRequest, match="no permission for web_search"):
            adapter(other).chat(LLM, ask("x"))


def test_429_is_retried_after_retry_after(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_5xx_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable, match="internal_error"):
        adapter(fake).embed("embedding-v1", ["a"])
    assert len(fake.received) - before == 3


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(LLM, ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ask("one two three four five")))


def test_an_error_event_mid_stream_is_typed() -> None:
    frames = (
        b'data: {"id": "as-1", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
        b'data: {"error": {"code": "internal_error", "message": "engine crashed", '
        b'"type": "internal_error"}, "id": "as-1"}\n\n'
    )
    with QianfanFake(api_key=KEY) as other:
        other.route(
            "POST", "/v2/chat/completions",
            lambda request: Reply(body=frames, content_type="text/event-stream"),
        )  # fmt: skip
        other._routes.reverse()
        with pytest.raises(errors.UpstreamUnavailable, match="engine crashed"):
            list(adapter(other).stream(LLM, ask("x")))


def test_the_manifest_base_url_is_used_and_a_form_base_url_wins(fake) -> None:
    manifest = Endpoint(base_url="https://qianfan.baidubce.com/v2", credentials={"api_key": KEY})
    assert WenxinAdapter(manifest, http.pool()).http.base_url == "https://qianfan.baidubce.com/v2"
    moved = Endpoint(
        base_url="https://qianfan.baidubce.com/v2",
        credentials={"api_key": KEY, "base_url": f"{fake.url}/v2"},
    )
    assert WenxinAdapter(moved, http.pool()).chat(LLM, ask("x")).text == "You said: x"
