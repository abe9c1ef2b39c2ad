"""The Gemini fake is trusted because the official `google-genai` client talks to it: it sends
its own requests (x-goog-api-key, its own body shapes), parses the fake's replies and stream
into its typed objects, and raises its own errors for the fake's error bodies."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.base import embed_text
from tests.fakes.google_gemini_server import SIGNATURE, GeminiFake

SEARCH = types.FunctionDeclaration(
    name="search",
    description="find things",
    parameters_json_schema={"type": "object", "properties": {"query": {"type": "string"}}},
)


# A Client closes its connections when it is collected: tests keep theirs in a variable.


@pytest.fixture(scope="module")
def fake():
    with GeminiFake() as server:
        yield server


def client(fake: GeminiFake, key: str = "fake-key") -> genai.Client:
    options = types.HttpOptions(base_url=fake.url, retry_options=types.HttpRetryOptions(attempts=1))
    return genai.Client(api_key=key, http_options=options)


def test_generate_content_with_system_and_config(fake) -> None:
    gemini = client(fake)
    reply = gemini.models.generate_content(
        model="gemini-2.5-flash",
        contents="hello there",
        config=types.GenerateContentConfig(
            system_instruction="be brief", temperature=0.2, top_p=0.5, max_output_tokens=50
        ),
    )
    assert reply.text == "You said: hello there"
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.usage_metadata.prompt_token_count == 4
    assert reply.usage_metadata.candidates_token_count == 4
    sent = fake.received[-1]
    assert sent.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert sent.header("x-goog-api-key") == "fake-key"
    assert sent.json()["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.5,
        "maxOutputTokens": 50,
    }


def test_limits_stops_and_json(fake) -> None:
    gemini = client(fake)
    models = gemini.models
    short = models.generate_content(
        model="gemini-2.5-flash",
        contents="one two three four",
        config=types.GenerateContentConfig(max_output_tokens=3),
    )
    assert (short.text, short.candidates[0].finish_reason) == ("You said: one", "MAX_TOKENS")
    stopped = models.generate_content(
        model="gemini-2.5-flash",
        contents="one two three",
        config=types.GenerateContentConfig(stop_sequences=[" three"]),
    )
    assert stopped.text == "You said: one two"
    shaped = models.generate_content(
        model="gemini-2.5-flash",
        contents="hi",
        config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema={"type": "object", "properties": {"reply": {"type": "string"}}},
        ),
    )
    assert shaped.parsed == {"reply": "hi"}


def test_streaming(fake) -> None:
    gemini = client(fake)
    chunks = list(
        gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="one two")
    )
    assert "".join(c.text or "" for c in chunks) == "You said: one two"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count == 6
    assert fake.received[-1].query == {"alt": ["sse"]}


def test_function_calling_round_trip_with_thought_signature(fake) -> None:
    gemini = client(fake)
    models = gemini.models
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[SEARCH])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    first = models.generate_content(model="gemini-3.5-flash", contents="find cats", config=config)
    call_part = first.candidates[0].content.parts[0]
    assert (call_part.function_call.name, call_part.function_call.args) == (
        "search",
        {"query": "find cats"},
    )
    assert call_part.thought_signature  # bytes, sent back as they came
    history = [
        types.Content(role="user", parts=[types.Part(text="find cats")]),
        first.candidates[0].content,
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="search", response={"hits": 2})],
        ),
    ]
    second = models.generate_content(model="gemini-3.5-flash", contents=history, config=config)
    assert second.text == 'You said: {"hits": 2}'
    assert fake.received[-1].json()["contents"][1]["parts"][0]["thoughtSignature"] == SIGNATURE
    unsigned = [
        history[0],
        types.Content(role="model", parts=[types.Part(function_call=call_part.function_call)]),
        history[2],
    ]
    with pytest.raises(errors.ClientError, match="thought_signature"):
        models.generate_content(model="gemini-3.5-flash", contents=unsigned, config=config)


def test_embeddings(fake) -> None:
    gemini = client(fake)
    reply = gemini.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert [e.values for e in reply.embeddings] == [embed_text("a"), embed_text("b")]


def test_models_list(fake) -> None:
    gemini = client(fake)
    names = {m.name for m in gemini.models.list()}
    assert "models/gemini-2.5-flash" in names


def test_errors_come_as_the_clients_typed_errors(fake) -> None:
    gemini, wrong = client(fake), client(fake, key="wrong")
    with pytest.raises(errors.ClientError) as bad_key:
        wrong.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (bad_key.value.code, bad_key.value.status) == (400, "INVALID_ARGUMENT")
    assert bad_key.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    with pytest.raises(errors.ClientError) as missing:
        gemini.models.generate_content(model="gemini-0-nope", contents="hi")
    assert missing.value.code == 404
    fake.fail("429")
    with pytest.raises(errors.ClientError) as limited:
        gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert limited.value.status == "RESOURCE_EXHAUSTED"
    fake.fail("500")
    with pytest.raises(errors.ServerError):
        gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
