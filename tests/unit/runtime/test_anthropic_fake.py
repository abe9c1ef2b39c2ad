"""The Anthropic fake is trusted because the official `anthropic` client talks to it well."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.fakes.anthropic_server import AnthropicFake

MODEL = "claude-sonnet-4-6"
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def fake():
    with AnthropicFake() as server:
        yield server


@pytest.fixture
def client(fake):
    return anthropic.Anthropic(api_key="fake-key", base_url=fake.url, max_retries=0)


def test_messages_create_text_system_and_usage(client, fake) -> None:
    reply = client.messages.create(
        model=MODEL,
        max_tokens=64,
        system="be brief",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "You said: hello there"
    assert reply.stop_reason == "end_turn"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (4, 4)
    sent = fake.received[-1]
    assert sent.path == "/v1/messages"
    # the 2.x client sends the key as a Bearer token (the API takes it there or in x-api-key)
    assert sent.header("authorization") == "Bearer fake-key"
    assert sent.header("anthropic-version")


def test_max_tokens_and_stop_sequences(client) -> None:
    reply = client.messages.create(
        model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "one two three"}]
    )
    assert (reply.content[0].text, reply.stop_reason) == ("You said:", "max_tokens")
    reply = client.messages.create(
        model=MODEL,
        max_tokens=64,
        stop_sequences=["two"],
        messages=[{"role": "user", "content": "one two three"}],
    )
    assert (reply.stop_reason, reply.stop_sequence) == ("stop_sequence", "two")
    assert reply.content[0].text == "You said: one "


def test_image_input_is_accepted(client) -> None:
    reply = client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0="},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                    {"type": "text", "text": "what is this"},
                ],
            }
        ],
    )
    assert reply.content[0].text == "You said: what is this [2 image(s)]"


def test_tool_use_round_trip(client) -> None:
    question = {"role": "user", "content": "weather in Paris?"}
    reply = client.messages.create(model=MODEL, max_tokens=64, tools=[WEATHER], messages=[question])
    assert reply.stop_reason == "tool_use"
    call = reply.content[0]
    assert (call.type, call.name, call.input) == (
        "tool_use",
        "get_weather",
        {"query": question["content"]},
    )
    answer = client.messages.create(
        model=MODEL,
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            question,
            {"role": "assistant", "content": [c.model_dump() for c in reply.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
    )
    assert (answer.content[0].text, answer.stop_reason) == ("You said: sunny", "end_turn")


def test_a_tool_result_without_its_tool_use_is_refused(client) -> None:
    with pytest.raises(anthropic.BadRequestError, match="tool_use_id"):
        client.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "x"}],
                }
            ],
        )


def test_messages_stream_helper_text(client) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "a b c d"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3
    assert "".join(pieces) == "You said: a b c d"
    assert final.content[0].text == "You said: a b c d"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 6)


def test_messages_stream_helper_tool_use(client) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=64,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "rain in Oslo?"}],
    ) as stream:
        final = stream.get_final_message()
    call = final.content[0]
    assert (call.type, call.name, call.input) == (
        "tool_use",
        "get_weather",
        {"query": "rain in Oslo?"},
    )
    assert final.stop_reason == "tool_use"


def test_create_stream_true_events(client) -> None:
    events = list(
        client.messages.create(
            model=MODEL,
            max_tokens=64,
            stream=True,
            messages=[{"role": "user", "content": "hi"}],
        )
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == "You said: hi"
    assert events[-2].delta.stop_reason == "end_turn"


def test_thinking_blocks_are_streamed(client) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "think"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].signature


def test_a_mid_stream_error_frame_raises(client, fake) -> None:
    fake.fail("stream_error")
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        client.messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "a b c"}]
        ) as stream,
    ):
        list(stream.text_stream)


def test_models_list_and_retrieve(client) -> None:
    models = list(client.models.list(limit=2))  # auto-paginates with after_id
    assert [m.id for m in models][:1] == ["claude-sonnet-4-6"]
    assert len(models) == 3
    assert client.models.retrieve("claude-haiku-4-5-20251001").display_name == "Claude Haiku 4.5"


def test_typed_errors(client, fake) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="claude-nope", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    bad = anthropic.Anthropic(api_key="wrong", base_url=fake.url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.models.list()
    assert caught.value.body["error"]["type"] == "authentication_error"
    fake.fail("429", retry_after=0)
    with pytest.raises(anthropic.RateLimitError):
        client.models.list()
    fake.fail("500")
    with pytest.raises(anthropic.InternalServerError):
        client.models.list()
    fake.fail("529")
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.models.list()
    assert overloaded.value.status_code == 529
    fake.fail("403")
    with pytest.raises(anthropic.PermissionDeniedError):
        client.models.list()
    with pytest.raises(anthropic.BadRequestError, match="role"):
        client.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "system", "content": "x"}]
        )


def test_the_client_retries_a_529(fake) -> None:
    fake.fail("529", times=1)
    client = anthropic.Anthropic(api_key="fake-key", base_url=fake.url, max_retries=1)
    before = len(fake.received)
    client = client.with_options(timeout=5)
    assert client.models.list().data
    assert len(fake.received) - before == 2


def test_create_stream_true_tool_use(client) -> None:
    events = list(
        client.messages.create(
            model=MODEL,
            max_tokens=64,
            stream=True,
            tools=[WEATHER],
            messages=[{"role": "user", "content": "snow?"}],
        )
    )
    start = next(e for e in events if e.type == "content_block_start")
    assert (start.content_block.type, start.content_block.name) == ("tool_use", "get_weather")
    partial = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    assert json.loads(partial) == {"query": "snow?"}
    assert events[-2].delta.stop_reason == "tool_use"


def test_count_tokens(client) -> None:
    counted = client.messages.count_tokens(
        model=MODEL, system="be brief", messages=[{"role": "user", "content": "one two three"}]
    )
    assert counted.input_tokens == 5


def test_the_clients_api_version_has_no_sampling_parameters(client, fake) -> None:
    # anthropic 2.x sends 2026-10-21, which removed temperature; 2023-06-01 still takes it
    ask = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(anthropic.BadRequestError, match="temperature: Extra inputs"):
        client.messages.create(**ask, extra_body={"temperature": 0.2})
    assert fake.received[-1].header("anthropic-version") == "2026-10-21"
    older = client.with_options(default_headers={"anthropic-version": "2023-06-01"})
    assert older.messages.create(**ask, extra_body={"temperature": 0.2}).content
    with pytest.raises(anthropic.BadRequestError, match="is not a valid version"):
        client.with_options(default_headers={"anthropic-version": "2024-10-22"}).messages.create(
            **ask
        )
