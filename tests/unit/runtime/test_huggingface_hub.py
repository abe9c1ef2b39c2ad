"""HuggingFaceHubAdapter against the Hugging Face fake: hosted chat and feature extraction through
the router, Inference Endpoints (TGI chat, text2text generation, feature extraction), validation by
the Hub's pipeline_tag and the Endpoints API, and failures ending as typed errors."""

from __future__ import annotations

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.huggingface_hub import HuggingFaceHubAdapter
from tests.fakes.base import embed_text, reply_to
from tests.fakes.huggingface_hub_server import HuggingFaceHubFake

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
CHAT, T5, BGE = "HuggingFaceH4/zephyr-7b-beta", "google/flan-t5-base", "BAAI/bge-small-en-v1.5"
ASK = ChatRequest(messages=(Message("user", "hello there"),), parameters={"max_tokens": 50})


@pytest.fixture(scope="module")
def fake():
    with HuggingFaceHubFake() as server:
        yield server


def adapter(fake, *, endpoint="", read=5.0, retry=FAST_RETRY, **credentials):
    given = {"api_key": "hf_fake", **credentials}
    if endpoint:
        given.update(api_type="inference_endpoints", base_url=fake.endpoint_url(endpoint))
    return HuggingFaceHubAdapter(
        Endpoint(
            base_url=f"{fake.url}/hf-inference",
            credentials={k: v for k, v in given.items() if v},
            options={"hub_api_url": f"{fake.url}/api/models",
                     "endpoints_api_url": f"{fake.url}/v2/endpoint"},
            timeouts=Timeouts(connect=2, read=read),
            retry=retry,
        ),
        http.pool(),
    )  # fmt: skip


def test_hosted_chat_goes_to_the_models_router_route(fake) -> None:
    result = adapter(fake).chat(CHAT, ASK)
    assert (result.text, result.usage.counted) == (reply_to("hello there"), False)
    sent = fake.received[-1]
    assert sent.path == f"/hf-inference/models/{CHAT}/v1/chat/completions"
    assert sent.header("authorization") == "Bearer hf_fake"
    assert sent.json()["model"] == CHAT
    assert sent.json()["messages"] == [{"role": "user", "content": "hello there"}]


def test_hosted_stream_and_tool_calls(fake) -> None:
    assert accumulate(adapter(fake).stream(CHAT, ASK)).text == reply_to("hello there")
    assert fake.received[-1].json()["stream"] is True
    asked = ChatRequest(messages=ASK.messages, tools=(Tool("search"),))
    streamed = accumulate(adapter(fake).stream(CHAT, asked))
    assert (streamed.tool_calls[0].name, streamed.finish_reason) == ("search", "tool_calls")


def test_hosted_feature_extraction_in_batches(fake) -> None:
    texts = [f"text {i}" for i in range(5)]
    before = len(fake.received)
    result = HuggingFaceHubAdapter(
        Endpoint(base_url=f"{fake.url}/hf-inference", credentials={"api_key": "hf_fake"},
                 options={"max_chunks": 2}, retry=FAST_RETRY),
        http.pool(),
    ).embed(BGE, texts)  # fmt: skip
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    sent = fake.received[before:]
    assert [len(r.json()["inputs"]) for r in sent] == [2, 2, 1]
    assert sent[0].path == f"/hf-inference/models/{BGE}/pipeline/feature-extraction"
    assert result.usage.counted is True


def test_endpoint_chat_speaks_tgis_messages_api(fake) -> None:
    assert adapter(fake, endpoint="tgi").chat(CHAT, ASK).text == reply_to("hello there")
    sent = fake.received[-1]
    assert (sent.path, sent.json()["model"]) == ("/endpoints/tgi/v1/chat/completions", "tgi")


def test_text2text_endpoint_uses_the_generation_api(fake) -> None:
    t5 = adapter(fake, endpoint="t5", task_type="text2text-generation")
    request = ChatRequest(
        messages=(Message("user", "hello there"),), parameters={"max_tokens": 2}, stop=("x",)
    )
    result = t5.chat(T5, request)
    assert (result.text, result.finish_reason) == ("You said:", "length")
    assert result.usage.completion_tokens == 2
    assert fake.received[-1].path == "/endpoints/t5"
    assert fake.received[-1].json() == {
        "inputs": "hello there",
        "parameters": {"return_full_text": False, "details": True, "max_new_tokens": 2,
                       "stop": ["x"]},
        "stream": False,
    }  # fmt: skip
    chunks = list(t5.stream(T5, ASK))
    assert "".join(c.text for c in chunks) == reply_to("hello there")
    assert (chunks[-1].finish_reason, chunks[-1].usage.completion_tokens) == ("stop", 4)


def test_tgi_is_not_sent_the_sampling_values_it_refuses(fake) -> None:
    """TGI refuses a top_p of 1.0 (which keeps every token, as none does) and, on its generation
    API, a temperature of 0 (greedy, as none is there): both are left out, on every route."""
    greedy = {"max_tokens": 3, "temperature": 0, "top_p": 1.0}
    ask = ChatRequest(messages=(Message("user", "hello there"),), parameters=greedy)
    for client in (adapter(fake), adapter(fake, endpoint="tgi")):
        assert client.chat(CHAT, ask).text == "You said: hello"
        assert "top_p" not in fake.received[-1].json()
        assert fake.received[-1].json()["temperature"] == 0  # chat takes 0 as greedy
    t5 = adapter(fake, endpoint="t5", task_type="text2text-generation")
    assert accumulate(t5.stream(T5, ask)).text == "You said: hello"
    assert fake.received[-1].json()["parameters"] == {
        "return_full_text": False, "details": True, "max_new_tokens": 3,
    }  # fmt: skip
    sampled = ChatRequest(messages=ask.messages, parameters={"temperature": 0.5, "top_p": 0.9})
    t5.chat(T5, sampled)
    assert fake.received[-1].json()["parameters"]["top_p"] == 0.9
    assert fake.received[-1].json()["parameters"]["temperature"] == 0.5


def test_endpoint_feature_extraction(fake) -> None:
    result = adapter(fake, endpoint="bge").embed(BGE, ["a", "b"])
    assert [list(v) for v in result.vectors] == [embed_text("a"), embed_text("b")]
    assert fake.received[-1].json() == {"inputs": ["a", "b"]}


def test_hosted_validation_reads_the_pipeline_tag(fake) -> None:
    before = len(fake.received)
    details = adapter(fake).validate(CHAT, "llm").details
    assert details["pipeline_tag"] == "text-generation"
    paths = [r.path for r in fake.received[before:]]
    assert paths == [f"/api/models/{CHAT}", f"/hf-inference/models/{CHAT}/v1/chat/completions"]
    assert adapter(fake).validate(BGE, "text-embedding").details["dimensions"] == 8
    with pytest.raises(errors.UpstreamBadRequest, match="feature-extraction model on the Hub"):
        adapter(fake).validate(BGE, "llm")
    with pytest.raises(errors.UpstreamBadRequest, match="text2text-generation model"):
        adapter(fake).validate(T5, "llm")  # no chat on the hosted API
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).validate("nobody/nothing", "llm")


def test_endpoint_validation_checks_the_endpoints_model(fake) -> None:
    bge = adapter(fake, endpoint="bge", namespace="acme")
    details = bge.validate(BGE, "text-embedding").details
    assert (details["endpoint_name"], details["dimensions"]) == ("bge", 8)
    with pytest.raises(errors.UpstreamBadRequest, match=r"runs BAAI/bge-small-en-v1\.5, not"):
        bge.validate("other/model", "text-embedding")
    with pytest.raises(errors.InvalidInput):
        adapter(fake, endpoint="bge").validate(BGE, "text-embedding")
    assert adapter(fake, endpoint="tgi").validate(CHAT, "llm").details["api_type"] == (
        "inference_endpoints"
    )
    with pytest.raises(errors.InvalidInput):
        adapter(fake).validate(CHAT, "rerank")


def test_missing_credentials_are_refused_before_any_call(fake) -> None:
    with pytest.raises(errors.InvalidInput, match="token"):
        adapter(fake, api_key="").chat(CHAT, ASK)
    bare = HuggingFaceHubAdapter(
        Endpoint(base_url="", credentials={"api_key": "k", "api_type": "inference_endpoints"}),
        http.pool(),
    )
    with pytest.raises(errors.InvalidInput, match="Endpoint URL"):
        bare.stream(CHAT, ASK)


def test_a_wrong_token_is_authorization(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match="Invalid credentials") as caught:
        adapter(fake, api_key="hf_wrongtoken123").chat(CHAT, ASK)
    assert "hf_wrongtoken123" not in str(caught.value)


def test_a_loading_model_is_retried_then_answers(fake) -> None:
    fake.fail("loading", times=2)
    before = len(fake.received)
    assert adapter(fake).embed(BGE, ["x"]).dimensions == 8
    assert len(fake.received) - before == 3
    fake.fail("loading", times=3)
    with pytest.raises(errors.UpstreamUnavailable, match="currently loading"):
        adapter(fake).embed(BGE, ["x"])


def test_429_with_retry_after_is_retried(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(CHAT, ASK).text == reply_to("hello there")
    assert len(fake.received) - before == 3


def test_5xx_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).chat(CHAT, ASK)


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(CHAT, ASK)


def test_dropped_streams_are_errors(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(CHAT, ASK))
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake, endpoint="t5", task_type="text2text-generation").stream(T5, ASK))
