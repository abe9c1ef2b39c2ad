"""The Hugging Face fake is trusted because huggingface_hub talks to it: InferenceClient's
chat_completion, text_generation (plain, with details, streamed) and feature_extraction on an
Inference Endpoint URL and, with the library's router and Hub addresses aimed at the fake, on a
hosted repo id (the client's own pipeline_tag check included); HfApi's model_info and
list_inference_endpoints; errors as HfHubHTTPError."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi, InferenceClient, constants
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.inference._providers import PROVIDERS, hf_inference

from tests.fakes.base import embed_text, reply_to
from tests.fakes.huggingface_hub_server import HuggingFaceHubFake

CHAT_REPO = "HuggingFaceH4/zephyr-7b-beta"
EMBED_REPO = "BAAI/bge-small-en-v1.5"


@pytest.fixture(scope="module")
def fake():
    with HuggingFaceHubFake() as server:
        yield server


@pytest.fixture
def hosted(fake, monkeypatch):
    """An InferenceClient whose router and Hub are the fake."""
    monkeypatch.setattr(constants, "ENDPOINT", fake.url)
    monkeypatch.setattr(constants, "INFERENCE_PROXY_TEMPLATE", fake.url + "/{provider}")
    for helper in PROVIDERS["hf-inference"].values():  # made at import, from the template
        monkeypatch.setattr(helper, "base_url", fake.url + "/hf-inference")
    hf_inference._check_supported_task.cache_clear()
    return InferenceClient(provider="hf-inference", token="hf_fake", timeout=5)


def test_chat_completion_on_an_endpoint(fake) -> None:
    client = InferenceClient(model=fake.endpoint_url("tgi"), token="hf_fake", timeout=5)
    result = client.chat_completion([{"role": "user", "content": "hello"}], max_tokens=20)
    assert result.choices[0].message.content == reply_to("hello")
    sent = fake.received[-1]
    assert (sent.path, sent.json()["model"]) == ("/endpoints/tgi/v1/chat/completions", "dummy")
    assert sent.header("authorization") == "Bearer hf_fake"
    chunks = client.chat_completion([{"role": "user", "content": "hi"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply_to("hi")


def test_text_generation_plain_detailed_and_streamed(fake) -> None:
    client = InferenceClient(model=fake.endpoint_url("t5"), token="hf_fake", timeout=5)
    assert client.text_generation("hello there") == reply_to("hello there")
    detailed = client.text_generation("hello there", details=True, max_new_tokens=2)
    assert (detailed.generated_text, detailed.details.finish_reason) == ("You said:", "length")
    assert fake.received[-1].json()["parameters"]["max_new_tokens"] == 2
    tokens = list(client.text_generation("hello there", stream=True))
    assert "".join(tokens) == reply_to("hello there")
    last = list(client.text_generation("hi", stream=True, details=True))[-1]
    assert (last.generated_text, last.details.generated_tokens) == (reply_to("hi"), 3)


def test_feature_extraction_on_an_endpoint(fake) -> None:
    client = InferenceClient(model=fake.endpoint_url("bge"), token="hf_fake", timeout=5)
    assert client.feature_extraction("hello").tolist() == [pytest.approx(embed_text("hello"))]


def test_hosted_repo_ids_go_through_the_router(fake, hosted) -> None:
    result = hosted.chat_completion([{"role": "user", "content": "hey"}], model=CHAT_REPO)
    assert result.choices[0].message.content == reply_to("hey")
    assert fake.received[-1].path == f"/hf-inference/models/{CHAT_REPO}/v1/chat/completions"
    vectors = hosted.feature_extraction("hello", model=EMBED_REPO)
    assert vectors.tolist() == pytest.approx(embed_text("hello"))  # one text: one row
    assert (
        fake.received[-1].path == f"/hf-inference/models/{EMBED_REPO}/pipeline/feature-extraction"
    )
    with pytest.raises(ValueError, match="doesn't support task"):
        hosted.feature_extraction("x", model="google/flan-t5-base")


def test_the_hub_and_endpoints_apis(fake) -> None:
    api = HfApi(endpoint=fake.url, token="hf_fake")
    assert api.model_info(CHAT_REPO).pipeline_tag == "text-generation"
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("nobody/nothing")


def test_list_inference_endpoints(fake, monkeypatch) -> None:
    monkeypatch.setattr(constants, "INFERENCE_ENDPOINTS_ENDPOINT", fake.url + "/v2")
    found = HfApi(token="hf_fake").list_inference_endpoints(namespace="acme")
    assert {(e.name, e.repository, e.url) for e in found} >= {
        ("bge", EMBED_REPO, fake.endpoint_url("bge"))
    }


def test_errors_reach_the_client(fake) -> None:
    client = InferenceClient(model=fake.endpoint_url("tgi"), token="hf_wrong", timeout=5)
    with pytest.raises(HfHubHTTPError) as caught:
        client.chat_completion([{"role": "user", "content": "x"}])
    assert caught.value.response.status_code == 401
    assert "Invalid credentials" in str(caught.value)
    fake.fail("loading")
    with pytest.raises(HfHubHTTPError) as caught:
        InferenceClient(model=fake.endpoint_url("bge"), token="hf_fake").feature_extraction("x")
    assert caught.value.response.status_code == 503
    assert "currently loading" in str(caught.value)
