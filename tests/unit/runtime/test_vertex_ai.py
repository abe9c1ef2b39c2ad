"""VertexAIAdapter against the Vertex fake: the service account's token exchange (kept, renewed,
refused), Gemini chat and stream through the shared generateContent code, embeddings through
:predict, Claude through :rawPredict, where each model is sent, and the failure modes."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import pytest

from config import errors
from providers import routing
from providers.catalog import parse_file
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.vertex_ai import AUDIENCE, SCOPE, VertexAIAdapter, parse_service_account
from tests.fakes.base import embed_text
from tests.fakes.vertex_ai_server import (
    JWT_BEARER,
    SPEC,
    VertexFake,
    encoded,
    service_account,
)

CATALOG = Path(__file__).resolve().parents[3] / "providers" / "catalog"

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLM = "gemini-2.5-flash"
CLAUDE = "claude-sonnet-4-5@20250929"
SEARCH = Tool(
    "search", "find things", {"type": "object", "properties": {"query": {"type": "string"}}}
)


@pytest.fixture(scope="module")
def fake():
    with VertexFake(accounts=tuple(service_account(seed=seed) for seed in range(4))) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_leftover_failures(fake):
    yield
    fake.reset()


def adapter(
    fake, *, seed=0, key=None, retry=FAST_RETRY, read=5.0, location="us-central1", **credentials
) -> VertexAIAdapter:
    account = service_account(token_uri=fake.token_url, seed=seed)
    endpoint = Endpoint(
        base_url=f"{fake.url}/v1",
        credentials={
            "project_id": "fake-project",
            "location": location,
            "service_account_key": encoded(account) if key is None else key,
            **credentials,
        },
        options={
            "regional_base_url": f"{fake.url}/v1",
            "global_only_models": ["gemini-3.5-flash"],
            "anthropic_default_location": "us-east5",
        },
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
        secret_names=frozenset({"service_account_key"}),
    )
    return VertexAIAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_signs_in_with_the_service_account_and_sends_the_gemini_body(fake) -> None:
    exchanges = len(fake.token_requests)
    result = adapter(fake, seed=1).chat(LLM, ask("hello world", parameters={"max_tokens": 50}))
    assert (result.text, result.finish_reason) == ("You said: hello world", "stop")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    sent = fake.received[-1]
    assert sent.path == (
        "/v1/projects/fake-project/locations/us-central1/publishers/google/models/"
        "gemini-2.5-flash:generateContent"
    )
    assert sent.json() == {
        "contents": [{"role": "user", "parts": [{"text": "hello world"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"maxOutputTokens": 50},
    }
    assert len(fake.token_requests) == exchanges + 1
    grant = {k: v[0] for k, v in parse_qs(fake.token_requests[-1].body.decode()).items()}
    assert grant["grant_type"] == JWT_BEARER
    claims = jwt.decode(grant["assertion"], options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["scope"]) == (
        service_account(seed=1)["client_email"],
        AUDIENCE,
        SCOPE,
    )
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(grant["assertion"])["kid"] == "fakekeyid0001"
    assert sent.header("authorization").removeprefix("Bearer ") in fake.tokens


def test_the_token_is_kept_across_calls_and_adapters(fake) -> None:
    adapter(fake, seed=2).chat(LLM, ask("x"))
    exchanges = len(fake.token_requests)
    adapter(fake, seed=2).chat(LLM, ask("y"))
    list(adapter(fake, seed=2).stream(LLM, ask("z")))
    assert len(fake.token_requests) == exchanges
    tokens = {r.header("authorization") for r in fake.received[-2:]}
    assert len(tokens) == 1


def test_a_token_near_its_expiry_is_renewed() -> None:
    with VertexFake(accounts=(service_account(seed=3),), token_lifetime=2) as short:
        first = adapter(short, seed=3)
        first.chat(LLM, ask("x"))
        time.sleep(1.1)  # past half of its two seconds
        first.chat(LLM, ask("y"))
        assert len(short.token_requests) == 2
        assert short.received[-1].header("authorization") != short.received[-2].header(
            "authorization"
        )


def test_a_kept_token_the_backend_refuses_is_renewed_once(fake) -> None:
    adapter(fake).chat(LLM, ask("x"))
    fake.expire_tokens()
    exchanges, calls = len(fake.token_requests), len(fake.received)
    assert adapter(fake).chat(LLM, ask("y")).text == "You said: y"
    assert len(fake.token_requests) == exchanges + 1
    assert len(fake.received) - calls == 2  # the 401, then the retry with the new token


def test_a_fresh_token_refused_is_an_auth_failure(fake) -> None:
    fake.fail("401", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamAuth, match="UNAUTHENTICATED"):
        adapter(fake).chat(LLM, ask("x"))
    assert len(fake.received) - before <= 2


def test_a_key_the_token_endpoint_refuses_is_an_auth_failure(fake) -> None:
    forged = {**service_account(seed=5, token_uri=fake.token_url)}
    forged["client_email"] = service_account(seed=0)["client_email"]
    with pytest.raises(errors.UpstreamAuth, match="Invalid JWT Signature") as caught:
        adapter(fake, key=encoded(forged)).chat(LLM, ask("x"))
    assert "PRIVATE KEY" not in str(caught.value)
    stranger = service_account(seed=6, token_uri=fake.token_url)
    with pytest.raises(errors.UpstreamAuth, match="account not found"):
        adapter(fake, key=json.dumps(stranger)).validate(LLM, "llm")


def test_the_key_is_taken_as_base64_or_raw_json() -> None:
    account = service_account()
    assert parse_service_account(encoded(account)) == account
    assert parse_service_account(json.dumps(account)) == account
    for bad in ("not base64 !", encoded({"type": "authorized_user"}), "{}"):
        with pytest.raises(errors.InvalidInput) as caught:
            parse_service_account(bad)
        assert "service_account_key" in caught.value.fields


def test_a_blank_key_is_refused_before_any_request(fake) -> None:
    before = len(fake.received)
    with pytest.raises(errors.UpstreamAuth, match="Application Default Credentials"):
        adapter(fake, key="").chat(LLM, ask("x"))
    assert len(fake.received) == before


def test_streaming_and_tool_calls_share_the_gemini_code(fake) -> None:
    chunks = list(adapter(fake).stream(LLM, ask("one two three")))
    assert accumulate(iter(chunks)).text == "You said: one two three"
    assert fake.received[-1].path.endswith("gemini-2.5-flash:streamGenerateContent")
    assert fake.received[-1].query == {"alt": ["sse"]}
    result = adapter(fake).chat(LLM, ask("find cats", tools=(SEARCH,)))
    assert (result.finish_reason, result.tool_calls[0].name) == ("tool_calls", "search")


def test_global_only_models_go_to_the_global_endpoint(fake) -> None:
    adapter(fake).chat("gemini-3.5-flash", ask("x"))
    assert "/locations/global/" in fake.received[-1].path
    adapter(fake, global_models="gemini-2.5-flash").chat(LLM, ask("x"))
    assert "/locations/global/" in fake.received[-1].path
    assert adapter(fake).publisher_url(LLM, "google").startswith(f"{fake.url}/v1/projects/")
    where = replace(adapter(fake).endpoint, base_url="https://aiplatform.googleapis.com/v1")
    regional = replace(where, options={"global_only_models": ["gemini-3.5-flash"]})
    assert (
        VertexAIAdapter(regional, http.pool())
        .publisher_url(LLM, "google")
        .startswith(
            "https://us-central1-aiplatform.googleapis.com/v1/projects/fake-project/locations/us-central1/"
        )
    )
    assert (
        VertexAIAdapter(regional, http.pool())
        .publisher_url("gemini-3.5-flash", "google")
        .startswith("https://aiplatform.googleapis.com/v1/projects/fake-project/locations/global/")
    )


def test_a_location_or_project_that_is_no_name_is_refused(fake) -> None:
    with pytest.raises(errors.InvalidInput):
        adapter(fake, location="us-central1/../../x").chat(LLM, ask("x"))
    with pytest.raises(errors.InvalidInput):
        adapter(fake, project_id="a/b").chat(LLM, ask("x"))


def test_embeddings_through_predict(fake) -> None:
    result = adapter(fake).embed("text-embedding-005", ["a", "b c"])
    assert result.vectors == (tuple(embed_text("a")), tuple(embed_text("b c")))
    assert (result.usage.prompt_tokens, result.usage.counted) == (3, False)
    assert fake.received[-1].json() == {
        "instances": [
            {"content": "a", "task_type": "RETRIEVAL_DOCUMENT"},
            {"content": "b c", "task_type": "RETRIEVAL_DOCUMENT"},
        ]
    }
    before = len(fake.received)
    multimodal = adapter(fake).embed("multimodalembedding@001", ["a", "b"])
    assert multimodal.vectors[1] == tuple(embed_text("b"))
    assert len(fake.received) - before == 2  # one text a request
    assert adapter(fake).validate("text-embedding-005", "text-embedding").details == {
        "dimensions": 8
    }


def test_claude_goes_to_raw_predict_with_anthropics_body(fake) -> None:
    result = adapter(fake).chat(CLAUDE, ask("hello there", parameters={"max_tokens": 50}))
    assert (result.text, result.finish_reason) == ("You said: hello there", "stop")
    sent = fake.received[-1]
    assert sent.path == (
        "/v1/projects/fake-project/locations/us-central1/publishers/anthropic/models/"
        f"{CLAUDE}:rawPredict"
    )
    body = sent.json()
    assert "model" not in body
    assert (body["anthropic_version"], body["system"], body["max_tokens"]) == (
        "vertex-2023-10-16",
        "be brief",
        50,
    )
    streamed = accumulate(
        adapter(fake, anthropic_location="europe-west1").stream(CLAUDE, ask("a b"))
    )
    assert streamed.text == "You said: a b"
    assert fake.received[-1].path.endswith(f"{CLAUDE}:streamRawPredict")
    assert "/locations/europe-west1/" in fake.received[-1].path
    assert sent.header("authorization").startswith("Bearer ya29.fake-")


def test_claude_without_any_location_uses_the_default_region(fake) -> None:
    endpoint = adapter(fake).endpoint
    where = replace(endpoint, credentials={**endpoint.credentials, "location": ""})
    assert "/locations/us-east5/" in VertexAIAdapter(where, http.pool()).publisher_url(
        CLAUDE, "anthropic"
    )


def test_validation_of_each_type(fake) -> None:
    assert adapter(fake).validate(LLM, "llm").details == {"model": LLM}
    assert adapter(fake).validate(CLAUDE, "llm").details == {"model": CLAUDE}


def test_another_project_is_permission_denied(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match="PERMISSION_DENIED"):
        adapter(fake, project_id="someone-else").chat(LLM, ask("x"))


def test_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="was not found"):
        adapter(fake).chat("gemini-0-nope", ask("x"))


def test_429_is_retried_then_succeeds_and_5xx_is_bounded(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3
    fake.fail("500", times=3)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).embed("text-embedding-005", ["a"])


def test_a_slow_backend_times_out_and_a_dropped_stream_is_an_error(fake) -> None:
    adapter(fake).chat(LLM, ask("warm"))  # the token first: only the model call is slow
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(LLM, ask("x"))
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ask("one two three four five")))


def test_the_catalog_form_reaches_the_fake_through_its_spec(settings) -> None:
    """What the catalog walk does: the manifest's form, filled with the spec's samples, served by
    the spec's fake and aimed at it, validates every model type through the real adapter."""
    manifest = parse_file(CATALOG / "vertex_ai.yaml")
    where = routing.endpoint(manifest, dict(SPEC.samples()))
    assert where.secrets == {"service_account_key": where.credentials["service_account_key"]}
    models = {"llm": "gemini-2.5-flash-lite", "text-embedding": "text-embedding-005"}
    with SPEC.serve(where.credentials, models) as served:
        aimed = VertexAIAdapter(SPEC.aim(where, served.url), http.pool())
        for model_type, model in models.items():
            aimed.validate(model, model_type)
        aimed.validate(CLAUDE, "llm")
        assert len(served.token_requests) == 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ключ🔑", "neither JSON nor base64 of JSON"),
        (json.dumps({**service_account(), "token_uri": "file:///etc/passwd"}), "token_uri"),
        (json.dumps({**service_account(), "token_uri": "gopher://127.0.0.1:6379/_x"}), "token_uri"),
    ],
)
def test_a_key_that_cannot_be_used_is_a_field_error(value, problem) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        parse_service_account(value)
    assert problem in refused.value.fields["service_account_key"][0]
