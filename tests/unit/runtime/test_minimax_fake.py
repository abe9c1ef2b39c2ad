"""The MiniMax fake's chat side is trusted because the official `anthropic` client, aimed at
{endpoint}/anthropic as MiniMax's docs tell (https://platform.minimaxi.com/docs/api-reference/
text-anthropic-api), talks to it: plain and streamed messages with the M models' thinking blocks,
tool use, and its typed errors. The native embeddings API has no official Python client on PyPI:
here it is called over plain HTTP with the documented body, and its HTTP-200 errors checked."""

from __future__ import annotations

import anthropic
import pytest
import urllib3

from tests.fakes.base import embed_text
from tests.fakes.minimax_server import LOGIN_FAIL, MinimaxFake

KEY = "eyJhbGciOiJSUzI1NiJ9.minimax-key"
GROUP = "1900000000000000001"
TOOLS = [
    {
        "name": "search",
        "description": "find things",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def fake():
    with MinimaxFake(api_key=KEY, group_id=GROUP) as server:
        yield server


def client(fake, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=fake.url + "/anthropic", max_retries=0)


def test_messages_open_with_thinking_then_answer(fake) -> None:
    reply = client(fake).messages.create(
        model="MiniMax-M2.5",
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert [block.type for block in reply.content] == ["thinking", "text"]
    assert reply.content[1].text == "You said: hello there"
    assert reply.stop_reason == "end_turn"
    assert fake.received[-1].path == "/anthropic/v1/messages"


def test_streamed_messages(fake) -> None:
    with client(fake).messages.stream(
        model="MiniMax-M2.7", max_tokens=100, messages=[{"role": "user", "content": "a b c"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "You said: a b c"
    assert final.content[0].type == "thinking"


def test_tool_use_round_trip(fake) -> None:
    messages = [{"role": "user", "content": "weather in Paris?"}]
    reply = client(fake).messages.create(
        model="MiniMax-M2.5", max_tokens=100, messages=messages, tools=TOOLS
    )
    call = next(block for block in reply.content if block.type == "tool_use")
    assert (reply.stop_reason, call.input) == ("tool_use", {"query": "weather in Paris?"})
    answer = client(fake).messages.create(
        model="MiniMax-M2.5",
        max_tokens=100,
        tools=TOOLS,
        messages=[
            *messages,
            {"role": "assistant", "content": reply.content},  # the whole reply, as MiniMax asks
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
    )
    assert answer.content[-1].text == "You said: sunny"


def test_typed_errors(fake) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(fake, "wrong").messages.create(
            model="MiniMax-M2.5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["error"]["message"] == LOGIN_FAIL
    with pytest.raises(anthropic.BadRequestError, match="unknown model"):  # MiniMax's 400
        client(fake).messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.BadRequestError):
        client(fake).messages.create(
            model="MiniMax-M2.5", max_tokens=0, messages=[{"role": "user", "content": "x"}]
        )
    fake.fail("429", retry_after=0)
    with pytest.raises(anthropic.RateLimitError):
        client(fake).messages.create(
            model="MiniMax-M2.5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )


def embed(fake, body: dict, *, key: str = KEY, group: str | None = GROUP) -> dict:
    query = f"?GroupId={group}" if group is not None else ""
    response = urllib3.request(
        "POST",
        f"{fake.url}/v1/embeddings{query}",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status == 200  # errors too come as HTTP 200
    return response.json()


def test_native_embeddings_and_their_errors_in_base_resp(fake) -> None:
    reply = embed(fake, {"model": "embo-01", "texts": ["a", "b"], "type": "db"})
    assert reply["vectors"] == [embed_text("db:a"), embed_text("db:b")]
    assert reply["base_resp"] == {"status_code": 0, "status_msg": "success"}
    query = embed(fake, {"model": "embo-01", "texts": ["a"], "type": "query"})
    assert query["vectors"] != reply["vectors"][:1]  # query and db vectors differ
    assert (
        embed(fake, {"model": "embo-01", "texts": ["a"], "type": "db"}, key="wrong")["base_resp"][
            "status_code"
        ]
        == 1004
    )
    assert embed(fake, {"model": "embo-01", "texts": ["a"]})["base_resp"]["status_code"] == 2013
    missing_group = embed(fake, {"model": "embo-01", "texts": ["a"], "type": "db"}, group=None)
    assert missing_group["base_resp"]["status_code"] == 2013
