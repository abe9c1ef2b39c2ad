"""The DashScope fake is trusted because the official `dashscope` client talks to it: Generation
(plain, streamed incrementally and cumulatively, tool calls), MultiModalConversation (vision),
TextEmbedding, and Qwen-TTS (SpeechSynthesizer), and reports its errors with the status and code
DashScope sends."""

from __future__ import annotations

import json

import dashscope
import pytest
import requests
from dashscope import Generation, MultiModalConversation, TextEmbedding
from dashscope.audio.qwen_tts import SpeechSynthesizer

from tests.fakes.base import text_in_wav
from tests.fakes.tongyi_server import TongyiFake, vector

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
    with TongyiFake() as server:
        before = dashscope.base_http_api_url
        dashscope.base_http_api_url = server.url + "/api/v1"  # the SDK's documented knob
        yield server
        dashscope.base_http_api_url = before


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def test_generation_and_usage(fake) -> None:
    reply = Generation.call(
        model="qwen-plus",
        messages=ask("hello there"),
        api_key="fake-key",
        result_format="message",
        temperature=0.2,
        max_tokens=50,
    )
    assert reply.status_code == 200
    assert reply.output.choices[0].message.content == "You said: hello there"
    assert reply.output.choices[0].finish_reason == "stop"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (4, 4)
    sent = fake.received[-1]
    assert sent.path == "/api/v1/services/aigc/text-generation/generation"
    assert sent.header("authorization") == "Bearer fake-key"
    assert sent.json()["parameters"]["temperature"] == 0.2


def test_text_result_format_and_limits(fake) -> None:
    plain = Generation.call(model="qwen-plus", prompt="one two three", api_key="fake-key")
    assert plain.output.text == "You said: one two three"
    short = Generation.call(
        model="qwen-plus", messages=ask("one two three"), api_key="fake-key", max_tokens=2
    )
    assert (short.output.text, short.output.finish_reason) == ("You said:", "length")


def test_incremental_and_cumulative_streams(fake) -> None:
    chunks = list(
        Generation.call(
            model="qwen-plus",
            messages=ask("a b c"),
            api_key="fake-key",
            result_format="message",
            stream=True,
            incremental_output=True,
        )
    )
    assert fake.received[-1].header("x-dashscope-sse") == "enable"
    assert all(c.status_code == 200 for c in chunks)
    text = "".join(c.output.choices[0].message.content for c in chunks)
    assert text == "You said: a b c"
    assert chunks[-1].output.choices[0].finish_reason == "stop"
    cumulative = list(
        Generation.call(
            model="qwen-plus",
            messages=ask("a b c"),
            api_key="fake-key",
            result_format="message",
            stream=True,
            incremental_output=False,
        )
    )
    assert cumulative[-2].output.choices[0].message.content == "You said: a b c"


def test_tool_calls_plain_streamed_and_answered(fake) -> None:
    reply = Generation.call(
        model="qwen3-max",
        messages=ask("weather in Paris?"),
        api_key="fake-key",
        result_format="message",
        tools=TOOLS,
    )
    choice = reply.output.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call["function"]["name"] == "search"
    assert json.loads(call["function"]["arguments"]) == {"query": "weather in Paris?"}

    chunks = list(
        Generation.call(
            model="qwen3-max",
            messages=ask("weather in Paris?"),
            api_key="fake-key",
            result_format="message",
            tools=TOOLS,
            stream=True,
            incremental_output=True,
        )
    )
    pieces = [
        delta["function"].get("arguments", "")
        for c in chunks
        for delta in c.output.choices[0].message.get("tool_calls") or ()
    ]
    assert "".join(pieces) == call["function"]["arguments"]
    assert chunks[-1].output.choices[0].finish_reason == "tool_calls"

    answer = Generation.call(
        model="qwen3-max",
        messages=[
            *ask("weather in Paris?"),
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": "sunny", "tool_call_id": call["id"], "name": "search"},
        ],
        api_key="fake-key",
        result_format="message",
        tools=TOOLS,
    )
    assert answer.output.choices[0].message.content == "Tool said: sunny"


def test_multimodal_conversation(fake) -> None:
    reply = MultiModalConversation.call(
        model="qwen3-vl-plus",
        messages=[
            {
                "role": "user",
                "content": [{"image": "https://example.com/cat.png"}, {"text": "what is it"}],
            }
        ],
        api_key="fake-key",
    )
    assert reply.status_code == 200
    assert reply.output.choices[0].message.content == [
        {"text": "You said: what is it [1 image(s)]"}
    ]
    assert fake.received[-1].path.endswith("/multimodal-generation/generation")
    wrong_path = Generation.call(model="qwen3-vl-plus", messages=ask("x"), api_key="fake-key")
    assert (wrong_path.status_code, wrong_path.code) == (400, "InvalidParameter")


def test_text_embedding(fake) -> None:
    reply = TextEmbedding.call(
        model="text-embedding-v4",
        input=["a", "b c"],
        api_key="fake-key",
        text_type="query",
        dimension=64,
    )
    assert reply.status_code == 200
    rows = sorted(reply.output["embeddings"], key=lambda row: row["text_index"])
    assert [row["embedding"] for row in rows] == [vector("a", 64), vector("b c", 64)]
    assert reply.usage["total_tokens"] == 3
    too_many = TextEmbedding.call(model="text-embedding-v4", input=["x"] * 11, api_key="fake-key")
    assert (too_many.status_code, too_many.code) == (400, "InvalidParameter")
    assert "larger than 10" in too_many.message


def test_qwen_tts_url_serves_the_audio(fake) -> None:
    reply = SpeechSynthesizer.call(
        model="qwen3-tts-flash", text="hello world", voice="Cherry", api_key="fake-key"
    )
    assert reply.status_code == 200
    assert reply.output.finish_reason == "stop"
    audio = requests.get(reply.output.audio["url"], timeout=5)
    assert audio.headers["Content-Type"] == "audio/wav"
    assert text_in_wav(audio.content) == "Cherry: hello world"
    assert reply.usage["characters"] == 11
    with_key = requests.get(
        reply.output.audio["url"], headers={"Authorization": "Bearer fake-key"}, timeout=5
    )
    assert with_key.status_code == 400  # OSS takes one credential: the query's signature
    tampered = requests.get(reply.output.audio["url"][:-4] + "0000", timeout=5)
    assert tampered.status_code == 403
    bad_voice = SpeechSynthesizer.call(
        model="qwen3-tts-flash", text="hi", voice="alloy", api_key="fake-key"
    )
    assert (bad_voice.status_code, bad_voice.code) == (400, "InvalidParameter")


def test_errors_as_the_client_reports_them(fake) -> None:
    wrong = Generation.call(model="qwen-plus", messages=ask("x"), api_key="wrong-key")
    assert (wrong.status_code, wrong.code) == (401, "InvalidApiKey")
    assert wrong.message == "Invalid API-key provided."
    unknown = Generation.call(model="qwen-nope", messages=ask("x"), api_key="fake-key")
    assert (unknown.status_code, unknown.code, unknown.message) == (
        400,
        "InvalidParameter",
        "Model not exist.",
    )
    fake.fail("429", retry_after=0)
    limited = TextEmbedding.call(model="text-embedding-v3", input=["a"], api_key="fake-key")
    assert (limited.status_code, limited.code) == (429, "Throttling.RateQuota")
    fake.fail("arrearage")
    owed = Generation.call(model="qwen-plus", messages=ask("x"), api_key="fake-key")
    assert (owed.status_code, owed.code) == (400, "Arrearage")
    fake.fail("500")
    broken = Generation.call(model="qwen-plus", messages=ask("x"), api_key="fake-key")
    assert (broken.status_code, broken.code) == (500, "InternalError")


def test_an_error_mid_stream_reaches_the_client(fake) -> None:
    fake.fail("stream_error")
    chunks = list(
        Generation.call(
            model="qwen-plus",
            messages=ask("one two three four"),
            api_key="fake-key",
            result_format="message",
            stream=True,
            incremental_output=True,
        )
    )
    assert [c.status_code for c in chunks] == [200, 200, 400]
    assert chunks[-1].code == "DataInspectionFailed"
