"""The Replicate fake is trusted because the official `replicate` client talks to it: run (by
version and, for an official model, by name; waited and polled), stream (SSE output/done/error),
models.get and versions.get, prediction creation and cancel, and its errors as ReplicateError /
ModelError."""

from __future__ import annotations

import json

import pytest
import replicate
from replicate.exceptions import ModelError, ReplicateError

from tests.fakes.base import embed_text, reply_to
from tests.fakes.replicate_server import ReplicateFake, version_id

LLAMA, TINY, BGE = "meta/meta-llama-3-8b-instruct", "acme/tiny-llm", "nateraw/bge-large-en-v1.5"


@pytest.fixture(scope="module")
def fake():
    with ReplicateFake() as server:
        yield server


def client(fake, key: str = "r8_fake") -> replicate.Client:
    made = replicate.Client(api_token=key, base_url=fake.url)
    made.poll_interval = 0.01
    return made


def test_run_an_official_model_by_name_waits(fake) -> None:
    output = client(fake).run(LLAMA, input={"prompt": "hello", "max_tokens": 10})
    assert "".join(output) == reply_to("hello")
    sent = fake.received[-1]
    assert (sent.method, sent.path) == ("POST", f"/v1/models/{LLAMA}/predictions")
    assert sent.header("prefer") == "wait"
    assert sent.header("authorization") == "Bearer r8_fake"


def test_run_a_version_polls_until_it_ends(fake) -> None:
    fake.slow_predictions = True
    try:
        ref = f"{TINY}:{version_id(TINY, 'llm-bare')}"
        output = client(fake).run(ref, input={"prompt": "hi there"})
    finally:
        fake.slow_predictions = False
    assert "".join(output) == reply_to("hi there")
    assert [r.path.split("/")[2] for r in fake.received[-3:]] == [
        "models",
        "predictions",
        "predictions",
    ]


def test_embeddings_as_a_json_list_of_texts(fake) -> None:
    ref = f"{BGE}:{version_id(BGE, 'texts')}"
    output = client(fake).run(ref, input={"texts": json.dumps(["a", "b"])})
    assert output == [embed_text("a"), embed_text("b")]


def test_stream_yields_tokens_then_done(fake) -> None:
    events = list(client(fake).stream(LLAMA, input={"prompt": "stream me"}))
    assert "".join(str(e) for e in events if e.event.value == "output") == reply_to("stream me")
    assert events[-1].event.value == "done"
    fake.fail("stream_error")
    with pytest.raises(RuntimeError, match="the model crashed"):
        list(client(fake).stream(LLAMA, input={"prompt": "x"}))


def test_models_versions_and_cancel(fake) -> None:
    model = client(fake).models.get(TINY)
    assert model.latest_version.id == version_id(TINY, "llm-bare")
    schema = model.latest_version.openapi_schema["components"]["schemas"]["Input"]
    assert set(schema["properties"]) == {"prompt", "max_new_tokens"}
    version = model.versions.get(version_id(TINY, "llm-bare"))
    assert version.id == model.latest_version.id
    prediction = client(fake).predictions.create(version=version.id, input={"prompt": "p"})
    assert prediction.status == "starting"
    prediction.cancel()
    prediction.reload()
    assert prediction.status == "canceled"


def test_errors(fake) -> None:
    with pytest.raises(ReplicateError) as caught:
        client(fake, "r8_wrong").models.get(TINY)
    assert (caught.value.status, caught.value.title) == (401, "Unauthenticated")
    with pytest.raises(ReplicateError) as caught:
        client(fake).models.get("nobody/nothing")
    assert caught.value.status == 404
    with pytest.raises(ReplicateError) as caught:
        client(fake).predictions.create(version=version_id(TINY, "llm-bare"), input={"p": 1})
    assert (caught.value.status, caught.value.detail) == (422, "- input: prompt is required\n")
    fake.fail("model_error")
    with pytest.raises(ModelError, match="CUDA out of memory"):
        client(fake).run(LLAMA, input={"prompt": "x"})
