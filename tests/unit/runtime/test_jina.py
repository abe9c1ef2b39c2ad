"""JinaAdapter against the Jina fake: embeddings and rerank, validation probes, and each failure
mode ending as a typed error after bounded retries."""

from __future__ import annotations

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import Endpoint
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.jina import JinaAdapter
from tests.fakes.base import embed_text
from tests.fakes.jina_server import JinaFake

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
EMBED = "jina-embeddings-v3"
RERANK = "jina-reranker-v2-base-multilingual"


@pytest.fixture(scope="module")
def fake():
    with JinaFake() as server:
        yield server


def adapter(fake, *, key="fake-key", retry=FAST_RETRY, read=5.0, **options) -> JinaAdapter:
    endpoint = Endpoint(
        base_url=f"{fake.url}/v1",
        credentials={"api_key": key},
        options=options,
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return JinaAdapter(endpoint, http.pool())


def sent_since(fake, before: int) -> list:
    return fake.received[before:]


def test_embeddings_are_batched_keep_order_and_report_usage(fake) -> None:
    texts = [f"text number {i}" for i in range(7)]
    before = len(fake.received)
    result = adapter(fake, max_chunks=3).embed(EMBED, texts)
    requests_made = sent_since(fake, before)
    assert [len(r.json()["input"]) for r in requests_made] == [3, 3, 1]
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    assert result.dimensions == 8
    assert (result.usage.prompt_tokens, result.usage.counted) == (21, False)
    first = requests_made[0]
    assert first.header("authorization") == "Bearer fake-key"
    assert first.json()["task"] == "retrieval.passage"  # v3's indexing adapter, as Dify sends


def test_task_is_sent_only_to_models_that_take_it(fake) -> None:
    adapter(fake).embed("jina-embeddings-v2-base-zh", ["你好"])
    assert "task" not in fake.received[-1].json()
    adapter(fake, task="retrieval.query").embed(EMBED, ["where is Paris"])
    assert fake.received[-1].json()["task"] == "retrieval.query"


def test_a_rejected_task_is_a_bad_request_with_the_field_named(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest) as caught:
        adapter(fake, task="retrieval.query").embed("jina-embeddings-v2-base-zh", ["x"])
    assert "422" in caught.value.message
    assert "task: Extra inputs are not permitted" in caught.value.message


def test_multimodal_models_get_text_objects_and_the_default_batch_fits_v4(fake) -> None:
    texts = [f"t{i}" for i in range(600)]
    before = len(fake.received)
    result = adapter(fake).embed("jina-embeddings-v4", texts)
    requests_made = sent_since(fake, before)
    assert [len(r.json()["input"]) for r in requests_made] == [512, 88]
    assert requests_made[0].json()["input"][0] == {"text": "t0"}
    assert list(result.vectors[599]) == embed_text("t599")


def test_max_chunks_never_exceeds_the_api_limit(fake) -> None:
    assert adapter(fake, max_chunks=10_000)._batch_size() == 2048


def test_no_texts_no_request(fake) -> None:
    before = len(fake.received)
    assert adapter(fake).embed(EMBED, []).vectors == ()
    assert adapter(fake).rerank(RERANK, "q", []).hits == ()
    assert len(fake.received) == before


def test_rerank_orders_by_score_keeps_top_n_and_reports_usage(fake) -> None:
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    result = adapter(fake).rerank(RERANK, "capital of France", docs, top_n=2)
    assert [h.index for h in result.hits] == [1, 2]
    assert result.hits[0].document == docs[1]
    assert result.hits[0].score >= result.hits[1].score
    sent = fake.received[-1].json()
    assert (sent["top_n"], sent["return_documents"]) == (2, False)
    assert (result.usage.prompt_tokens, result.usage.counted) == (3 * 3 + 12, False)


def test_rerank_without_top_n_asks_for_every_document(fake) -> None:
    result = adapter(fake).rerank("jina-reranker-m0", "red apple", ["green pear", "red apple"])
    assert [h.index for h in result.hits] == [1, 0]
    sent = fake.received[-1].json()
    assert sent["top_n"] == 2
    assert sent["documents"] == [{"text": "green pear"}, {"text": "red apple"}]


@pytest.mark.parametrize(
    ("model_type", "model", "detail", "value"),
    [("text-embedding", EMBED, "dimensions", 8), ("rerank", RERANK, "documents_ranked", 2)],
)
def test_validation_probes_fit_the_type(fake, model_type, model, detail, value) -> None:
    assert adapter(fake).validate(model, model_type).details[detail] == value


def test_validation_of_other_types_is_unsupported(fake) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        adapter(fake).validate(EMBED, "llm")
    assert caught.value.code == "unsupported"


def test_wrong_key_is_authorization_and_the_key_never_shows(fake) -> None:
    with pytest.raises(errors.UpstreamAuth) as caught:
        adapter(fake, key="jina_wrong_key_12345").embed(EMBED, ["x"])
    assert "Invalid API key" in caught.value.message
    assert "jina_wrong_key_12345" not in caught.value.message


def test_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound, match="not found"):
        adapter(fake).embed("jina-embeddings-v9", ["x"])
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).validate(EMBED, "rerank")  # an embedding model is no reranker
    fake.fail("404")
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).embed(EMBED, ["x"])


def test_an_empty_balance_is_a_quota_error(fake) -> None:
    fake.balance_exhausted = True
    try:
        with pytest.raises(errors.UpstreamQuota, match="balance"):
            adapter(fake).rerank(RERANK, "q", ["d"])
    finally:
        fake.balance_exhausted = False


def test_429_is_retried_after_retry_after_then_succeeds(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).embed(EMBED, ["x"]).dimensions == 8
    assert len(fake.received) - before == 3


def test_retries_are_bounded(fake) -> None:
    fake.fail("429", times=3, retry_after=0)
    with pytest.raises(errors.UpstreamRateLimited) as caught:
        adapter(fake).embed(EMBED, ["x"])
    assert caught.value.retry_after == 0
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).rerank(RERANK, "q", ["d"])
    assert len(fake.received) - before == 3


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", times=1, seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).embed(EMBED, ["x"])


def test_broken_json_is_a_typed_error(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable, match="not JSON"):
        adapter(fake).embed(EMBED, ["x"])


def test_a_dropped_connection_is_retried_then_typed(fake) -> None:
    fake.fail("drop", times=3)
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake).rerank(RERANK, "q", ["d"])


def test_a_refused_connection() -> None:
    endpoint = Endpoint(
        base_url="http://127.0.0.1:9/v1",
        credentials={"api_key": "k"},
        retry=RetryPolicy(attempts=1),
    )
    with pytest.raises(errors.UpstreamConnection):
        JinaAdapter(endpoint, http.pool()).embed(EMBED, ["x"])


def test_base_url_credential_overrides_and_is_trimmed(fake) -> None:
    endpoint = Endpoint(
        base_url="https://api.jina.ai/v1",
        credentials={"api_key": "fake-key", "base_url": f"{fake.url}/v1/embeddings/"},
    )
    jina = JinaAdapter(endpoint, http.pool())
    assert jina.http.base_url == f"{fake.url}/v1"
    assert jina.embed(EMBED, ["x"]).dimensions == 8
    default = JinaAdapter(Endpoint(base_url="", credentials={"api_key": "k"}), http.pool())
    assert default.http.base_url == "https://api.jina.ai/v1"
