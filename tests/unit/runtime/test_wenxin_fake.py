"""The Qianfan v2 fake is trusted because the official `openai` client (what Qianfan documents for
its OpenAI-compatible v2 API, and what Dify's wenxin plugin speaks through) talks to it and gets
its typed errors. Qianfan's own `qianfan` SDK is not used: it is heavy, and what it adds is the
v1 access-token wire this family does not speak."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.base import embed_text
from tests.fakes.wenxin_server import QianfanFake

KEY = "bce-v3/ALTAK-fake0001/0123456789abcdef"
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
    with QianfanFake(api_key=KEY) as server:
        yield server


@pytest.fixture
def client(fake):
    return openai.OpenAI(api_key=KEY, base_url=f"{fake.url}/v2", max_retries=0)


def test_chat(client, fake) -> None:
    reply = client.chat.completions.create(
        model="ernie-4.5-turbo-128k",
        messages=[{"role": "user", "content": "hello there"}],
        max_tokens=50,
    )
    assert reply.choices[0].message.content == "You said: hello there"
    assert reply.usage.prompt_tokens == 2
    sent = fake.received[-1]
    assert sent.path == "/v2/chat/completions"
    assert sent.header("authorization") == f"Bearer {KEY}"


def test_stream_with_usage_and_tool_calls(client) -> None:
    chunks = list(
        client.chat.completions.create(
            model="ernie-4.5-turbo-128k",
            messages=[{"role": "user", "content": "a b"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: a b"
    assert chunks[-1].usage.completion_tokens == 4
    called = client.chat.completions.create(
        model="ernie-4.5-turbo-128k",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
    )
    assert called.choices[0].message.tool_calls[0].function.name == "search"


def test_embeddings_and_their_limits(client) -> None:
    result = client.embeddings.create(model="embedding-v1", input=["a", "b"])
    assert [d.embedding for d in result.data] == [embed_text("a"), embed_text("b")]
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="embedding-v1", input=["x"] * 17)
    assert caught.value.code == "invalid_argument"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="tao-8k", input=["a", "b"])
    assert len(client.embeddings.create(model="tao-8k", input=["a"]).data) == 1


def test_errors_are_qianfan_codes_the_client_types(client, fake) -> None:
    bad = openai.OpenAI(api_key="bce-v3/ALTAK-wrong/x", base_url=f"{fake.url}/v2", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(
            model="ernie-4.5-turbo-128k", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "invalid_iam_token"
    assert caught.value.message.endswith("IAM Certification failed")
    with pytest.raises(openai.AuthenticationError) as caught:  # Qianfan answers 401 for it
        client.chat.completions.create(model="ernie-9", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "invalid_model"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="ernie-4.5-turbo-128k", messages=[{"role": "user", "content": "x"}], max_tokens=1
        )
    assert caught.value.code == "invalid_argument"
    fake.fail("429", retry_after=0)
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="embedding-v1", input=["a"])
    fake.fail("500")
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="embedding-v1", input=["a"])
