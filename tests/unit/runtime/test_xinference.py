"""XinferenceAdapter against the Xinference fake: Dify-style validation from the model registry,
every model type through the OpenAI-compatible routes, and each failure mode as a typed error."""

from __future__ import annotations

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
from providers.runtime.xinference import XinferenceAdapter, our_type
from tests.fakes.base import text_in_wav, wav_with_text
from tests.fakes.xinference_server import XinferenceFake, vector

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
KEY = "xinf-key"
MODELS = {
    "qwen2.5-instruct": {
        "model_type": "LLM",
        "model_ability": ["chat", "tools"],
        "context_length": 32768,
    },
    "qwen-vl": {"model_type": "LLM", "model_ability": ["chat", "vision"]},
    "llama-2": {"model_type": "LLM", "model_ability": ["generate"], "context_length": 4096},
    "odd-llm": {"model_type": "LLM", "model_ability": ["embed"]},
    "bge-m3": {"model_type": "embedding", "dimensions": 16, "max_tokens": 8192},
    "bge-reranker": {"model_type": "rerank"},
    "whisper-small": {
        "model_type": "audio",
        "model_family": "whisper",
        "model_ability": ["audio2text"],
    },
    "ChatTTS": {"model_type": "audio", "model_family": "ChatTTS", "model_ability": ["text2audio"]},
    "CosyVoice-300M-SFT": {
        "model_type": "audio",
        "model_family": "CosyVoice",
        "model_ability": ["text2audio"],
    },
    "sd-turbo": {"model_type": "image", "model_family": "stable_diffusion"},
}


@pytest.fixture(scope="module")
def fake():
    with XinferenceFake(api_key=KEY, models=MODELS) as server:
        yield server


def adapter(
    fake, uid=None, *, key=KEY, retry=FAST_RETRY, read=5.0, base=None, **options
) -> XinferenceAdapter:
    credentials = {"base_url": base or fake.url, "api_key": key}
    if uid is not None:
        credentials["model_uid"] = uid
    endpoint = Endpoint(
        base_url="",
        credentials={k: v for k, v in credentials.items() if v is not None},
        options=options,
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
        secret_names=frozenset({"api_key"}),  # as the manifest marks it
    )
    return XinferenceAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


# --- set-up ---------------------------------------------------------------------------------------


def test_it_reuses_the_openai_compatible_adapter(fake) -> None:
    assert issubclass(XinferenceAdapter, OpenAICompatAdapter)
    assert adapter(fake).http.base_url == f"{fake.url}/v1"
    assert adapter(fake, base=f"{fake.url}/v1/").http.base_url == f"{fake.url}/v1"
    with pytest.raises(errors.InvalidInput):
        XinferenceAdapter(Endpoint(base_url=""), http.pool())


def test_the_model_uid_addresses_the_backend_and_the_key_is_bearer(fake) -> None:
    result = adapter(fake, "qwen2.5-instruct").chat("my-chat-model", ask("hello world"))
    assert result.text == "You said: hello world"
    sent = fake.received[-1]
    assert sent.json()["model"] == "qwen2.5-instruct"
    assert sent.header("authorization") == f"Bearer {KEY}"
    assert adapter(fake).chat("qwen2.5-instruct", ask("x")).text == "You said: x"  # no uid


def test_no_key_sends_no_authorization_and_auth_off_works() -> None:
    with XinferenceFake(api_key=None) as open_server:
        endpoint = Endpoint(base_url="", credentials={"base_url": open_server.url})
        found = XinferenceAdapter(endpoint, http.pool()).validate("qwen2.5-instruct", "llm")
        assert found.details["completion_type"] == "chat"
        assert open_server.received[-1].header("authorization") == ""


# --- inference ------------------------------------------------------------------------------------


def test_chat_passes_parameters_and_reports_usage(fake) -> None:
    request = ask("hello world", parameters={"temperature": 0.2, "max_tokens": 50})
    result = adapter(fake, "qwen2.5-instruct").chat("m", request)
    assert result.usage.prompt_tokens == 4  # "be brief" + "hello world"
    assert not result.usage.counted
    sent = fake.received[-1].json()
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 50)
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


def test_streaming_yields_chunks_that_add_up(fake) -> None:
    chunks = list(adapter(fake, "qwen2.5-instruct").stream("m", ask("a b c d")))
    assert len([c for c in chunks if c.text]) > 3
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d"
    assert result.usage.completion_tokens == 6
    assert fake.received[-1].json()["stream"] is True


def test_tool_calls_complete_and_streamed(fake) -> None:
    tools = (Tool("search", "find things", {"type": "object", "properties": {}}),)
    request = ask("weather in Paris?", tools=tools)
    result = adapter(fake, "qwen2.5-instruct").chat("m", request)
    assert result.finish_reason == "tool_calls"
    assert (result.tool_calls[0].name, result.tool_calls[0].arguments) == (
        "search",
        '{"query": "weather"}',
    )
    streamed = accumulate(adapter(fake, "qwen2.5-instruct").stream("m", request))
    assert streamed.tool_calls == result.tool_calls


def test_tools_on_a_model_without_them_is_a_bad_request(fake) -> None:
    tools = (Tool("search"),)
    with pytest.raises(errors.UpstreamBadRequest, match="support tool calls"):
        adapter(fake, "qwen-vl").chat("m", ask("x", tools=tools))


def test_images_are_sent_as_image_url_parts(fake) -> None:
    message = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="data:image/png;base64,AAAA"),
        ),
    )
    result = adapter(fake, "qwen-vl").chat("m", ChatRequest(messages=(message,)))
    assert result.text == "You said: what is it [1 image(s)]"
    part = fake.received[-1].json()["messages"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def test_embeddings_are_batched_keep_order_and_report_usage(fake) -> None:
    texts = [f"text {i}" for i in range(5)]
    before = len(fake.received)
    result = adapter(fake, "bge-m3", max_chunks=2).embed("m", texts)
    assert len(fake.received) - before == 3
    assert [list(v) for v in result.vectors] == [vector(t, 16) for t in texts]
    assert result.dimensions == 16
    assert result.usage.prompt_tokens == 10


def test_rerank_orders_by_score_and_keeps_top_n(fake) -> None:
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    result = adapter(fake, "bge-reranker").rerank("m", "capital of France", docs, top_n=2)
    assert [h.index for h in result.hits] == [1, 2]
    assert result.hits[0].document == docs[1]
    assert result.hits[0].score >= result.hits[1].score
    assert not result.usage.counted
    sent = fake.received[-1].json()
    assert (sent["model"], sent["top_n"], sent["documents"]) == ("bge-reranker", 2, docs)


def test_transcription_and_speech(fake) -> None:
    heard = adapter(fake, "whisper-small").transcribe("m", wav_with_text("open the door"), "a.wav")
    assert heard.text == "open the door"
    speech = adapter(fake, "ChatTTS").speak("m", "hello", "nova", "wav")
    assert text_in_wav(speech.audio) == "nova: hello"
    assert (speech.content_type, speech.characters) == ("audio/wav", 5)
    assert adapter(fake, "ChatTTS").speak("m", "hi", "", "mp3").content_type == "audio/mpeg"


def test_a_call_of_the_wrong_type_is_a_bad_request_not_retried(fake) -> None:
    before = len(fake.received)
    with pytest.raises(errors.UpstreamBadRequest, match="is not for creating embedding"):
        adapter(fake, "qwen2.5-instruct").embed("m", ["x"])
    assert len(fake.received) - before == 1  # a 500, but not one that retrying would fix
    with pytest.raises(errors.UpstreamBadRequest, match="is not for chat"):
        adapter(fake, "bge-m3").chat("m", ask("x"))
    with pytest.raises(errors.UpstreamBadRequest, match="is not for chat"):
        list(adapter(fake, "bge-m3").stream("m", ask("x")))  # the error event of a 200 stream


# --- validation -----------------------------------------------------------------------------------


def test_validation_of_an_llm_keeps_what_the_server_reports(fake) -> None:
    before = len(fake.received)
    found = adapter(fake, "qwen2.5-instruct").validate("my-qwen", "llm")
    assert len(fake.received) - before == 1  # one describe, no inference
    assert fake.received[-1].path == "/v1/models/qwen2.5-instruct"
    assert fake.received[-1].header("authorization") == f"Bearer {KEY}"
    details = found.details
    assert details["model_type"] == "LLM"
    assert details["model_ability"] == details["abilities"] == ["chat", "tools"]
    assert details["context_length"] == 32768
    assert details["completion_type"] == "chat"
    assert (details["model_name"], details["model_family"]) == (
        "qwen2.5-instruct",
        "qwen2.5-instruct",
    )
    generate = adapter(fake, "llama-2").validate("m", "llm").details
    assert (generate["completion_type"], generate["context_length"]) == ("completion", 4096)
    assert "vision" in adapter(fake, "qwen-vl").validate("m", "llm").details["abilities"]


@pytest.mark.parametrize(
    ("uid", "model_type", "expected"),
    [
        ("bge-m3", "text-embedding", {"dimensions": 16, "max_tokens": 8192}),
        ("bge-reranker", "rerank", {"model_type": "rerank"}),
        ("whisper-small", "speech2text", {"model_family": "whisper"}),
        ("ChatTTS", "tts", {"model_ability": ["text2audio"]}),
    ],
)
def test_validation_of_other_types(fake, uid, model_type, expected) -> None:
    details = adapter(fake, uid).validate("m", model_type).details
    assert details.items() >= expected.items()
    assert fake.received[-1].method == "GET"


def test_embedding_dimensions_are_probed_when_the_server_does_not_report_them() -> None:
    with XinferenceFake(api_key=None, models={"e5": {"model_type": "embedding"}}) as server:
        server.models["e5"]["dimensions"] = None
        endpoint = Endpoint(base_url="", credentials={"base_url": server.url, "model_uid": "e5"})
        details = XinferenceAdapter(endpoint, http.pool()).validate("m", "text-embedding")
        assert details.details["dimensions"] == 8
        assert server.received[-1].path == "/v1/embeddings"


@pytest.mark.parametrize(
    ("uid", "model_type", "message"),
    [
        ("bge-m3", "llm", "model_uid 'bge-m3' is an embedding model, not llm"),
        ("qwen2.5-instruct", "text-embedding", "is an LLM, not text-embedding"),
        ("whisper-small", "tts", "is a speech2text audio model, not tts"),
        ("ChatTTS", "speech2text", "is a tts audio model, not speech2text"),
        ("bge-reranker", "text-embedding", "is a rerank model, not text-embedding"),
        ("sd-turbo", "llm", "is an image model, not llm, and this provider cannot use it"),
        ("odd-llm", "llm", "is not supported, check if you have the right model type"),
    ],
)
def test_validation_rejects_a_type_mismatch(fake, uid, model_type, message) -> None:
    with pytest.raises(errors.UpstreamBadRequest) as caught:
        adapter(fake, uid).validate("m", model_type)
    assert message in caught.value.message


def test_validation_of_an_unknown_uid_is_not_found_with_the_servers_words(fake) -> None:
    before = len(fake.received)
    with pytest.raises(errors.UpstreamNotFound) as caught:
        adapter(fake, "no-such-uid").validate("m", "llm")
    assert "Model not found in the model list, uid: no-such-uid" in caught.value.message
    assert caught.value.message.startswith("400:")
    assert len(fake.received) - before == 1


@pytest.mark.parametrize("uid", ["a/b", "a?b", "a#b"])
def test_a_uid_with_url_characters_is_rejected_before_any_request(fake, uid) -> None:
    before = len(fake.received)
    with pytest.raises(errors.InvalidInput):
        adapter(fake, uid).validate("m", "llm")
    assert len(fake.received) == before


def test_an_unsupported_model_type_is_refused(fake) -> None:
    with pytest.raises(errors.InvalidInput):
        adapter(fake, "qwen2.5-instruct").validate("m", "moderation")


# --- discovery ------------------------------------------------------------------------------------


def test_model_listing_maps_types_and_skips_unusable_models(fake) -> None:
    found = {m.model: m for m in adapter(fake).list_models()}
    assert {k: v.model_type for k, v in found.items()} == {
        "qwen2.5-instruct": "llm",
        "qwen-vl": "llm",
        "llama-2": "llm",
        "bge-m3": "text-embedding",
        "bge-reranker": "rerank",
        "whisper-small": "speech2text",
        "ChatTTS": "tts",
        "CosyVoice-300M-SFT": "tts",
    }
    assert found["qwen2.5-instruct"].details["context_length"] == 32768
    assert found["qwen2.5-instruct"].details["abilities"] == ["chat", "tools"]
    assert found["bge-m3"].details["dimensions"] == 16


def test_type_mapping_follows_dify() -> None:
    assert our_type({"model_type": "audio", "model_family": "CosyVoice"}) == "tts"
    assert our_type({"model_type": "audio", "model_ability": ["text-to-audio"]}) == "tts"
    assert our_type({"model_type": "audio", "model_family": "SenseVoice"}) == "speech2text"
    assert our_type({"model_type": "LLM", "model_ability": ["generate"]}) == "llm"
    assert our_type({"model_type": "LLM", "model_ability": ["vision"]}) is None
    assert our_type({"model_type": "image"}) is None


# --- failures -------------------------------------------------------------------------------------


def test_wrong_or_missing_key_is_authorization_and_the_key_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, "qwen2.5-instruct", key="sk-wrong-key-12345").chat("m", ask("x"))
    assert "Could not validate credentials" in caught.value.message
    assert "sk-wrong-key-12345" not in caught.value.message
    with pytest.raises(errors.UpstreamAuth):
        adapter(fake, "qwen2.5-instruct", key=None).validate("m", "llm")


def test_an_unknown_uid_on_inference_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="Model not found in the model list"):
        adapter(fake, "gpt-9").chat("m", ask("x"))


def test_429_is_retried_then_succeeds(fake) -> None:
    qwen = adapter(fake, "qwen2.5-instruct")
    qwen.abilities("qwen2.5-instruct")  # known: the chat call is the only one
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert qwen.chat("m", ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_retries_are_bounded(fake) -> None:
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited, match="Rate limit reached"):
        adapter(fake, "qwen2.5-instruct").chat("m", ask("x"))
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable, match="The server had an error"):
        adapter(fake, "qwen2.5-instruct").validate("m", "llm")
    assert len(fake.received) - before == 3


def test_an_injected_404_is_not_found(fake) -> None:
    fake.fail("404")
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake, "qwen2.5-instruct").validate("m", "llm")


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", times=1, seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, "qwen2.5-instruct", read=0.3, retry=RetryPolicy(attempts=1)).chat(
            "m", ask("x")
        )


def test_broken_json_is_a_typed_error(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake, "qwen2.5-instruct").validate("m", "llm")


def test_a_dropped_connection_is_retried_then_typed(fake) -> None:
    fake.fail("drop", times=3)
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake, "qwen2.5-instruct").chat("m", ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    qwen = adapter(fake, "qwen2.5-instruct")
    qwen.abilities("qwen2.5-instruct")
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(qwen.stream("m", ask("one two three four five")))


def test_a_refused_connection() -> None:
    endpoint = Endpoint(
        base_url="", credentials={"base_url": "http://127.0.0.1:9"}, retry=RetryPolicy(1)
    )
    with pytest.raises(errors.UpstreamConnection):
        XinferenceAdapter(endpoint, http.pool()).validate("m", "llm")


def test_a_validation_error_list_is_read(fake) -> None:
    adapter_ = adapter(fake)
    body = {"detail": [{"loc": ["body", "query"], "msg": "field required", "type": "missing"}]}
    assert adapter_.error_message(body) == "body.query: field required"
    assert adapter_.error_message({"error": "boom"}) == "boom"


# --- Pairs that were degraded against real servers (issue 12) ----------------------------------


def test_a_generate_only_llm_is_sent_prompts_at_completions(fake) -> None:
    """Xinference answers a chat call to a model without the `chat` ability with "is not for
    chat"; such a model is prompted at /v1/completions, plain and streamed."""
    fake.received.clear()
    llama = adapter(fake, "llama-2")
    assert llama.chat("m", ask("tell me more")).text
    assert accumulate(llama.stream("m", ask("and more"))).text
    posts = [r.path for r in fake.received if r.method == "POST"]
    assert posts == ["/v1/completions", "/v1/completions"]
    assert "tell me more" in fake.received[1].json()["prompt"]
    # The abilities were read once and kept.
    assert [r.path for r in fake.received if r.method == "GET"] == ["/v1/models/llama-2"]


def test_a_chat_model_stays_on_chat_completions(fake) -> None:
    fake.received.clear()
    adapter(fake, "qwen2.5-instruct").chat("m", ask("hello"))
    assert [r.path for r in fake.received if r.method == "POST"] == ["/v1/chat/completions"]


def test_cosyvoice_speaks_with_its_own_first_speaker_unless_told_another(fake) -> None:
    cosy = adapter(fake, "CosyVoice-300M-SFT")
    assert cosy.validate("m", "tts").details["model_family"] == "CosyVoice"
    assert text_in_wav(cosy.speak("m", "你好", "").audio) == "中文女: 你好"
    assert text_in_wav(cosy.speak("m", "hello", "英文男").audio) == "英文男: hello"
    with pytest.raises(errors.UpstreamUnavailable, match="Invalid voice alloy"):
        cosy.speak("m", "hello", "alloy")
