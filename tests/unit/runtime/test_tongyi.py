"""TongyiAdapter against the DashScope fake: chat (text and multimodal paths), streaming, tools,
embeddings, Qwen-TTS with its audio download, validation probes, the international switch, and
each failure mode ending as a typed error after bounded retries."""

from __future__ import annotations

import base64
import json

import pytest

from config import errors
from providers import selectors
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
from providers.runtime.tongyi import TongyiAdapter
from tests.fakes.base import Reply, text_in_wav, wav_with_text
from tests.fakes.tongyi_server import API, TongyiFake, frame, vector

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLM = "qwen-plus"
VISION = "qwen3.6-plus"
TEXT_PATH = f"{API}/services/aigc/text-generation/generation"
MULTIMODAL_PATH = f"{API}/services/aigc/multimodal-generation/generation"
MULTIMODAL_MODELS = ["qwen3.6-plus", "qwen3.6-flash", "qwen3-vl-plus"]


@pytest.fixture(scope="module")
def fake():
    with TongyiFake() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_leftover_failures(fake):
    yield
    fake.reset()


def adapter(fake, *, key="fake-key", retry=FAST_RETRY, read=5.0, **options) -> TongyiAdapter:
    endpoint = Endpoint(
        base_url=fake.url + API,
        credentials={"api_key": key},
        options={"multimodal_models": MULTIMODAL_MODELS, **options},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return TongyiAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_sends_the_documented_body_and_reads_usage(fake) -> None:
    parameters = {"temperature": 0.2, "top_p": 0.5, "max_tokens": 50, "seed": 7}
    result = adapter(fake).chat(LLM, ask("hello world", parameters=parameters))
    assert result.text == "You said: hello world"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == TEXT_PATH
    assert sent.header("authorization") == "Bearer fake-key"
    assert not sent.header("x-dashscope-sse")
    assert sent.json() == {
        "model": LLM,
        "input": {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello world"},
            ]
        },
        "parameters": {"result_format": "message", **parameters},
    }


def test_finish_reasons_and_stop_sequences(fake) -> None:
    short = adapter(fake).chat(LLM, ask("one two three", parameters={"max_tokens": 2}))
    assert (short.text, short.finish_reason) == ("You said:", "length")
    stopped = adapter(fake).chat(LLM, ask("one two three", stop=(" two",)))
    assert (stopped.text, stopped.finish_reason) == ("You said: one", "stop")
    assert fake.received[-1].json()["parameters"]["stop"] == [" two"]


def test_streaming_is_incremental_sse(fake) -> None:
    chunks = list(adapter(fake).stream(LLM, ask("a b c d")))
    sent = fake.received[-1]
    assert sent.header("x-dashscope-sse") == "enable"
    assert sent.json()["parameters"]["incremental_output"] is True
    assert len([c for c in chunks if c.text]) > 3
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
    result = adapter(fake).chat("qwen3-max", request)
    assert result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["search", "lookup"]
    assert json.loads(result.tool_calls[0].arguments) == {"query": "weather in Paris?"}
    sent = fake.received[-1].json()["parameters"]
    assert sent["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert "tool_choice" not in sent
    streamed = accumulate(adapter(fake).stream("qwen3-max", request))
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
    assert adapter(fake).chat(LLM, request).text == "Tool said: sunny, 21C"
    assistant, tool = fake.received[-1].json()["input"]["messages"][1:]
    assert assistant["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "search", "arguments": '{"query": "weather"}'},
        }
    ]
    assert tool == {
        "role": "tool",
        "content": "sunny, 21C",
        "tool_call_id": "call_1",
        "name": "search",
    }


@pytest.mark.parametrize(
    ("tools", "choice", "sent"),
    [
        (("search", "lookup"), "none", "none"),
        (("search", "lookup"), "lookup", {"type": "function", "function": {"name": "lookup"}}),
        (("search",), "required", {"type": "function", "function": {"name": "search"}}),
        (("search", "lookup"), "required", None),  # DashScope cannot require "any tool"
    ],
)
def test_tool_choice(fake, tools, choice, sent) -> None:
    request = ask("hi", tools=tuple(Tool(t) for t in tools), tool_choice=choice)
    result = adapter(fake).chat(LLM, request)
    assert fake.received[-1].json()["parameters"].get("tool_choice") == sent
    if choice == "none":
        assert (result.text, result.tool_calls) == ("You said: hi", ())


def test_images_take_the_multimodal_path_as_parts(fake) -> None:
    message = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="data:image/png;base64,AAAA"),
        ),
    )
    result = adapter(fake).chat(VISION, ChatRequest(messages=(Message("system", "x"), message)))
    assert result.text == "You said: what is it [1 image(s)]"
    sent = fake.received[-1]
    assert sent.path == MULTIMODAL_PATH
    assert sent.json()["input"]["messages"] == [
        {"role": "system", "content": [{"text": "x"}]},
        {
            "role": "user",
            "content": [{"text": "what is it"}, {"image": "data:image/png;base64,AAAA"}],
        },
    ]
    streamed = accumulate(adapter(fake).stream(VISION, ChatRequest(messages=(message,))))
    assert streamed.text == result.text
    with pytest.raises(errors.UpstreamBadRequest, match="url error"):  # a text-only model
        adapter(fake).chat(LLM, ChatRequest(messages=(message,)))


def test_listed_and_vl_models_take_the_multimodal_path_without_images(fake) -> None:
    for model in ("qwen3-vl-plus", "qwen3.6-flash"):
        assert adapter(fake).chat(model, ask("hi")).text == "You said: hi"
        assert fake.received[-1].path == MULTIMODAL_PATH
    with pytest.raises(errors.UpstreamBadRequest, match="url error"):
        adapter(fake, multimodal_models=[]).chat("qwen3.6-flash", ask("hi"))


def test_response_format(fake) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    adapter(fake).chat(LLM, ask("x", response_format=schema))
    assert fake.received[-1].json()["parameters"]["response_format"] == schema
    adapter(fake).chat(LLM, ask("x", parameters={"response_format": "JSON"}))
    assert fake.received[-1].json()["parameters"]["response_format"] == {"type": "json_object"}


def test_embeddings_are_batched_by_10_and_ordered_by_text_index(fake) -> None:
    texts = [f"text {i}" for i in range(23)]
    before = len(fake.received)
    result = adapter(fake).embed("text-embedding-v4", texts)
    sent = [r.json() for r in fake.received[before:]]
    assert [len(b["input"]["texts"]) for b in sent] == [10, 10, 3]
    assert sent[0]["parameters"] == {"text_type": "document"}
    assert [list(v) for v in result.vectors] == [vector(t, 1024) for t in texts]
    assert (result.usage.prompt_tokens, result.usage.counted) == (46, False)
    adapter(fake, text_type="query").embed("text-embedding-v3", ["a"])
    assert fake.received[-1].json()["parameters"]["text_type"] == "query"
    assert adapter(fake).embed("text-embedding-v4", []).vectors == ()


def test_speech_downloads_the_wav_without_our_key(fake) -> None:
    speech = adapter(fake, language_type="English").speak("qwen3-tts-flash", "hello world", "")
    assert text_in_wav(speech.audio) == "Cherry: hello world"
    assert (speech.content_type, speech.characters) == ("audio/wav", 11)
    asked, fetched = fake.received[-2:]
    assert asked.path == MULTIMODAL_PATH
    assert asked.json() == {
        "model": "qwen3-tts-flash",
        "input": {"text": "hello world", "voice": "Cherry", "language_type": "English"},
    }
    assert fetched.path.startswith("/oss/")
    assert not fetched.header("authorization")
    adapter(fake).speak("qwen3-tts-flash", "hi", "Ethan")
    assert fake.received[-2].json()["input"]["voice"] == "Ethan"


def test_speech_audio_may_come_inline() -> None:
    audio = wav_with_text("inline")
    reply = {"output": {"audio": {"data": base64.b64encode(audio).decode(), "url": ""}}}
    with TongyiFake() as other:
        other.route("POST", MULTIMODAL_PATH, lambda r: Reply(200, reply))
        other._routes.reverse()  # ours first
        speech = adapter(other).speak("qwen3-tts-flash", "hi", "Cherry")
    assert (speech.audio, speech.characters) == (audio, 2)


def test_an_audio_url_to_a_forbidden_address_is_refused(fake) -> None:
    fake.audio_host = "http://169.254.169.254"
    try:
        with pytest.raises(errors.UpstreamForbiddenAddress):
            adapter(fake).speak("qwen3-tts-flash", "hi", "Cherry")
    finally:
        fake.audio_host = ""


@pytest.mark.parametrize(
    ("model_type", "model", "details"),
    [
        ("llm", "qwen-turbo", {"model": "qwen-turbo"}),
        ("text-embedding", "text-embedding-v4", {"dimensions": 1024}),
        ("tts", "qwen3-tts-flash", {"audio_bytes": len(wav_with_text("Cherry: ping"))}),
    ],
)
def test_validation_probes_fit_the_type(fake, model_type, model, details) -> None:
    assert adapter(fake).validate(model, model_type).details == details
    sent = fake.received[-1] if model_type != "tts" else fake.received[-2]
    if model_type == "llm":
        assert sent.json()["parameters"]["max_tokens"] == 1
    if model_type == "text-embedding":
        assert len(sent.json()["input"]["texts"]) == 1


def test_the_international_switch_picks_the_singapore_base(fake) -> None:
    def base(**options) -> str:
        endpoint = Endpoint(
            base_url="https://dashscope.aliyuncs.com/api/v1",
            credentials={"api_key": "k"},
            options={
                "international_base_url": "https://dashscope-intl.aliyuncs.com/api/v1",
                "international_switch": "use_international_endpoint",
                **options,
            },
        )
        return TongyiAdapter(endpoint, http.pool()).http.base_url

    assert base(use_international_endpoint="true") == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert base(use_international_endpoint="false") == "https://dashscope.aliyuncs.com/api/v1"
    assert base() == "https://dashscope.aliyuncs.com/api/v1"


def test_wrong_key_is_authorization_and_the_key_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key="sk-wrong-key-12345").chat(LLM, ask("x"))
    assert "Invalid API-key provided. (InvalidApiKey)" in caught.value.message
    assert "sk-wrong-key-12345" not in caught.value.message
    with pytest.raises(errors.UpstreamAuth):
        list(adapter(fake, key="nope").stream(LLM, ask("x")))


def test_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="Model not exist"):
        adapter(fake).chat("qwen-nope", ask("x"))
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).embed("text-embedding-v9", ["a"])


@pytest.mark.parametrize("mode", ["arrearage", "allocation_quota"])
def test_quota_codes_are_quotas_and_not_retried(fake, mode) -> None:
    fake.fail(mode, times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamQuota):
        adapter(fake).chat(LLM, ask("x"))
    assert len(fake.received) - before == 1


def test_an_algorithm_parameter_error_is_a_bad_request_not_retried() -> None:
    refusal = {
        "code": "InternalError.Algo.InvalidParameter",
        "message": "Range of input length should be [1, 129024]",
    }
    with TongyiFake() as other:
        other.route("POST", TEXT_PATH, lambda r: Reply(400, refusal))
        other._routes.reverse()
        with pytest.raises(errors.UpstreamBadRequest, match="Range of input length"):
            adapter(other).chat(LLM, ask("x"))
        assert len(other.received) == 1


def test_429_is_retried_after_retry_after_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_rate_quota_is_a_rate_limit_whatever_its_name_says(fake) -> None:
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited) as caught:
        adapter(fake).chat(LLM, ask("x"))
    assert "Throttling.RateQuota" in caught.value.message
    assert caught.value.retry_after == 0


def test_5xx_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable, match="InternalError"):
        adapter(fake).embed("text-embedding-v4", ["a"])
    assert len(fake.received) - before == 3


def test_an_error_frame_mid_stream_is_typed(fake) -> None:
    fake.fail("stream_error")
    chunks = adapter(fake).stream(LLM, ask("one two three four"))
    assert next(chunks).text == "You"
    with pytest.raises(errors.UpstreamBadRequest, match=r"400: .*DataInspectionFailed"):
        list(chunks)


def test_a_stream_without_its_last_frame_is_a_connection_error() -> None:
    cut = frame(
        1, {"output": {"choices": [{"message": {"content": "hi"}, "finish_reason": "null"}]}}
    )
    with TongyiFake() as other:
        other.route("POST", TEXT_PATH, lambda r: Reply(200, cut, content_type="text/event-stream"))
        other._routes.reverse()
        with pytest.raises(errors.UpstreamConnection, match="last frame"):
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
        TongyiAdapter(endpoint, http.pool()).chat(LLM, ask("x"))


def test_every_parameter_rule_stays_within_what_dashscope_takes() -> None:
    """Each catalog model called with every numeric parameter at its rule's maximum (and at its
    minimum): DashScope refuses a temperature of 2, so no rule may allow it."""
    manifest = selectors.manifest_get("tongyi")
    models = [m for m in manifest.models if m.model_type == "llm" and m.parameter_rules]
    kinds = {m.model: "multimodal" if m.model in MULTIMODAL_MODELS else "llm" for m in models}
    with TongyiFake(models=kinds) as server:
        for model in models:
            for bound in ("min", "max"):
                parameters = {
                    rule.name: getattr(rule, bound)
                    for rule in model.parameter_rules
                    if getattr(rule, bound) is not None
                }
                assert adapter(server).chat(model.model, ask("hi", parameters=parameters)).text
