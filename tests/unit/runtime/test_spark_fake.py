"""The Spark fake is trusted because iFlytek's own SDK (`spark-ai-python`: its URL signing,
request frame and frame reading over websocket-client) talks to it successfully, and gets
Spark's handshake refusals and error frames as its `SparkAIConnectionError`."""

from __future__ import annotations

import json

import pytest
from sparkai.core.messages import ChatMessage
from sparkai.errors import SparkAIConnectionError
from sparkai.llm import llm as sparkai_llm
from sparkai.llm.llm import ChatSparkLLM

from tests.fakes.spark_server import SparkFake

APP_ID, API_KEY, API_SECRET = "3f9a1b2c", "fake-spark-key-0123456789abcdef", "fake-spark-secret"


@pytest.fixture(scope="module")
def fake():
    with SparkFake(APP_ID, API_KEY, API_SECRET) as server:
        yield server


def client(fake, *, app_id=APP_ID, api_secret=API_SECRET, streaming=False) -> ChatSparkLLM:
    return ChatSparkLLM(
        spark_api_url=fake.ws_url + "/v3.5/chat",
        spark_app_id=app_id,
        spark_api_key=API_KEY,
        spark_api_secret=api_secret,
        spark_llm_domain="generalv3.5",
        streaming=streaming,
        request_timeout=5,
    )


def test_the_sdk_chats_with_the_fake(fake) -> None:
    result = client(fake).generate([[ChatMessage(role="user", content="hello from the sdk")]])
    assert result.generations[0][0].text == "You said: hello from the sdk"
    usage = result.llm_output["token_usage"]
    assert usage["completion_tokens"] == 6
    frame = json.loads(fake.received[-1].body)
    assert frame["header"]["app_id"] == APP_ID
    assert frame["parameter"]["chat"]["domain"] == "generalv3.5"
    assert frame["payload"]["message"]["text"] == [
        {"role": "user", "content": "hello from the sdk"}
    ]


def test_the_sdk_streams_from_the_fake(fake) -> None:
    chunks = list(client(fake, streaming=True).stream([ChatMessage(role="user", content="hi")]))
    assert len(chunks) > 1
    assert "".join(chunk.content for chunk in chunks) == "You said: hi"


def test_a_wrong_secret_is_refused_in_the_handshake(fake) -> None:
    with pytest.raises(SparkAIConnectionError) as caught:
        client(fake, api_secret="not-the-secret").generate(
            [[ChatMessage(role="user", content="hi")]]
        )
    assert "401" in str(caught.value)


def test_a_foreign_app_id_is_an_error_frame(fake) -> None:
    with pytest.raises(SparkAIConnectionError) as caught:
        client(fake, app_id="someone-else").generate([[ChatMessage(role="user", content="hi")]])
    assert caught.value.error_code == 10313


def test_a_date_more_than_five_minutes_off_is_refused(fake, monkeypatch) -> None:
    monkeypatch.setattr(sparkai_llm, "format_date_time", lambda _: "Fri, 05 May 2023 10:43:39 GMT")
    with pytest.raises(SparkAIConnectionError) as caught:
        client(fake).generate([[ChatMessage(role="user", content="hi")]])
    assert "403" in str(caught.value)
