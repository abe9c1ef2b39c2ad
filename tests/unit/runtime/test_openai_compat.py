"""OpenAICompatAdapter against the OpenAI fake: every model type, streaming, and each failure mode
ending as a typed error after bounded retries."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import (
    ChatRequest,
    ContentPart,
    Endpoint,
    Message,
    Tool,
    accumulate,
)
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.openai_compat import OpenAICompatAdapter
from tests.fakes.base import embed_text, text_in_wav, wav_with_text
from tests.fakes.openai_server import OpenAIFake

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)


@pytest.fixture(scope="module")
def fake():
    with OpenAIFake() as server:
        yield server


def adapter(fake, *, key="fake-key", retry=FAST_RETRY, read=5.0, **options) -> OpenAICompatAdapter:
    endpoint = Endpoint(
        base_url=f"{fake.url}/v1",
        credentials={"api_key": key},
        options=options,
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return OpenAICompatAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_passes_messages_and_parameters_and_reports_usage(fake) -> None:
    result = adapter(fake).chat("gpt-4o-mini", ask("hello world", parameters={"temperature": 0.2}))
    assert result.text == "You said: hello world"
    assert result.usage.prompt_tokens == 4  # "be brief" + "hello world"
    assert not result.usage.counted
    sent = fake.received[-1].json()
    assert sent["temperature"] == 0.2
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert fake.received[-1].header("authorization") == "Bearer fake-key"


def test_streaming_yields_chunks_that_add_up(fake) -> None:
    chunks = list(adapter(fake).stream("gpt-4o-mini", ask("a b c d")))
    assert len([c for c in chunks if c.text]) > 3
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d"
    assert result.usage.completion_tokens == 6


def test_tool_calls_complete_and_streamed(fake) -> None:
    tools = (Tool("search", "find things", {"type": "object", "properties": {}}),)
    request = ask("weather in Paris?", tools=tools)
    result = adapter(fake).chat("gpt-4o-mini", request)
    assert result.finish_reason == "tool_calls"
    assert (result.tool_calls[0].name, result.tool_calls[0].arguments) == (
        "search",
        '{"query": "weather"}',
    )
    streamed = accumulate(adapter(fake).stream("gpt-4o-mini", request))
    assert streamed.tool_calls == result.tool_calls


def test_images_are_sent_as_image_url_parts(fake) -> None:
    message = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="data:image/png;base64,AAAA"),
        ),
    )
    result = adapter(fake).chat("gpt-4o-mini", ChatRequest(messages=(message,)))
    assert result.text == "You said: what is it [1 image(s)]"


def test_embeddings_are_batched_and_keep_their_order(fake) -> None:
    texts = [f"text {i}" for i in range(7)]
    before = len(fake.received)
    result = adapter(fake, max_chunks=3).embed("text-embedding-3-small", texts)
    assert len(fake.received) - before == 3  # 3 + 3 + 1
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    assert result.dimensions == 8
    assert result.usage.prompt_tokens == 14


def test_rerank_orders_by_score_and_keeps_top_n(fake) -> None:
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    result = adapter(fake).rerank("rerank-1", "capital of France", docs, top_n=2)
    assert [h.index for h in result.hits] == [1, 2]
    assert result.hits[0].document == docs[1]
    assert result.hits[0].score >= result.hits[1].score


def test_transcription_and_speech(fake) -> None:
    text = adapter(fake).transcribe("whisper-1", wav_with_text("open the door"), "a.wav")
    assert text.text == "open the door"
    speech = adapter(fake).speak("tts-1", "hello", "nova", "wav")
    assert text_in_wav(speech.audio) == "nova: hello"
    assert (speech.content_type, speech.characters) == ("audio/wav", 5)


def test_model_listing_guesses_types(fake) -> None:
    found = {m.model: m.model_type for m in adapter(fake).list_models()}
    assert found["text-embedding-3-small"] == "text-embedding"
    assert found["whisper-1"] == "speech2text"
    assert found["gpt-4o-mini"] == "llm"


@pytest.mark.parametrize(
    ("model_type", "model", "detail"),
    [
        ("llm", "gpt-4o-mini", "model"),
        ("text-embedding", "text-embedding-3-small", "dimensions"),
        ("rerank", "rerank-1", "documents_ranked"),
        ("speech2text", "whisper-1", None),
        ("tts", "tts-1", "audio_bytes"),
    ],
)
def test_validation_probes_fit_the_type(fake, model_type, model, detail) -> None:
    result = adapter(fake).validate(model, model_type)
    if detail:
        assert detail in result.details
    if model_type == "llm":
        assert fake.received[-1].json()["max_tokens"] == 1


def test_wrong_key_is_authorization_and_the_key_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key="sk-wrong-key-12345").chat("gpt-4o-mini", ask("x"))
    assert "Incorrect API key" in caught.value.message
    assert "sk-wrong-key-12345" not in caught.value.message


def test_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="does not exist"):
        adapter(fake).chat("gpt-9", ask("x"))


def test_429_is_retried_after_retry_after_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat("gpt-4o-mini", ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_retries_are_bounded(fake) -> None:
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited) as caught:
        adapter(fake).chat("gpt-4o-mini", ask("x"))
    assert caught.value.retry_after == 0
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).chat("gpt-4o-mini", ask("x"))
    assert len(fake.received) - before == 3


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", times=1, seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat("gpt-4o-mini", ask("x"))


def test_broken_json_is_a_typed_error(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).chat("gpt-4o-mini", ask("x"))


def test_a_dropped_connection_is_retried_then_typed(fake) -> None:
    fake.fail("drop", times=3)
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake).chat("gpt-4o-mini", ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream("gpt-4o-mini", ask("one two three four five")))


def test_a_refused_connection(fake) -> None:
    endpoint = Endpoint(base_url="http://127.0.0.1:9/v1", retry=RetryPolicy(attempts=1))
    with pytest.raises(errors.UpstreamConnection):
        OpenAICompatAdapter(endpoint, http.pool()).chat("m", ask("x"))


def test_base_url_options(fake) -> None:
    endpoint = Endpoint(
        base_url="https://api.example/v1",
        credentials={"base_url": fake.url, "api_key": "fake-key"},
        options={"append_v1": True},
    )
    assert OpenAICompatAdapter(endpoint, http.pool()).http.base_url == f"{fake.url}/v1"
    international = Endpoint(
        base_url="https://cn.example/v1",
        credentials={"intl": "true"},
        options={
            "international_switch": "intl",
            "international_base_url": "https://intl.example/v1",
        },
    )
    assert (
        OpenAICompatAdapter(international, http.pool()).http.base_url == "https://intl.example/v1"
    )


def test_upstream_error_bodies_are_bounded_and_scrubbed(fake) -> None:
    key = "fake-key"  # the credential the fake accepts; the backend echoes it back
    long_message = f"Bad things with key {key} and sk-another-secret-123456 " + "x" * 5000

    def shout(request):
        return fake.error(400, long_message)

    fake.route("POST", "/v1/shout/chat/completions", shout)
    endpoint = Endpoint(
        base_url=f"{fake.url}/v1/shout", credentials={"api_key": key}, retry=FAST_RETRY
    )
    with pytest.raises(errors.UpstreamBadRequest) as caught:
        OpenAICompatAdapter(endpoint, http.pool()).chat("gpt-4o-mini", ask("x"))
    message = caught.value.message
    assert len(message) <= http.MAX_MESSAGE + 10
    assert key not in message
    assert "sk-another-secret-123456" not in message
    assert "Bad things" in message


class StreamlessFake(OpenAIFake):
    """A backend that ignores `stream` and answers one JSON reply (some proxies do)."""

    def chat(self, request):
        body = {k: v for k, v in request.json().items() if k not in ("stream", "stream_options")}
        return super().chat(replace(request, body=json.dumps(body).encode()))


def test_a_backend_that_ignores_stream_still_gives_its_answer() -> None:
    with StreamlessFake() as streamless:
        chunks = list(adapter(streamless).stream("gpt-4o-mini", ask("hello there")))
        result = accumulate(iter(chunks))
        assert result.text == "You said: hello there"
        assert result.finish_reason == "stop"
        assert result.usage.prompt_tokens == 4  # the reply's usage (the fake counts words)
        assert not result.usage.counted
        assert streamless.received[-1].json()["stream"] is True  # we did ask for a stream


@pytest.mark.parametrize("stream", [False, True])
def test_parameters_cannot_replace_what_the_body_sets_itself(fake, stream) -> None:
    """A second net behind the API's check: parameters never overwrite model or messages, and
    never switch streaming on or off."""
    sneaky = {"model": "gpt-5", "messages": [], "stream": not stream, "n": 9, "temperature": 0.2}
    body = adapter(fake).chat_body("gpt-4o-mini", ask("hi", parameters=sneaky), stream=stream)
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"][1] == {"role": "user", "content": "hi"}
    assert body.get("stream", False) is stream
    assert "n" not in body
    assert body["temperature"] == 0.2
    prompt = adapter(fake).completion_body(
        "davinci-002", ask("hi", parameters=sneaky), stream=False
    )
    assert (prompt["model"], "stream" in prompt, "messages" in prompt) == (
        "davinci-002",
        False,
        False,
    )
