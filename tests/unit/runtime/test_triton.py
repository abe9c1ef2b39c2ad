"""TritonAdapter against the Triton fake: the generate extension's body, both prompt modes,
streaming over /generate_stream (and Dify's non-streaming mode), validation from the KServe v2
model metadata and readiness, and Triton's errors as typed errors."""

from __future__ import annotations

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.triton import DEFAULT_MAX_TOKENS, TritonAdapter
from tests.fakes.base import Reply
from tests.fakes.triton_server import TritonFake

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
TRANSCRIPT = "System: be brief\nUser: hello world\nAssistant:"


@pytest.fixture(scope="module")
def fake():
    with TritonFake() as server:
        yield server


def adapter(fake, *, retry=FAST_RETRY, read=5.0, base=None, **options) -> TritonAdapter:
    endpoint = Endpoint(
        base_url="",
        credentials={"base_url": base or fake.url},
        options={"completion_type": "chat", "stream": "true", "context_size": "2048", **options},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
        secret_names=frozenset(),
    )
    return TritonAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_the_server_url_is_the_base(fake) -> None:
    assert adapter(fake, base=f"{fake.url}/").http.base_url == fake.url
    with pytest.raises(errors.InvalidInput, match="server URL"):
        TritonAdapter(Endpoint(base_url=""), http.pool())


def test_chat_sends_the_generate_body(fake) -> None:
    parameters = {"temperature": 0.3, "top_p": 0.9, "top_k": 5, "max_tokens": 40}
    result = adapter(fake).chat("ensemble", ask("hello world", parameters=parameters))
    assert result.text == "You said: hello world"
    assert result.model == "ensemble"
    assert result.usage.counted
    sent = fake.received[-1]
    assert sent.path == "/v2/models/ensemble/generate"
    assert sent.json() == {
        "text_input": TRANSCRIPT,
        "max_tokens": 40,
        "parameters": {"temperature": 0.3, "top_p": 0.9, "top_k": 5, "stream": False},
    }


def test_completion_mode_sends_the_text_as_is(fake) -> None:
    request = ChatRequest(messages=(Message("user", "Once upon a time"),))
    assert adapter(fake, completion_type="completion").chat("ensemble", request).text == (
        "You said: Once upon a time"
    )
    sent = fake.received[-1].json()
    assert sent["text_input"] == "Once upon a time"
    assert sent["max_tokens"] == DEFAULT_MAX_TOKENS


def test_a_backend_that_returns_the_prompt_too_gives_only_the_output(fake) -> None:
    assert adapter(fake).chat("vllm_model", ask("hello world")).text == "You said: hello world"


def test_a_model_without_a_max_tokens_input_gets_it_among_the_parameters(fake) -> None:
    """The vLLM backend has no max_tokens input: Triton refuses it top-level, so it is sent
    again among the parameters, and from then on among them at once."""
    triton = adapter(fake)
    before = len(fake.received)
    assert (
        triton.chat("vllm_model", ask("a b c d", parameters={"max_tokens": 4})).text
        == "You said: a b"
    )
    assert accumulate(
        triton.stream("vllm_model", ask("a b c d", parameters={"max_tokens": 4}))
    ).text == ("You said: a b")
    sent = [r.json() for r in fake.received[before:]]
    assert [("max_tokens" in b, b["parameters"].get("max_tokens")) for b in sent] == [
        (True, None),
        (False, 4),
        (False, 4),
    ]


def test_stop_sequences_cut_the_output(fake) -> None:
    request = ask("red green blue", stop=("green",))
    assert adapter(fake).chat("ensemble", request).text == "You said: red "
    streamed = accumulate(adapter(fake).stream("ensemble", request))
    assert streamed.text == "You said: red "


def test_stream_reads_generate_stream_events(fake) -> None:
    chunks = list(adapter(fake).stream("ensemble", ask("a b c")))
    assert [c.text for c in chunks if c.text] == ["You", " said:", " a", " b", " c"]
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens > 0
    sent = fake.received[-1]
    assert sent.path == "/v2/models/ensemble/generate_stream"
    assert sent.json()["parameters"]["stream"] is True


def test_stream_off_is_one_generate_call(fake) -> None:
    before = len(fake.received)
    chunks = list(adapter(fake, stream="false").stream("ensemble", ask("a b")))
    assert [c.text for c in chunks] == ["You said: a b"]
    assert [r.path for r in fake.received[before:]] == ["/v2/models/ensemble/generate"]


def test_tools_are_refused_before_sending(fake) -> None:
    before = len(fake.received)
    with pytest.raises(errors.InvalidInput) as refused:
        adapter(fake).chat("ensemble", ask("x", tools=(Tool("search"),)))
    assert refused.value.code == "unsupported"
    assert len(fake.received) == before


def test_validation_reads_metadata_and_readiness(fake) -> None:
    before = len(fake.received)
    details = adapter(fake).validate("ensemble", "llm").details
    assert details == {"model": "ensemble", "versions": ["1"], "platform": "ensemble"}
    assert [r.path for r in fake.received[before:]] == [
        "/v2/models/ensemble",
        "/v2/models/ensemble/ready",
    ]
    with pytest.raises(errors.UpstreamBadRequest, match="takes data_0"):
        adapter(fake).validate("densenet", "llm")
    with pytest.raises(errors.UpstreamNotFound, match="Request for unknown model: 'nope'"):
        adapter(fake).validate("nope", "llm")
    with pytest.raises(errors.InvalidInput):
        adapter(fake).validate("ensemble", "text-embedding")


def test_a_model_not_ready_fails_validation(fake) -> None:
    fake.not_ready.add("vllm_model")
    try:
        with pytest.raises(errors.UpstreamUnavailable, match="not ready"):
            adapter(fake).validate("vllm_model", "llm")
    finally:
        fake.not_ready.clear()


def test_tritons_errors_are_typed(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="unknown model"):
        adapter(fake).chat("nope", ask("x"))
    with pytest.raises(errors.UpstreamBadRequest, match="unexpected inference input"):
        adapter(fake).chat("densenet", ask("x"))
    fake.fail("401")  # an authenticating proxy in front of Triton
    with pytest.raises(errors.UpstreamAuth):
        adapter(fake).chat("ensemble", ask("x"))


def test_an_older_servers_400_for_an_unknown_model_is_not_found() -> None:
    with TritonFake() as other:
        other.route(
            "POST",
            "/v2/models/{model}/generate",
            lambda r: Reply(400, {"error": "Request for unknown model: 'old' is not found"}),
        )
        other._routes.reverse()  # ours first
        with pytest.raises(errors.UpstreamNotFound):
            adapter(other).chat("old", ask("x"))


def test_an_error_inside_the_stream_is_typed() -> None:
    frames = (
        b'data: {"model_name": "ensemble", "model_version": "1", "text_output": "Hi"}\n\n'
        b'data: {"error": "in ensemble \'ensemble\', Encountered error for requestId 1"}\n\n'
    )
    with TritonFake() as other:
        other.route(
            "POST",
            "/v2/models/{model}/generate_stream",
            lambda r: Reply(body=frames, content_type="text/event-stream; charset=utf-8"),
        )
        other._routes.reverse()
        chunks = adapter(other).stream("ensemble", ask("x"))
        assert next(chunks).text == "Hi"
        with pytest.raises(errors.UpstreamUnavailable, match="Encountered error"):
            next(chunks)


def test_429_is_retried_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat("ensemble", ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_5xx_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).chat("ensemble", ask("x"))
    assert len(fake.received) - before == 3


def test_a_slow_server_times_out(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat("ensemble", ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream("ensemble", ask("one two three four five")))


def test_replies_of_another_shape_are_typed_errors(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).chat("ensemble", ask("x"))
    with TritonFake() as other:
        other.route("POST", "/v2/models/{model}/generate", lambda r: Reply(200, {"outputs": []}))
        other._routes.reverse()
        with pytest.raises(errors.UpstreamUnavailable) as caught:
            adapter(other).chat("ensemble", ask("x"))
        assert caught.value.code == "bad_response"
