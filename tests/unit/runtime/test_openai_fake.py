"""The OpenAI fake is trusted because the official `openai` client talks to it successfully."""

from __future__ import annotations

import io

import openai
import pytest

from tests.fakes.base import text_in_wav, wav_with_text
from tests.fakes.openai_server import OpenAIFake


@pytest.fixture(scope="module")
def fake():
    with OpenAIFake() as server:
        yield server


@pytest.fixture
def client(fake):
    return openai.OpenAI(api_key="fake-key", base_url=f"{fake.url}/v1", max_retries=0)


def test_chat_and_usage(client) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "You said: hello there"
    assert reply.usage.prompt_tokens == 2


def test_text_completions(client) -> None:
    reply = client.completions.create(model="gpt-4o-mini", prompt="once upon a time")
    assert reply.choices[0].text == "You said: once upon a time"
    assert reply.usage.prompt_tokens == 4
    pieces = list(
        client.completions.create(
            model="gpt-4o-mini",
            prompt="once upon",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in pieces if c.choices) == "You said: once upon"
    assert pieces[-1].usage.completion_tokens == 4


def test_streaming_with_usage(client) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three"
    assert chunks[-1].usage.completion_tokens == 5


def test_tool_calls_stream_and_complete(client) -> None:
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=tools
    )
    call = reply.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("search", '{"query": "weather"}')


def test_vision_input_is_accepted(client) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "You said: what is this [1 image(s)]"


def test_embeddings_keep_order(client) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "a"])
    vectors = [row.embedding for row in result.data]
    assert vectors[0] == vectors[2] != vectors[1]


def test_audio_round_trip(client) -> None:
    speech = client.audio.speech.create(model="tts-1", voice="nova", input="good morning")
    assert text_in_wav(speech.content) == "nova: good morning"
    wav = wav_with_text("turn on the lights")
    text = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", io.BytesIO(wav)))
    assert text.text == "turn on the lights"


def test_models_and_errors(client, fake) -> None:
    assert "gpt-4o-mini" in {m.id for m in client.models.list()}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    bad = openai.OpenAI(api_key="wrong", base_url=f"{fake.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    fake.fail("429", retry_after=0)
    with pytest.raises(openai.RateLimitError):
        client.models.list()
    fake.fail("500")
    with pytest.raises(openai.InternalServerError):
        client.models.list()
