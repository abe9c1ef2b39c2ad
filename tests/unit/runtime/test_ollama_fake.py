"""The Ollama fake is trusted because the official `ollama` client talks to it successfully."""

from __future__ import annotations

import ollama
import pytest

from tests.fakes.base import embed_text
from tests.fakes.ollama_server import OllamaFake

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.fixture(scope="module")
def fake():
    with OllamaFake() as server:
        yield server


@pytest.fixture
def client(fake):
    return ollama.Client(host=fake.url, headers={"Authorization": "Bearer fake-key"}, timeout=5)


def test_chat_and_counts(client, fake) -> None:
    reply = client.chat(
        model="llama3.2",
        messages=[{"role": "user", "content": "hello there"}],
        options={"temperature": 0.1, "num_predict": 50},
    )
    assert reply.message.content == "You said: hello there"
    assert reply.done
    assert reply.done_reason == "stop"
    assert (reply.prompt_eval_count, reply.eval_count) == (2, 4)
    assert fake.received[-1].json()["options"] == {"temperature": 0.1, "num_predict": 50}


def test_num_predict_cuts_the_answer(client) -> None:
    reply = client.chat(
        model="llama3.2:latest",
        messages=[{"role": "user", "content": "a b c d"}],
        options={"num_predict": 2},
    )
    assert (reply.message.content, reply.done_reason) == ("You said:", "length")


def test_streaming_ndjson(client, fake) -> None:
    parts = list(
        client.chat(
            model="llama3.2", messages=[{"role": "user", "content": "one two three"}], stream=True
        )
    )
    assert "".join(p.message.content for p in parts) == "You said: one two three"
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].eval_count == 5


def test_tool_calls_arrive_as_objects(client) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    reply = client.chat(
        model="llama3.2", messages=[{"role": "user", "content": "weather in Paris?"}], tools=tools
    )
    call = reply.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert dict(call.function.arguments) == {"query": "weather in Paris?"}
    streamed = [
        c
        for part in client.chat(
            model="llama3.2",
            messages=[{"role": "user", "content": "weather?"}],
            tools=tools,
            stream=True,
        )
        for c in part.message.tool_calls or ()
    ]
    assert [c.function.name for c in streamed] == ["get_weather"]
    follow_up = client.chat(
        model="llama3.2",
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        ],
        tools=tools,
    )
    assert follow_up.message.content == "You said: get_weather returned sunny"


def test_images_go_as_base64(client, fake) -> None:
    reply = client.chat(
        model="llava:7b",
        messages=[{"role": "user", "content": "what is this", "images": [PNG]}],
    )
    assert reply.message.content == "You said: what is this [1 image(s)]"
    assert fake.received[-1].json()["messages"][0]["images"] == ["iVBORw0KGgoAAAANSUhEUg=="]


def test_generate(client) -> None:
    assert client.generate(model="llama3.2", prompt="hi there").response == "You said: hi there"


def test_embed_list_show(client) -> None:
    result = client.embed(model="nomic-embed-text", input=["a", "b", "a"], truncate=True)
    assert [list(v) for v in result.embeddings] == [embed_text(t, 12) for t in "aba"]
    assert result.prompt_eval_count == 3
    names = {m.model for m in client.list().models}
    assert {"llama3.2:latest", "nomic-embed-text:latest"} <= names
    shown = client.show("llama3.2")
    assert shown.modelinfo["llama.context_length"] == 131072
    assert "tools" in shown.capabilities
    assert shown.details.family == "llama"


def test_errors_carry_status_and_message(client, fake) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'nope' not found"
    with pytest.raises(ollama.ResponseError) as caught:
        client.show("nope")
    assert caught.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(
            model="llava:7b",
            messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    assert caught.value.status_code == 400
    assert "does not support tools" in caught.value.error
    with (
        ollama.Client(host=fake.url, headers={"Authorization": "Bearer wrong"}) as bad,
        pytest.raises(ollama.ResponseError) as caught,
    ):
        bad.list()
    assert (caught.value.status_code, caught.value.error) == (401, "unauthorized")
    fake.fail("429", retry_after=0)
    with pytest.raises(ollama.ResponseError) as caught:
        client.list()
    assert caught.value.status_code == 429
    fake.fail("500")
    with pytest.raises(ollama.ResponseError) as caught:
        client.list()
    assert caught.value.status_code == 500


def test_an_error_line_mid_stream(client, fake) -> None:
    fake.fail("stream_error")
    with pytest.raises(ollama.ResponseError, match="unexpected EOF"):
        list(
            client.chat(
                model="llama3.2",
                messages=[{"role": "user", "content": "one two three"}],
                stream=True,
            )
        )


def test_an_open_server_needs_no_key() -> None:
    with OllamaFake(api_key=None) as open_server, ollama.Client(host=open_server.url) as client:
        reply = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
        assert "authorization" not in open_server.received[-1].headers
    assert reply.message.content == "You said: hi"
