"""CohereAdapter against the Cohere fake: chat, streaming, tools, vision, embeddings, rerank,
listing, validation probes, and each failure mode ending as a typed error after bounded retries."""

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
from providers.runtime.cohere import CohereAdapter
from providers.runtime.http import RetryPolicy, Timeouts
from tests.fakes.base import Reply, embed_text
from tests.fakes.cohere_server import CohereFake

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLM = "command-a-03-2025"


@pytest.fixture(scope="module")
def fake():
    with CohereFake() as server:
        yield server


def adapter(
    fake, *, key="fake-key", retry=FAST_RETRY, read=5.0, base_url=None, **options
) -> CohereAdapter:
    credentials = {"api_key": key}
    if base_url:
        credentials["base_url"] = base_url
    endpoint = Endpoint(
        base_url=fake.url,
        credentials=credentials,
        options=options,
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return CohereAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_passes_messages_and_parameters_and_reports_billed_usage(fake) -> None:
    request = ask(
        "hello world",
        parameters={"temperature": 0.2, "top_p": 0.5, "top_k": 40, "max_tokens": 50},
    )
    result = adapter(fake).chat(LLM, request)
    assert result.text == "You said: hello world"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == "/v2/chat"
    assert sent.header("authorization") == "Bearer fake-key"
    body = sent.json()
    assert (body["temperature"], body["p"], body["k"], body["max_tokens"]) == (0.2, 0.5, 40, 50)
    assert "top_p" not in body
    assert body["stream"] is False
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello world"},
    ]


def test_finish_reasons_map_to_the_common_names(fake) -> None:
    short = adapter(fake).chat(LLM, ask("one two three", parameters={"max_tokens": 2}))
    assert (short.text, short.finish_reason) == ("You said:", "length")
    stopped = adapter(fake).chat(LLM, ask("one two three", stop=(" two",)))
    assert (stopped.text, stopped.finish_reason) == ("You said: one", "stop")
    assert fake.received[-1].json()["stop_sequences"] == [" two"]


def test_streaming_yields_chunks_that_add_up(fake) -> None:
    chunks = list(adapter(fake).stream(LLM, ask("a b c d")))
    assert len([c for c in chunks if c.text]) > 3
    assert fake.received[-1].json()["stream"] is True
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
    assert result.text == ""  # the tool plan is not the answer
    assert [c.name for c in result.tool_calls] == ["search", "lookup"]
    assert json.loads(result.tool_calls[0].arguments) == {"query": "weather in Paris?"}
    sent = fake.received[-1].json()["tools"]
    assert sent[1]["function"]["parameters"] == {"type": "object", "properties": {}}
    streamed = accumulate(adapter(fake).stream(LLM, request))
    assert streamed.tool_calls == result.tool_calls
    assert streamed.finish_reason == "tool_calls"


def test_tool_results_round_trip(fake) -> None:
    call = ToolCall("search_1", "search", '{"query": "weather"}')
    request = ChatRequest(
        messages=(
            Message("user", "weather?"),
            Message("assistant", "I will search.", tool_calls=(call,)),
            Message("tool", "sunny, 21C", tool_call_id="search_1"),
        ),
        tools=(Tool("search"),),
    )
    result = adapter(fake).chat(LLM, request)
    assert result.text == "Tool said: sunny, 21C"
    assistant, tool = fake.received[-1].json()["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "search_1",
                "type": "function",
                "function": {"name": "search", "arguments": '{"query": "weather"}'},
            }
        ],
        "tool_plan": "I will search.",
    }
    assert tool == {"role": "tool", "tool_call_id": "search_1", "content": "sunny, 21C"}


def test_tool_choice(fake) -> None:
    tools = (Tool("search"), Tool("lookup"))
    plain = adapter(fake).chat(LLM, ask("hi", tools=tools, tool_choice="none"))
    assert plain.text == "You said: hi"
    assert not plain.tool_calls
    assert fake.received[-1].json()["tool_choice"] == "NONE"
    named = adapter(fake).chat(LLM, ask("hi", tools=tools, tool_choice="lookup"))
    assert [c.name for c in named.tool_calls] == ["lookup"]
    assert fake.received[-1].json()["tool_choice"] == "REQUIRED"
    adapter(fake).chat(LLM, ask("hi", tools=tools, tool_choice="auto"))
    assert "tool_choice" not in fake.received[-1].json()


def test_images_are_sent_as_image_url_parts(fake) -> None:
    message = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="data:image/png;base64,AAAA"),
        ),
    )
    result = adapter(fake).chat("command-a-vision-07-2025", ChatRequest(messages=(message,)))
    assert result.text == "You said: what is it [1 image(s)]"
    parts = fake.received[-1].json()["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with pytest.raises(errors.UpstreamBadRequest, match="image"):
        adapter(fake).chat(LLM, ChatRequest(messages=(message,)))


def test_response_format_becomes_json_object(fake) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    adapter(fake).chat(
        LLM, ask("x", response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    )
    assert fake.received[-1].json()["response_format"] == {
        "type": "json_object",
        "json_schema": schema,
    }


def test_embeddings_are_batched_by_96_and_keep_their_order(fake) -> None:
    texts = [f"text {i}" for i in range(200)]
    before = len(fake.received)
    result = adapter(fake).embed("embed-english-v3.0", texts)
    sent = [r.json() for r in fake.received[before:]]
    assert [len(b["texts"]) for b in sent] == [96, 96, 8]
    assert {b["input_type"] for b in sent} == {"search_document"}
    assert sent[0]["embedding_types"] == ["float"]
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    assert result.dimensions == 8
    assert (result.usage.prompt_tokens, result.usage.counted) == (400, False)


def test_embedding_batch_option_and_query_input_type(fake) -> None:
    before = len(fake.received)
    adapter(fake, max_chunks=2).embed("embed-english-v3.0", ["a", "b", "c"])
    assert len(fake.received) - before == 2
    adapter(fake, input_type="search_query").embed("embed-english-v3.0", ["a"])
    assert fake.received[-1].json()["input_type"] == "search_query"
    adapter(fake).embed("embed-english-v3.0", ["a"], input_type="query")
    assert fake.received[-1].json()["input_type"] == "search_query"
    assert adapter(fake).embed("embed-english-v3.0", []).vectors == ()


def test_rerank_orders_by_score_keeps_top_n_and_counts_usage(fake) -> None:
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    result = adapter(fake).rerank("rerank-v3.5", "capital of France", docs, top_n=2)
    assert [h.index for h in result.hits] == [1, 2]
    assert result.hits[0].document == docs[1]
    assert result.hits[0].score >= result.hits[1].score
    assert fake.received[-1].json() == {
        "model": "rerank-v3.5",
        "query": "capital of France",
        "documents": docs,
        "top_n": 2,
    }
    assert result.usage.counted  # Cohere bills search units, not tokens


def test_model_listing_follows_pages_and_maps_endpoints(fake) -> None:
    fake.max_page_size = 3
    before = len(fake.received)
    try:
        found = adapter(fake).list_models()
    finally:
        fake.max_page_size = 1000
    assert len(fake.received) - before == 3  # 8 models, 3 a page
    types = {(m.model, m.model_type) for m in found}
    assert ("command-a-03-2025", "llm") in types
    assert ("embed-english-v3.0", "text-embedding") in types
    assert ("rerank-v3.5", "rerank") in types
    assert len(found) == 8  # embed models also list "classify", which maps to nothing


def test_models_with_no_known_endpoint_are_left_out() -> None:
    with CohereFake(models={"classifier": "classify", "command-x": "llm"}) as other:
        found = adapter(other).list_models()
    assert [(m.model, m.model_type) for m in found] == [("command-x", "llm")]


@pytest.mark.parametrize(
    ("model_type", "model", "detail"),
    [
        ("llm", LLM, "model"),
        ("text-embedding", "embed-english-v3.0", "dimensions"),
        ("rerank", "rerank-v3.5", "documents_ranked"),
    ],
)
def test_validation_probes_fit_the_type(fake, model_type, model, detail) -> None:
    result = adapter(fake).validate(model, model_type)
    assert detail in result.details
    sent = fake.received[-1].json()
    if model_type == "llm":
        assert sent["max_tokens"] == 1
    if model_type == "text-embedding":
        assert result.details["dimensions"] == 8
        assert len(sent["texts"]) == 1
    if model_type == "rerank":
        assert len(sent["documents"]) == 2
        assert result.details["documents_ranked"] == 2


def test_validation_of_other_types_is_unsupported(fake) -> None:
    with pytest.raises(errors.InvalidInput):
        adapter(fake).validate("x", "tts")


def test_a_model_of_the_wrong_type_is_a_bad_request(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="not supported"):
        adapter(fake).validate("rerank-v3.5", "llm")


def test_wrong_key_is_authorization_and_the_key_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key="sk-wrong-key-12345").chat(LLM, ask("x"))
    assert "invalid api token" in caught.value.message
    assert "sk-wrong-key-12345" not in caught.value.message
    with pytest.raises(errors.UpstreamAuth, match="no api key supplied"):
        adapter(fake, key="").embed("embed-english-v3.0", ["a"])


def test_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="not found"):
        adapter(fake).chat("command-z", ask("x"))
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).rerank("rerank-z", "q", ["a", "b"])


def test_429_is_retried_after_retry_after_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_retries_are_bounded(fake) -> None:
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited) as caught:
        adapter(fake).chat(LLM, ask("x"))
    assert caught.value.retry_after == 0
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).embed("embed-english-v3.0", ["a"])
    assert len(fake.received) - before == 3


def test_cohere_specific_statuses() -> None:
    replies = {
        "/v2/chat": Reply(499, {"message": "request cancelled"}),
        "/v2/embed": Reply(498, {"message": "blocked output"}),
        "/v2/rerank": Reply(
            429,
            {"message": "You are using a Trial key, which is limited to 1000 API calls / month."},
        ),
    }
    with CohereFake() as other:
        for path, reply in replies.items():
            other.route("POST", path, lambda request, reply=reply: reply)
        other._routes.reverse()  # ours first
        before = len(other.received)
        with pytest.raises(errors.UpstreamUnavailable, match="499"):
            adapter(other).chat(LLM, ask("x"))
        assert len(other.received) - before == 3  # retried like a 5xx
        with pytest.raises(errors.UpstreamBadRequest, match="498"):
            adapter(other).embed("embed-english-v3.0", ["a"])
        before = len(other.received)
        with pytest.raises(errors.UpstreamQuota):
            adapter(other).rerank("rerank-v3.5", "q", ["a"])
        assert len(other.received) - before == 1  # a quota is not retried


def test_an_error_finish_in_the_stream_is_typed() -> None:
    frames = (
        b'event: message-start\ndata: {"type": "message-start", "id": "m"}\n\n'
        b'event: message-end\ndata: {"type": "message-end", "delta": '
        b'{"finish_reason": "ERROR", "error": "model overloaded"}}\n\n'
    )
    with CohereFake() as other:
        other.route(
            "POST", "/v2/chat", lambda r: Reply(body=frames, content_type="text/event-stream")
        )
        other._routes.reverse()
        with pytest.raises(errors.UpstreamUnavailable, match="model overloaded"):
            list(adapter(other).stream(LLM, ask("x")))


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", times=1, seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(LLM, ask("x"))


def test_broken_json_is_a_typed_error(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).chat(LLM, ask("x"))


def test_a_dropped_connection_is_retried_then_typed(fake) -> None:
    fake.fail("drop", times=3)
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake).chat(LLM, ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ask("one two three four five")))


def test_a_refused_connection() -> None:
    endpoint = Endpoint(base_url="http://127.0.0.1:9", retry=RetryPolicy(attempts=1))
    with pytest.raises(errors.UpstreamConnection):
        CohereAdapter(endpoint, http.pool()).chat(LLM, ask("x"))


def test_base_url_credential_overrides_and_loses_its_version(fake) -> None:
    assert adapter(fake).http.base_url == fake.url
    moved = adapter(fake, base_url=f"{fake.url}/v1/")
    assert moved.http.base_url == fake.url
    assert moved.chat(LLM, ask("x")).text == "You said: x"
    manifest = Endpoint(base_url="https://api.cohere.com", credentials={"api_key": "k"})
    assert CohereAdapter(manifest, http.pool()).http.base_url == "https://api.cohere.com"
