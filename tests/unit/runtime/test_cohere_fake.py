"""The Cohere fake is trusted because the official `cohere` client (ClientV2, and the v1 Client
Dify's plugin uses) talks to it successfully and gets its typed errors."""

from __future__ import annotations

import cohere
import pytest
from cohere.errors import (
    BadRequestError,
    InternalServerError,
    NotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
)

from tests.fakes.base import embed_text
from tests.fakes.cohere_server import CohereFake

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "find things",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def fake():
    with CohereFake() as server:
        yield server


@pytest.fixture
def client(fake):
    return cohere.ClientV2(api_key="fake-key", base_url=fake.url, max_retries=0)


@pytest.fixture
def v1(fake):
    return cohere.Client(api_key="fake-key", base_url=fake.url, max_retries=0)


def test_chat_and_usage(client, fake) -> None:
    reply = client.chat(
        model="command-a-03-2025",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there"},
        ],
        temperature=0.2,
        p=0.5,
    )
    assert reply.message.content[0].text == "You said: hello there"
    assert reply.finish_reason == "COMPLETE"
    assert reply.usage.billed_units.input_tokens == 4
    assert reply.usage.billed_units.output_tokens == 4
    sent = fake.received[-1]
    assert sent.path == "/v2/chat"
    assert sent.header("authorization") == "Bearer fake-key"
    assert (sent.json()["temperature"], sent.json()["p"]) == (0.2, 0.5)


def test_limits_and_stop_sequences(client) -> None:
    messages = [{"role": "user", "content": "one two three four"}]
    short = client.chat(model="command-a-03-2025", messages=messages, max_tokens=3)
    assert (short.message.content[0].text, short.finish_reason) == ("You said: one", "MAX_TOKENS")
    stopped = client.chat(model="command-a-03-2025", messages=messages, stop_sequences=[" three"])
    assert stopped.message.content[0].text == "You said: one two"
    assert stopped.finish_reason == "STOP_SEQUENCE"


def test_streaming_typed_events(client) -> None:
    events = list(
        client.chat_stream(
            model="command-a-03-2025", messages=[{"role": "user", "content": "one two three"}]
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message-start", "content-start"]
    assert kinds[-2:] == ["content-end", "message-end"]
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
    assert text == "You said: one two three"
    end = events[-1]
    assert end.delta.finish_reason == "COMPLETE"
    assert end.delta.usage.billed_units.output_tokens == 5


def test_tool_calls_complete_streamed_and_round_trip(client) -> None:
    messages = [{"role": "user", "content": "weather in Paris?"}]
    reply = client.chat(model="command-a-03-2025", messages=messages, tools=TOOLS)
    assert reply.finish_reason == "TOOL_CALL"
    call = reply.message.tool_calls[0]
    assert call.function.name == "search"
    assert call.function.arguments == '{"query": "weather in Paris?"}'
    assert reply.message.tool_plan

    events = list(client.chat_stream(model="command-a-03-2025", messages=messages, tools=TOOLS))
    start = next(e for e in events if e.type == "tool-call-start")
    arguments = "".join(
        e.delta.message.tool_calls.function.arguments
        for e in events
        if e.type in ("tool-call-start", "tool-call-delta")
    )
    assert (start.delta.message.tool_calls.id, arguments) == (call.id, call.function.arguments)
    assert any(e.type == "tool-plan-delta" for e in events)
    assert events[-1].delta.finish_reason == "TOOL_CALL"

    answer = client.chat(
        model="command-a-03-2025",
        messages=[
            *messages,
            {"role": "assistant", "tool_plan": reply.message.tool_plan, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
        tools=TOOLS,
    )
    assert answer.message.content[0].text == "Tool said: sunny, 21C"
    with pytest.raises(BadRequestError):
        client.chat(
            model="command-a-03-2025",
            messages=[*messages, {"role": "tool", "tool_call_id": "nope", "content": "x"}],
        )


def test_vision_input_needs_a_vision_model(client) -> None:
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    reply = client.chat(
        model="command-a-vision-07-2025", messages=[{"role": "user", "content": content}]
    )
    assert reply.message.content[0].text == "You said: what is this [1 image(s)]"
    with pytest.raises(BadRequestError):
        client.chat(model="command-a-03-2025", messages=[{"role": "user", "content": content}])


def test_embed_keeps_order_and_refuses_more_than_96(client) -> None:
    result = client.embed(
        model="embed-english-v3.0",
        texts=["a", "b", "a"],
        input_type="search_document",
        embedding_types=["float"],
    )
    assert result.embeddings.float_ == [embed_text("a"), embed_text("b"), embed_text("a")]
    assert result.meta.billed_units.input_tokens == 3
    with pytest.raises(BadRequestError) as caught:
        client.embed(
            model="embed-english-v3.0",
            texts=["x"] * 97,
            input_type="search_query",
            embedding_types=["float"],
        )
    assert "at most 96" in caught.value.body["message"]


def test_rerank(client) -> None:
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    result = client.rerank(model="rerank-v3.5", query="capital of France", documents=docs, top_n=2)
    assert [r.index for r in result.results] == [1, 2]
    assert result.results[0].relevance_score >= result.results[1].relevance_score
    assert result.meta.billed_units.search_units == 1


def test_models_listing_pages(client, fake) -> None:
    fake.max_page_size = 3
    try:
        first = client.models.list(page_size=3)
        assert len(first.models) == 3
        assert first.next_page_token
        rest = client.models.list(page_size=3, page_token=first.next_page_token)
        assert rest.models[0].name not in {m.name for m in first.models}
    finally:
        fake.max_page_size = 1000
    everything = {m.name: m.endpoints for m in client.models.list(page_size=100).models}
    assert "chat" in everything["command-a-03-2025"]
    assert everything["rerank-v3.5"] == ["rerank"]
    only_embed = client.models.list(endpoint="embed").models
    assert {m.name for m in only_embed} == {"embed-english-v3.0", "embed-multilingual-v3.0"}


def test_typed_errors(client, fake) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.chat(model="nope", messages=[{"role": "user", "content": "x"}])
    assert "model 'nope' not found" in caught.value.body["message"]
    bad = cohere.ClientV2(api_key="wrong", base_url=fake.url, max_retries=0)
    with pytest.raises(UnauthorizedError) as caught:
        bad.chat(model="command-a-03-2025", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body == {"message": "invalid api token"}
    fake.fail("429", retry_after=0)
    with pytest.raises(TooManyRequestsError):
        client.rerank(model="rerank-v3.5", query="q", documents=["a"])
    fake.fail("500")
    with pytest.raises(InternalServerError):
        client.embed(model="embed-english-v3.0", texts=["a"], input_type="search_query")
    fake.fail("401")
    with pytest.raises(UnauthorizedError):
        list(
            client.chat_stream(
                model="command-a-03-2025", messages=[{"role": "user", "content": "x"}]
            )
        )


def test_v1_client_chat_stream_embed_rerank(v1) -> None:
    reply = v1.chat(model="command-r-plus-08-2024", message="hello there", preamble="be brief")
    assert reply.text == "You said: hello there"
    assert reply.meta.billed_units.input_tokens == 4
    events = list(v1.chat_stream(model="command-r-plus-08-2024", message="a b"))
    assert "".join(e.text for e in events if e.event_type == "text-generation") == "You said: a b"
    assert events[-1].event_type == "stream-end"
    assert events[-1].finish_reason == "COMPLETE"
    tool = {"name": "search", "description": "find", "parameter_definitions": {}}
    called = v1.chat(model="command-r-plus-08-2024", message="weather?", tools=[tool])
    assert called.tool_calls[0].parameters == {"query": "weather?"}

    texts = [f"text {i}" for i in range(100)]  # the v1 client batches by 96 itself
    floats = v1.embed(model="embed-english-v3.0", texts=texts, input_type="search_document")
    assert floats.response_type == "embeddings_floats"
    assert floats.embeddings == [embed_text(t) for t in texts]
    ranked = v1.rerank(
        model="rerank-v3.5", query="Paris", documents=["Rome", "Paris"], return_documents=True
    )
    assert (ranked.results[0].index, ranked.results[0].document.text) == (1, "Paris")
    with pytest.raises(NotFoundError):
        v1.chat(model="nope", message="x")
