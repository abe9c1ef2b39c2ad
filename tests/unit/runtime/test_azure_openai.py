"""AzureOpenAIAdapter against the Azure OpenAI fake: deployment URLs with api-version and the
api-key header, the versionless /openai/v1 API, every model type, streaming, and each failure mode
ending as a typed error after bounded retries."""

from __future__ import annotations

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.azure_openai import AzureOpenAIAdapter
from providers.runtime.base import (
    ChatRequest,
    ContentPart,
    Endpoint,
    Message,
    Tool,
    accumulate,
)
from providers.runtime.http import RetryPolicy, Timeouts
from tests.fakes.azure_openai_server import AzureOpenAIFake
from tests.fakes.base import embed_text, text_in_wav, wav_with_text

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
KEY = "0123456789abcdef0123456789abcdef"
MANIFEST_OPTIONS = {
    "default_api_version": "2024-02-15-preview",
    "entra_scope": "https://cognitiveservices.azure.com/.default",
    "versionless_suffix": "/openai/v1",
}


ENTRA_CLIENT, ENTRA_SECRET = "8f1c0a42-app", "client-secret-value-5678"


@pytest.fixture(scope="module")
def fake():
    with AzureOpenAIFake(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def entra_fake():
    with AzureOpenAIFake(
        api_key=KEY, entra={ENTRA_CLIENT: ENTRA_SECRET}, tenant="contoso"
    ) as server:
        yield server


def adapter(
    fake,
    *,
    key=KEY,
    version="2024-10-21",
    base_model="gpt-4o-mini",
    suffix="",
    retry=FAST_RETRY,
    read=5.0,
    credentials=None,
    **options,
) -> AzureOpenAIAdapter:
    values = {
        "base_url": fake.url + suffix,
        "api_key": key,
        "api_version": version,
        "auth_method": "api_key",
        "base_model": base_model,
    }
    values.update(credentials or {})
    endpoint = Endpoint(
        base_url="",
        credentials={k: v for k, v in values.items() if v},
        options={**MANIFEST_OPTIONS, **options},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return AzureOpenAIAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


# --- success ------------------------------------------------------------------------------------


def test_chat_goes_to_the_deployment_with_api_version_and_api_key(fake) -> None:
    result = adapter(fake).chat("chat-prod", ask("hello world", parameters={"temperature": 0.2}))
    assert result.text == "You said: hello world"
    assert result.model == "gpt-4o-mini"  # the deployment's base model, as Azure reports it
    assert result.usage.prompt_tokens == 4
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == "/openai/deployments/chat-prod/chat/completions"
    assert sent.query == {"api-version": ["2024-10-21"]}
    assert sent.header("api-key") == KEY
    assert not sent.header("authorization")
    body = sent.json()
    assert body["temperature"] == 0.2
    assert body["messages"][0] == {"role": "system", "content": "be brief"}


def test_the_manifest_fallback_api_version_is_used_when_none_is_given(fake) -> None:
    adapter(fake, version="").chat("chat-prod", ask("x"))
    assert fake.received[-1].query["api-version"] == ["2024-02-15-preview"]


def test_a_base_ending_in_openai_is_not_doubled(fake) -> None:
    adapter(fake, suffix="/openai/").chat("chat-prod", ask("x"))
    assert fake.received[-1].path == "/openai/deployments/chat-prod/chat/completions"


def test_streaming_yields_chunks_that_add_up_with_reported_usage(fake) -> None:
    chunks = list(adapter(fake).stream("chat-prod", ask("a b c d")))
    assert len([c for c in chunks if c.text]) > 3
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d"
    assert result.usage.completion_tokens == 6
    assert not result.usage.counted
    assert fake.received[-1].json()["stream_options"] == {"include_usage": True}


def test_streaming_on_an_old_api_version_counts_usage_itself(fake) -> None:
    # 2024-02-15-preview rejects stream_options, so the adapter leaves it out and counts.
    result = accumulate(adapter(fake, version="2024-02-15-preview").stream("chat-prod", ask("hi")))
    assert result.text == "You said: hi"
    assert result.usage.counted
    assert result.usage.completion_tokens > 0
    assert "stream_options" not in fake.received[-1].json()


def test_tool_calls_complete_and_streamed(fake) -> None:
    tools = (Tool("search", "find things", {"type": "object", "properties": {}}),)
    request = ask("weather in Paris?", tools=tools, tool_choice="search")
    result = adapter(fake).chat("chat-prod", request)
    assert result.finish_reason == "tool_calls"
    assert (result.tool_calls[0].name, result.tool_calls[0].arguments) == (
        "search",
        '{"query": "weather"}',
    )
    assert fake.received[-1].json()["tool_choice"] == {
        "type": "function",
        "function": {"name": "search"},
    }
    streamed = accumulate(adapter(fake).stream("chat-prod", request))
    assert streamed.tool_calls == result.tool_calls


def test_images_are_sent_as_image_url_parts(fake) -> None:
    message = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="data:image/png;base64,AAAA"),
        ),
    )
    result = adapter(fake).chat("chat-prod", ChatRequest(messages=(message,)))
    assert result.text == "You said: what is it [1 image(s)]"


def test_reasoning_base_models_get_max_completion_tokens_and_no_stop(fake) -> None:
    request = ask("think", parameters={"max_tokens": 50}, stop=("END",))
    result = adapter(fake, base_model="o3-mini").chat("reasoner", request)
    assert result.text == "You said: think"
    body = fake.received[-1].json()
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body
    assert "stop" not in body
    # Other base models keep max_tokens and stop.
    adapter(fake).chat("chat-prod", request)
    body = fake.received[-1].json()
    assert (body["max_tokens"], body["stop"]) == (50, ["END"])


def test_request_metadata_option_stores_completions(fake) -> None:
    adapter(fake, enable_request_metadata="enabled").chat("chat-prod", ask("x"))
    assert fake.received[-1].json()["store"] is True
    adapter(fake, enable_request_metadata="disabled").chat("chat-prod", ask("x"))
    assert "store" not in fake.received[-1].json()


def test_embeddings_are_batched_and_keep_their_order(fake) -> None:
    texts = [f"text {i}" for i in range(7)]
    before = len(fake.received)
    result = adapter(fake, max_chunks=3).embed("embedder", texts)
    assert len(fake.received) - before == 3  # 3 + 3 + 1
    assert fake.received[-1].path == "/openai/deployments/embedder/embeddings"
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    assert result.dimensions == 8
    assert result.usage.prompt_tokens == 14


def test_transcription_and_speech(fake) -> None:
    text = adapter(fake).transcribe("whisper", wav_with_text("open the door"), "a.wav", "en")
    assert text.text == "open the door"
    sent = fake.received[-1]
    assert sent.path == "/openai/deployments/whisper/audio/transcriptions"
    assert sent.query == {"api-version": ["2024-10-21"]}
    assert sent.form()[0]["language"] == "en"
    speech = adapter(fake).speak("voice", "hello", "nova", "wav")
    assert text_in_wav(speech.audio) == "nova: hello"
    assert (speech.content_type, speech.characters) == ("audio/wav", 5)
    assert fake.received[-1].path == "/openai/deployments/voice/audio/speech"


def test_the_versionless_v1_api(fake) -> None:
    v1 = adapter(fake, suffix="/openai/v1/", version="2024-10-21")
    assert v1.http.base_url == f"{fake.url}/openai/v1"
    assert v1.chat("chat-prod", ask("hi")).text == "You said: hi"
    sent = fake.received[-1]
    assert sent.path == "/openai/v1/chat/completions"
    assert sent.query == {}  # no api-version
    assert sent.json()["model"] == "chat-prod"
    assert sent.header("api-key") == KEY
    streamed = accumulate(v1.stream("chat-prod", ask("a b")))
    assert streamed.text == "You said: a b"
    assert not streamed.usage.counted
    assert v1.embed("embedder", ["x"]).dimensions == 8
    assert v1.transcribe("whisper", wav_with_text("yes"), "a.wav").text == "yes"
    assert text_in_wav(v1.speak("voice", "ok", "alloy").audio) == "alloy: ok"
    assert v1.validate("chat-prod", "llm").details["api_version"] is None


def test_rerank_and_listing_are_unsupported(fake) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        adapter(fake).rerank("chat-prod", "q", ["a", "b"])
    assert caught.value.code == "unsupported"
    with pytest.raises(errors.InvalidInput, match="model listing"):
        adapter(fake).list_models()


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_type", "deployment", "base_model", "detail"),
    [
        ("llm", "chat-prod", "gpt-4o-mini", "model"),
        ("llm", "reasoner", "o3-mini", "model"),
        ("text-embedding", "embedder", "text-embedding-3-small", "dimensions"),
        ("speech2text", "whisper", "whisper-1", None),
        ("tts", "voice", "tts-1", "audio_bytes"),
    ],
)
def test_validation_probes_fit_the_type(fake, model_type, deployment, base_model, detail) -> None:
    result = adapter(fake, base_model=base_model).validate(deployment, model_type)
    assert result.details["deployment"] == deployment
    assert result.details["base_model"] == base_model
    assert result.details["api_version"] == "2024-10-21"
    if detail:
        assert detail in result.details
    sent = fake.received[-1]
    assert sent.path.startswith(f"/openai/deployments/{deployment}/")
    if model_type == "llm":
        limit = "max_completion_tokens" if base_model.startswith("o") else "max_tokens"
        assert sent.json()[limit] == 1
        assert result.details["model"] == base_model


def test_validation_of_a_wrong_type_names_azures_reason(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="OperationNotSupported"):
        adapter(fake, base_model="text-embedding-3-small").validate("embedder", "llm")
    with pytest.raises(errors.InvalidInput) as caught:
        adapter(fake).validate("chat-prod", "rerank")
    assert caught.value.code == "unsupported"


# --- auth ---------------------------------------------------------------------------------------


def test_wrong_key_is_authorization_and_the_key_never_shows(fake) -> None:
    wrong = "fedcba9876543210fedcba9876543210"
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key=wrong).chat("chat-prod", ask(f"my key is {wrong}"))
    assert "Access denied due to invalid subscription key" in caught.value.message
    assert wrong not in caught.value.message
    with pytest.raises(errors.UpstreamAuth):
        adapter(fake, key=wrong).validate("embedder", "text-embedding")


def entra(fake, secret=ENTRA_SECRET, **credentials) -> AzureOpenAIAdapter:
    values = {
        "auth_method": "entra_id_service_principal",
        "client_id": ENTRA_CLIENT,
        "tenant_id": "contoso",
        "client_secret": secret,
        **credentials,
    }
    return adapter(fake, key="", credentials=values, entra_authority=fake.url)


def token_requests(fake) -> list:
    return [r for r in fake.received if r.path.endswith("/oauth2/v2.0/token")]


def test_entra_id_signs_in_with_client_credentials_and_keeps_the_token(entra_fake) -> None:
    before = len(token_requests(entra_fake))
    signed_in = entra(entra_fake)
    assert signed_in.chat("chat-prod", ask("hello")).text == "You said: hello"
    assert accumulate(signed_in.stream("chat-prod", ask("a b"))).text == "You said: a b"
    assert signed_in.validate("embedder", "text-embedding").details["dimensions"] == 8
    exchanges = token_requests(entra_fake)[before:]
    assert len(exchanges) == 1  # one token, kept for the calls after
    assert exchanges[0].path == "/contoso/oauth2/v2.0/token"
    form = exchanges[0].body.decode()
    assert "grant_type=client_credentials" in form
    assert "scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default" in form
    call = entra_fake.received[-1]
    assert call.header("authorization").startswith("Bearer eyJ")
    assert not call.header("api-key")


def test_a_revoked_token_is_forgotten_and_fetched_afresh(entra_fake) -> None:
    signed_in = entra(entra_fake)
    signed_in.chat("chat-prod", ask("first"))
    before = len(token_requests(entra_fake))
    entra_fake.revoke_tokens()
    assert signed_in.chat("chat-prod", ask("again")).text == "You said: again"
    assert len(token_requests(entra_fake)) == before + 1


def test_a_wrong_client_secret_is_a_clear_authorization_error(entra_fake) -> None:
    wrong = "wrong-secret-value-1234"
    with pytest.raises(errors.UpstreamAuth, match="AADSTS7000215") as caught:
        entra(entra_fake, secret=wrong).chat("chat-prod", ask("x"))
    assert "Entra ID" in caught.value.message
    assert wrong not in caught.value.message
    with pytest.raises(errors.UpstreamAuth, match="AADSTS700016"):
        entra(entra_fake, client_id="unknown-app").chat("chat-prod", ask("x"))


def test_entra_id_without_its_fields_is_refused_without_calling(entra_fake) -> None:
    before = len(entra_fake.received)
    with pytest.raises(errors.InvalidInput, match="Entra ID") as caught:
        entra(entra_fake, secret="").chat("chat-prod", ask("x"))
    assert set(caught.value.fields) == {"azure_client_secret"}
    assert len(entra_fake.received) == before


def test_missing_key_or_base_url_is_invalid_input(fake) -> None:
    with pytest.raises(errors.InvalidInput, match="API key is required"):
        adapter(fake, key="").chat("chat-prod", ask("x"))
    endpoint = Endpoint(base_url="", credentials={"api_key": KEY})
    with pytest.raises(errors.InvalidInput, match="base URL"):
        AzureOpenAIAdapter(endpoint, http.pool()).chat("chat-prod", ask("x"))


# --- failures -----------------------------------------------------------------------------------


def test_unknown_deployment_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="DeploymentNotFound") as caught:
        adapter(fake).chat("gpt-9", ask("x"))
    assert "deployment for this resource does not exist" in caught.value.message
    with pytest.raises(errors.UpstreamNotFound, match="DeploymentNotFound"):
        adapter(fake).embed("gpt-9", ["x"])


def test_a_bad_api_version_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="Resource not found"):
        adapter(fake, version="latest").chat("chat-prod", ask("x"))


def test_content_filter_is_a_bad_request_that_says_so(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest) as caught:
        adapter(fake).chat("chat-prod", ask("a jailbreak attempt"))
    assert caught.value.message.startswith("400: content_filter:")
    assert "content management policy" in caught.value.message


def test_429_is_retried_after_retry_after_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat("chat-prod", ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3


def test_azures_429_is_a_rate_limit_not_a_quota_and_retries_are_bounded(fake) -> None:
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited) as caught:
        adapter(fake).chat("chat-prod", ask("x"))
    assert "quotaincrease" in caught.value.message  # would read as a quota without the override
    assert caught.value.retry_after == 0
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable, match="server had an error"):
        adapter(fake).chat("chat-prod", ask("x"))
    assert len(fake.received) - before == 3


def test_retry_after_ms_wins(fake) -> None:
    fake.fail("429", times=1, retry_after=0.25)
    with pytest.raises(errors.UpstreamRateLimited) as caught:
        adapter(fake, retry=RetryPolicy(attempts=1)).embed("embedder", ["x"])
    assert caught.value.retry_after == 0.25


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", times=1, seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat("chat-prod", ask("x"))


def test_broken_json_is_a_typed_error(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).chat("chat-prod", ask("x"))


def test_a_dropped_connection_is_retried_then_typed(fake) -> None:
    fake.fail("drop", times=3)
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake).chat("chat-prod", ask("x"))


def test_a_stream_dropped_midway_is_a_connection_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream("chat-prod", ask("one two three four five")))


def test_a_refused_connection() -> None:
    endpoint = Endpoint(
        base_url="",
        credentials={"base_url": "http://127.0.0.1:9", "api_key": KEY},
        retry=RetryPolicy(attempts=1),
    )
    with pytest.raises(errors.UpstreamConnection):
        AzureOpenAIAdapter(endpoint, http.pool()).chat("chat-prod", ask("x"))


@pytest.mark.parametrize("base_model", ["o4-mini", "gpt-5", "gpt-5-mini"])
def test_reasoning_deployments_validate_and_chat_without_refused_parameters(base_model) -> None:
    with AzureOpenAIFake(api_key=KEY, deployments={"thinker": base_model}) as fake:
        signed_in = adapter(fake, base_model=base_model)
        assert signed_in.validate("thinker", "llm").details["base_model"] == base_model
        assert fake.received[-1].json()["max_completion_tokens"] == 1
        request = ask("x y", parameters={"max_tokens": 40, "temperature": 0.3}, stop=("END",))
        assert signed_in.chat("thinker", request).text == "You said: x y"
        assert accumulate(signed_in.stream("thinker", request)).text == "You said: x y"
        sent = fake.received[-1].json()
        assert sent["max_completion_tokens"] == 40
        assert not {"max_tokens", "temperature", "stop"} & set(sent)
