"""The Ark fake is trusted because the official Volcengine SDK talks to it: the Ark runtime client
(`volcenginesdkarkruntime.Ark`, what Dify's plugin uses) with an API key and with AK/SK (its
StsTokenManager signs GetApiKey with volcenginesdkcore's V4 signer, which the fake verifies), and
gets its typed errors."""

from __future__ import annotations

import pytest
import volcenginesdkark
import volcenginesdkcore
from volcenginesdkarkruntime import Ark
from volcenginesdkarkruntime._client import StsTokenManager
from volcenginesdkarkruntime._exceptions import (
    ArkAPIError,
    ArkAuthenticationError,
    ArkBadRequestError,
    ArkNotFoundError,
    ArkRateLimitError,
)
from volcenginesdkcore.rest import ApiException

from tests.fakes.base import embed_text
from tests.fakes.volcengine_server import ArkFake

API_KEY = "0a1b2c3d-fake-ark-api-key"
AK, SK = "AKLTZmFrZWFjY2Vzc2tleQ", "V1ZoU2RGa3lWbXhqYlZaMA=="
CHAT, EMBED, VISION = (
    "ep-20250101000000-chat01",
    "ep-20250101000000-embed1",
    "ep-20250101000000-vision",
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "find things",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def fake():
    with ArkFake(api_key=API_KEY, access_keys={AK: SK}) as server:
        yield server


@pytest.fixture
def client(fake):
    return Ark(base_url=f"{fake.url}/api/v3", api_key=API_KEY, max_retries=0)


def aksk_client(fake, secret: str = SK) -> Ark:
    """An AK/SK client whose GetApiKey calls go to the fake instead of open.volcengineapi.com."""
    client = Ark(base_url=f"{fake.url}/api/v3", ak=AK, sk=secret, max_retries=0)
    manager = StsTokenManager(AK, secret, "cn-beijing")
    manager.api_instance.api_client.configuration.host = fake.url
    client._sts_token_manager = manager
    return client


def test_chat_stream_and_tools_with_an_api_key(client, fake) -> None:
    reply = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "You said: hello there"
    assert fake.received[-1].header("authorization") == f"Bearer {API_KEY}"
    chunks = list(
        client.chat.completions.create(
            model=CHAT,
            messages=[{"role": "user", "content": "a b"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "You said: a b"
    )
    assert chunks[-1].usage.completion_tokens == 4
    called = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "weather?"}], tools=TOOLS
    )
    assert called.choices[0].message.tool_calls[0].function.name == "search"


def test_embeddings_text_and_multimodal(client) -> None:
    result = client.embeddings.create(model=EMBED, input=["a", "b"])
    assert [d.embedding for d in result.data] == [embed_text("a"), embed_text("b")]
    fused = client.multimodal_embeddings.create(
        model=VISION, input=[{"type": "text", "text": "a cat"}]
    )
    assert fused.data.embedding == embed_text("a cat")
    assert fused.usage["prompt_tokens"] == 2  # the SDK leaves it the dict it got
    with pytest.raises(ArkBadRequestError):  # a vision embedder is not served at /embeddings
        client.embeddings.create(model=VISION, input=["a"])


def test_typed_errors(client, fake) -> None:
    wrong = Ark(base_url=f"{fake.url}/api/v3", api_key="nope", max_retries=0)
    with pytest.raises(ArkAuthenticationError) as caught:
        wrong.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "AuthenticationError"
    with pytest.raises(ArkNotFoundError) as caught:
        client.chat.completions.create(
            model="ep-20250101000000-nope00", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "InvalidEndpointOrModel.NotFound"
    with pytest.raises(ArkBadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=[])
    assert caught.value.code == "MissingParameter"
    fake.fail("429", retry_after=0)
    with pytest.raises(ArkRateLimitError) as caught:
        client.embeddings.create(model=EMBED, input=["a"])
    assert caught.value.code == "RateLimitExceeded.EndpointRPMExceeded"


def test_aksk_exchanges_one_signed_get_api_key_per_endpoint(fake) -> None:
    client = aksk_client(fake)
    before = fake.exchanges
    for text in ("one", "two"):
        reply = client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": text}]
        )
        assert reply.choices[0].message.content == f"You said: {text}"
    assert fake.exchanges - before == 1
    exchange = next(r for r in reversed(fake.received) if r.path == "/")
    assert exchange.query == {"Action": ["GetApiKey"], "Version": ["2024-01-01"]}
    assert exchange.json() == {
        "DurationSeconds": 7 * 24 * 3600,
        "ResourceType": "endpoint",
        "ResourceIds": [CHAT],
    }
    assert exchange.header("authorization").startswith(f"HMAC-SHA256 Credential={AK}/")
    issued = fake.received[-1].header("authorization").removeprefix("Bearer ")
    assert fake.issued[issued][0] == {CHAT}


def test_aksk_failures_are_the_sdks_errors(fake) -> None:
    with pytest.raises(ArkAPIError, match="SignatureDoesNotMatch"):
        aksk_client(fake, secret="wrong-secret").chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "x"}]
        )
    configuration = volcenginesdkcore.Configuration()
    configuration.ak, configuration.sk, configuration.region = "AKLTunknown", SK, "cn-beijing"
    configuration.host = fake.url
    with pytest.raises(ApiException) as caught:
        volcenginesdkark.ARKApi(volcenginesdkcore.ApiClient(configuration)).get_api_key(
            volcenginesdkark.GetApiKeyRequest(
                duration_seconds=3600, resource_type="endpoint", resource_ids=[CHAT]
            )
        )
    assert caught.value.status == 401
    assert "InvalidAccessKey" in caught.value.body
