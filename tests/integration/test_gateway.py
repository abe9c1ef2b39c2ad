"""The OpenAI-compatible gateway (/v1), driven by the official `openai` client (sync, async,
streaming) through a real gunicorn process, against local fakes that check what they are sent.

Every call goes through the routed call path; usage rows are written by the web process's
recorder thread after the answers, so tests wait for them (`_recorded`)."""

from __future__ import annotations

import asyncio
import base64
import signal
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from rest_framework.test import APIClient

from invocations import codec
from invocations.models import Invocation
from providers import selectors, services
from tenants import services as tenant_services
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.base import embed_text, text_in_wav, wav_with_text
from tests.fakes.jina_server import JinaFake
from tests.fakes.ollama_server import OllamaFake
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.xinference_server import XinferenceFake
from tests.jobs import start_web_process

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "sk-gateway-000000000001"
CHAT = "openai/gpt-4o-mini"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def fake(tenant) -> Iterator[OpenAIFake]:
    with OpenAIFake(api_key=KEY) as server:
        services.credential_create(
            tenant=tenant,
            provider="openai",
            name="main",
            values={"openai_api_key": KEY, "openai_api_base": server.url},
            actor=None,
        )
        yield server


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    process, url = start_web_process()
    yield url
    process.send_signal(signal.SIGTERM)
    process.wait(20)


def _key(tenant, scopes=("invoke", "read")) -> str:
    return tenant_services.api_key_create(tenant=tenant, name="gw", scopes=list(scopes))[1]


@pytest.fixture
def client(tenant, web, fake) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{web}/v1", api_key=_key(tenant), max_retries=0)


def _recorded(count: int, seconds: float = 10.0) -> list[Invocation]:
    deadline = time.monotonic() + seconds
    while True:
        rows = list(Invocation.objects.filter(source="gateway").order_by("id"))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_chat_with_the_openai_client(client, fake) -> None:
    answer = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "hello gateway"}], temperature=0.2
    )
    assert answer.choices[0].message.content == "You said: hello gateway"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == CHAT
    assert answer.usage.prompt_tokens == 2
    sent = fake.received[-1].json()
    assert (sent["model"], sent["temperature"]) == ("gpt-4o-mini", 0.2)
    (row,) = _recorded(1)
    assert (row.status, row.provider, row.model, row.model_type) == (
        "succeeded", "openai", "gpt-4o-mini", "llm",
    )  # fmt: skip
    assert (row.prompt_tokens, row.completion_tokens) == (2, 4)
    assert row.cost is not None
    assert row.currency == "USD"
    assert row.request == {"endpoint": "chat/completions", "stream": False}


def test_streaming_passes_chunks_and_usage(client) -> None:
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: stream this please"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 5
    (row,) = _recorded(1)
    assert row.request["stream"] is True
    assert row.ttft_ms is not None
    assert row.completion_tokens == 5


def test_tools_and_streamed_tool_calls(client, fake) -> None:
    messages = [{"role": "user", "content": "weather in Paris?"}]
    called = client.chat.completions.create(model=CHAT, messages=messages, tools=[WEATHER])
    call = called.choices[0].message.tool_calls[0]
    assert called.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"query": "weather"}')
    assert fake.received[-1].json()["tools"][0]["function"]["name"] == "get_weather"

    parts = list(
        client.chat.completions.create(model=CHAT, messages=messages, tools=[WEATHER], stream=True)
    )
    deltas = [
        c.choices[0].delta.tool_calls for c in parts if c.choices and c.choices[0].delta.tool_calls
    ]
    assert deltas[0][0].function.name == "get_weather"
    assert "".join(d[0].function.arguments for d in deltas) == '{"query": "weather"}'
    follow = client.chat.completions.create(
        model=CHAT,
        messages=[
            *messages,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
            {"role": "user", "content": "thanks"},
        ],
    )
    assert follow.choices[0].message.content == "You said: thanks"
    assert fake.received[-1].json()["messages"][2]["tool_call_id"] == call.id


def test_the_async_client(tenant, web, fake) -> None:
    key = _key(tenant)

    async def ask() -> list[str]:
        client = openai.AsyncOpenAI(base_url=f"{web}/v1", api_key=key, max_retries=0)
        answers = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model=CHAT, messages=[{"role": "user", "content": f"async {i}"}]
                )
                for i in range(8)
            )
        )
        streamed = await client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "async stream"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in streamed if c.choices])
        await client.close()
        return [a.choices[0].message.content for a in answers] + [text]

    # In a thread of its own: the browser tests' client leaves an event loop in the main thread.
    with ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, ask()).result()
    assert answers == [f"You said: async {i}" for i in range(8)] + ["You said: async stream"]
    assert len(_recorded(9)) == 9


def test_embeddings_as_floats_and_base64(client, tenant) -> None:
    services.model_setting_update(
        tenant=tenant,
        view=selectors.model_get(
            tenant=tenant,
            provider="openai",
            model_key=selectors.model_id("text-embedding", "text-embedding-3-small"),
        ),
        enabled=True,
        actor=None,
    )
    texts = ["alpha", "beta"]
    floats = client.embeddings.create(
        model="openai/text-embedding-3-small", input=texts, encoding_format="float"
    )
    assert [d.embedding for d in floats.data] == [embed_text(t) for t in texts]
    # The SDK asks for base64 by default and decodes it.
    decoded = client.embeddings.create(model="openai/text-embedding-3-small", input="alpha")
    assert decoded.data[0].embedding == pytest.approx(embed_text("alpha"), rel=1e-6)
    raw = httpx.post(
        f"{client.base_url}embeddings",
        headers={"Authorization": f"Bearer {client.api_key}"},
        json={
            "model": "openai/text-embedding-3-small",
            "input": "alpha",
            "encoding_format": "base64",
        },
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == pytest.approx(
        embed_text("alpha")
    )
    assert _recorded(3)[-1].model_type == "text-embedding"


def test_models_lists_the_workspaces_usable_models(client) -> None:
    listed = {m.id: m for m in client.models.list()}
    assert CHAT in listed
    assert listed[CHAT].owned_by == "openai"
    assert client.models.retrieve(CHAT).id == CHAT
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("openai/no-such-model")


def test_errors_come_in_openais_shape(client, tenant, web, fake) -> None:
    with pytest.raises(openai.AuthenticationError) as bad_key:
        openai.OpenAI(base_url=f"{web}/v1", api_key="mps_" + "x" * 40, max_retries=0).models.list()
    assert bad_key.value.body["code"] == "invalid_api_key"
    reader = openai.OpenAI(base_url=f"{web}/v1", api_key=_key(tenant, ["read"]), max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        reader.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(
            model="nobody/none", messages=[{"role": "user", "content": "x"}]
        )
    assert unknown.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=CHAT, messages=[{"role": "robot", "content": "x"}])
    assert (bad.value.body["type"], bad.value.body["param"]) == (
        "invalid_request_error", "messages.0.role",
    )  # fmt: skip
    with pytest.raises(openai.BadRequestError) as hot:
        client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "x"}], temperature=5
        )
    assert hot.value.body["param"] == "temperature"
    services.model_setting_update(
        tenant=tenant,
        view=selectors.model_get(
            tenant=tenant, provider="openai", model_key=selectors.model_id("llm", "gpt-4o-mini")
        ),
        enabled=False,
        actor=None,
    )
    with pytest.raises(openai.ConflictError) as disabled:
        client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "x"}])
    assert disabled.value.body["code"] == "model_disabled"
    for body in (b"{not json", b"[1]", b'{"model": NaN}'):
        response = httpx.post(
            f"{web}/v1/chat/completions",
            headers={"Authorization": f"Bearer {client.api_key}"},
            content=body,
        )
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{web}/v1/nothing-here").json()["error"]["code"] == "unknown_url"


def test_a_rate_limited_key_gets_429_with_retry_after(tenant, web, fake) -> None:
    raw = tenant_services.api_key_create(
        tenant=tenant, name="slow", scopes=["invoke"], rpm_limit=1
    )[1]
    limited = openai.OpenAI(base_url=f"{web}/v1", api_key=raw, max_retries=0)
    limited.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "one"}])
    with pytest.raises(openai.RateLimitError) as refused:
        limited.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "two"}])
    assert int(refused.value.response.headers["Retry-After"]) >= 1
    assert refused.value.body["code"] == "rate_limited"


def test_a_backend_failure_is_a_gateway_error_in_the_backends_words(client, fake) -> None:
    fake.fail("500", times=5)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 502
    assert "server had an error" in failed.value.message
    assert KEY not in failed.value.response.text
    fake.reset()
    fake.fail("429", times=5, retry_after=7)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "x"}])
    assert limited.value.response.headers["Retry-After"] == "7"
    rows = _recorded(2)
    assert [r.status for r in rows] == ["failed", "failed"]


def test_a_stream_that_breaks_midway_ends_with_an_error_event(client, fake) -> None:
    fake.fail("drop_stream")
    stream = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "one two three four five"}], stream=True
    )
    with pytest.raises(openai.APIError) as broken:
        list(stream)
    assert "dropped" in str(broken.value)
    (row,) = _recorded(1)
    assert (row.status, row.error_code) == ("failed", "connection")


def test_a_client_that_hangs_up_cancels_the_backends_stream(client, fake) -> None:
    fake.fail("trickle", seconds=0.4)
    stream = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "a b c d e f g h i j"}], stream=True
    )
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    stream.close()
    deadline = time.monotonic() + 10
    while fake.streams_cut == 0:
        assert time.monotonic() < deadline, "the backend's stream went on after the client left"
        time.sleep(0.05)
    assert _recorded(1)[0].request["stream"] is True


@pytest.mark.parametrize("family", ["anthropic", "ollama", "xinference"])
def test_other_families_answer_through_chat_completions(tenant, web, family) -> None:
    """Anthropic's, Ollama's and Xinference's protocols are translated both ways, streaming and
    tools too."""
    if family == "xinference":
        server = XinferenceFake(api_key="xinf-gateway-key-01")
        values = None
        model = "xinference/qwen2.5-instruct"
    elif family == "anthropic":
        server = AnthropicFake(api_key="sk-ant-gateway-0001")
        values = {"anthropic_api_key": "sk-ant-gateway-0001"}
        model = "anthropic/claude-sonnet-4-6"
    else:
        server = OllamaFake(api_key=None)
        values = None
        model = "ollama/llama3.2:latest"
    with server:
        if family == "anthropic":
            services.credential_create(
                tenant=tenant,
                provider="anthropic",
                name="main",
                values={**values, "anthropic_api_url": server.url},
                actor=None,
            )
        elif family == "xinference":
            services.custom_model_create(
                tenant=tenant,
                provider="xinference",
                model="qwen2.5-instruct",
                model_type="llm",
                values={"server_url": server.url, "model_uid": "qwen2.5-instruct",
                        "api_key": "xinf-gateway-key-01"},
                actor=None,
            )  # fmt: skip
        else:
            services.custom_model_create(
                tenant=tenant,
                provider="ollama",
                model="llama3.2:latest",
                model_type="llm",
                values={"base_url": server.url, "mode": "chat", "context_size": "4096",
                        "max_tokens": "4096", "function_call_support": "true"},
                actor=None,
            )  # fmt: skip
        client = openai.OpenAI(base_url=f"{web}/v1", api_key=_key(tenant), max_retries=0)
        said = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "translate me"}]
        )
        assert "translate me" in said.choices[0].message.content
        streamed = list(
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "stream me"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert "stream me" in "".join(
            c.choices[0].delta.content or "" for c in streamed if c.choices
        )
        assert streamed[-1].usage.total_tokens > 0
        tooled = list(
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "weather in Paris?"}],
                tools=[WEATHER],
                stream=True,
            )
        )
        calls = [
            c.choices[0].delta.tool_calls
            for c in tooled
            if c.choices and c.choices[0].delta.tool_calls
        ]
        assert calls
        assert calls[0][0].function.name == "get_weather"
        assert [c.choices[0].finish_reason for c in tooled if c.choices][-1] == "tool_calls"


@pytest.mark.processes
def test_usage_rows_survive_a_sigterm_right_after_answering(tenant, fake) -> None:
    """Rows wait in memory a moment before they are written: a web process told to stop writes
    them on its way out."""
    process, url = start_web_process(GATEWAY_USAGE_FLUSH_SECONDS="30")
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=_key(tenant), max_retries=0)
        for i in range(12):
            client.chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": f"n{i}"}]
            )
        assert Invocation.objects.filter(source="gateway").count() == 0  # still in memory
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert Invocation.objects.filter(source="gateway", status="succeeded").count() == 12


def test_rerank_in_cohere_and_jinas_shape(tenant, web) -> None:
    with JinaFake(api_key="jina-gateway-key-0001", models={"team-reranker": "rerank"}) as jina:
        services.custom_model_create(
            tenant=tenant,
            provider="jina",
            model="team-reranker",
            model_type="rerank",
            values={"api_key": "jina-gateway-key-0001", "base_url": f"{jina.url}/v1"},
            actor=None,
        )
        answer = httpx.post(
            f"{web}/v1/rerank",
            headers={"Authorization": f"Bearer {_key(tenant)}"},
            json={
                "model": "jina/team-reranker",
                "query": "red apples",
                "documents": ["green pears", {"text": "red apples are sweet"}, "apples"],
                "top_n": 2,
                "return_documents": True,
            },
        )
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r["index"] for r in results] == [1, 2]
        assert results[0]["document"] == {"text": "red apples are sweet"}
        assert results[0]["relevance_score"] > results[1]["relevance_score"]
        bad = httpx.post(
            f"{web}/v1/rerank",
            headers={"Authorization": f"Bearer {_key(tenant)}"},
            json={"model": "jina/team-reranker", "query": "q", "documents": [1, 2]},
        )
        assert bad.json()["error"]["param"] == "documents.0"
    assert _recorded(1)[0].model_type == "rerank"


def test_speech_and_transcription_with_the_openai_client(client, fake) -> None:
    spoken = client.audio.speech.create(
        model="openai/tts-1", voice="nova", input="read this aloud", response_format="wav"
    )
    assert spoken.response.headers["content-type"] == "audio/wav"
    audio = spoken.read()
    assert text_in_wav(audio) == "nova: read this aloud"
    heard = client.audio.transcriptions.create(
        model="openai/whisper-1", file=("speech.wav", audio, "audio/wav")
    )
    assert heard.text == "nova: read this aloud"
    plain = client.audio.transcriptions.create(
        model="openai/whisper-1", file=("speech.wav", audio, "audio/wav"), response_format="text"
    )
    assert plain.strip() == "nova: read this aloud"
    with pytest.raises(openai.BadRequestError) as missing:
        client.audio.speech.create(model="openai/tts-1", voice="nova", input="")
    assert missing.value.body["param"] == "input"
    rows = _recorded(3)
    assert [r.model_type for r in rows] == ["tts", "speech2text", "speech2text"]
    assert rows[0].characters == len("read this aloud")


def test_text_completions_for_chat_and_completion_mode_models(client, tenant, fake) -> None:
    """/v1/completions: a chat model gets the prompt as a user message; a model set up in
    completion mode gets it as a prompt at the backend's /v1/completions (streamed too)."""
    said = client.completions.create(model=CHAT, prompt="finish this")
    assert said.choices[0].text == "You said: finish this"
    assert fake.received[-1].path == "/v1/chat/completions"
    services.custom_model_create(
        tenant=tenant,
        provider="openai_api_compatible",
        model="gpt-4o-mini",
        model_type="llm",
        values={"endpoint_url": f"{fake.url}/v1", "api_key": KEY, "mode": "completion"},
        actor=None,
    )
    generated = client.completions.create(
        model="openai_api_compatible/gpt-4o-mini", prompt="once upon a time", max_tokens=20
    )
    assert generated.choices[0].text == "You said: once upon a time"
    assert fake.received[-1].path == "/v1/completions"
    assert fake.received[-1].json()["prompt"] == "once upon a time"
    pieces = list(
        client.completions.create(
            model="openai_api_compatible/gpt-4o-mini",
            prompt="stream a tale",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(p.choices[0].text for p in pieces if p.choices) == "You said: stream a tale"
    assert pieces[-1].usage.completion_tokens == 5
    with pytest.raises(openai.BadRequestError) as batch:
        client.completions.create(model=CHAT, prompt=["one", "two"])
    assert batch.value.body["param"] == "prompt"
    assert [r.request["endpoint"] for r in _recorded(3)] == ["completions"] * 3


def test_a_row_whose_links_were_deleted_does_not_hold_back_the_others(tenant, other_tenant) -> None:
    """Between a call and its row's write, its API key or load-balancing entry may be deleted, or
    its whole workspace: the row is written without the link (or, workspace gone, dropped), and
    the rows batched with it are written all the same."""
    from invocations.recorder import Recorder

    key, _ = tenant_services.api_key_create(tenant=tenant, name="soon gone", scopes=["invoke"])
    rows = [
        Invocation(tenant=tenant, source="gateway", model_type="llm", provider="p", model="m1"),
        Invocation(tenant=tenant, api_key_id=key.pk, source="gateway", model_type="llm",
                   provider="p", model="m2", lb_entry_id=987654),
        Invocation(tenant_id=other_tenant.pk, source="gateway", model_type="llm", provider="p",
                   model="m3"),
    ]  # fmt: skip
    other_tenant.delete()
    recorder = Recorder()
    for row in rows:
        recorder._rows.append(row)
    assert recorder.flush_all() == 3
    written = Invocation.objects.filter(source="gateway").order_by("model")
    assert [(r.model, r.api_key_id, r.lb_entry_id) for r in written] == [
        ("m1", None, None),
        ("m2", None, None),
    ]
    assert recorder.waiting() == 0


def test_a_model_is_called_by_its_alias(client, tenant, session_client) -> None:
    """An alias set in the API (or the model's dialog) names the model in /v1; it is unique in
    the workspace, never "default", never holds a "/", and a change is seen by the next call."""
    owner_api = session_client(tenant, "owner")
    url = f"/api/v1/model-providers/openai/models/{selectors.model_id('llm', 'gpt-4o-mini')}"
    named = owner_api.patch(url, {"alias": "house-chat"}, format="json")
    assert named.status_code == 200, named.content
    assert named.json()["alias"] == "house-chat"
    said = client.chat.completions.create(
        model="house-chat", messages=[{"role": "user", "content": "by alias"}]
    )
    assert said.choices[0].message.content == "You said: by alias"
    assert said.model == CHAT
    assert "house-chat" in {m.id for m in client.models.list()}
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="house-chat", input="x")  # a chat model
    other = f"/api/v1/model-providers/openai/models/{selectors.model_id('llm', 'gpt-4o')}"
    for bad in ("house-chat", "default", "a/b", "x" * 65, " "):
        refused = owner_api.patch(other, {"alias": bad}, format="json")
        if bad == " ":
            assert refused.status_code == 200  # blank: no alias
            continue
        assert refused.status_code == 400, bad
        assert "alias" in refused.json()["error"]["fields"]
    model_id = selectors.model_id("llm", "gpt-4o-mini")
    page = f"/settings/model-providers/openai/models/{model_id}/load-balancing"
    renamed = owner_api.post(page, {"action": "alias", "alias": "team-chat"})
    assert 'value="team-chat"' in renamed.content.decode()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="house-chat", messages=[{"role": "user", "content": "old name"}]
        )
    assert (
        client.chat.completions.create(
            model="team-chat", messages=[{"role": "user", "content": "new name"}]
        )
        .choices[0]
        .message.content
        == "You said: new name"
    )


def test_calls_in_flight_hold_tokens_against_the_per_minute_limit(tenant, web, fake) -> None:
    """As for jobs: a gateway call holds the most it may use (prompt plus max_tokens) from
    admission until its row is written, so ten calls at once cannot all slip under the limit."""
    raw = tenant_services.api_key_create(
        tenant=tenant, name="tpm", scopes=["invoke"], tpm_limit=30
    )[1]
    limited = openai.OpenAI(base_url=f"{web}/v1", api_key=raw, max_retries=0)
    fake.fail("slow", times=10, seconds=1.0)

    def ask(i: int) -> int:
        try:
            limited.chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": f"n {i}"}], max_tokens=5
            )
        except openai.RateLimitError:
            return 429
        return 200

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(ask, range(10)))
    admitted = statuses.count(200)
    assert 1 <= admitted <= 5, statuses  # holds of about 7 tokens each under a limit of 30
    assert statuses.count(429) == 10 - admitted
    # The web process writes the calls' rows a moment later: let it, before the database is
    # flushed for the next test (on PostgreSQL the two deadlocked).
    _recorded(admitted)


def test_gateway_calls_are_listed_with_their_source_and_time(client, tenant) -> None:
    client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "listed"}])
    (row,) = _recorded(1)
    assert row.created_at <= row.finished_at  # the call's own time, not the write's
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {_key(tenant, ['read', 'invoke'])}")
    listed = api.get("/api/v1/invocations?source=gateway").json()["results"]
    assert [(i["id"], i["source"]) for i in listed] == [(row.pk, "gateway")]
    assert api.get("/api/v1/invocations?source=job").json()["results"] == []


def test_transcriptions_take_25_mb_and_refuse_more_in_openais_shape(client, web) -> None:
    """OpenAI's limit: a 25 MB file is heard, a larger one is a 413; form fields past Django's
    2.5 MB are a 413 too (they were a 500). Each in OpenAI's error JSON."""
    rate = 8000  # wav_with_text's: two bytes a frame
    seconds = (codec.MAX_AUDIO_BYTES - 1000) // (2 * rate)
    largest = wav_with_text("big", seconds=seconds, rate=rate)
    assert codec.MAX_AUDIO_BYTES - 20_000 < len(largest) <= codec.MAX_AUDIO_BYTES
    heard = client.audio.transcriptions.create(
        model="openai/whisper-1", file=("big.wav", largest, "audio/wav")
    )
    assert heard.text == "big"
    headers = {"Authorization": f"Bearer {client.api_key}"}
    too_big = httpx.post(
        f"{web}/v1/audio/transcriptions",
        headers=headers,
        data={"model": "openai/whisper-1"},
        files={"file": ("big.wav", largest + b"\x00" * 20_000, "audio/wav")},
        timeout=60,
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["type"] == "invalid_request_error"
    assert "25 MB" in too_big.json()["error"]["message"]
    long_prompt = httpx.post(
        f"{web}/v1/audio/transcriptions",
        headers=headers,
        data={"model": "openai/whisper-1", "prompt": "x" * 2_700_000},
        files={"file": ("a.wav", wav_with_text("hi"), "audio/wav")},
        timeout=60,
    )
    assert long_prompt.status_code == 413
    assert long_prompt.json()["error"]["type"] == "invalid_request_error"


def test_small_refusals_in_openais_shape(client, web) -> None:
    headers = {"Authorization": f"Bearer {client.api_key}"}
    wrong = httpx.get(f"{web}/v1/chat/completions", headers=headers)
    assert (wrong.status_code, wrong.headers["Allow"]) == (405, "POST")
    missing = httpx.post(
        f"{web}/v1/chat/completions",
        headers=headers,
        json={"model": "openai/nope", "messages": [{"role": "user", "content": "x"}]},
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "model_not_found")
    empty = httpx.post(
        f"{web}/v1/embeddings", headers=headers, json={"model": "openai/x", "input": ""}
    )
    assert "non-empty" in empty.json()["error"]["message"]
    hot = httpx.post(
        f"{web}/v1/audio/transcriptions",
        headers=headers,
        data={"model": "openai/whisper-1", "temperature": "hot"},
        files={"file": ("a.wav", b"RIFF....", "audio/wav")},
    )
    assert (hot.status_code, hot.json()["error"]["param"]) == (400, "temperature")
