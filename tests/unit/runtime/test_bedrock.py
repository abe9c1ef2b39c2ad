"""BedrockAdapter against the Bedrock fake: SigV4 and Bearer auth, Converse and ConverseStream
(binary event stream) with tools, Titan and Cohere embeddings, validation on a real call, and
each failure mode ending as a typed error after bounded retries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from config import errors
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
from providers.runtime.bedrock import BedrockAdapter
from providers.runtime.http import RetryPolicy, Timeouts
from tests.fakes.aws_server import event
from tests.fakes.base import Reply, embed_text
from tests.fakes.bedrock_server import BedrockFake

ACCESS_KEY, SECRET = "AKIDBEDROCKTEST00001", "bedrock/secret+key/0000000000000000000001"
API_KEY = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl"
CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-multilingual-v3"
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)


@pytest.fixture(scope="module")
def fake():
    with BedrockFake({ACCESS_KEY: SECRET}, api_keys=(API_KEY,), region="eu-west-1") as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(fake):
    fake.reset()
    yield
    fake.reset()


def adapter(fake, *, retry=FAST_RETRY, read=5.0, **credentials) -> BedrockAdapter:
    given = {
        "auth_method": "Access_Secret_Key",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
        "region": "eu-west-1",
        "base_url": fake.url,
        **credentials,
    }
    endpoint = Endpoint(
        base_url="https://bedrock-runtime.us-east-1.amazonaws.com",
        credentials={k: v for k, v in given.items() if v is not None},
        options={"service": "bedrock"},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
        secret_names=frozenset({"access_key_id", "secret_access_key", "api_key"}),
    )
    return BedrockAdapter(endpoint, http.pool())


def ask(text: str, **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "be brief"), Message("user", text)), **kwargs)


def test_converse_sends_the_documented_body_and_reads_usage(fake) -> None:
    request = ask(
        "hello world",
        parameters={"max_tokens": 50, "temperature": 0.2, "top_p": 0.9, "top_k": 40},
        stop=("STOP",),
    )
    result = adapter(fake).chat(CLAUDE, request)
    assert (result.text, result.finish_reason) == ("You said: hello world", "stop")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    assert not result.usage.counted
    sent = fake.received[-1]
    assert sent.path == "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    assert sent.json() == {
        "messages": [{"role": "user", "content": [{"text": "hello world"}]}],
        "system": [{"text": "be brief"}],
        "inferenceConfig": {
            "maxTokens": 50,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["STOP"],
        },
        "additionalModelRequestFields": {"top_k": 40},
    }


def test_the_request_is_signed_with_sigv4_for_bedrock(fake) -> None:
    adapter(fake).chat(NOVA, ask("hi"))
    header = fake.received[-1].header("authorization")
    assert header.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-west-1/bedrock/aws4_request" in header
    assert "host" in header.split("SignedHeaders=")[1].split(",")[0].split(";")


def test_a_retried_call_is_signed_again(fake) -> None:
    fake.fail("500", times=2)
    assert adapter(fake).chat(NOVA, ask("hi")).text == "You said: hi"  # the fake checked it
    attempts = fake.received[-3:]
    assert all(r.header("authorization").startswith("AWS4-HMAC-SHA256") for r in attempts)
    assert all(r.header("x-amz-date") for r in attempts)


def test_finish_reasons(fake) -> None:
    short = adapter(fake).chat(NOVA, ask("one two three", parameters={"max_tokens": 2}))
    assert (short.text, short.finish_reason) == ("You said:", "length")
    stopped = adapter(fake).chat(NOVA, ask("one two three", stop=(" two",)))
    assert (stopped.text, stopped.finish_reason) == ("You said: one", "stop")


def test_streaming_decodes_the_event_stream(fake) -> None:
    chunks = list(adapter(fake).stream(CLAUDE, ask("a b c d")))
    assert len([c for c in chunks if c.text]) > 3
    assert fake.received[-1].path.endswith("/converse-stream")
    result = accumulate(iter(chunks))
    assert result.text == "You said: a b c d"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 6)


def test_tool_calls_complete_and_streamed(fake) -> None:
    tools = (Tool("search", "find things", {"type": "object", "properties": {}}), Tool("lookup"))
    request = ask("weather in Paris?", tools=tools)
    result = adapter(fake).chat(NOVA, request)
    assert result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["search", "lookup"]
    assert json.loads(result.tool_calls[0].arguments) == {"query": "weather in Paris?"}
    config = fake.received[-1].json()["toolConfig"]
    assert config["tools"][0] == {
        "toolSpec": {
            "name": "search",
            "description": "find things",
            "inputSchema": {"json": {"type": "object", "properties": {}}},
        }
    }
    assert "toolChoice" not in config
    streamed = accumulate(adapter(fake).stream(NOVA, request))
    assert streamed.tool_calls == result.tool_calls
    assert streamed.finish_reason == "tool_calls"


def test_tool_results_round_trip(fake) -> None:
    call = ToolCall("tooluse_1", "search", '{"query": "weather"}')
    request = ChatRequest(
        messages=(
            Message("user", "weather?"),
            Message("assistant", "I will search.", tool_calls=(call,)),
            Message("tool", "sunny, 21C", tool_call_id="tooluse_1"),
        ),
        tools=(Tool("search"),),
        tool_choice="none",  # tool blocks in the conversation: the toolConfig must stay
    )
    result = adapter(fake).chat(CLAUDE, request)
    assert result.text == "Tool said: sunny, 21C"
    _, assistant, tool = fake.received[-1].json()["messages"]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"text": "I will search."},
            {
                "toolUse": {
                    "toolUseId": "tooluse_1",
                    "name": "search",
                    "input": {"query": "weather"},
                }
            },
        ],
    }
    assert tool == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "sunny, 21C"}]}}
        ],
    }


def test_tool_choice(fake) -> None:
    tools = (Tool("search"), Tool("lookup"))
    plain = adapter(fake).chat(NOVA, ask("hi", tools=tools, tool_choice="none"))
    assert plain.text == "You said: hi"
    assert "toolConfig" not in fake.received[-1].json()
    named = adapter(fake).chat(NOVA, ask("hi", tools=tools, tool_choice="lookup"))
    assert [c.name for c in named.tool_calls] == ["lookup"]
    assert fake.received[-1].json()["toolConfig"]["toolChoice"] == {"tool": {"name": "lookup"}}
    adapter(fake).chat(NOVA, ask("hi", tools=tools, tool_choice="required"))
    assert fake.received[-1].json()["toolConfig"]["toolChoice"] == {"any": {}}


def test_consecutive_turns_merge_and_images_are_bytes(fake) -> None:
    image = Message(
        "user",
        (
            ContentPart("text", text="what is it"),
            ContentPart("image", image_url="data:image/jpeg;base64,AAAA"),
        ),
    )
    request = ChatRequest(messages=(Message("user", "look"), image))
    result = adapter(fake).chat(NOVA, request)
    assert result.text == "You said: look what is it [1 file(s)]"
    (turn,) = fake.received[-1].json()["messages"]
    assert turn["content"][2] == {"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}}
    web = Message("user", (ContentPart("image", image_url="https://example.com/cat.png"),))
    with pytest.raises(errors.InvalidInput, match="data: URLs"):
        adapter(fake).chat(NOVA, ChatRequest(messages=(web,)))


def test_cross_region_and_inference_profiles_pick_the_model_id(fake) -> None:
    adapter(fake).chat(CLAUDE, ask("x", parameters={"cross_region": "geographic"}))
    assert (
        fake.received[-1].path == "/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    )
    assert "cross_region" not in json.dumps(fake.received[-1].json())
    adapter(fake).chat(CLAUDE, ask("x", parameters={"cross_region": "global"}))
    assert fake.received[-1].path.startswith("/model/global.anthropic.")
    adapter(fake).chat("us.amazon.nova-pro-v1:0", ask("x", parameters={"cross_region": "global"}))
    assert fake.received[-1].path.startswith("/model/us.amazon.nova")  # already a profile
    arn = "arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/0j6r4a8fn6ze"
    with pytest.raises(errors.UpstreamNotFound, match="model identifier is invalid"):
        adapter(fake, deployment=arn).chat("my-claude", ask("x"))
    assert fake.received[-1].path == (
        "/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Aapplication-inference-profile"
        "%2F0j6r4a8fn6ze/converse"
    )


def test_bearer_api_key_mode(fake) -> None:
    keyed = adapter(fake, auth_method="API_Key", api_key=API_KEY, access_key_id=None)
    assert keyed.chat(NOVA, ask("hi")).text == "You said: hi"
    assert fake.received[-1].header("authorization") == f"Bearer {API_KEY}"
    wrong = adapter(fake, auth_method="API_Key", api_key="ABSKwrong")
    with pytest.raises(errors.UpstreamAuth, match="API Key is valid") as caught:
        wrong.chat(NOVA, ask("hi"))
    assert "ABSKwrong" not in str(caught.value)


def test_iam_role_and_proxy_are_refused_clearly(fake) -> None:
    before = len(fake.received)
    with pytest.raises(errors.InvalidInput, match="IAM role"):
        adapter(fake, auth_method="IAM_Role", access_key_id=None, secret_access_key=None).chat(
            NOVA, ask("hi")
        )
    with pytest.raises(errors.InvalidInput, match="proxy"):
        adapter(fake, proxy_url="127.0.0.1:7890").chat(NOVA, ask("hi"))
    with pytest.raises(errors.InvalidInput, match="access key"):
        adapter(fake, secret_access_key="").embed(TITAN, ["a"])
    assert len(fake.received) == before  # nothing was sent


@pytest.mark.parametrize(
    ("credentials", "words"),
    [
        ({"secret_access_key": "wrong-secret-key"}, "signature we calculated"),
        ({"access_key_id": "AKIDUNKNOWN000000000"}, "security token"),
        ({"region": "us-west-2"}, "valid region"),
    ],
)
def test_wrong_credentials_are_authorization_errors(fake, credentials, words) -> None:
    before = len(fake.received)
    with pytest.raises(errors.UpstreamAuth, match=words) as caught:
        adapter(fake, **credentials).chat(NOVA, ask("hi"))
    assert len(fake.received) - before == 1  # not retried
    assert "wrong-secret-key" not in str(caught.value)
    assert "Signature=" not in str(caught.value)


def test_a_clock_off_by_more_than_five_minutes_is_refused(fake) -> None:
    fake.skew = timedelta(minutes=10)
    try:
        with pytest.raises(errors.UpstreamAuth, match="Signature expired"):
            adapter(fake).chat(NOVA, ask("hi"))
    finally:
        fake.skew = timedelta(0)


def test_titan_embeds_one_text_a_call_with_its_token_count(fake) -> None:
    before = len(fake.received)
    result = adapter(fake).embed(TITAN, ["hello world", "again"])
    assert [r.json() for r in fake.received[before:]] == [
        {"inputText": "hello world"},
        {"inputText": "again"},
    ]
    assert [list(v) for v in result.vectors] == [embed_text("hello world"), embed_text("again")]
    assert (result.usage.prompt_tokens, result.usage.counted) == (3, False)


def test_cohere_embeds_by_96_with_input_type(fake) -> None:
    texts = [f"text {i}" for i in range(100)]
    before = len(fake.received)
    result = adapter(fake).embed(COHERE, texts)
    sent = [r.json() for r in fake.received[before:]]
    assert [len(b["texts"]) for b in sent] == [96, 4]
    assert sent[0]["input_type"] == "search_document"
    assert sent[0]["embedding_types"] == ["float"]
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    assert (result.usage.prompt_tokens, result.usage.counted) == (200, False)  # from the header
    adapter(fake).embed("cohere.embed-v4:0", ["a"], input_type="query")
    assert fake.received[-1].json()["input_type"] == "search_query"
    with pytest.raises(errors.InvalidInput, match="no embedding model"):
        adapter(fake).embed("meta.llama3", ["a"])


def test_validation_makes_a_real_call_on_the_validation_model(fake) -> None:
    result = adapter(fake).validate(CLAUDE, "llm")
    assert result.details == {"model": CLAUDE}
    assert fake.received[-1].json()["inferenceConfig"] == {"maxTokens": 1}
    adapter(fake, validate_model=NOVA).validate(CLAUDE, "llm")
    assert fake.received[-1].path.startswith("/model/amazon.nova-pro")
    embedded = adapter(fake, validate_model=TITAN).validate(CLAUDE, "llm")
    assert embedded.details == {"dimensions": 8}
    assert adapter(fake).validate(COHERE, "text-embedding").details == {"dimensions": 8}
    with pytest.raises(errors.UpstreamAuth):
        adapter(fake, secret_access_key="wrong").validate(CLAUDE, "llm")


def test_bad_requests_and_unknown_models(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="ValidationException"):
        adapter(fake).chat("anthropic.nope-v1:0", ask("x"))
    with pytest.raises(errors.UpstreamBadRequest, match="doesn't support the model"):
        adapter(fake).chat(TITAN, ask("x"))
    with pytest.raises(errors.UpstreamBadRequest, match=r"inferenceConfig\.maxTokens"):
        adapter(fake).chat(NOVA, ask("x", parameters={"max_tokens": 0}))


def test_429_is_retried_then_succeeds_and_retries_are_bounded(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(NOVA, ask("x")).text == "You said: x"
    assert len(fake.received) - before == 3
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited, match="ThrottlingException"):
        adapter(fake).chat(NOVA, ask("x"))
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable, match="InternalServerException"):
        adapter(fake).embed(TITAN, ["a"])
    assert len(fake.received) - before == 3


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (424, "ModelErrorException", errors.UpstreamUnavailable),
        (429, "ModelNotReadyException", errors.UpstreamUnavailable),
        (408, "ModelTimeoutException", errors.UpstreamTimeout),
        (400, "ServiceQuotaExceededException", errors.UpstreamRateLimited),
        (403, "AccessDeniedException", errors.UpstreamAuth),
        (404, "ResourceNotFoundException", errors.UpstreamNotFound),
        (403, "IncompleteSignatureException", errors.UpstreamAuth),  # a name not listed
    ],
)
def test_aws_error_types_refine_the_status(status, error_type, expected) -> None:
    with BedrockFake({ACCESS_KEY: SECRET}, region="eu-west-1") as other:
        reply = Reply(status, {"message": "no"}, headers={"x-amzn-ErrorType": f"{error_type}:ns/"})
        other.route("POST", "/model/{model}/converse", lambda request: reply)
        other._routes.reverse()  # ours first
        with pytest.raises(expected, match=error_type) as caught:
            adapter(other, retry=RetryPolicy(attempts=1)).chat(NOVA, ask("x"))
    assert type(caught.value) is expected


def test_an_exception_frame_mid_stream_is_typed(fake) -> None:
    fake.fail("throttle_stream")
    with pytest.raises(errors.UpstreamRateLimited, match="throttlingException"):
        list(adapter(fake).stream(NOVA, ask("x")))


def test_a_stream_without_message_stop_or_with_a_bad_crc_is_an_error() -> None:
    frames = event("messageStart", {"role": "assistant"}) + event(
        "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}
    )
    damaged = frames[:-1] + bytes([frames[-1] ^ 1])
    with BedrockFake({ACCESS_KEY: SECRET}, region="eu-west-1") as other:
        replies = iter([frames, damaged, frames[:-5]])
        other.route(
            "POST",
            "/model/{model}/converse-stream",
            lambda request: Reply(
                body=next(replies), content_type="application/vnd.amazon.eventstream"
            ),
        )
        other._routes.reverse()
        with pytest.raises(errors.UpstreamConnection, match="messageStop"):
            list(adapter(other).stream(NOVA, ask("x")))
        with pytest.raises(errors.UpstreamUnavailable, match="damaged"):
            list(adapter(other).stream(NOVA, ask("x")))
        with pytest.raises(errors.UpstreamConnection, match="middle of a frame"):
            list(adapter(other).stream(NOVA, ask("x")))


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(NOVA, ask("x"))


def test_a_dropped_connection_and_a_dropped_stream(fake) -> None:
    fake.fail("drop", times=3)
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake).chat(NOVA, ask("x"))
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(NOVA, ask("one two three four five")))


def test_the_regional_base_url() -> None:
    endpoint = Endpoint(
        base_url="https://bedrock-runtime.us-east-1.amazonaws.com",
        credentials={"region": "ap-northeast-1"},
        options={"regional_base_url": "https://bedrock-runtime.{region}.amazonaws.com"},
    )
    assert BedrockAdapter(endpoint, http.pool()).http.base_url == (
        "https://bedrock-runtime.ap-northeast-1.amazonaws.com"
    )
