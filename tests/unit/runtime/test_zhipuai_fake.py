"""The Zhipu fake is trusted because the official `zhipuai` client (2.1.5) talks to it: with the
bare key (the client's default) and with the JWT it signs itself (`disable_token_cache=False`),
plain and streamed chat, tool calls, embeddings, and its typed errors for what the fake refuses."""

from __future__ import annotations

import time

import jwt
import pytest
import zhipuai
from zhipuai.core._errors import (
    APIAuthenticationError,
    APIReachLimitError,
    APIRequestFailedError,
    APIResponseError,
)

from tests.fakes.zhipuai_server import PREFIX, ZhipuFake, vector

KEY = "a1b2c3d4e5f6.s3cretPartOfTheKey"
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
    with ZhipuFake(api_key=KEY) as server:
        yield server


def client(fake, key: str = KEY, *, signed: bool = False) -> zhipuai.ZhipuAI:
    return zhipuai.ZhipuAI(
        api_key=key, base_url=fake.url + PREFIX, max_retries=0, disable_token_cache=not signed
    )


def test_chat_with_the_bare_key_and_with_the_clients_own_jwt(fake) -> None:
    for signed in (False, True):
        reply = client(fake, signed=signed).chat.completions.create(
            model="glm-5-turbo",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello there"},
            ],
            temperature=0.5,
        )
        assert reply.choices[0].message.content == "You said: hello there"
        assert reply.choices[0].finish_reason == "stop"
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 4)
    token = fake.received[-1].header("authorization").removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["sign_type"] == "SIGN"
    assert fake.tokens_seen[-1] == token


def test_streaming_ends_with_usage_and_done(fake) -> None:
    chunks = list(
        client(fake).chat.completions.create(
            model="glm-4.7", messages=[{"role": "user", "content": "one two three"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "You said: one two three"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == 5


def test_tool_calls_and_their_results(fake) -> None:
    messages = [{"role": "user", "content": "weather in Paris?"}]
    reply = client(fake).chat.completions.create(
        model="glm-5-turbo", messages=messages, tools=TOOLS, tool_choice="auto"
    )
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == (
        "search",
        '{"query": "weather in Paris?"}',
    )
    streamed = list(
        client(fake).chat.completions.create(
            model="glm-5-turbo", messages=messages, tools=TOOLS, stream=True
        )
    )
    assert streamed[0].choices[0].delta.tool_calls[0].id == call.id
    answer = client(fake).chat.completions.create(
        model="glm-5-turbo",
        messages=[
            *messages,
            {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=TOOLS,
    )
    assert answer.choices[0].message.content == "Tool said: sunny"


def test_images_the_client_sends_without_their_data_header(fake) -> None:
    content = [
        {"type": "text", "text": "what is it"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    reply = client(fake).chat.completions.create(
        model="glm-4.6v", messages=[{"role": "user", "content": content}]
    )
    assert reply.choices[0].message.content == "You said: what is it [1 image(s)]"
    sent = fake.received[-1].json()["messages"][0]["content"][1]["image_url"]["url"]
    assert sent == "iVBORw0KGgo="


def test_embeddings(fake) -> None:
    result = client(fake).embeddings.create(model="embedding-3", input=["a", "b"], dimensions=256)
    assert [row.embedding for row in result.data] == [vector("a", 256), vector("b", 256)]
    assert result.usage.prompt_tokens == 2
    with pytest.raises(APIRequestFailedError) as caught:
        client(fake).embeddings.create(model="embedding-3", input=["x"] * 65)
    assert caught.value.response.json()["error"]["code"] == "1214"


def test_typed_errors(fake) -> None:
    with pytest.raises(APIAuthenticationError) as caught:
        client(fake, "a1b2c3d4e5f6.wrongSecret", signed=True).chat.completions.create(
            model="glm-4.7", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.response.json()["error"]["code"] == "1002"
    with pytest.raises(APIAuthenticationError):
        client(fake, "not-a-key").chat.completions.create(
            model="glm-4.7", messages=[{"role": "user", "content": "x"}]
        )
    expired = jwt.encode(
        {"api_key": "a1b2c3d4e5f6", "exp": int(time.time() * 1000) - 1, "timestamp": 0},
        "s3cretPartOfTheKey",
        algorithm="HS256",
        headers={"alg": "HS256", "sign_type": "SIGN"},
    )
    with pytest.raises(APIAuthenticationError) as caught:
        client(fake, expired).chat.completions.create(
            model="glm-4.7", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.response.json()["error"]["code"] == "1003"
    with pytest.raises(APIRequestFailedError) as caught:
        client(fake).chat.completions.create(
            model="glm-nope", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.response.json()["error"]["code"] == "1211"
    with pytest.raises(APIRequestFailedError):
        client(fake).chat.completions.create(
            model="glm-4.7", messages=[{"role": "user", "content": "x"}], tool_choice="required"
        )
    fake.fail("1113")
    with pytest.raises(APIReachLimitError) as caught:
        client(fake).chat.completions.create(
            model="glm-4.7", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.response.json()["error"]["code"] == "1113"
    fake.fail("stream_error")
    with pytest.raises(APIResponseError):
        list(
            client(fake).chat.completions.create(
                model="glm-4.7", messages=[{"role": "user", "content": "a b c d"}], stream=True
            )
        )
