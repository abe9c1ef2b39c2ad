"""OllamaAdapter against the Ollama fake: chat (JSON and NDJSON streams), tools, images,
embeddings, discovery, validation, and each failure mode ending as a typed error after bounded
retries."""

from __future__ import annotations

import json

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
from providers.runtime.ollama import OllamaAdapter
from tests.fakes.base import Reply, Request, embed_text
from tests.fakes.ollama_server import OllamaFake

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
TOOLS = (Tool("get_weather", "Weather for a city", {"type": "object", "properties": {}}),)


@pytest.fixture(scope="module")
def fake():
    with OllamaFake() as server:
        yield server


def adapter(
    fake, *, key="fake-key", retry=FAST_RETRY, read=5.0, base_url=None, options=None, **creds
) -> OllamaAdapter:
    endpoint = Endpoint(
        base_url="",
        credentials={"base_url": base_url or fake.url, "api_key": key, **creds},
        options=options or {},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return OllamaAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_uses_the_native_api_and_maps_parameters(fake) -> None:
    request = ask(
        "hello world",
        parameters={
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "max_tokens": 50,
            "num_ctx": 8192,
            "keep_alive": "5m",
        },
        stop=("###",),
    )
    result = adapter(fake).chat("llama3.2", request)
    assert result.text == "You said: hello world"
    assert (result.finish_reason, result.model) == ("stop", "llama3.2")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == "/api/chat"
    assert sent.header("authorization") == "Bearer fake-key"
    body = sent.json()
    assert body["stream"] is False
    assert body["keep_alive"] == "5m"
    assert body["options"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "num_predict": 50,
        "num_ctx": 8192,
        "stop": ["###"],
    }
    assert body["messages"][0] == {"role": "system", "content": "be brief"}


def test_num_predict_limit_is_a_length_finish(fake) -> None:
    result = adapter(fake).chat("llama3.2", ask("a b c d", parameters={"max_tokens": 2}))
    assert (result.text, result.finish_reason) == ("You said:", "length")


def test_streaming_ndjson_chunks_add_up(fake) -> None:
    chunks = list(adapter(fake).stream("llama3.2", ask("a b c d")))
    assert len([c for c in chunks if c.text]) > 3
    assert fake.received[-1].json()["stream"] is True
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 6)


def test_tool_calls_complete_and_streamed(fake) -> None:
    request = ask("weather in Paris?", tools=TOOLS)
    result = adapter(fake).chat("llama3.2", request)
    assert result.finish_reason == "tool_calls"
    call = result.tool_calls[0]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"query": "weather in Paris?"}  # object -> JSON text
    sent = fake.received[-1].json()
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    streamed = accumulate(adapter(fake).stream("llama3.2", request))
    assert streamed.tool_calls == result.tool_calls
    assert streamed.finish_reason == "tool_calls"


def test_tool_results_go_back_with_object_arguments(fake) -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    request = ChatRequest(
        messages=(
            Message("user", "weather?"),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", "sunny", tool_call_id="call_1"),
        ),
        tools=TOOLS,
    )
    result = adapter(fake).chat("llama3.2", request)
    assert result.text == "You said: get_weather returned sunny"
    sent = fake.received[-1].json()["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert sent[2] == {
        "role": "tool",
        "content": "sunny",
        "tool_call_id": "call_1",
        "tool_name": "get_weather",
    }


def test_tool_choice_none_sends_no_tools(fake) -> None:
    result = adapter(fake).chat("llama3.2", ask("hi", tools=TOOLS, tool_choice="none"))
    assert result.text == "You said: hi"
    assert "tools" not in fake.received[-1].json()


def test_images_are_sent_as_raw_base64(fake) -> None:
    message = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="data:image/png;base64,iVBORw0KGgo="),
        ),
    )
    result = adapter(fake).chat("llava:7b", ChatRequest(messages=(message,)))
    assert result.text == "You said: what is it [1 image(s)]"
    sent = fake.received[-1].json()["messages"][0]
    assert sent == {"role": "user", "content": "what is it", "images": ["iVBORw0KGgo="]}


def test_image_links_are_refused_before_sending(fake) -> None:
    message = Message("user", (ContentPart("image", image_url="https://x.example/cat.png"),))
    with pytest.raises(errors.InvalidInput):
        adapter(fake).chat("llava:7b", ChatRequest(messages=(message,)))


def test_response_format_becomes_format(fake) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    adapter(fake).chat(
        "llama3.2",
        ask("x", response_format={"type": "json_schema", "json_schema": {"schema": schema}}),
    )
    assert fake.received[-1].json()["format"] == schema
    adapter(fake).chat("llama3.2", ask("x", response_format={"type": "json_object"}))
    assert fake.received[-1].json()["format"] == "json"


def test_completion_mode_uses_generate(fake) -> None:
    result = adapter(fake, mode="completion").chat("llama3.2", ask("tell a joke"))
    assert result.text == "You said: tell a joke"
    sent = fake.received[-1]
    assert sent.path == "/api/generate"
    assert (sent.json()["prompt"], sent.json()["system"]) == ("tell a joke", "be brief")
    streamed = accumulate(adapter(fake, mode="completion").stream("llama3.2", ask("a b")))
    assert streamed.text == "You said: a b"
    assert streamed.usage.completion_tokens == 4


def test_embeddings_are_batched_and_keep_their_order(fake) -> None:
    texts = [f"text {i}" for i in range(7)]
    before = len(fake.received)
    result = adapter(fake, options={"max_chunks": 3}).embed("nomic-embed-text", texts)
    assert len(fake.received) - before == 3  # 3 + 3 + 1
    sent = fake.received[-1]
    assert sent.path == "/api/embed"
    assert sent.json() == {"model": "nomic-embed-text", "input": ["text 6"], "truncate": True}
    assert [list(v) for v in result.vectors] == [embed_text(t, 12) for t in texts]
    assert result.dimensions == 12
    assert (result.usage.prompt_tokens, result.usage.counted) == (14, False)


def test_model_listing_types_models_by_name_and_family(fake) -> None:
    found = {m.model: m for m in adapter(fake).list_models()}
    assert found["llama3.2:latest"].model_type == "llm"
    assert found["llava:7b"].model_type == "llm"
    assert found["nomic-embed-text:latest"].model_type == "text-embedding"
    assert found["bge-m3:567m"].model_type == "text-embedding"  # family "bert"
    assert found["llama3.2:latest"].details["quantization_level"] == "Q4_K_M"


def test_llm_validation_shows_the_model_without_generating(fake) -> None:
    before = len(fake.received)
    result = adapter(fake).validate("llama3.2", "llm")
    assert [r.path for r in fake.received[before:]] == ["/api/show"]
    assert fake.received[-1].json() == {"model": "llama3.2"}
    assert result.details["context_length"] == 131072
    assert result.details["tool_call"] is True
    assert result.details["family"] == "llama"


def test_llm_validation_of_a_model_not_pulled(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound) as caught:
        adapter(fake).validate("mistral", "llm")
    assert "model 'mistral' not found" in caught.value.message
    assert "try pulling it first" in caught.value.message


def test_llm_validation_refuses_an_embedding_only_model(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="does not support chat"):
        adapter(fake).validate("nomic-embed-text", "llm")


def test_embedding_validation_records_dimensions(fake) -> None:
    assert adapter(fake).validate("bge-m3:567m", "text-embedding").details == {"dimensions": 16}
    with pytest.raises(errors.InvalidInput):
        adapter(fake).validate("llama3.2", "rerank")


def test_wrong_key_is_authorization_and_the_key_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key="sk-wrong-key-12345").chat("llama3.2", ask("x"))
    assert "unauthorized" in caught.value.message
    assert "sk-wrong-key-12345" not in caught.value.message


def test_no_key_sends_no_authorization() -> None:
    with OllamaFake(api_key=None) as open_server:
        result = adapter(open_server, key="").chat("llama3.2", ask("hi"))
        assert "authorization" not in open_server.received[-1].headers
    assert result.text == "You said: hi"


def test_unknown_model_is_not_found_with_ollamas_message(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound) as caught:
        adapter(fake).chat("gpt-9", ask("x"))
    assert "model 'gpt-9' not found" in caught.value.message
    with pytest.raises(errors.UpstreamNotFound):
        list(adapter(fake).stream("gpt-9", ask("x")))
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).embed("gpt-9", ["x"])


def test_an_unsupported_capability_is_a_bad_request(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="does not support tools"):
        adapter(fake).chat("llava:7b", ask("x", tools=TOOLS))


def test_an_error_line_mid_stream_is_typed(fake) -> None:
    fake.fail("stream_error")
    stream = adapter(fake).stream("llama3.2", ask("one two three"))
    assert next(stream).text == "You"  # the words before the error line arrive
    with pytest.raises(errors.UpstreamUnavailable, match="unexpected EOF"):
        next(stream)


def test_base_url_forms(fake) -> None:
    assert adapter(fake, base_url=f"{fake.url}/").http.base_url == fake.url
    assert adapter(fake, base_url=f"{fake.url}/api").http.base_url == fake.url
    assert adapter(fake, base_url=f"{fake.url}/v1/").http.base_url == fake.url
    result = adapter(fake, base_url=f"{fake.url}/api/").chat("llama3.2", ask("x"))
    assert result.text == "You said: x"


class TerseOllama(OllamaFake):
    """Leaves out the counts (Ollama omits zero counts) and can cut a stream short without an
    error, as a proxy might."""

    cut = False

    def chat(self, request: Request) -> Reply:
        reply = super().chat(request)
        if reply.stream is not None:
            lines = list(reply.stream)
            reply.stream = iter(lines[:2] if self.cut else lines)
        elif isinstance(reply.body, dict):
            reply.body.pop("prompt_eval_count", None)
            reply.body.pop("eval_count", None)
        return reply


def test_missing_counts_are_counted_and_a_cut_stream_is_an_error() -> None:
    with TerseOllama() as terse:
        result = adapter(terse).chat("llama3.2", ask("hello world"))
        assert result.usage.counted
        assert result.usage.completion_tokens > 0
        terse.cut = True
        with pytest.raises(errors.UpstreamConnection, match="before Ollama said it was done"):
            list(adapter(terse).stream("llama3.2", ask("one two three")))


def test_429_is_retried_after_retry_after_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat("llama3.2", ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_retries_are_bounded(fake) -> None:
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited) as caught:
        adapter(fake).chat("llama3.2", ask("x"))
    assert caught.value.retry_after == 0
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).chat("llama3.2", ask("x"))
    assert len(fake.received) - before == 3


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", times=1, seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat("llama3.2", ask("x"))


def test_broken_json_is_a_typed_error(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).chat("llama3.2", ask("x"))
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        list(adapter(fake).stream("llama3.2", ask("x")))


def test_a_dropped_connection_is_retried_then_typed(fake) -> None:
    fake.fail("drop", times=3)
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake).chat("llama3.2", ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream("llama3.2", ask("one two three four five")))


def test_a_refused_connection() -> None:
    endpoint = Endpoint(
        base_url="", credentials={"base_url": "http://127.0.0.1:9"}, retry=RetryPolicy(attempts=1)
    )
    with pytest.raises(errors.UpstreamConnection):
        OllamaAdapter(endpoint, http.pool()).chat("m", ask("x"))
