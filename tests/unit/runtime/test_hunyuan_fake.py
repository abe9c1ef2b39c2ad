"""The Hunyuan fake is trusted because the official `tencentcloud-sdk-python-hunyuan` client (its
own TC3 signing, JSON and SSE handling) talks to it successfully and gets Tencent's error codes."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from tencentcloud.common import abstract_client
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.hunyuan.v20230901 import hunyuan_client, models

from tests.fakes.hunyuan_server import HunyuanFake

SECRET_ID, SECRET_KEY = "AKIDfake-secret-id", "fake-secret-key"
TOOL = {
    "Type": "function",
    "Function": {
        "Name": "search",
        "Description": "find things",
        "Parameters": json.dumps({"type": "object", "properties": {"query": {"type": "string"}}}),
    },
}


@pytest.fixture(scope="module")
def fake():
    with HunyuanFake(SECRET_ID, SECRET_KEY) as server:
        yield server


def client(fake, secret_id=SECRET_ID, secret_key=SECRET_KEY) -> hunyuan_client.HunyuanClient:
    endpoint = fake.url.removeprefix("http://")
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint))
    return hunyuan_client.HunyuanClient(Credential(secret_id, secret_key), "ap-guangzhou", profile)


def ask(**params) -> models.ChatCompletionsRequest:
    request = models.ChatCompletionsRequest()
    request.from_json_string(json.dumps({"Model": "hunyuan-turbos-latest", **params}))
    return request


def test_chat_and_usage(fake) -> None:
    reply = client(fake).ChatCompletions(
        ask(
            Messages=[
                {"Role": "system", "Content": "be brief"},
                {"Role": "user", "Content": "hello there"},
            ],
            Temperature=0.2,
            TopP=0.5,
        )
    )
    assert reply.Choices[0].Message.Content == "You said: hello there"
    assert reply.Choices[0].FinishReason == "stop"
    assert (reply.Usage.PromptTokens, reply.Usage.CompletionTokens) == (4, 4)
    assert reply.Usage.TotalTokens == 8
    assert reply.RequestId
    sent = fake.received[-1]
    assert sent.header("x-tc-action") == "ChatCompletions"
    assert sent.header("x-tc-version") == "2023-09-01"
    assert sent.header("authorization").startswith(f"TC3-HMAC-SHA256 Credential={SECRET_ID}/")
    assert (sent.json()["Temperature"], sent.json()["TopP"]) == (0.2, 0.5)


def test_streaming_sse_frames(fake) -> None:
    events = list(
        client(fake).ChatCompletions(
            ask(Messages=[{"Role": "user", "Content": "one two three"}], Stream=True)
        )
    )
    frames = [json.loads(event["data"]) for event in events if event.get("data")]
    text = "".join(f["Choices"][0]["Delta"]["Content"] for f in frames)
    assert text == "You said: one two three"
    assert [f["Choices"][0]["FinishReason"] for f in frames][-1] == "stop"
    assert not any(f["Choices"][0]["FinishReason"] for f in frames[:-1])
    assert frames[-1]["Usage"]["CompletionTokens"] == 5


def test_tool_calls_complete_streamed_and_round_trip(fake) -> None:
    messages = [{"Role": "user", "Content": "weather in Paris?"}]
    reply = client(fake).ChatCompletions(ask(Messages=messages, Tools=[TOOL]))
    assert reply.Choices[0].FinishReason == "tool_calls"
    call = reply.Choices[0].Message.ToolCalls[0]
    assert (call.Function.Name, call.Function.Arguments) == (
        "search",
        '{"query": "weather in Paris?"}',
    )
    events = client(fake).ChatCompletions(ask(Messages=messages, Tools=[TOOL], Stream=True))
    frames = [json.loads(event["data"]) for event in events if event.get("data")]
    streamed = [c for f in frames for c in f["Choices"][0]["Delta"].get("ToolCalls") or ()]
    assert streamed[0]["Id"] == call.Id
    assert frames[-1]["Choices"][0]["FinishReason"] == "tool_calls"

    answer = client(fake).ChatCompletions(
        ask(
            Messages=[
                *messages,
                {
                    "Role": "assistant",
                    "Content": " ",
                    "ToolCalls": [json.loads(call.to_json_string())],
                },
                {"Role": "tool", "Content": "sunny, 21C", "ToolCallId": call.Id},
            ],
            Tools=[TOOL],
        )
    )
    assert answer.Choices[0].Message.Content == "Tool said: sunny, 21C"


def test_images_need_a_vision_model(fake) -> None:
    contents = [
        {"Type": "text", "Text": "what is this"},
        {"Type": "image_url", "ImageUrl": {"Url": "https://example.com/cat.png"}},
    ]
    reply = client(fake).ChatCompletions(
        ask(Model="hunyuan-vision", Messages=[{"Role": "user", "Contents": contents}])
    )
    assert reply.Choices[0].Message.Content == "You said: what is this [1 image(s)]"
    with pytest.raises(TencentCloudSDKException) as caught:
        client(fake).ChatCompletions(ask(Messages=[{"Role": "user", "Contents": contents}]))
    assert caught.value.code == "InvalidParameter"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Model": "nope"}, "InvalidParameterValue.Model"),
        ({"Messages": [{"Role": "assistant", "Content": "hi"}]}, "InvalidParameter"),
        ({"Messages": [{"Role": "user", "Content": ""}]}, "InvalidParameter"),
        ({"Temperature": 3}, "InvalidParameterValue.ParameterValueError"),
        ({"ToolChoice": "custom"}, "InvalidParameter"),
    ],
)
def test_what_the_api_rejects(fake, params, code) -> None:
    request = ask(**{"Messages": [{"Role": "user", "Content": "hi"}], **params})
    with pytest.raises(TencentCloudSDKException) as caught:
        client(fake).ChatCompletions(request)
    assert caught.value.code == code
    assert caught.value.requestId


def test_auth_failures_carry_tencent_codes(fake, monkeypatch) -> None:
    request = ask(Messages=[{"Role": "user", "Content": "hi"}])
    with pytest.raises(TencentCloudSDKException) as caught:
        client(fake, secret_key="wrong-key").ChatCompletions(request)
    assert caught.value.code == "AuthFailure.SignatureFailure"
    with pytest.raises(TencentCloudSDKException) as caught:
        client(fake, secret_id="AKIDunknown").ChatCompletions(request)
    assert caught.value.code == "AuthFailure.SecretIdNotFound"
    an_hour_ago = SimpleNamespace(time=lambda: time.time() - 3600)
    monkeypatch.setattr(abstract_client, "time", an_hour_ago)
    with pytest.raises(TencentCloudSDKException) as caught:
        client(fake).ChatCompletions(request)
    assert caught.value.code == "AuthFailure.SignatureExpire"


def test_failure_modes_reach_the_client_as_tencent_errors(fake) -> None:
    request = ask(Messages=[{"Role": "user", "Content": "hi"}])
    for mode, code in (("429", "RequestLimitExceeded"), ("500", "InternalError")):
        fake.fail(mode)
        with pytest.raises(TencentCloudSDKException) as caught:
            client(fake).ChatCompletions(request)
        assert caught.value.code == code
