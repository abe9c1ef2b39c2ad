"""SageMakerAdapter against the SageMaker fake: SigV4, the chat container (JSON and the PayloadPart
event stream), tools, embeddings, rerank, validation, and each failure as a typed error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, ToolCall, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.sagemaker import SageMakerAdapter
from tests.fakes.aws_server import event, exception
from tests.fakes.base import Reply, embed_text
from tests.fakes.sagemaker_server import SageMakerFake

ACCESS_KEY, SECRET = "AKIDSAGEMAKER0000001", "sagemaker/secret+key/00000000000000000001"
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)


@pytest.fixture(scope="module")
def fake():
    with SageMakerFake({ACCESS_KEY: SECRET}, region="eu-central-1") as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(fake):
    fake.reset()
    yield
    fake.reset()


def adapter(
    fake, endpoint="chat-endpoint", *, retry=FAST_RETRY, read=5.0, options=None, **credentials
) -> SageMakerAdapter:
    given = {
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
        "region": "eu-central-1",
        "deployment": endpoint,
        "endpoint_model_name": "Qwen/Qwen3-8B",
        **credentials,
    }
    where = Endpoint(
        base_url=fake.url,
        credentials={k: v for k, v in given.items() if v is not None},
        options={"service": "sagemaker", **(options or {})},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
        secret_names=frozenset({"access_key_id", "secret_access_key"}),
    )
    return SageMakerAdapter(where, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_chat_sends_difys_payload_to_the_endpoint(fake) -> None:
    result = adapter(fake).chat("my-qwen", ask("hello world", parameters={"temperature": 0.3}))
    assert (result.text, result.finish_reason) == ("You said: hello world", "stop")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.counted) == (
        4, 4, False,
    )  # fmt: skip
    sent = fake.received[-1]
    assert sent.path == "/endpoints/chat-endpoint/invocations"
    assert sent.json() == {
        "model": "Qwen/Qwen3-8B",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello world"},
        ],
        "stream": False,
        "max_tokens": 2048,
        "temperature": 0.3,
    }
    header = sent.header("authorization")
    assert header.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-central-1/sagemaker/aws4_request" in header


def test_streaming_reads_sse_lines_split_across_payload_parts(fake) -> None:
    chunks = list(adapter(fake).stream("my-qwen", ask("a b c d e f")))
    sent = fake.received[-1]
    assert sent.path == "/endpoints/chat-endpoint/invocations-response-stream"
    assert sent.json()["stream"] is True
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d e f"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.counted) == (8, False)


def test_tools_only_when_the_container_takes_them(fake) -> None:
    request = ask("weather?", tools=(Tool("search", "find"),))
    plain = adapter(fake).chat("m", request)
    assert plain.text == "You said: weather?"
    assert "tools" not in fake.received[-1].json()
    calling = adapter(fake, options={"function_calling_type": "tool_call"})
    called = calling.chat("m", request)
    assert [c.name for c in called.tool_calls] == ["search"]
    assert json.loads(called.tool_calls[0].arguments) == {"query": "weather?"}
    assert fake.received[-1].json()["tools"][0]["function"]["name"] == "search"
    streamed = accumulate(calling.stream("m", request))
    assert streamed.tool_calls == called.tool_calls
    assert streamed.finish_reason == "tool_calls"
    answered = calling.chat(
        "m",
        ChatRequest(
            messages=(
                Message("user", "weather?"),
                Message("assistant", "", tool_calls=(ToolCall("call_1", "search", "{}"),)),
                Message("tool", "sunny", tool_call_id="call_1"),
            ),
            tools=(Tool("search"),),
        ),
    )
    assert answered.text == "Tool said: sunny"
    adapter(fake, options={"function_calling_type": "function_call"}).chat("m", request)
    assert fake.received[-1].json()["functions"][0]["name"] == "search"


def test_embeddings_by_20_with_is_query(fake) -> None:
    texts = [f"text {i}" for i in range(45)]
    before = len(fake.received)
    result = adapter(fake, "embed-endpoint").embed("bge", texts)
    sent = [r.json() for r in fake.received[before:]]
    assert [len(b["inputs"]) for b in sent] == [20, 20, 5]
    assert sent[0] == {"inputs": texts[:20], "parameters": {}, "is_query": False, "instruction": ""}
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    assert result.usage.counted
    adapter(fake, "embed-endpoint").embed("bge", ["q"], input_type="query")
    assert fake.received[-1].json()["is_query"] is True


def test_rerank_sorts_scores_and_takes_a_lone_number(fake) -> None:
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    result = adapter(fake, "rerank-endpoint").rerank("bge-rr", "capital of France", docs, top_n=2)
    assert [h.index for h in result.hits] == [1, 2]
    assert fake.received[-1].json() == {"inputs": ["capital of France"] * 3, "docs": docs}
    single = adapter(fake, "rerank-endpoint").rerank("bge-rr", "Paris", ["Paris"])
    assert [(h.index, h.score) for h in single.hits] == [(0, 1.0)]


@pytest.mark.parametrize(
    ("endpoint", "model_type", "detail"),
    [
        ("chat-endpoint", "llm", "model"),
        ("embed-endpoint", "text-embedding", "dimensions"),
        ("rerank-endpoint", "rerank", "documents_ranked"),
    ],
)
def test_validation_makes_a_real_call(fake, endpoint, model_type, detail) -> None:
    assert detail in adapter(fake, endpoint).validate("m", model_type).details
    if model_type == "llm":
        assert fake.received[-1].json()["max_tokens"] == 1


def test_errors(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="Endpoint nope of account"):
        adapter(fake, "nope").chat("m", ask("x"))
    with pytest.raises(errors.UpstreamBadRequest, match="ModelError"):
        adapter(fake, "embed-endpoint").chat("m", ask("x"))  # the container refuses the body
    with pytest.raises(errors.UpstreamAuth, match="signature we calculated"):
        adapter(fake, secret_access_key="wrong").chat("m", ask("x"))
    with pytest.raises(errors.InvalidInput, match="access key"):
        adapter(fake, access_key_id=None).chat("m", ask("x"))


def test_retries(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    assert adapter(fake).chat("m", ask("x")).text == "You said: x"
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable, match="InternalFailure"):
        adapter(fake, "embed-endpoint").embed("m", ["a"])
    assert len(fake.received) - before == 3


def test_stream_failures() -> None:
    part = event(
        "PayloadPart",
        b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n',
        "application/octet-stream",
    )
    broken = exception("ModelStreamError", {"Message": "stream broke", "ErrorCode": "StreamBroken"})
    with SageMakerFake({ACCESS_KEY: SECRET}, region="eu-central-1") as other:
        replies = iter([part, part + broken])
        other.route(
            "POST",
            "/endpoints/{name}/invocations-response-stream",
            lambda request: Reply(
                body=next(replies), content_type="application/vnd.amazon.eventstream"
            ),
        )
        other._routes.reverse()
        with pytest.raises(errors.UpstreamConnection, match="finish_reason"):
            list(adapter(other).stream("m", ask("x")))
        with pytest.raises(errors.UpstreamConnection, match="stream broke"):
            list(adapter(other).stream("m", ask("x")))


def test_timeout_and_dropped_stream(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat("m", ask("x"))
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream("m", ask("one two three four five six seven")))


def test_a_role_is_assumed_once_and_its_credentials_sign(fake) -> None:
    role = "arn:aws:iam::210987654321:role/Invoke-once"
    fake.serve_sts([role])
    assumed = fake.assumed
    roled = adapter(fake, assume_role_arn=role, options={"sts_base_url": fake.url})
    assert roled.chat("m", ask("one")).text == "You said: one"
    assert roled.chat("m", ask("two")).text == "You said: two"
    assert fake.assumed - assumed == 1  # the second call reused the credentials
    exchange = next(r for r in reversed(fake.received) if r.path == "/")
    assert f"Credential={ACCESS_KEY}/" in exchange.header("authorization")
    assert "/eu-central-1/sts/aws4_request" in exchange.header("authorization")
    assert f"RoleArn={role.replace(':', '%3A').replace('/', '%2F')}" in exchange.body.decode()
    call = fake.received[-1]
    assert "Credential=ASIA" in call.header("authorization")
    assert call.header("x-amz-security-token").startswith("IQoJb3JpZ2luX2Vj")


def test_an_expired_role_session_is_assumed_again(fake) -> None:
    role = "arn:aws:iam::210987654321:role/Invoke-expiring"
    fake.serve_sts([role])
    roled = adapter(fake, assume_role_arn=role, options={"sts_base_url": fake.url})
    roled.chat("m", ask("x"))
    temporary = fake.received[-1].header("authorization").split("Credential=")[1].split("/")[0]
    token, _ = fake.sessions[temporary]
    fake.sessions[temporary] = (token, datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(errors.UpstreamAuth, match="expired") as caught:
        roled.chat("m", ask("x"))
    assert token not in str(caught.value)
    assumed = fake.assumed
    assert roled.chat("m", ask("again")).text == "You said: again"
    assert fake.assumed == assumed + 1


def test_a_role_the_keys_may_not_assume(fake) -> None:
    roled = adapter(
        fake, assume_role_arn="arn:aws:iam::1:role/Nope", options={"sts_base_url": fake.url}
    )
    with pytest.raises(errors.UpstreamAuth, match=r"AccessDenied: .*sts:AssumeRole"):
        roled.chat("m", ask("x"))


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-west-2", "https://runtime.sagemaker.us-west-2.amazonaws.com"),
        ("cn-north-1", "https://runtime.sagemaker.cn-north-1.amazonaws.com.cn"),
    ],
)
def test_the_regional_base_url(region, expected) -> None:
    where = Endpoint(
        base_url="https://runtime.sagemaker.us-east-1.amazonaws.com",
        credentials={"region": region},
        options={"regional_base_url": "https://runtime.sagemaker.{region}.amazonaws.com"},
    )
    assert SageMakerAdapter(where, http.pool()).http.base_url == expected
