"""MinimaxAdapter against the MiniMax fake: chat and streaming over the Anthropic-compatible path
(thinking blocks left out, tools), native embeddings with the GroupId, their HTTP-200 errors, and
the shared failure modes ending as typed errors after bounded retries."""

from __future__ import annotations

import json

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.minimax import MinimaxAdapter
from tests.fakes.base import embed_text
from tests.fakes.minimax_server import MinimaxFake

KEY = "eyJhbGciOiJSUzI1NiJ9.minimax-key"
GROUP = "1900000000000000001"
LLM = "MiniMax-M2.5"
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)


@pytest.fixture(scope="module")
def fake():
    with MinimaxFake(api_key=KEY, group_id=GROUP) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake):
    fake.reset()
    yield
    fake.reset()


def adapter(fake, *, key=KEY, group=GROUP, url=None, read=5.0, **options) -> MinimaxAdapter:
    credentials = {"api_key": key, "base_url": url or fake.url}
    if group:
        credentials["group_id"] = group
    endpoint = Endpoint(
        base_url="https://api.minimaxi.com",
        credentials=credentials,
        options={"anthropic_path": "/anthropic", **options},
        timeouts=Timeouts(connect=2, read=read),
        retry=FAST_RETRY,
    )
    return MinimaxAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_goes_to_the_anthropic_path_and_leaves_thinking_out(fake) -> None:
    result = adapter(fake).chat(LLM, ask("hello world", parameters={"temperature": 0.7}))
    assert result.text == "You said: hello world"
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens == 4
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == "/anthropic/v1/messages"
    assert sent.header("x-api-key") == KEY
    assert sent.header("authorization") == f"Bearer {KEY}"
    assert sent.header("anthropic-version") == "2023-06-01"
    body = sent.json()
    assert (body["model"], body["system"], body["temperature"]) == (LLM, "be brief", 0.7)
    assert body["messages"] == [{"role": "user", "content": "hello world"}]


@pytest.mark.parametrize("suffix", ["/", "/anthropic", "/anthropic/", "/v1"])
def test_an_endpoint_typed_with_a_path_still_reaches_the_root(fake, suffix) -> None:
    assert adapter(fake, url=fake.url + suffix).chat(LLM, ask("hi")).text == "You said: hi"
    assert fake.received[-1].path == "/anthropic/v1/messages"


def test_streaming_yields_the_answer_without_the_thinking(fake) -> None:
    chunks = list(adapter(fake).stream("MiniMax-M2.7", ask("a b c d")))
    assert fake.received[-1].json()["stream"] is True
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d"
    assert result.finish_reason == "stop"


def test_tool_calls_complete_and_streamed(fake) -> None:
    request = ask("weather in Paris?", tools=(Tool("search", "find things"),))
    result = adapter(fake).chat(LLM, request)
    assert result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["search"]
    assert json.loads(result.tool_calls[0].arguments) == {"query": "weather in Paris?"}
    streamed = accumulate(adapter(fake).stream(LLM, request))
    assert [c.name for c in streamed.tool_calls] == ["search"]
    assert json.loads(streamed.tool_calls[0].arguments) == {"query": "weather in Paris?"}


def test_embeddings_send_the_group_and_type_in_batches(fake) -> None:
    before = len(fake.received)
    result = adapter(fake, batch_size="2").embed("embo-01", ["a", "b", "c"])
    sent = fake.received[before:]
    assert [r.json()["texts"] for r in sent] == [["a", "b"], ["c"]]
    assert {r.query["GroupId"][0] for r in sent} == {GROUP}
    assert {r.json()["type"] for r in sent} == {"db"}
    assert {r.header("authorization") for r in sent} == {f"Bearer {KEY}"}
    assert result.vectors == tuple(tuple(embed_text(f"db:{t}")) for t in "abc")
    assert (result.usage.prompt_tokens, result.usage.counted) == (3, False)
    query = adapter(fake).embed("embo-01", ["a"], input_type="query")
    assert query.vectors == (tuple(embed_text("query:a")),)


def test_embeddings_without_a_group_are_refused_before_sending(fake) -> None:
    before = len(fake.received)
    with pytest.raises(errors.InvalidInput, match="Group ID"):
        adapter(fake, group="").embed("embo-01", ["a"])
    assert len(fake.received) == before


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("401", errors.UpstreamAuth),
        ("429", errors.UpstreamRateLimited),
        ("1008", errors.UpstreamQuota),
        ("404", errors.UpstreamBadRequest),
        ("500", errors.UpstreamUnavailable),
    ],
)
def test_errors_in_an_http_200_base_resp(fake, mode, expected) -> None:
    fake.fail(mode)
    with pytest.raises(expected, match="status_code"):
        adapter(fake).embed("embo-01", ["a"])


def test_wrong_credentials_are_an_auth_error_on_both_sides(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match="login fail"):
        adapter(fake, key="wrong").chat(LLM, ask("x"))
    with pytest.raises(errors.UpstreamAuth, match="1004"):
        adapter(fake, key="wrong").embed("embo-01", ["a"])
    with pytest.raises(errors.UpstreamAuth, match="GroupId"):
        adapter(fake, group="1900000000000000999").embed("embo-01", ["a"])
    with pytest.raises(errors.UpstreamBadRequest, match="not supported"):
        adapter(fake).embed("embo-99", ["a"])


def test_validation_of_each_model_type(fake) -> None:
    assert adapter(fake).validate(LLM, "llm").details == {"model": LLM}
    assert fake.received[-1].json()["max_tokens"] == 1
    assert adapter(fake).validate("embo-01", "text-embedding").details == {"dimensions": 8}
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).validate("claude-sonnet-4-6", "llm")
    with pytest.raises(errors.InvalidInput) as refused:
        adapter(fake).list_models()
    assert refused.value.code == "unsupported"


def test_rate_limits_are_retried_after_retry_after(fake) -> None:
    fake.fail("429", retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 2


def test_server_errors_are_retried_then_unavailable(fake) -> None:
    fake.fail("529", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).chat(LLM, ask("x"))
    assert len(fake.received) - before == 3


def test_timeouts_and_dropped_streams(fake) -> None:
    fake.fail("slow", seconds=1.5)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.5).chat(LLM, ask("x"))
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ask("a b c d e f")))
