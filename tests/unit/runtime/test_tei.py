"""TEIAdapter against the TEI fake: embeddings and rerank, usage from x-compute-tokens, /info
validation per model type, listing, and each failure mode ending as a typed error after bounded
retries."""

from __future__ import annotations

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import Endpoint
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.tei import TEIAdapter
from tests.fakes.tei_server import TEIFake, tei_vector, tokens

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
EMBED = "BAAI/bge-m3"
RERANK = "BAAI/bge-reranker-v2-m3"


@pytest.fixture(scope="module")
def fake():
    with TEIFake(model_id=EMBED, max_input_length=16) as server:
        yield server


@pytest.fixture(scope="module")
def reranker():
    with TEIFake(kind="reranker", model_id=RERANK) as server:
        yield server


def adapter(
    fake, *, key="fake-key", retry=FAST_RETRY, read=5.0, credentials=None, **options
) -> TEIAdapter:
    endpoint = Endpoint(
        base_url="",
        credentials={"base_url": fake.url + "/", "api_key": key, **(credentials or {})},
        options=options,
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return TEIAdapter(endpoint, http.pool())


def test_embeddings_send_normalize_and_truncate_and_report_usage(fake) -> None:
    long_text = " ".join(["word"] * 40)  # past max_input_length: only truncate lets it through
    result = adapter(fake).embed(EMBED, ["hello world", long_text])
    assert [list(v) for v in result.vectors] == [tei_vector("hello world"), tei_vector(long_text)]
    assert result.dimensions == 8
    sent = fake.received[-1]
    assert (sent.path, sent.json()["normalize"], sent.json()["truncate"]) == ("/embed", True, True)
    assert sent.header("authorization") == "Bearer fake-key"
    assert (result.usage.prompt_tokens, result.usage.counted) == (tokens("hello world") + 16, False)


def test_embeddings_are_batched_by_max_chunks_and_keep_order(fake) -> None:
    texts = [f"text {i}" for i in range(40)]
    for settings, sizes in [
        ({}, [32, 8]),  # TEI's default max_client_batch_size
        ({"credentials": {"max_chunks": "16"}}, [16, 16, 8]),
        ({"max_chunks": 15}, [15, 15, 10]),
    ]:
        before = len(fake.received)
        result = adapter(fake, **settings).embed(EMBED, texts)
        assert [len(r.json()["inputs"]) for r in fake.received[before:]] == sizes
        assert [list(v) for v in result.vectors] == [tei_vector(t) for t in texts]


def test_a_batch_over_the_servers_limit_is_a_bad_request(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="maximum allowed batch size 32"):
        adapter(fake, max_chunks=33).embed(EMBED, [str(i) for i in range(33)])


def test_usage_is_counted_when_the_server_reports_none(fake) -> None:
    fake.report_tokens = False
    try:
        result = adapter(fake).embed(EMBED, ["abcdefgh"])
    finally:
        fake.report_tokens = True
    assert (result.usage.prompt_tokens, result.usage.counted) == (2, True)


def test_no_key_sends_no_authorization(fake) -> None:
    with TEIFake(api_key=None) as open_server:
        assert adapter(open_server, key="").embed(EMBED, ["x"]).dimensions == 8
        assert open_server.received[-1].header("authorization") == ""


def test_rerank_orders_by_score_keeps_top_n_and_reports_usage(reranker) -> None:
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    result = adapter(reranker).rerank(RERANK, "capital of France", docs, top_n=2)
    assert [h.index for h in result.hits] == [1, 2]
    assert result.hits[0].document == docs[1]
    assert result.hits[0].score >= result.hits[1].score
    assert reranker.received[-1].json() == {
        "query": "capital of France",
        "texts": docs,
        "truncate": True,
        "return_text": False,
        "raw_scores": False,
    }
    expected = sum(tokens(f"capital of France {d}") for d in docs)
    assert (result.usage.prompt_tokens, result.usage.counted) == (expected, False)


def test_rerank_batches_merge_into_one_ranking(reranker) -> None:
    docs = ["a", "q r", "c", "q r s", "q"]
    before = len(reranker.received)
    result = adapter(reranker, max_chunks=2).rerank(RERANK, "q r s", docs, top_n=3)
    assert [len(r.json()["texts"]) for r in reranker.received[before:]] == [2, 2, 1]
    assert [h.index for h in result.hits] == [3, 1, 4]
    assert [h.document for h in result.hits] == ["q r s", "q r", "q"]


def test_rerank_on_an_embedding_server_is_a_bad_request(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="not a re-ranker model"):
        adapter(fake).rerank(EMBED, "q", ["d"])


def test_validation_reads_info_then_makes_one_call(fake, reranker) -> None:
    before = len(fake.received)
    result = adapter(fake).validate(EMBED, "text-embedding")
    assert [r.path for r in fake.received[before:]] == ["/info", "/embed"]
    assert result.details == {
        "model_id": EMBED,
        "model_type": "embedding",
        "context_size": 16,
        "max_chunks": 32,
        "pooling": "cls",
        "version": "1.8.2",
        "dimensions": 8,
    }
    ranked = adapter(reranker).validate(RERANK, "rerank").details
    assert (ranked["model_type"], ranked["documents_ranked"], ranked["context_size"]) == (
        "reranker",
        2,
        512,
    )


def test_validation_rejects_a_server_of_the_wrong_kind(fake, reranker) -> None:
    with pytest.raises(errors.UpstreamBadRequest) as caught:
        adapter(fake).validate(EMBED, "rerank")
    assert "serves a embedding model" not in caught.value.message
    assert "serves an embedding model (BAAI/bge-m3), not a reranker" in caught.value.message
    with pytest.raises(errors.UpstreamBadRequest, match="serves a reranker model"):
        adapter(reranker).validate(RERANK, "text-embedding")
    with TEIFake(kind="classifier") as classifier:
        with pytest.raises(errors.UpstreamBadRequest, match="serves a classifier model"):
            adapter(classifier).validate("m", "text-embedding")
        assert adapter(classifier).list_models() == []
    with pytest.raises(errors.InvalidInput):
        adapter(fake).validate(EMBED, "llm")


def test_model_listing_is_the_servers_one_model(fake, reranker) -> None:
    [embedder] = adapter(fake).list_models()
    assert (embedder.model, embedder.model_type, embedder.details["max_chunks"]) == (
        EMBED,
        "text-embedding",
        32,
    )
    [ranker] = adapter(reranker).list_models()
    assert (ranker.model, ranker.model_type) == (RERANK, "rerank")


def test_a_server_url_is_required() -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        TEIAdapter(Endpoint(base_url="", credentials={"base_url": " "}), http.pool())
    assert "server_url" in caught.value.fields


def test_wrong_key_is_authorization_and_the_key_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key="tei-wrong-key-12345").validate(EMBED, "text-embedding")
    assert caught.value.message == "401: Unauthorized"
    assert "tei-wrong-key-12345" not in caught.value.message


def test_a_wrong_path_is_not_found(fake) -> None:
    fake.fail("404")
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).embed(EMBED, ["x"])


def test_overloaded_is_retried_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).embed(EMBED, ["x"]).dimensions == 8
    assert len(fake.received) - before == 3


def test_retries_are_bounded(fake) -> None:
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited, match="Model is overloaded \\(Overloaded\\)"):
        adapter(fake).embed(EMBED, ["x"])
    for mode in ("503", "500"):
        fake.fail(mode, times=3)
        before = len(fake.received)
        with pytest.raises(errors.UpstreamUnavailable):
            adapter(fake).embed(EMBED, ["x"])
        assert len(fake.received) - before == 3


def test_unhealthy_then_healthy_succeeds(fake) -> None:
    fake.fail("503", times=1)
    assert adapter(fake).embed(EMBED, ["x"]).dimensions == 8


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", times=1, seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).embed(EMBED, ["x"])


def test_broken_json_is_a_typed_error(fake, reranker) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).embed(EMBED, ["x"])
    reranker.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(reranker).rerank(RERANK, "q", ["d"])
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).validate(EMBED, "text-embedding")


def test_a_dropped_connection_is_retried_then_typed(fake) -> None:
    fake.fail("drop", times=3)
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake).embed(EMBED, ["x"])


def test_a_refused_connection() -> None:
    endpoint = Endpoint(base_url="http://127.0.0.1:9", retry=RetryPolicy(attempts=1))
    with pytest.raises(errors.UpstreamConnection):
        TEIAdapter(endpoint, http.pool()).embed(EMBED, ["x"])
