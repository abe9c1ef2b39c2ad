"""GeminiAdapter against the Gemini fake: the generateContent body we send, replies and streams
read back, tool calls with their thought signatures, listing, validation, and each failure mode
ending as a typed error after bounded retries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config import errors
from providers import routing
from providers.catalog import parse_file
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
from providers.runtime.google_gemini import SKIP_SIGNATURE, GeminiAdapter
from providers.runtime.http import RetryPolicy, Timeouts
from tests.fakes.base import FakeServer, Reply
from tests.fakes.google_gemini_server import SIGNATURE, SPEC, GeminiFake

CATALOG = Path(__file__).resolve().parents[3] / "providers" / "catalog"

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLM = "gemini-2.5-flash"
SEARCH = Tool(
    "search", "find things", {"type": "object", "properties": {"query": {"type": "string"}}}
)


@pytest.fixture(scope="module")
def fake():
    with GeminiFake() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_leftover_failures(fake):
    yield
    fake.reset()


def adapter(fake, *, key="fake-key", retry=FAST_RETRY, read=5.0, base_url=None) -> GeminiAdapter:
    credentials = {"api_key": key, "base_url": fake.url if base_url is None else base_url}
    endpoint = Endpoint(
        base_url="https://generativelanguage.googleapis.com/v1beta",
        credentials=credentials,
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return GeminiAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_sends_the_documented_body_and_reads_usage(fake) -> None:
    request = ask(
        "hello world",
        parameters={"temperature": 0.2, "top_p": 0.5, "top_k": 40, "max_tokens": 50},
        stop=("STOP",),
    )
    result = adapter(fake).chat(LLM, request)
    assert (result.text, result.finish_reason, result.model) == (
        "You said: hello world",
        "stop",
        LLM,
    )
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.header("x-goog-api-key") == "fake-key"
    assert sent.json() == {
        "contents": [{"role": "user", "parts": [{"text": "hello world"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {
            "temperature": 0.2,
            "topP": 0.5,
            "topK": 40,
            "maxOutputTokens": 50,
            "stopSequences": ["STOP"],
        },
    }


def test_max_tokens_and_thinking_settings(fake) -> None:
    result = adapter(fake).chat(
        LLM, ask("one two three", parameters={"max_tokens": 2, "thinking_budget": 0})
    )
    assert (result.text, result.finish_reason) == ("You said:", "length")
    assert fake.received[-1].json()["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    adapter(fake).chat("gemini-3.5-flash", ask("x", parameters={"thinking_level": "Low"}))
    assert fake.received[-1].json()["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "LOW"
    }


def test_streaming_yields_chunks_that_add_up(fake) -> None:
    chunks = list(adapter(fake).stream(LLM, ask("one two three")))
    assert len(chunks) > 3
    result = accumulate(iter(chunks))
    assert (result.text, result.finish_reason) == ("You said: one two three", "stop")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 5)
    assert fake.received[-1].path.endswith(":streamGenerateContent")
    assert fake.received[-1].query == {"alt": ["sse"]}


def test_tool_calls_complete_and_streamed(fake) -> None:
    request = ask("find cats", tools=(SEARCH,))
    result = adapter(fake).chat(LLM, request)
    assert result.finish_reason == "tool_calls"
    [call] = result.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("search", {"query": "find cats"})
    assert fake.received[-1].json()["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "search",
                    "description": "find things",
                    "parametersJsonSchema": dict(SEARCH.parameters),
                }
            ]
        }
    ]
    streamed = accumulate(adapter(fake).stream(LLM, request))
    assert streamed.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in streamed.tool_calls] == [(call.name, call.arguments)]


def test_tool_choice_becomes_function_calling_config(fake) -> None:
    lookup = Tool("lookup", "look up", {"type": "object", "properties": {}})
    result = adapter(fake).chat(LLM, ask("x", tools=(SEARCH, lookup), tool_choice="lookup"))
    assert result.tool_calls[0].name == "lookup"
    assert fake.received[-1].json()["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}
    }
    result = adapter(fake).chat(LLM, ask("x", tools=(SEARCH,), tool_choice="none"))
    assert (result.text, result.tool_calls) == ("You said: x", ())


def test_tool_results_round_trip_with_the_thought_signature(fake) -> None:
    """Gemini 3 refuses a call in history without the signature it came with: the signature
    travels in the call's id and goes back with the call."""
    first = adapter(fake).chat("gemini-3.5-flash", ask("find cats", tools=(SEARCH,)))
    [call] = first.tool_calls
    history = (
        Message("user", "find cats"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", '{"hits": 2}', tool_call_id=call.id),
    )
    second = adapter(fake).chat("gemini-3.5-flash", ChatRequest(history, tools=(SEARCH,)))
    assert second.text == 'You said: {"hits": 2}'
    contents = fake.received[-1].json()["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "search", "args": {"query": "find cats"}},
                "thoughtSignature": SIGNATURE,
            }
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "search", "response": {"hits": 2}}}],
    }
    # A call from elsewhere (no signature) goes back with Google's documented stand-in.
    foreign = ToolCall("call-1", "search", '{"query": "x"}')
    history = (
        history[0],
        Message("assistant", "", tool_calls=(foreign,)),
        Message("tool", "2", tool_call_id="call-1"),
    )
    assert (
        adapter(fake).chat("gemini-3.5-flash", ChatRequest(history)).text
        == 'You said: {"result": 2}'
    )
    part = fake.received[-1].json()["contents"][1]["parts"][0]
    assert (part["thoughtSignature"], part["functionCall"]["id"]) == (SKIP_SIGNATURE, "call-1")


def test_images_are_inline_data_or_file_data(fake) -> None:
    content = (
        ContentPart("text", "what is this"),
        ContentPart("image", image_url="data:image/jpeg;base64,AAAA"),
        ContentPart("image", image_url="https://example.com/cat.png"),
    )
    adapter(fake).chat(LLM, ChatRequest(messages=(Message("user", content),)))
    assert fake.received[-1].json()["contents"][0]["parts"] == [
        {"text": "what is this"},
        {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
    ]


def test_json_output_with_and_without_a_schema(fake) -> None:
    schema = {"type": "object", "properties": {"reply": {"type": "string"}}}
    result = adapter(fake).chat(LLM, ask("hi", parameters={"json_schema": json.dumps(schema)}))
    assert json.loads(result.text) == {"reply": "hi"}
    config = fake.received[-1].json()["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    adapter(fake).chat(LLM, ask("hi", response_format={"type": "json_object"}))
    assert fake.received[-1].json()["generationConfig"] == {"responseMimeType": "application/json"}
    adapter(fake).chat(LLM, ask("hi", parameters={"response_format": "JSON"}))  # Dify's template
    assert fake.received[-1].json()["generationConfig"] == {"responseMimeType": "application/json"}


def test_model_listing_follows_pages(fake) -> None:
    with GeminiFake(
        models={f"gemini-{i}": "llm" for i in range(3)} | {"emb": "text-embedding"}
    ) as other:
        original = other.list_models
        other._routes = [r for r in other._routes if r[0] != "GET"]
        other.route(
            "GET",
            "/v1beta/models",
            lambda request: original(
                type(request)(
                    request.method,
                    request.path,
                    {**request.query, "pageSize": ["2"]},
                    request.headers,
                    b"",
                )
            ),
        )
        found = adapter(other).list_models()
    assert [(m.model, m.model_type) for m in found] == [
        ("gemini-0", "llm"), ("gemini-1", "llm"), ("gemini-2", "llm"), ("emb", "text-embedding"),
    ]  # fmt: skip


def test_validation_is_a_tiny_chat(fake) -> None:
    assert adapter(fake).validate("gemini-flash-lite-latest", "llm").details == {
        "model": "gemini-flash-lite-latest"
    }
    assert fake.received[-1].json()["generationConfig"] == {"maxOutputTokens": 1}
    with pytest.raises(errors.InvalidInput):
        adapter(fake).validate("gemini-embedding-001", "rerank")


def test_wrong_key_is_authorization_and_the_key_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key="AIza-wrong-key-12345").chat(LLM, ask("x"))
    assert "API key not valid" in caught.value.message
    assert "AIza-wrong-key-12345" not in str(caught.value)
    with pytest.raises(errors.UpstreamAuth, match="unregistered callers"):
        adapter(fake, key="").chat(LLM, ask("x"))


def test_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="is not found"):
        adapter(fake).chat("gemini-0-nope", ask("x"))


def test_a_request_the_api_refuses_is_a_bad_request(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="temperature"):
        adapter(fake).chat(LLM, ask("x", parameters={"temperature": 7}))


def test_429_is_retried_after_its_delay_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_a_daily_quota_is_not_retried(fake) -> None:
    fake.fail("daily_quota", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamQuota):
        adapter(fake).chat(LLM, ask("x"))
    assert len(fake.received) - before == 1


def test_5xx_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable, match="INTERNAL"):
        adapter(fake).chat(LLM, ask("x"))
    assert len(fake.received) - before == 3


def test_a_blocked_prompt_is_a_bad_request(fake) -> None:
    fake.fail("blocked")
    with pytest.raises(errors.UpstreamBadRequest, match="blocked the prompt: SAFETY"):
        adapter(fake).chat(LLM, ask("x"))


def test_an_error_inside_the_stream_is_typed(fake) -> None:
    fake.fail("stream_error")
    with pytest.raises(errors.UpstreamUnavailable, match="overloaded"):
        list(adapter(fake).stream(LLM, ask("one two three")))


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(LLM, ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ask("one two three four five")))


def test_the_base_url_gets_a_version_when_it_names_none(fake) -> None:
    assert adapter(fake).http.base_url == f"{fake.url}/v1beta"
    assert adapter(fake, base_url=f"{fake.url}/v1").http.base_url == f"{fake.url}/v1"
    assert adapter(fake, base_url="").http.base_url.startswith("https://generativelanguage")


def test_the_catalog_form_reaches_the_fake_through_its_spec(settings) -> None:
    """What the catalog walk does: the manifest's form served by the spec's fake and aimed at it
    validates through the real adapter."""
    manifest = parse_file(CATALOG / "google.yaml")
    where = routing.endpoint(manifest, {"google_api_key": "AIza-sample-key"})
    models = {"llm": "gemini-flash-lite-latest"}
    with SPEC.serve(where.credentials, models) as served:
        aimed = GeminiAdapter(SPEC.aim(where, served.url), http.pool())
        assert aimed.validate("gemini-flash-lite-latest", "llm").details
        assert served.received[-1].header("x-goog-api-key") == "AIza-sample-key"


class NotGemini(FakeServer):
    """A server at the Gemini URL that answers any JSON: not Google's shape."""

    def __init__(self) -> None:
        super().__init__(api_key=None)
        self.route("POST", "/v1beta/models/{call}", lambda request: Reply(body={"echo": "x"}))


def test_a_reply_without_candidates_is_not_an_answer() -> None:
    """An empty answer would pass a check of the wrong server: it is a typed protocol error,
    plain and streamed."""
    with NotGemini() as server:
        wrong = adapter(server)
        for call in (
            lambda: wrong.validate("gemini-2.5-flash", "llm"),
            lambda: wrong.chat("gemini-2.5-flash", ask("hello")),
            lambda: list(wrong.stream("gemini-2.5-flash", ask("hello"))),
        ):
            with pytest.raises(errors.UpstreamUnavailable) as caught:
                call()
            assert caught.value.code == "bad_response"
