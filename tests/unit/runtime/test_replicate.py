"""ReplicateAdapter against the Replicate fake: the version's schema shapes the input, predictions
are waited for then polled, streamed over urls.stream, cut at stop sequences (and canceled), and
embeddings run; validation by the schema; failures end as typed errors."""

from __future__ import annotations

import json

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.replicate import ReplicateAdapter
from tests.fakes.base import embed_text, reply_to
from tests.fakes.replicate_server import ReplicateFake, version_id

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLAMA, TINY = "meta/meta-llama-3-8b-instruct", "acme/tiny-llm"
BGE, MPNET, SDXL = "nateraw/bge-large-en-v1.5", "replicate/all-mpnet-base-v2", "stability-ai/sdxl"
ASK = ChatRequest(
    messages=(Message("system", "be brief"), Message("user", "hello there")),
    parameters={"max_tokens": 50, "temperature": 0.2, "frequency_penalty": 1},
)


@pytest.fixture(scope="module")
def fake():
    with ReplicateFake() as server:
        yield server


def adapter(fake, *, key="r8_fake", read=5.0, total=600.0, retry=FAST_RETRY, **credentials):
    return ReplicateAdapter(
        Endpoint(
            base_url=f"{fake.url}/v1",
            credentials={"api_key": key, **credentials},
            options={"poll_interval": 0.01},
            timeouts=Timeouts(connect=2, read=read, total=total),
            retry=retry,
        ),
        http.pool(),
    )


def test_chat_reads_the_schema_then_waits_for_the_prediction(fake) -> None:
    before = len(fake.received)
    result = adapter(fake).chat(LLAMA, ASK)
    assert result.text == reply_to("hello there")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    assert result.usage.counted is False
    create = fake.received[-1]
    assert [r.path for r in fake.received[before:]] == [
        f"/v1/models/{LLAMA}",
        f"/v1/models/{LLAMA}/predictions",
    ]
    assert (create.header("prefer"), create.header("authorization")) == ("wait=1", "Bearer r8_fake")
    assert create.json() == {  # frequency_penalty: not an input of this model
        "input": {"prompt": "hello there", "system_prompt": "be brief", "max_tokens": 50,
                  "temperature": 0.2}
    }  # fmt: skip


def test_the_wait_stays_under_the_read_timeout(fake) -> None:
    for read, prefer in [(120.0, "wait"), (30.0, "wait=25")]:
        adapter(fake, read=read).chat(LLAMA, ASK)
        assert fake.received[-1].header("prefer") == prefer


def test_a_versioned_model_without_system_prompt_polls(fake) -> None:
    fake.slow_predictions = True
    before = len(fake.received)
    try:
        result = adapter(fake).chat(f"{TINY}:{version_id(TINY, 'llm-bare')}", ASK)
    finally:
        fake.slow_predictions = False
    assert result.text == reply_to("be brief\n\nhello there")
    create = next(r for r in reversed(fake.received) if r.method == "POST")
    assert create.path == "/v1/predictions"
    assert create.json() == {
        "version": version_id(TINY, "llm-bare"),
        "input": {"prompt": "be brief\n\nhello there", "max_new_tokens": 50},
    }
    paths = [r.path for r in fake.received[before:]]
    assert paths[:2] == [
        f"/v1/models/{TINY}",
        f"/v1/models/{TINY}/versions/{create.json()['version']}",
    ]
    assert paths[2:] == ["/v1/predictions", *[f"/v1/predictions/{paths[-1].split('/')[-1]}"] * 2]


def test_the_credentials_version_pins_the_model(fake) -> None:
    pinned = adapter(fake, model_version=version_id(TINY, "llm-bare"))
    assert pinned.chat(TINY, ASK).text == reply_to("be brief\n\nhello there")
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake, model_version="0" * 64).chat(TINY, ASK)


def test_a_conversation_is_a_transcript(fake) -> None:
    request = ChatRequest(
        messages=(Message("user", "hi"), Message("assistant", "hello"), Message("user", "again"))
    )
    adapter(fake).chat(LLAMA, request)
    prompt = fake.received[-1].json()["input"]["prompt"]
    assert prompt == "Human: hi\n\nAssistant: hello\n\nHuman: again\n\nAssistant:"


def test_stop_sequences_and_token_limits(fake) -> None:
    stopped = adapter(fake).chat(LLAMA, ChatRequest(messages=ASK.messages, stop=("there",)))
    assert (stopped.text, stopped.finish_reason) == ("You said: hello ", "stop")
    assert fake.received[-1].json()["input"]["stop_sequences"] == "there"
    capped = adapter(fake).chat(
        LLAMA, ChatRequest(messages=ASK.messages, parameters={"max_tokens": 2})
    )
    assert (capped.text, capped.finish_reason) == ("You said:", "length")


def test_stream_reads_the_sse_url(fake) -> None:
    chunks = list(adapter(fake).stream(LLAMA, ASK))
    result = accumulate(iter(chunks))
    assert result.text == reply_to("hello there")
    assert [c.text for c in chunks[:-1]] == ["You", " said:", " hello", " there"]
    assert chunks[-1].usage.counted is True
    create, listen = fake.received[-2:]
    assert (create.json()["stream"], create.header("prefer")) == (True, "")
    assert (listen.path, listen.header("accept")) == (f"/v1/stream/{listen.path.split('/')[-1]}",
                                                      "text/event-stream")  # fmt: skip


def test_a_stream_cut_at_a_stop_sequence_cancels_the_prediction(fake) -> None:
    request = ChatRequest(messages=(Message("user", "one two three"),), stop=("two",))
    tiny = adapter(fake, model_version=version_id(TINY, "llm-bare"))  # no stop_sequences input
    result = accumulate(tiny.stream(TINY, request))
    assert result.text == "You said: one "
    assert fake.received[-1].path.endswith("/cancel")
    assert fake.canceled[-1] == fake.received[-1].path.split("/")[-2]


def test_a_stream_error_event_and_a_dropped_stream(fake) -> None:
    fake.fail("stream_error")
    with pytest.raises(errors.UpstreamUnavailable, match="the model crashed"):
        list(adapter(fake).stream(LLAMA, ASK))
    fake.fail("none", times=2)  # the model's info and the prediction answer; the stream drops
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLAMA, ASK))
    assert fake.received[-1].path.startswith("/v1/stream/")


def test_embeddings_by_texts_and_by_text(fake) -> None:
    result = adapter(fake).embed(BGE, ["a", "b"])
    assert [list(v) for v in result.vectors] == [embed_text("a"), embed_text("b")]
    assert json.loads(fake.received[-1].json()["input"]["texts"]) == ["a", "b"]
    before = len(fake.received)
    single = adapter(fake).embed(MPNET, ["x", "y"])
    assert [list(v) for v in single.vectors] == [embed_text("x"), embed_text("y")]
    creates = [r.json()["input"] for r in fake.received[before:] if r.method == "POST"]
    assert creates == [{"text": "x"}, {"text": "y"}]
    with pytest.raises(errors.UpstreamBadRequest, match="not an embedding model"):
        adapter(fake).embed(SDXL, ["x"])


def test_validation_by_the_schema(fake) -> None:
    details = adapter(fake).validate(TINY, "llm").details  # described as a language model
    assert (details["version"], details["inputs"]) == (
        version_id(TINY, "llm-bare"),
        ["max_new_tokens", "prompt"],
    )
    assert not any(r.method == "POST" for r in fake.received[-1:])
    assert adapter(fake).validate(BGE, "text-embedding").details["dimensions"] == 8
    with pytest.raises(errors.UpstreamBadRequest, match="not a text generation model"):
        adapter(fake).validate(SDXL, "llm")
    with pytest.raises(errors.InvalidInput, match="owner/name"):
        adapter(fake).validate("just-a-name", "llm")
    with pytest.raises(errors.InvalidInput):
        adapter(fake).validate(LLAMA, "rerank")


def test_a_failed_prediction_is_the_models_error(fake) -> None:
    fake.fail("model_error")
    with pytest.raises(errors.UpstreamBadRequest, match="CUDA out of memory"):
        adapter(fake).chat(LLAMA, ASK)


def test_a_prediction_past_the_deadline_times_out(fake) -> None:
    fake.slow_predictions = True
    try:
        with pytest.raises(errors.UpstreamTimeout, match="did not end"):
            adapter(fake, total=0.015).chat(LLAMA, ASK)
    finally:
        fake.slow_predictions = False


def test_wrong_token_is_authorization(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match="valid authentication token") as caught:
        adapter(fake, key="r8_wrongtoken42").chat(LLAMA, ASK)
    assert "r8_wrongtoken42" not in str(caught.value)


def test_429_with_retry_after_is_retried(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).embed(BGE, ["a"]).dimensions == 8
    assert len(fake.received) - before == 4  # two refusals, the model, the prediction


def test_5xx_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).chat(LLAMA, ASK)


def test_a_slow_answer_times_out(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(LLAMA, ASK)


def test_a_versions_schema_is_read_once_for_many_calls(fake) -> None:
    """The schema decides each call's inputs; it is asked for once, then kept."""
    kept = adapter(fake)
    fake.received.clear()
    for _ in range(3):
        kept.chat(LLAMA, ASK)
    schema_reads = [r for r in fake.received if r.method == "GET" and "/models/" in r.path]
    assert len(schema_reads) == 1
