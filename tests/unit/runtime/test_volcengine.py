"""VolcengineAdapter against the Ark fake: an API key or AK/SK (a V4-signed GetApiKey exchange,
its key cached and renewed), chat, streaming, tools, embeddings (text and multimodal),
validation, and each failure mode ending as a typed error."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.volcengine import VolcengineAdapter, canonical_query
from tests.fakes.base import Reply, embed_text
from tests.fakes.volcengine_server import ArkFake

API_KEY = "0a1b2c3d-unit-ark-api-key"
CHAT, EMBED, VISION = (
    "ep-20250101000000-chat01",
    "ep-20250101000000-embed1",
    "ep-20250101000000-vision",
)
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def fake():
    with ArkFake(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def access(fake) -> tuple[str, str]:
    """An AK/SK pair of its own (exchanged keys are cached per credentials, process-wide)."""
    pair = (f"AKLTunit{next(_numbers):08d}", f"secret-{time.time_ns()}")
    fake.access_keys[pair[0]] = pair[1]
    return pair


def adapter(
    fake,
    *,
    access: tuple[str, str] | None = None,
    key: str = API_KEY,
    endpoint_id: str = CHAT,
    base_model: str = "Doubao-Seed-1.6",
    retry: RetryPolicy = FAST_RETRY,
    read: float = 5.0,
    **options,
) -> VolcengineAdapter:
    credentials = {
        "auth_method": "aksk" if access else "api_key",
        "region": "cn-beijing",
        "base_url": f"{fake.url}/api/v3",
        "endpoint_model_name": endpoint_id,
        "base_model": base_model,
    }
    if access:
        credentials.update(access_key_id=access[0], secret_access_key=access[1])
    else:
        credentials["api_key"] = key
    endpoint = Endpoint(
        base_url="https://ark.cn-beijing.volces.com/api/v3",
        credentials=credentials,
        options={"openapi_base_url": fake.url, **options},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return VolcengineAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def exchanges(fake, since: int) -> list:
    return [r for r in fake.received[since:] if r.path == "/"]


# --- an API key ---------------------------------------------------------------------------------


def test_chat_sends_the_endpoint_id_as_model_with_the_api_key(fake) -> None:
    result = adapter(fake).chat("my-doubao", ask("hello world", parameters={"top_p": 0.5}))
    assert result.text == "You said: hello world"
    sent = fake.received[-1]
    assert sent.path == "/api/v3/chat/completions"
    assert sent.header("authorization") == f"Bearer {API_KEY}"
    assert sent.json() == {
        "model": CHAT,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello world"},
        ],
        "top_p": 0.5,
    }


def test_streaming_and_tool_calls(fake) -> None:
    result = accumulate(adapter(fake).stream("my-doubao", ask("a b c")))
    assert result.text == "You said: a b c"
    assert (result.usage.completion_tokens, result.usage.counted) == (5, False)
    request = ask("weather?", tools=(Tool("search", "find things"),))
    called = adapter(fake).chat("my-doubao", request)
    assert [c.name for c in called.tool_calls] == ["search"]
    assert json.loads(called.tool_calls[0].arguments) == {"query": "weather"}
    assert accumulate(adapter(fake).stream("my-doubao", request)).tool_calls == called.tool_calls


def test_completion_mode_still_chats(fake) -> None:
    """Ark has no /completions: Dify's `mode` field changes nothing on the wire."""
    result = adapter(fake, mode="completion").chat("my-doubao", ask("x"))
    assert result.text == "You said: x"
    assert fake.received[-1].path == "/api/v3/chat/completions"


def test_embeddings_go_32_a_request(fake) -> None:
    texts = [f"text {i}" for i in range(70)]
    before = len(fake.received)
    result = adapter(fake, endpoint_id=EMBED).embed("my-embedder", texts)
    assert [len(r.json()["input"]) for r in fake.received[before:]] == [32, 32, 6]
    assert {r.json()["model"] for r in fake.received[before:]} == {EMBED}
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    assert result.usage.prompt_tokens == 140


def test_a_vision_embedder_embeds_one_text_a_call_through_multimodal(fake) -> None:
    vision = adapter(fake, endpoint_id=VISION, base_model="Doubao-embedding-vision")
    before = len(fake.received)
    result = vision.embed("my-vision", ["a cat", "a dog"])
    sent = fake.received[before:]
    assert [r.path for r in sent] == ["/api/v3/embeddings/multimodal"] * 2
    assert sent[0].json() == {"model": VISION, "input": [{"type": "text", "text": "a cat"}]}
    assert [list(v) for v in result.vectors] == [embed_text("a cat"), embed_text("a dog")]
    assert (result.usage.prompt_tokens, result.usage.counted) == (4, False)


def test_validation_uses_difys_prompt_and_16_tokens(fake) -> None:
    assert adapter(fake).validate("my-doubao", "llm").details == {"model": CHAT}
    sent = fake.received[-1].json()
    assert sent["messages"] == [{"role": "user", "content": "ping"}]
    assert sent["max_tokens"] == 16
    adapter(fake, validate_prompt="ping\nAnswer: ", validate_max_tokens=16).validate("m", "llm")
    assert fake.received[-1].json()["messages"][0]["content"] == "ping\nAnswer: "
    embedder = adapter(fake, endpoint_id=EMBED)
    assert embedder.validate("my-embedder", "text-embedding").details == {"dimensions": 8}


def test_a_wrong_api_key_is_authorization(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match=r"AuthenticationError") as caught:
        adapter(fake, key="0a1b2c3d-wrong-ark-key").chat("m", ask("x"))
    assert "0a1b2c3d-wrong-ark-key" not in str(caught.value)


def test_an_unknown_endpoint_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match=r"InvalidEndpointOrModel\.NotFound"):
        adapter(fake, endpoint_id="ep-20250101000000-nope00").chat("m", ask("x"))


def test_an_overdue_account_is_a_quota() -> None:
    overdue = {
        "error": {
            "code": "AccountOverdueError",
            "message": "The request failed because your account has an overdue balance.",
            "param": "", "type": "Forbidden",
        }
    }  # fmt: skip
    with ArkFake(api_key=API_KEY) as other:
        other.route("POST", "/api/v3/chat/completions", lambda request: Reply(403, overdue))
        other._routes.reverse()  # ours first
        with pytest.raises(errors.UpstreamQuota, match="overdue balance"):
            adapter(other).chat("m", ask("x"))


def test_429_is_retried_and_5xx_retried_then_unavailable(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat("m", ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3
    fake.fail("500", times=3)
    with pytest.raises(errors.UpstreamUnavailable, match="InternalServiceError"):
        adapter(fake).chat("m", ask("x"))


def test_a_slow_backend_times_out_and_a_dropped_stream_is_an_error(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat("m", ask("x"))
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream("m", ask("one two three four five")))


def test_the_base_url_defaults_and_the_old_maas_host_means_v3() -> None:
    def base(url: str) -> str:
        endpoint = Endpoint(
            base_url="https://ark.cn-beijing.volces.com/api/v3",
            credentials={"api_key": "k", "base_url": url},
        )
        return VolcengineAdapter(endpoint, http.pool()).http.base_url

    assert base("") == "https://ark.cn-beijing.volces.com/api/v3"
    assert base("maas-api.ml-platform-cn-beijing.volces.com") == (
        "https://ark.cn-beijing.volces.com/api/v3"
    )
    assert base("https://ark.ap-southeast.bytepluses.com/api/v3/") == (
        "https://ark.ap-southeast.bytepluses.com/api/v3"
    )


# --- AK/SK ------------------------------------------------------------------------------------


def test_aksk_exchanges_one_signed_key_for_many_calls(fake, access) -> None:
    before = len(fake.received)
    first = adapter(fake, access=access)
    assert first.chat("m", ask("one")).text == "You said: one"
    assert adapter(fake, access=access).chat("m", ask("two")).text == "You said: two"
    (exchange,) = exchanges(fake, before)
    assert exchange.query == {"Action": ["GetApiKey"], "Version": ["2024-01-01"]}
    assert exchange.json() == {
        "DurationSeconds": 604800,
        "ResourceType": "endpoint",
        "ResourceIds": [CHAT],
    }
    signed = exchange.header("authorization")
    assert signed.startswith(f"HMAC-SHA256 Credential={access[0]}/")
    assert "/cn-beijing/ark/request, SignedHeaders=content-type;host;x-content-sha256;x-date," in (
        signed
    )
    token = fake.received[-1].header("authorization").removeprefix("Bearer ")
    assert fake.issued[token][0] == {CHAT}
    assert access[1] not in signed


def test_each_endpoint_gets_its_own_key(fake, access) -> None:
    before = len(fake.received)
    adapter(fake, access=access).chat("m", ask("x"))
    adapter(fake, access=access, endpoint_id=EMBED).embed("e", ["a"])
    assert [r.json()["ResourceIds"] for r in exchanges(fake, before)] == [[CHAT], [EMBED]]


def test_a_refused_key_is_forgotten_and_exchanged_again(fake, access) -> None:
    adapter(fake, access=access).chat("m", ask("x"))
    fake.expire_keys()
    with pytest.raises(errors.UpstreamAuth, match="AuthenticationError"):
        adapter(fake, access=access).chat("m", ask("x"))
    before = len(fake.received)
    assert adapter(fake, access=access).chat("m", ask("again")).text == "You said: again"
    assert len(exchanges(fake, before)) == 1


def test_a_key_is_renewed_before_it_expires(access) -> None:
    with ArkFake(api_key=None, access_keys=dict([access]), key_lifetime=2) as short:
        before = len(short.received)
        adapter(short, access=access).chat("m", ask("x"))
        adapter(short, access=access).chat("m", ask("x"))
        assert len(exchanges(short, before)) == 1
        time.sleep(1.1)  # past half its 2 s life: renewed before Ark refuses it
        assert adapter(short, access=access).chat("m", ask("y")).text == "You said: y"
        assert len(exchanges(short, before)) == 2


def test_a_wrong_secret_is_authorization(fake, access) -> None:
    with pytest.raises(errors.UpstreamAuth, match="SignatureDoesNotMatch") as caught:
        adapter(fake, access=(access[0], "not-the-secret")).chat("m", ask("x"))
    assert "not-the-secret" not in str(caught.value)


def test_an_unknown_access_key_is_authorization_and_masked(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match="InvalidAccessKey") as caught:
        adapter(fake, access=("AKLTnobody0000001", "s3cr3t-value")).chat("m", ask("x"))
    assert "AKLTnobody0000001" not in str(caught.value)  # the gateway quotes it
    assert "***" in caught.value.message


def test_an_error_in_a_200_get_api_key_reply_is_typed(access) -> None:
    error = {"Code": "AccessDenied", "Message": "no ark:GetApiKey"}
    refusal = {"ResponseMetadata": {"RequestId": "r", "Action": "GetApiKey", "Error": error}}
    with ArkFake(api_key=None, access_keys=dict([access])) as other:
        other.route("POST", "/", lambda request: Reply(200, refusal))
        other._routes.reverse()
        with pytest.raises(errors.UpstreamAuth, match="no ark:GetApiKey"):
            adapter(other, access=access).chat("m", ask("x"))


def test_aksk_needs_an_endpoint_id(fake, access) -> None:
    before = len(fake.received)
    with pytest.raises(errors.InvalidInput, match="endpoint ID"):
        adapter(fake, access=access, endpoint_id="doubao-seed-1-6-250615").chat("m", ask("x"))
    assert len(fake.received) == before
    with pytest.raises(errors.InvalidInput, match="Secret Access Key"):
        adapter(fake, access=(access[0], "")).chat("m", ask("x"))


def test_the_canonical_query_sorts_escaped_pairs() -> None:
    assert canonical_query("Version=2024-01-01&Action=GetApiKey") == (
        "Action=GetApiKey&Version=2024-01-01"
    )
    assert canonical_query("b=a b&a-b=1&a=%2F") == "a=%2F&a-b=1&b=a%20b"
