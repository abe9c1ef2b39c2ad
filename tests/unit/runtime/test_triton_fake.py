"""The Triton fake is trusted because the official `tritonclient[http]` client talks to it: server
health and metadata, model metadata and readiness, and Triton's error for an unknown model.

The generate extension is not in the client; its shape is checked against Triton's documented
one (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_generate.md)
with plain HTTP here and through our adapter in test_triton.py."""

from __future__ import annotations

import json

import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.fakes.triton_server import TritonFake


@pytest.fixture(scope="module")
def fake():
    with TritonFake() as server:
        yield server


@pytest.fixture
def client(fake):
    return triton.InferenceServerClient(url=fake.url.removeprefix("http://"))


def test_server_health_and_metadata(client) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert "generate" in client.get_server_metadata()["extensions"]


def test_model_metadata_and_readiness(client, fake) -> None:
    metadata = client.get_model_metadata("ensemble")
    assert metadata["name"] == "ensemble"
    assert "text_input" in [i["name"] for i in metadata["inputs"]]
    assert client.is_model_ready("ensemble")
    fake.not_ready.add("vllm_model")
    try:
        assert not client.is_model_ready("vllm_model")
    finally:
        fake.not_ready.clear()


def test_an_unknown_model_is_tritons_error(client) -> None:
    with pytest.raises(InferenceServerException, match="Request for unknown model: 'nope'"):
        client.get_model_metadata("nope")
    assert not client.is_model_ready("nope")


def post(url: str, body: object) -> tuple[int, bytes]:
    reply = requests.post(url, json=body, timeout=5)
    return reply.status_code, reply.content


def test_generate_follows_the_documented_example(fake) -> None:
    status, body = post(
        f"{fake.url}/v2/models/ensemble/generate",
        {"text_input": "client input", "max_tokens": 8, "parameters": {"temperature": 0}},
    )
    assert status == 200
    assert json.loads(body) == {
        "model_name": "ensemble",
        "model_version": "1",
        "text_output": "You said: client input",
    }
    status, body = post(f"{fake.url}/v2/models/ensemble/generate", {"parameters": {}})
    assert status == 400
    assert "text_input" in json.loads(body)["error"]
    status, body = post(
        f"{fake.url}/v2/models/ensemble/generate",
        {"text_input": "x", "max_tokens": 2, "parameters": {"a": [1]}},
    )
    assert (status, "invalid type" in json.loads(body)["error"]) == (400, True)


def test_generate_stream_sends_sse_data_events(fake) -> None:
    status, body = post(
        f"{fake.url}/v2/models/ensemble/generate_stream", {"text_input": "a b", "max_tokens": 3}
    )
    assert status == 200
    events = [
        json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:")
    ]
    assert "".join(e["text_output"] for e in events) == "You said: a"
