"""ZhipuAIAdapter against the Zhipu fake: the signed JWT (made once, kept, renewed before it
expires, dropped when refused), the bodies we send, chat, streaming, tools, images, embeddings,
validation, and each business error code ending as its typed error."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import (
    ChatRequest,
    ContentPart,
    Endpoint,
    Message,
    Tool,
    ToolCall,
    accumulate,
)
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.tokens import TokenCache
from providers.runtime.zhipuai import TOKEN_SECONDS, ZhipuAIAdapter
from tests.fakes.base import FakeServer, Reply
from tests.fakes.zhipuai_server import PREFIX, ZhipuFake, vector

KEY_ID, SECRET = "a1b2c3d4e5f6", "s3cretPartOfTheKey"
KEY = f"{KEY_ID}.{SECRET}"
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLM = "glm-5-turbo"
TOOLS = (Tool("search", "find things", {"type": "object", "properties": {}}), Tool("lookup"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def fake():
    with ZhipuFake(api_key=KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake):
    fake.reset()
    yield
    fake.reset()


def adapter(fake, *, key=KEY, retry=FAST_RETRY, read=5.0, clock=None, **options):
    endpoint = Endpoint(
        base_url="https://open.bigmodel.cn/api/paas/v4",
        credentials={"api_key": key, "base_url": fake.url + PREFIX + "/"},
        options=options,
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    made = ZhipuAIAdapter(endpoint, http.pool())
    made.tokens = TokenCache(clock or Clock())  # each test its own cache
    return made


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def bearer(request) -> str:
    return request.header("authorization").removeprefix("Bearer ")


def test_chat_sends_a_jwt_signed_as_the_sdk_signs_it(fake) -> None:
    result = adapter(fake).chat(LLM, ask("hello world", parameters={"temperature": 0.2}))
    assert result.text == "You said: hello world"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == f"{PREFIX}/chat/completions"
    token = bearer(sent)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "sign_type": "SIGN", "typ": "JWT"}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["api_key"] == KEY_ID
    assert claims["exp"] - claims["timestamp"] == TOKEN_SECONDS * 1000
    assert abs(claims["timestamp"] - time.time() * 1000) < 60_000  # milliseconds
    body = sent.json()
    assert body == {
        "model": LLM,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello world"},
        ],
        "temperature": 0.2,
    }


def test_the_token_is_made_once_and_renewed_before_it_expires(fake) -> None:
    clock = Clock()
    zhipu = adapter(fake, clock=clock)
    zhipu.chat(LLM, ask("one"))
    zhipu.chat(LLM, ask("two"))
    first, second = (bearer(r) for r in fake.received[-2:])
    assert first == second
    clock.now += TOKEN_SECONDS - 59  # inside the renewal margin
    time.sleep(0.002)  # a later timestamp, so another token
    zhipu.chat(LLM, ask("three"))
    assert bearer(fake.received[-1]) != first
    assert fake.tokens_seen[-1] == bearer(fake.received[-1])


def test_a_refused_token_is_dropped_and_the_next_call_signs_anew(fake) -> None:
    zhipu = adapter(fake)
    zhipu.chat(LLM, ask("one"))
    refused = bearer(fake.received[-1])
    fake.fail("401")
    with pytest.raises(errors.UpstreamAuth):
        zhipu.chat(LLM, ask("two"))
    time.sleep(0.002)
    zhipu.chat(LLM, ask("three"))
    assert bearer(fake.received[-1]) != refused


def test_an_expired_token_is_refused_with_code_1003(fake) -> None:
    zhipu = adapter(fake)
    expired = jwt.encode(
        {"api_key": KEY_ID, "exp": int(time.time() * 1000) - 1, "timestamp": 0},
        SECRET,
        algorithm="HS256",
        headers={"alg": "HS256", "sign_type": "SIGN"},
    )
    zhipu.tokens.get(zhipu._token_key(), lambda: (expired, 3600.0))
    with pytest.raises(errors.UpstreamAuth, match="1003"):
        zhipu.chat(LLM, ask("x"))
    zhipu.chat(LLM, ask("x"))  # the refused token was forgotten
    assert bearer(fake.received[-1]) != expired


def test_a_key_that_is_no_id_and_secret_is_sent_bare() -> None:
    with ZhipuFake(api_key="bare-key-without-a-dot") as bare:
        adapter(bare, key="bare-key-without-a-dot").chat(LLM, ask("hi"))
        assert bare.received[-1].header("authorization") == "Bearer bare-key-without-a-dot"


def test_wrong_credentials_are_an_auth_error(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match="1002"):
        adapter(fake, key=f"{KEY_ID}.wrongSecret").chat(LLM, ask("x"))
    with pytest.raises(errors.UpstreamAuth):
        adapter(fake, key="no-such-key").chat(LLM, ask("x"))


def test_streaming_yields_chunks_that_add_up(fake) -> None:
    chunks = list(adapter(fake).stream(LLM, ask("a b c d", parameters={"max_tokens": 50})))
    assert len([c for c in chunks if c.text]) > 3
    body = fake.received[-1].json()
    assert body["stream"] is True
    assert "stream_options" not in body  # not a Zhipu field: usage comes in the last chunk
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 6)
    assert not result.usage.counted


def test_limits_and_stops(fake) -> None:
    short = adapter(fake).chat(LLM, ask("one two three", parameters={"max_tokens": 2}))
    assert (short.text, short.finish_reason) == ("You said:", "length")
    stopped = adapter(fake).chat(LLM, ask("one two three", stop=(" two",)))
    assert stopped.text == "You said: one"
    assert fake.received[-1].json()["stop"] == [" two"]
    sent = len(fake.received)
    with pytest.raises(errors.InvalidInput, match="one stop word at most") as refused:
        adapter(fake).chat(LLM, ask("one two three", stop=(" two", " three")))
    assert "stop" in refused.value.fields
    assert len(fake.received) == sent  # refused before the API would refuse it (1214)


def test_tool_calls_complete_and_streamed(fake) -> None:
    request = ask("weather in Paris?", tools=TOOLS)
    result = adapter(fake).chat(LLM, request)
    assert result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["search", "lookup"]
    assert json.loads(result.tool_calls[0].arguments) == {"query": "weather in Paris?"}
    body = fake.received[-1].json()
    assert body["tool_choice"] == "auto"
    assert body["tools"][1] == {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    streamed = accumulate(adapter(fake).stream(LLM, request))
    assert streamed.tool_calls == result.tool_calls
    assert streamed.finish_reason == "tool_calls"


def test_tool_choices_zhipu_cannot_name_are_made_with_the_tools_offered(fake) -> None:
    named = adapter(fake).chat(LLM, ask("hi", tools=TOOLS, tool_choice="lookup"))
    assert [c.name for c in named.tool_calls] == ["lookup"]
    assert [t["function"]["name"] for t in fake.received[-1].json()["tools"]] == ["lookup"]
    plain = adapter(fake).chat(LLM, ask("hi", tools=TOOLS, tool_choice="none"))
    assert plain.text == "You said: hi"
    assert "tools" not in fake.received[-1].json()


def test_tool_results_round_trip(fake) -> None:
    call = ToolCall("call_1", "search", '{"query": "weather"}')
    request = ChatRequest(
        messages=(
            Message("user", "weather?"),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", "sunny, 21C", tool_call_id="call_1"),
        ),
        tools=(Tool("search"),),
    )
    assert adapter(fake).chat(LLM, request).text == "Tool said: sunny, 21C"
    tool = fake.received[-1].json()["messages"][2]
    assert tool == {"role": "tool", "content": "sunny, 21C", "tool_call_id": "call_1"}


def test_thinking_and_web_search_switches(fake) -> None:
    result = adapter(fake).chat(LLM, ask("hi", parameters={"thinking": True, "web_search": True}))
    assert result.text == "You said: hi"  # the reasoning is not the answer
    body = fake.received[-1].json()
    assert body["thinking"] == {"type": "enabled"}
    assert body["tools"] == [{"type": "web_search", "web_search": {"enable": True}}]
    adapter(fake).chat(LLM, ask("hi", parameters={"thinking": False}))
    assert fake.received[-1].json()["thinking"] == {"type": "disabled"}


def test_images_go_as_bare_base64_to_a_vision_model(fake) -> None:
    message = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="data:image/png;base64,AAAA"),
        ),
    )
    result = adapter(fake).chat("glm-4.6v", ChatRequest(messages=(message,)))
    assert result.text == "You said: what is it [1 image(s)]"
    part = fake.received[-1].json()["messages"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": "AAAA"}}
    with pytest.raises(errors.UpstreamBadRequest, match="1210"):
        adapter(fake).chat(LLM, ChatRequest(messages=(message,)))


def test_embeddings_go_64_at_a_time_in_order(fake) -> None:
    texts = [f"text {i}" for i in range(130)]
    before = len(fake.received)
    result = adapter(fake, dimensions=256).embed("embedding-3", texts)
    sent = [r.json() for r in fake.received[before:]]
    assert [len(b["input"]) for b in sent] == [64, 64, 2]
    assert {b["dimensions"] for b in sent} == {256}
    assert result.vectors[129] == tuple(vector("text 129", 256))
    assert result.usage.prompt_tokens == 260
    assert not result.usage.counted


def test_validation_of_each_model_type(fake) -> None:
    assert adapter(fake).validate(LLM, "llm").details == {"model": LLM}
    assert fake.received[-1].json()["max_tokens"] == 1
    assert adapter(fake).validate("embedding-2", "text-embedding").details == {"dimensions": 8}
    with pytest.raises(errors.UpstreamNotFound, match="1211"):
        adapter(fake).validate("glm-nope", "llm")
    with pytest.raises(errors.InvalidInput) as refused:
        adapter(fake).rerank("x", "q", ["d"])
    assert refused.value.code == "unsupported"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("1113", errors.UpstreamQuota),
        ("1261", errors.UpstreamBadRequest),
        ("1301", errors.UpstreamBadRequest),
    ],
)
def test_business_codes_decide_the_error(fake, mode, expected) -> None:
    fake.fail(mode)
    with pytest.raises(expected, match=mode):
        adapter(fake).chat(LLM, ask("x"))


def test_rate_limits_are_retried_after_retry_after(fake) -> None:
    fake.fail("429", retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 2
    fake.fail("1302", times=3)
    with pytest.raises(errors.UpstreamRateLimited, match="1302"):
        adapter(fake).chat(LLM, ask("x"))


def test_server_errors_are_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).chat(LLM, ask("x"))
    assert len(fake.received) - before == 3


def test_moderation_and_model_failures_in_the_finish_reason(fake) -> None:
    fake.fail("sensitive")
    assert adapter(fake).chat(LLM, ask("x")).finish_reason == "content_filter"
    fake.fail("sensitive")
    assert accumulate(adapter(fake).stream(LLM, ask("a b c"))).finish_reason == "content_filter"
    fake.fail("network_error")
    with pytest.raises(errors.UpstreamUnavailable, match="network_error"):
        adapter(fake).chat(LLM, ask("x"))


def test_an_error_in_the_stream_is_raised_and_masked(fake) -> None:
    fake.fail("stream_error")
    zhipu = adapter(fake)
    with pytest.raises(errors.UpstreamUnavailable) as caught:
        list(zhipu.stream(LLM, ask("a b c d")))
    token = bearer(fake.received[-1])
    assert token not in str(caught.value)
    assert "***" in caught.value.message


def test_timeouts_and_dropped_streams(fake) -> None:
    fake.fail("slow", seconds=1.5)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.5).chat(LLM, ask("x"))
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ask("a b c d e f")))


class EchoingServer(FakeServer):
    """Answers 200 with the Authorization header it got, in a body long enough to be cut."""

    def __init__(self) -> None:
        super().__init__(api_key=None)
        self.route(
            "POST",
            PREFIX + "/chat/completions",
            lambda request: Reply(body={"echo": "x" * 150 + request.header("authorization")}),
        )


def test_a_signed_token_quoted_in_an_error_is_masked_even_where_the_quote_is_cut() -> None:
    """The JWT made from the key is a working login for minutes: it is masked before the
    backend's words are cut to length, so no part of it shows."""
    with EchoingServer() as server:
        made = adapter(server)
        with pytest.raises(errors.UpstreamUnavailable) as caught:
            made.chat("glm-5-turbo", ask("hello"))
        token = made.http.derived_secrets()[-1]
        assert token.startswith("eyJ")
        assert token[:20] not in str(caught.value)
        assert "***" in str(caught.value)
