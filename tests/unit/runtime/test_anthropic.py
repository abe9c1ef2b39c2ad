"""AnthropicAdapter against the Anthropic fake: messages, streaming, tools, images, validation,
model listing, and each failure mode ending as a typed error after bounded retries."""

from __future__ import annotations

import json

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.anthropic import AnthropicAdapter
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
from tests.fakes.anthropic_server import AnthropicFake

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
MODEL = "claude-sonnet-4-6"
SEARCH = Tool("search", "find things", {"type": "object", "properties": {"query": {}}})


@pytest.fixture(scope="module")
def fake():
    with AnthropicFake() as server:
        yield server


def adapter(fake, *, key="fake-key", retry=FAST_RETRY, read=5.0, **options) -> AnthropicAdapter:
    endpoint = Endpoint(
        base_url=fake.url,
        credentials={"api_key": key},
        options={"anthropic_version": "2023-06-01", **options},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return AnthropicAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_sends_the_messages_api_shape_and_reports_usage(fake) -> None:
    request = ask("hello world", parameters={"temperature": 0.2, "top_k": 5})
    result = adapter(fake).chat(MODEL, request)
    assert result.text == "You said: hello world"
    assert result.finish_reason == "stop"
    assert result.model == MODEL
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == "/v1/messages"
    assert sent.header("x-api-key") == "fake-key"
    assert sent.header("anthropic-version") == "2023-06-01"
    assert sent.header("authorization") == ""
    body = sent.json()
    assert body["system"] == "be brief"
    assert body["messages"] == [{"role": "user", "content": "hello world"}]
    assert (body["temperature"], body["top_k"], body["max_tokens"]) == (0.2, 5, 1024)


def test_top_p_is_left_out_when_a_temperature_is_given(fake) -> None:
    # Claude Sonnet 4.6 refuses temperature and top_p together (the fake does too)
    params = {"temperature": 0.3, "top_p": 0.9}
    assert adapter(fake).chat(MODEL, ask("hi", parameters=params)).text == "You said: hi"
    sent = fake.received[-1].json()
    assert (sent["temperature"], "top_p" in sent) == (0.3, False)
    adapter(fake).chat(MODEL, ask("hi", parameters={"top_p": 0.9}))
    assert fake.received[-1].json()["top_p"] == 0.9


def test_the_2026_version_gets_no_sampling_parameters(fake) -> None:
    params = {"temperature": 0.3, "top_p": 0.9, "top_k": 5}
    chosen = adapter(fake, anthropic_version="2026-10-21")
    assert chosen.chat(MODEL, ask("hi", parameters=params)).text == "You said: hi"
    sent = fake.received[-1]
    assert sent.header("anthropic-version") == "2026-10-21"
    assert not {"temperature", "top_p", "top_k"} & set(sent.json())


def test_an_unknown_api_version_is_a_bad_request(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="is not a valid version"):
        adapter(fake, anthropic_version="2024-10-22").chat(MODEL, ask("hi"))


def test_max_tokens_and_stop_map_to_the_api_and_back(fake) -> None:
    result = adapter(fake).chat(MODEL, ask("one two three", parameters={"max_tokens": 2}))
    assert (result.text, result.finish_reason) == ("You said:", "length")
    assert fake.received[-1].json()["max_tokens"] == 2
    result = adapter(fake).chat(MODEL, ask("one two three", stop=("two", "\n")))
    assert (result.text, result.finish_reason) == ("You said: one ", "stop")
    assert fake.received[-1].json()["stop_sequences"] == ["two"]  # whitespace-only is refused


def test_streaming_yields_chunks_that_add_up(fake) -> None:
    chunks = list(adapter(fake).stream(MODEL, ask("a b c d")))
    assert len([c for c in chunks if c.text]) > 3
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 6)
    assert fake.received[-1].json()["stream"] is True
    limited = accumulate(adapter(fake).stream(MODEL, ask("a b c d", parameters={"max_tokens": 3})))
    assert (limited.text, limited.finish_reason) == ("You said: a", "length")


def test_tool_calls_complete_and_streamed(fake) -> None:
    request = ask("weather in Paris?", tools=(SEARCH,), tool_choice="required")
    result = adapter(fake).chat(MODEL, request)
    assert result.finish_reason == "tool_calls"
    call = result.tool_calls[0]
    assert call.name == "search"
    assert json.loads(call.arguments) == {"query": "weather in Paris?"}
    assert call.id.startswith("toolu_")
    sent = fake.received[-1].json()
    assert sent["tools"] == [
        {
            "name": "search",
            "description": "find things",
            "input_schema": {"type": "object", "properties": {"query": {}}},
        }
    ]
    assert sent["tool_choice"] == {"type": "any"}
    streamed = accumulate(adapter(fake).stream(MODEL, request))
    assert streamed.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in streamed.tool_calls] == [(call.name, call.arguments)]


def test_tool_choice_by_name_and_none(fake) -> None:
    adapter(fake).chat(MODEL, ask("x", tools=(SEARCH,), tool_choice="search"))
    assert fake.received[-1].json()["tool_choice"] == {"type": "tool", "name": "search"}
    result = adapter(fake).chat(MODEL, ask("x", tools=(SEARCH,), tool_choice="none"))
    assert (result.text, result.tool_calls) == ("You said: x", ())


def test_a_tool_result_goes_back_as_a_user_tool_result_block(fake) -> None:
    first = adapter(fake).chat(MODEL, ask("weather?", tools=(SEARCH,)))
    call = first.tool_calls[0]
    conversation = (
        Message("system", "be brief"),
        Message("user", "weather?"),
        Message("assistant", "Let me look.", tool_calls=(call,)),
        Message("tool", "sunny and 21C", tool_call_id=call.id),
    )
    result = adapter(fake).chat(MODEL, ChatRequest(messages=conversation, tools=(SEARCH,)))
    assert (result.text, result.finish_reason) == ("You said: sunny and 21C", "stop")
    sent = fake.received[-1].json()["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {
                "type": "tool_use",
                "id": call.id,
                "name": "search",
                "input": {"query": "weather?"},
            },
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny and 21C"}],
    }


def test_parallel_tool_results_share_one_user_turn(fake) -> None:
    calls = (ToolCall("toolu_a", "search", '{"query": "a"}'), ToolCall("toolu_b", "search", ""))
    conversation = (
        Message("user", "two lookups"),
        Message("assistant", "", tool_calls=calls),
        Message("tool", "A", tool_call_id="toolu_a"),
        Message("tool", "B", tool_call_id="toolu_b"),
    )
    result = adapter(fake).chat(MODEL, ChatRequest(messages=conversation, tools=(SEARCH,)))
    assert result.text == "You said: A B"
    sent = fake.received[-1].json()["messages"]
    assert len(sent) == 3
    assert sent[1]["content"][1]["input"] == {}
    assert [b["tool_use_id"] for b in sent[2]["content"]] == ["toolu_a", "toolu_b"]


def test_images_become_base64_and_url_sources(fake) -> None:
    message = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="data:image/jpeg;base64,/9j/AAAA"),
            ContentPart("image", image_url="https://example.test/cat.png"),
            ContentPart("text", text=""),
        ),
    )
    result = adapter(fake).chat(MODEL, ChatRequest(messages=(message,)))
    assert result.text == "You said: what is it [2 image(s)]"
    blocks = fake.received[-1].json()["messages"][0]["content"]
    assert blocks == [
        {"type": "text", "text": "what is it"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/AAAA"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.png"}},
    ]


def test_thinking_parameters_and_thinking_blocks_are_left_out_of_the_text(fake) -> None:
    params = {"thinking": True, "thinking_budget": 1024, "max_tokens": 2048, "temperature": 0.5}
    result = adapter(fake).chat(MODEL, ask("hi", parameters=params))
    assert result.text == "You said: hi"
    sent = fake.received[-1].json()
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "temperature" not in sent
    streamed = accumulate(adapter(fake).stream(MODEL, ask("hi", parameters=params)))
    assert streamed.text == "You said: hi"
    adapter(fake).chat(MODEL, ask("hi", parameters={"thinking": True, "effort": "low"}))
    sent = fake.received[-1].json()
    assert sent["thinking"] == {"type": "adaptive"}
    assert sent["output_config"] == {"effort": "low"}


def test_structured_output_goes_to_output_config(fake) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = ask(
        "x", response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    )
    adapter(fake).chat(MODEL, request)
    sent = fake.received[-1].json()
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    adapter(fake).chat(MODEL, ask("x", parameters={"json_schema": json.dumps(schema)}))
    assert fake.received[-1].json()["output_config"]["format"]["schema"] == schema


def test_model_listing_follows_pages(fake) -> None:
    fake_models = list(fake.models)
    found = adapter(fake).list_models()
    assert [m.model for m in found] == fake_models
    assert {m.model_type for m in found} == {"llm"}
    assert found[0].details["display_name"] == "Claude Sonnet 4.6"
    assert fake.received[-1].path == "/v1/models"
    with AnthropicFake(models={f"claude-{i}": f"Claude {i}" for i in range(1003)}) as many:
        endpoint = Endpoint(base_url=many.url, credentials={"api_key": "fake-key"})
        listed = AnthropicAdapter(endpoint, http.pool()).list_models()
        assert len(listed) == 1003
        assert many.received[-1].query["after_id"] == ["claude-999"]


def test_validation_is_a_one_token_message(fake) -> None:
    result = adapter(fake).validate(MODEL, "llm")
    assert result.details == {"model": MODEL}
    sent = fake.received[-1].json()
    assert sent["max_tokens"] == 1
    assert sent["model"] == MODEL
    with pytest.raises(errors.InvalidInput):
        adapter(fake).validate(MODEL, "text-embedding")


def test_wrong_key_is_authorization_and_the_key_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key="sk-ant-wrong-key-12345").chat(MODEL, ask("x"))
    assert "invalid x-api-key" in caught.value.message
    assert "authentication_error" in caught.value.message
    assert "sk-ant-wrong-key-12345" not in caught.value.message
    fake.fail("403")
    with pytest.raises(errors.UpstreamAuth, match="permission_error"):
        adapter(fake).chat(MODEL, ask("x"))


def test_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="not_found_error: model: claude-9"):
        adapter(fake).chat("claude-9", ask("x"))
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).validate("claude-9", "llm")


def test_bad_requests_keep_the_api_message(fake) -> None:
    fake.fail("413")
    with pytest.raises(errors.UpstreamBadRequest, match="request_too_large"):
        adapter(fake).chat(MODEL, ask("x"))
    params = {"thinking": True, "thinking_budget": 4096, "max_tokens": 100}
    with pytest.raises(errors.UpstreamBadRequest, match="budget_tokens"):
        adapter(fake).chat(MODEL, ask("x", parameters=params))


def test_429_is_retried_after_retry_after_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(MODEL, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_529_overloaded_is_unavailable_and_retried(fake) -> None:
    fake.fail("529", times=2)
    before = len(fake.received)
    assert adapter(fake).chat(MODEL, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3
    fake.fail("529", times=3)
    with pytest.raises(errors.UpstreamUnavailable, match="overloaded_error"):
        adapter(fake).chat(MODEL, ask("x"))


def test_retries_are_bounded(fake) -> None:
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited) as caught:
        adapter(fake).chat(MODEL, ask("x"))
    assert caught.value.retry_after == 0
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable, match="api_error"):
        adapter(fake).chat(MODEL, ask("x"))
    assert len(fake.received) - before == 3


def test_an_error_frame_mid_stream_is_a_typed_error(fake) -> None:
    fake.fail("stream_error")
    chunks = []
    with pytest.raises(errors.UpstreamUnavailable, match="overloaded_error: Overloaded"):
        chunks.extend(adapter(fake).stream(MODEL, ask("one two three four five")))
    assert chunks  # some text came through before the error


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", times=1, seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(MODEL, ask("x"))


def test_broken_json_is_a_typed_error(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).chat(MODEL, ask("x"))


def test_a_dropped_connection_is_retried_then_typed(fake) -> None:
    fake.fail("drop", times=3)
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake).chat(MODEL, ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(MODEL, ask("one two three four five")))


def test_a_refused_connection(fake) -> None:
    endpoint = Endpoint(base_url="http://127.0.0.1:9", retry=RetryPolicy(attempts=1))
    with pytest.raises(errors.UpstreamConnection):
        AnthropicAdapter(endpoint, http.pool()).chat(MODEL, ask("x"))


def test_base_url_credential_overrides_the_manifest(fake) -> None:
    manifest = Endpoint(base_url="https://api.anthropic.com", credentials={"api_key": "k"})
    assert AnthropicAdapter(manifest, http.pool()).http.base_url == "https://api.anthropic.com"
    for given in (fake.url, f"{fake.url}/", f"{fake.url}/v1", f"{fake.url}/v1/"):
        endpoint = Endpoint(
            base_url="https://api.anthropic.com",
            credentials={"api_key": "fake-key", "base_url": given},
            retry=FAST_RETRY,
        )
        client = AnthropicAdapter(endpoint, http.pool())
        assert client.http.base_url == fake.url
        assert client.chat(MODEL, ask("via proxy")).text == "You said: via proxy"
    # no anthropic_version option: the adapter still sends the header
    assert fake.received[-1].header("anthropic-version") == "2023-06-01"


def test_json_mode_and_string_stops(fake) -> None:
    adapter(fake).chat(MODEL, ask("x", parameters={"response_format": "JSON", "stop": "END"}))
    sent = fake.received[-1].json()
    assert sent["system"].startswith("be brief\n\n")
    assert "JSON" in sent["system"]
    assert sent["stop_sequences"] == ["END"]
    assert "response_format" not in sent
