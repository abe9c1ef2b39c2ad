"""The Azure OpenAI fake is trusted because the official `openai.AzureOpenAI` client (and the plain
`openai.OpenAI` client on the versionless /openai/v1 API) talks to it successfully."""

from __future__ import annotations

import io

import openai
import pytest
import urllib3

from tests.fakes.azure_openai_server import AzureOpenAIFake
from tests.fakes.base import text_in_wav, wav_with_text

KEY = "fake-azure-key"
VERSION = "2024-10-21"


@pytest.fixture(scope="module")
def fake():
    with AzureOpenAIFake(api_key=KEY) as server:
        yield server


@pytest.fixture
def client(fake):
    return openai.AzureOpenAI(
        api_key=KEY, api_version=VERSION, azure_endpoint=fake.url, max_retries=0
    )


def test_chat_goes_to_the_deployment_with_api_version_and_api_key(client, fake) -> None:
    reply = client.chat.completions.create(
        model="chat-prod", messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "You said: hello there"
    assert reply.model == "gpt-4o-mini"
    assert reply.usage.prompt_tokens == 2
    sent = fake.received[-1]
    assert sent.path == "/openai/deployments/chat-prod/chat/completions"
    assert sent.query["api-version"] == [VERSION]
    assert sent.header("api-key") == KEY


def test_streaming_with_usage(client) -> None:
    stream = client.chat.completions.create(
        model="chat-prod",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices == []  # Azure's prompt_filter_results chunk
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three"
    assert chunks[-1].usage.completion_tokens == 5


def test_old_api_versions_reject_stream_options(fake) -> None:
    old = openai.AzureOpenAI(
        api_key=KEY, api_version="2024-02-15-preview", azure_endpoint=fake.url, max_retries=0
    )
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        old.chat.completions.create(
            model="chat-prod",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    chunks = list(
        old.chat.completions.create(
            model="chat-prod", messages=[{"role": "user", "content": "a b"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "You said: a b"
    )


def test_tool_calls_complete_and_streamed(client) -> None:
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    messages = [{"role": "user", "content": "weather?"}]
    reply = client.chat.completions.create(model="chat-prod", messages=messages, tools=tools)
    call = reply.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("search", '{"query": "weather"}')
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in client.chat.completions.create(
            model="chat-prod", messages=messages, tools=tools, stream=True
        )
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert arguments == '{"query": "weather"}'


def test_vision_input_is_accepted(client) -> None:
    reply = client.chat.completions.create(
        model="chat-prod",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "You said: what is this [1 image(s)]"


def test_reasoning_deployments_take_max_completion_tokens(client) -> None:
    with pytest.raises(openai.BadRequestError, match="max_completion_tokens"):
        client.chat.completions.create(
            model="reasoner", messages=[{"role": "user", "content": "x"}], max_tokens=5
        )
    reply = client.chat.completions.create(
        model="reasoner", messages=[{"role": "user", "content": "x"}], max_completion_tokens=50
    )
    assert reply.choices[0].message.content == "You said: x"
    assert reply.usage.completion_tokens_details.reasoning_tokens == 2


def test_embeddings_keep_order(client, fake) -> None:
    result = client.embeddings.create(model="embedder", input=["a", "b", "a"])
    vectors = [row.embedding for row in result.data]
    assert vectors[0] == vectors[2] != vectors[1]
    assert fake.received[-1].path == "/openai/deployments/embedder/embeddings"


def test_audio_round_trip(client, fake) -> None:
    speech = client.audio.speech.create(model="voice", voice="nova", input="good morning")
    assert text_in_wav(speech.content) == "nova: good morning"
    assert fake.received[-1].path == "/openai/deployments/voice/audio/speech"
    wav = wav_with_text("turn on the lights")
    text = client.audio.transcriptions.create(model="whisper", file=("a.wav", io.BytesIO(wav)))
    assert text.text == "turn on the lights"
    assert fake.received[-1].path == "/openai/deployments/whisper/audio/transcriptions"


def test_versionless_v1_api_with_the_plain_openai_client(fake) -> None:
    v1 = openai.OpenAI(api_key=KEY, base_url=f"{fake.url}/openai/v1/", max_retries=0)
    reply = v1.chat.completions.create(
        model="chat-prod", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "You said: hi"
    sent = fake.received[-1]
    assert sent.path == "/openai/v1/chat/completions"
    assert "api-version" not in sent.query
    assert sent.header("authorization") == f"Bearer {KEY}"
    assert len(v1.embeddings.create(model="embedder", input="x").data[0].embedding) == 8


def test_typed_errors(client, fake) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "DeploymentNotFound"
    assert "deployment for this resource does not exist" in missing.value.message
    bad = openai.AzureOpenAI(
        api_key="wrong", api_version=VERSION, azure_endpoint=fake.url, max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as denied:
        bad.embeddings.create(model="embedder", input="x")
    assert "Access denied due to invalid subscription key" in denied.value.message
    with pytest.raises(openai.BadRequestError) as filtered:
        client.chat.completions.create(
            model="chat-prod", messages=[{"role": "user", "content": "a jailbreak attempt"}]
        )
    assert filtered.value.code == "content_filter"
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.chat.completions.create(
            model="embedder", messages=[{"role": "user", "content": "x"}]
        )
    assert unsupported.value.code == "OperationNotSupported"
    fake.fail("429", retry_after=0)
    with pytest.raises(openai.RateLimitError) as limited:
        client.embeddings.create(model="embedder", input="x")
    assert limited.value.response.headers["retry-after-ms"] == "0"
    fake.fail("500")
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="embedder", input="x")


def test_retries_of_the_official_client_honour_retry_after(fake) -> None:
    retrying = openai.AzureOpenAI(
        api_key=KEY, api_version=VERSION, azure_endpoint=fake.url, max_retries=2
    )
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert retrying.embeddings.create(model="embedder", input="x").data
    assert len(fake.received) - before == 3


def test_entra_id_tokens_from_the_fakes_token_endpoint_sign_the_official_client() -> None:
    """`azure_ad_token_provider` fetches a client-credentials token as azure-identity's
    ClientSecretCredential does (a form POST to {authority}/{tenant}/oauth2/v2.0/token)."""
    secret = "the-secret"
    with AzureOpenAIFake(api_key=KEY, entra={"app-id": secret}, tenant="contoso") as fake:

        def fetch(secret: str) -> str:
            answer = urllib3.PoolManager().request(
                "POST",
                f"{fake.url}/contoso/oauth2/v2.0/token",
                fields={
                    "grant_type": "client_credentials",
                    "client_id": "app-id",
                    "client_secret": secret,
                    "scope": "https://cognitiveservices.azure.com/.default",
                },
                encode_multipart=False,
            )
            body = answer.json()
            return body.get("access_token") or body["error_description"]

        client = openai.AzureOpenAI(
            azure_ad_token_provider=lambda: fetch(secret),
            api_version=VERSION,
            azure_endpoint=fake.url,
            max_retries=0,
        )
        reply = client.chat.completions.create(
            model="chat-prod", messages=[{"role": "user", "content": "signed in"}]
        )
        assert reply.choices[0].message.content == "You said: signed in"
        assert fake.received[-1].header("authorization").startswith("Bearer ")
        assert "AADSTS7000215" in fetch("wrong")
        forged = openai.AzureOpenAI(
            azure_ad_token="forged", api_version=VERSION, azure_endpoint=fake.url, max_retries=0
        )
        with pytest.raises(openai.AuthenticationError, match="Access token is missing"):
            forged.chat.completions.create(
                model="chat-prod", messages=[{"role": "user", "content": "x"}]
            )
