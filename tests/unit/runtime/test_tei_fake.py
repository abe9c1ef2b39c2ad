"""The TEI fake is trusted because huggingface_hub's InferenceClient talks to it successfully.

For a URL model the client (hf-inference provider) POSTs to the URL itself:
- feature_extraction sends {"inputs", "normalize"?, "truncate"?} to `/`, which TEI maps to /embed
  on an embedding server. The method returns a numpy array and refuses to run without numpy, which
  is not installed here: the same request is made through the client's own provider helper and
  `_inner_post` (what feature_extraction does before building the array), and the public method
  itself runs when numpy is present.
- sentence_similarity sends {"inputs": {"source_sentence", "sentences"}} to the URL; TEI serves
  that at /similarity (at `/` only with TASK=sentence-similarity), so the model URL names it.
The client has no rerank task: /rerank is checked with plain HTTP. The OpenAI-compatible
/v1/embeddings route is checked with the `openai` client."""

from __future__ import annotations

import openai
import pytest
import requests
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.inference._providers import get_provider_helper

from tests.fakes.tei_server import TEIFake, tei_vector


@pytest.fixture(scope="module")
def fake():
    with TEIFake() as server:
        yield server


@pytest.fixture(scope="module")
def reranker():
    with TEIFake(kind="reranker", model_id="BAAI/bge-reranker-v2-m3") as server:
        yield server


@pytest.fixture
def client(fake):
    return InferenceClient(model=fake.url, token="fake-key", timeout=5)


def feature_extraction(client: InferenceClient, text, **parameters) -> list:
    """InferenceClient.feature_extraction without its final numpy conversion."""
    helper = get_provider_helper(client.provider, task="feature-extraction", model=client.model)
    request = helper.prepare_request(
        inputs=text,
        parameters=parameters,
        headers=client.headers,
        model=client.model,
        api_key=client.token,
    )
    return helper.get_response(client._inner_post(request))


def test_feature_extraction_goes_to_the_root_route(client, fake) -> None:
    assert feature_extraction(client, "hello world") == [tei_vector("hello world")]
    sent = fake.received[-1]
    assert (sent.method, sent.path, sent.json()) == ("POST", "/", {"inputs": "hello world"})
    assert sent.header("authorization") == "Bearer fake-key"


def test_feature_extraction_passes_tei_parameters(client, fake) -> None:
    vectors = feature_extraction(client, ["a", "b"], normalize=False, truncate=True)
    assert vectors == [tei_vector("a", normalize=False), tei_vector("b", normalize=False)]
    assert fake.received[-1].json() == {"inputs": ["a", "b"], "normalize": False, "truncate": True}


def test_the_public_feature_extraction_when_numpy_is_installed(client) -> None:
    pytest.importorskip("numpy")
    vectors = client.feature_extraction("hello world")
    assert vectors.shape == (1, 8)
    assert vectors[0].tolist() == pytest.approx(tei_vector("hello world"), rel=1e-6)


def test_sentence_similarity_on_the_similarity_route(fake) -> None:
    client = InferenceClient(model=f"{fake.url}/similarity", token="fake-key", timeout=5)
    scores = client.sentence_similarity("cats purr", ["cats purr", "dogs bark"])
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert scores[1] < scores[0]
    assert fake.received[-1].json() == {
        "inputs": {"source_sentence": "cats purr", "sentences": ["cats purr", "dogs bark"]},
        "parameters": {},
    }


def test_errors_reach_the_client_with_teis_message(client, fake) -> None:
    similarity = f"{fake.url}/similarity"
    with pytest.raises(HfHubHTTPError) as caught:
        InferenceClient(model=similarity, token="wrong", timeout=5).sentence_similarity("x", ["y"])
    assert caught.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as caught:
        client.sentence_similarity("x", ["y"], model=f"{fake.url}/nope")
    assert caught.value.response.status_code == 404
    with pytest.raises(HfHubHTTPError) as caught:
        client.sentence_similarity("x", [str(i) for i in range(32)], model=similarity)
    assert caught.value.response.status_code == 422
    assert "maximum allowed batch size 32" in str(caught.value)
    with pytest.raises(HfHubHTTPError) as caught:
        feature_extraction(client, [str(i) for i in range(33)])
    assert caught.value.response.status_code == 422
    fake.fail("429")
    with pytest.raises(HfHubHTTPError) as caught:
        client.sentence_similarity("x", ["y"], model=similarity)
    assert caught.value.response.status_code == 429
    assert "Model is overloaded" in str(caught.value)
    fake.fail("500")
    with pytest.raises(HfHubHTTPError) as caught:
        feature_extraction(client, "x")
    assert caught.value.response.status_code == 500


def test_health_and_info_over_plain_http(fake) -> None:
    assert requests.get(f"{fake.url}/health", timeout=5).status_code == 200  # public route
    assert requests.get(f"{fake.url}/info", timeout=5).status_code == 401
    info = requests.get(f"{fake.url}/info", headers={"Authorization": "Bearer fake-key"}, timeout=5)
    assert info.json()["model_type"] == {"embedding": {"pooling": "cls"}}
    assert info.json()["max_client_batch_size"] == 32


def test_rerank_over_plain_http(reranker) -> None:
    headers = {"Authorization": "Bearer fake-key"}
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    reply = requests.post(
        f"{reranker.url}/rerank",
        json={"query": "capital of France", "texts": docs, "return_text": True},
        headers=headers,
        timeout=5,
    )
    assert reply.status_code == 200
    ranks = reply.json()
    assert [r["index"] for r in ranks] == [1, 2, 0]
    assert ranks[0]["text"] == docs[1]
    assert int(reply.headers["x-compute-tokens"]) > 0
    root = requests.post(
        f"{reranker.url}/", json={"query": "q", "texts": ["q"]}, headers=headers, timeout=5
    )
    assert root.json() == [{"index": 0, "score": 1.0}]
    embed = requests.post(
        f"{reranker.url}/embed", json={"inputs": ["x"]}, headers=headers, timeout=5
    )
    assert (embed.status_code, embed.json()["error_type"]) == (424, "Backend")


def test_openai_compatible_route(fake) -> None:
    client = openai.OpenAI(api_key="fake-key", base_url=f"{fake.url}/v1", max_retries=0)
    result = client.embeddings.create(model="tei", input=["a", "b"], encoding_format="float")
    assert [row.embedding for row in result.data] == [tei_vector("a"), tei_vector("b")]
    assert result.usage.prompt_tokens == 6
