"""The Xinference fake is trusted because the official clients talk to it successfully: the
`xinference_client` RESTfulClient (registry, model handles) and `openai` on its /v1 routes."""

from __future__ import annotations

import io

import openai
import pytest
from xinference_client import RESTfulClient
from xinference_client.client.restful.restful_client import (
    RESTfulAudioModelHandle,
    RESTfulChatModelHandle,
    RESTfulEmbeddingModelHandle,
    RESTfulGenerateModelHandle,
    RESTfulRerankModelHandle,
)

from tests.fakes.base import text_in_wav, wav_with_text
from tests.fakes.xinference_server import XinferenceFake

KEY = "xinf-key"
MODELS = {
    "qwen2.5-instruct": {
        "model_type": "LLM",
        "model_ability": ["chat", "tools"],
        "context_length": 32768,
    },
    "llama-2": {"model_type": "LLM", "model_ability": ["generate"]},
    "bge-m3": {"model_type": "embedding", "dimensions": 8, "max_tokens": 8192},
    "bge-reranker": {"model_type": "rerank"},
    "whisper-small": {
        "model_type": "audio",
        "model_family": "whisper",
        "model_ability": ["audio2text"],
    },
    "ChatTTS": {"model_type": "audio", "model_family": "ChatTTS", "model_ability": ["text2audio"]},
}


@pytest.fixture(scope="module")
def fake():
    with XinferenceFake(api_key=KEY, models=MODELS) as server:
        yield server


@pytest.fixture
def client(fake):
    return RESTfulClient(fake.url, api_key=KEY)


@pytest.fixture
def oai(fake):
    return openai.OpenAI(api_key=KEY, base_url=f"{fake.url}/v1", max_retries=0)


# --- xinference_client --------------------------------------------------------------------------


def test_client_sees_auth_on_and_lists_models(client, fake) -> None:
    assert client._cluster_authed
    assert fake.received[-1].header("authorization") == ""  # /v1/cluster/auth is public
    models = client.list_models()
    assert set(models) == set(MODELS)
    assert models["qwen2.5-instruct"]["model_type"] == "LLM"
    assert models["bge-m3"]["dimensions"] == 8
    assert fake.received[-1].header("authorization") == f"Bearer {KEY}"


def test_describe_model_has_the_llm_fields(client) -> None:
    desc = client.describe_model("qwen2.5-instruct")
    for field in (
        "model_type",
        "address",
        "accelerators",
        "model_name",
        "model_lang",
        "model_ability",
        "model_description",
        "model_format",
        "model_size_in_billions",
        "model_family",
        "quantization",
        "model_hub",
        "revision",
        "context_length",
    ):
        assert field in desc, field
    assert (desc["model_ability"], desc["context_length"]) == (["chat", "tools"], 32768)
    audio = client.describe_model("ChatTTS")
    assert (audio["model_type"], audio["model_family"]) == ("audio", "ChatTTS")


def test_get_model_returns_the_handle_for_each_type(client) -> None:
    assert type(client.get_model("qwen2.5-instruct")) is RESTfulChatModelHandle
    assert type(client.get_model("llama-2")) is RESTfulGenerateModelHandle
    assert isinstance(client.get_model("bge-m3"), RESTfulEmbeddingModelHandle)
    assert isinstance(client.get_model("bge-reranker"), RESTfulRerankModelHandle)
    assert isinstance(client.get_model("whisper-small"), RESTfulAudioModelHandle)


def test_chat_handle_chat_stream_and_tools(client) -> None:
    model = client.get_model("qwen2.5-instruct")
    reply = model.chat(messages=[{"role": "user", "content": "hello there"}])
    assert reply["choices"][0]["message"]["content"] == "You said: hello there"
    assert reply["usage"]["prompt_tokens"] == 2
    chunks = list(
        model.chat(
            messages=[{"role": "user", "content": "one two"}], generate_config={"stream": True}
        )
    )
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "You said: one two"
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    called = model.chat(messages=[{"role": "user", "content": "weather?"}], tools=tools)
    call = called["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "search"


def test_embedding_rerank_and_audio_handles(client) -> None:
    result = client.get_model("bge-m3").create_embedding(["a", "b", "a"])
    vectors = [row["embedding"] for row in result["data"]]
    assert vectors[0] == vectors[2] != vectors[1]
    assert len(vectors[0]) == 8
    ranked = client.get_model("bge-reranker").rerank(
        ["cats purr", "Paris is the capital of France"],
        "capital of France",
        top_n=1,
        return_documents=True,
    )
    assert ranked["results"][0]["index"] == 1
    assert ranked["results"][0]["document"] == {"text": "Paris is the capital of France"}
    assert ranked["meta"]["tokens"]["input_tokens"] > 0
    heard = client.get_model("whisper-small").transcriptions(wav_with_text("lights on"))
    assert heard["text"] == "lights on"
    audio = client.get_model("ChatTTS").speech("good morning", voice="alice")
    assert text_in_wav(audio) == "alice: good morning"


def test_client_errors_carry_the_detail(client, fake) -> None:
    with pytest.raises(RuntimeError, match="Model not found in the model list, uid: nope"):
        client.describe_model("nope")
    wrong = RESTfulEmbeddingModelHandle("qwen2.5-instruct", fake.url, client._headers)
    with pytest.raises(RuntimeError, match="is not for creating embedding"):
        wrong.create_embedding("x")  # the server answers a wrong-type call with 500
    with pytest.raises(RuntimeError, match="Could not validate credentials"):
        RESTfulClient(fake.url, api_key="wrong").list_models()
    with pytest.raises(RuntimeError, match="Could not validate credentials"):
        RESTfulClient(fake.url).list_models()  # auth is on: no key, no entry
    fake.fail("429", retry_after=0)
    with pytest.raises(RuntimeError, match="Rate limit reached"):
        client.list_models()
    fake.fail("500")
    with pytest.raises(RuntimeError, match="detail: The server had an error"):
        client.list_models()


def test_auth_off_needs_no_key() -> None:
    with XinferenceFake(api_key=None) as open_server:
        client = RESTfulClient(open_server.url)
        assert not client._cluster_authed
        assert "qwen2.5-instruct" in client.list_models()


# --- openai on /v1 ------------------------------------------------------------------------------


def test_openai_chat_stream_embeddings_and_models(oai) -> None:
    reply = oai.chat.completions.create(
        model="qwen2.5-instruct", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "You said: hi"
    stream = oai.chat.completions.create(
        model="qwen2.5-instruct",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "You said: one two three"
    )
    assert chunks[-1].usage.completion_tokens == 5
    embedded = oai.embeddings.create(model="bge-m3", input=["a", "b"])
    assert len(embedded.data[1].embedding) == 8
    assert "bge-reranker" in {m.id for m in oai.models.list()}


def test_openai_audio(oai) -> None:
    speech = oai.audio.speech.create(
        model="ChatTTS", voice="nova", input="hello", response_format="wav"
    )
    assert text_in_wav(speech.content) == "nova: hello"
    text = oai.audio.transcriptions.create(
        model="whisper-small", file=("a.wav", io.BytesIO(wav_with_text("open the door")))
    )
    assert text.text == "open the door"


def test_openai_typed_errors(oai, fake) -> None:
    # openai keeps a {"detail"} body whole on the error (its text only quotes {"error"} bodies)
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body == {"detail": "Model not found in the model list, uid: nope"}
    with pytest.raises(openai.InternalServerError) as caught:
        oai.embeddings.create(model="qwen2.5-instruct", input="x")
    assert "is not for creating embedding" in caught.value.body["detail"]
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="llama-2",
            messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    assert "support tool calls" in caught.value.body["detail"]
    with pytest.raises(openai.APIError) as caught:  # a 200 stream carrying an error event
        list(
            oai.chat.completions.create(
                model="bge-m3", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    assert "is not for chat" in caught.value.body
    bad = openai.OpenAI(api_key="wrong", base_url=f"{fake.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    fake.fail("429", retry_after=0)
    with pytest.raises(openai.RateLimitError):
        oai.models.list()
    fake.fail("500")
    with pytest.raises(openai.InternalServerError):
        oai.models.list()
    fake.fail("404")
    with pytest.raises(openai.NotFoundError):
        oai.models.list()


def test_completions_serve_generate_models_and_refuse_chat_only_ones(oai, fake) -> None:
    reply = oai.completions.create(model="llama-2", prompt="one two")
    assert reply.choices[0].text == "You said: one two"
    with pytest.raises(openai.InternalServerError) as caught:
        oai.completions.create(model="qwen2.5-instruct", prompt="one two")
    assert "qwen2.5-instruct" in caught.value.body["detail"]
    assert caught.value.body["detail"].endswith("is not for generate.")
    with pytest.raises(openai.NotFoundError) as caught:
        oai.completions.create(model="nope", prompt="x")
    assert caught.value.body == {"detail": "Model not found in the model list, uid: nope"}
