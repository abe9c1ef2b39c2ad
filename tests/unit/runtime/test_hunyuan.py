"""HunyuanAdapter against the Hunyuan fake: TC3 signing, chat, streaming, tools, vision, the body
it sends, and Tencent's HTTP-200 error codes ending as typed errors after bounded retries."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from config import errors
from providers.runtime import http, hunyuan
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
from providers.runtime.hunyuan import HunyuanAdapter, canonical_host, tc3_signature
from tests.fakes.hunyuan_server import HunyuanFake

SECRET_ID, SECRET_KEY = "AKIDfake-secret-id", "fake-secret-key"
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLM = "hunyuan-turbos-latest"


@pytest.fixture(scope="module")
def fake():
    with HunyuanFake(SECRET_ID, SECRET_KEY) as server:
        yield server


def adapter(
    fake, *, secret_id=SECRET_ID, secret_key=SECRET_KEY, retry=FAST_RETRY, read=5.0, **options
) -> HunyuanAdapter:
    endpoint = Endpoint(
        base_url=fake.url,
        credentials={"secret_id": secret_id, "secret_key": secret_key},
        options={"service": "hunyuan", "api_version": "2023-09-01", **options},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return HunyuanAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_tc3_signature_matches_tencents_documented_example() -> None:
    """The worked example of Tencent's signature v3 document (DescribeInstances on cvm)."""
    to_sign = (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    signature = tc3_signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "2019-02-25", "cvm", to_sign)
    assert signature == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


def test_the_signed_host_is_the_one_sent() -> None:
    assert canonical_host("https://hunyuan.tencentcloudapi.com/") == "hunyuan.tencentcloudapi.com"
    assert canonical_host("https://hunyuan.tencentcloudapi.com:443/") == (
        "hunyuan.tencentcloudapi.com"
    )
    assert canonical_host("http://127.0.0.1:8123/") == "127.0.0.1:8123"


def test_chat_sends_the_documented_body_and_reports_usage(fake) -> None:
    request = ask(
        "hello world",
        parameters={"temperature": 0.2, "top_p": 0.5, "enable_enhance": False, "max_tokens": 50},
    )
    result = adapter(fake).chat(LLM, request)
    assert result.text == "You said: hello world"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == "/"
    assert sent.header("x-tc-action") == "ChatCompletions"
    assert sent.header("x-tc-version") == "2023-09-01"
    assert sent.header("content-type") == "application/json"
    assert abs(int(sent.header("x-tc-timestamp")) - time.time()) < 60
    assert sent.header("authorization").startswith(f"TC3-HMAC-SHA256 Credential={SECRET_ID}/")
    assert "SignedHeaders=content-type;host," in sent.header("authorization")
    assert sent.json() == {
        "Model": LLM,
        "Messages": [
            {"Role": "system", "Content": "be brief"},
            {"Role": "user", "Content": "hello world"},
        ],
        "Stream": False,
        "Temperature": 0.2,
        "TopP": 0.5,
        "EnableEnhancement": False,
    }  # max_tokens has no field in ChatCompletions: not sent


def test_region_option_is_sent(fake) -> None:
    adapter(fake, region="ap-guangzhou").chat(LLM, ask("hi"))
    assert fake.received[-1].header("x-tc-region") == "ap-guangzhou"


def test_stop_strings_are_sent(fake) -> None:
    result = adapter(fake).chat(LLM, ask("one two three", stop=(" two",)))
    assert result.text == "You said: one two"  # Hunyuan stops after the stop string
    assert fake.received[-1].json()["Stop"] == [" two"]


def test_streaming_yields_chunks_that_add_up(fake) -> None:
    chunks = list(adapter(fake).stream(LLM, ask("a b c d")))
    assert len([c for c in chunks if c.text]) > 3
    assert fake.received[-1].json()["Stream"] is True
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 6)


def test_tool_calls_complete_and_streamed(fake) -> None:
    tools = (
        Tool("search", "find things", {"type": "object", "properties": {}}),
        Tool("lookup", "look things up"),
    )
    request = ask("weather in Paris?", tools=tools)
    result = adapter(fake).chat(LLM, request)
    assert result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["search", "lookup"]
    assert json.loads(result.tool_calls[0].arguments) == {"query": "weather in Paris?"}
    sent = fake.received[-1].json()
    assert sent["Tools"][0] == {
        "Type": "function",
        "Function": {
            "Name": "search",
            "Description": "find things",
            "Parameters": '{"type": "object", "properties": {}}',
        },
    }
    assert "ToolChoice" not in sent  # auto is the default
    streamed = accumulate(adapter(fake).stream(LLM, request))
    assert streamed.tool_calls == result.tool_calls
    assert streamed.finish_reason == "tool_calls"


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
    result = adapter(fake).chat(LLM, request)
    assert result.text == "Tool said: sunny, 21C"
    assistant, tool = fake.received[-1].json()["Messages"][1:]
    assert assistant == {
        "Role": "assistant",
        "Content": " ",
        "ToolCalls": [
            {
                "Id": "call_1",
                "Type": "function",
                "Function": {"Name": "search", "Arguments": '{"query": "weather"}'},
            }
        ],
    }
    assert tool == {"Role": "tool", "Content": "sunny, 21C", "ToolCallId": "call_1"}


def test_tool_choice(fake) -> None:
    tools = (Tool("search"), Tool("lookup"))
    plain = adapter(fake).chat(LLM, ask("hi", tools=tools, tool_choice="none"))
    assert (plain.text, plain.tool_calls) == ("You said: hi", ())
    assert fake.received[-1].json()["ToolChoice"] == "none"
    named = adapter(fake).chat(LLM, ask("hi", tools=tools, tool_choice="lookup"))
    assert [c.name for c in named.tool_calls] == ["lookup"]
    sent = fake.received[-1].json()
    assert sent["ToolChoice"] == "custom"
    assert sent["CustomTool"]["Function"]["Name"] == "lookup"


def test_images_are_sent_as_contents(fake) -> None:
    message = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="https://example.com/cat.png"),
        ),
    )
    result = adapter(fake).chat("hunyuan-vision", ChatRequest(messages=(message,)))
    assert result.text == "You said: what is it [1 image(s)]"
    assert fake.received[-1].json()["Messages"][0] == {
        "Role": "user",
        "Contents": [
            {"Type": "text", "Text": "what is it"},
            {"Type": "image_url", "ImageUrl": {"Url": "https://example.com/cat.png"}},
        ],
    }
    with pytest.raises(errors.UpstreamBadRequest, match="InvalidParameter"):
        adapter(fake).chat(LLM, ChatRequest(messages=(message,)))


def test_validation_is_a_one_token_chat(fake) -> None:
    assert adapter(fake).validate("hunyuan-standard", "llm").details == {
        "model": "hunyuan-standard"
    }
    assert "Stream" in fake.received[-1].json()
    with pytest.raises(errors.UpstreamNotFound, match=r"InvalidParameterValue\.Model"):
        adapter(fake).validate("hunyuan-nope", "llm")


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ({"secret_key": "wrong-key"}, "AuthFailure.SignatureFailure"),
        ({"secret_id": "AKIDunknown"}, "AuthFailure.SecretIdNotFound"),
    ],
)
def test_wrong_credentials_are_upstream_auth_and_not_retried(fake, credentials, code) -> None:
    before = len(fake.received)
    with pytest.raises(errors.UpstreamAuth, match=code) as caught:
        adapter(fake, **credentials).chat(LLM, ask("hi"))
    assert len(fake.received) - before == 1
    assert "wrong-key" not in str(caught.value)


def test_a_clock_off_by_an_hour_is_an_expired_signature(fake, monkeypatch) -> None:
    an_hour_ago = SimpleNamespace(time=lambda: time.time() - 3600, monotonic=time.monotonic)
    monkeypatch.setattr(hunyuan, "time", an_hour_ago)
    with pytest.raises(errors.UpstreamAuth, match=r"AuthFailure\.SignatureExpire"):
        adapter(fake).chat(LLM, ask("hi"))


def test_a_rate_limit_in_an_http_200_body_is_retried(fake) -> None:
    fake.fail("429", times=2)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ask("hi")).text == "You said: hi"
    assert len(fake.received) - before == 3  # RequestLimitExceeded twice, then the answer


def test_rate_limits_end_as_rate_limited_after_the_retries(fake) -> None:
    fake.fail("429", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamRateLimited, match="RequestLimitExceeded"):
        adapter(fake).chat(LLM, ask("hi"))
    assert len(fake.received) - before == 3


def test_internal_errors_are_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    with pytest.raises(errors.UpstreamUnavailable, match="InternalError"):
        adapter(fake).chat(LLM, ask("hi"))
    fake.fail("500", times=1)
    assert adapter(fake).chat(LLM, ask("hi")).text == "You said: hi"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("AuthFailure.SecretIdNotFound", errors.UpstreamAuth),
        ("LimitExceeded", errors.UpstreamRateLimited),
        ("ResourceInsufficient.ChargeResourceExhaust", errors.UpstreamQuota),
        ("FailedOperation.ServiceStopArrears", errors.UpstreamQuota),
        ("ResourceUnavailable.LowBalance", errors.UpstreamQuota),
        ("InvalidParameterValue.ParameterValueError", errors.UpstreamBadRequest),
        ("InvalidParameterValue.Model", errors.UpstreamNotFound),
        ("InternalError", errors.UpstreamUnavailable),
        ("FailedOperation.EngineRequestTimeout", errors.UpstreamTimeout),
        ("OperationDenied.TextIllegalDetected", errors.UpstreamBadRequest),
    ],
)
def test_error_codes_map_to_our_classes(code, kind) -> None:
    assert hunyuan.error_class(code) is kind


def test_a_stream_refused_before_it_starts_raises_the_tencent_error(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match="SignatureFailure"):
        list(adapter(fake, secret_key="wrong").stream(LLM, ask("hi")))


def test_an_error_event_mid_stream_raises(fake) -> None:
    fake.fail("echo_key_stream")
    chunks = adapter(fake).stream(LLM, ask("a b c d e"))
    assert next(chunks).text
    with pytest.raises(errors.UpstreamUnavailable, match="mid-stream"):
        list(chunks)


def test_a_dropped_stream_is_an_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ask("a b c d e f")))


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", seconds=1.5)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.5, retry=RetryPolicy(attempts=1)).chat(LLM, ask("hi"))
    time.sleep(1.2)  # let the slow reply finish before the next test


def test_a_reply_that_is_not_json_is_unavailable(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake, retry=RetryPolicy(attempts=1)).chat(LLM, ask("hi"))
