"""AzureAIStudioAdapter against the Azure AI Studio fake: chat and stream on the inference API
(both key headers, api-version, extra parameters passed through), tool calls, rerank with the JWT
token, validation, and failures ending as typed errors after bounded retries."""

from __future__ import annotations

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.azure_ai_studio import AzureAIStudioAdapter
from providers.runtime.base import ChatRequest, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from tests.fakes.azure_ai_studio_server import AzureAIStudioFake
from tests.fakes.base import overlap_score, reply_to

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
LLM, RERANK = "Phi-4", "cohere-rerank-v3.5"
ASK = ChatRequest(messages=(Message("system", "be brief"), Message("user", "hello there")))


@pytest.fixture(scope="module")
def fake():
    with AzureAIStudioFake() as server:
        yield server


def adapter(fake, *, read=5.0, retry=FAST_RETRY, path="", **credentials) -> AzureAIStudioAdapter:
    given = {"base_url": fake.url + path, "api_key": "fake-key", **credentials}
    endpoint = Endpoint(
        base_url="",
        credentials={k: v for k, v in given.items() if v},
        options={"default_api_version": "2024-05-01-preview", "rerank_path": "/v2/rerank",
                 "mode": "completion", "context_size": "4096"},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )  # fmt: skip
    return AzureAIStudioAdapter(endpoint, http.pool())


def test_chat_sends_what_the_inference_api_documents(fake) -> None:
    request = ChatRequest(messages=ASK.messages, parameters={"temperature": 0.2, "max_tokens": 50})
    result = adapter(fake, api_version="2024-10-01-preview").chat(LLM, request)
    assert result.text == reply_to("hello there")
    assert (result.usage.prompt_tokens, result.usage.counted) == (4, False)
    sent = fake.received[-1]
    assert (sent.path, sent.query["api-version"]) == ("/chat/completions", ["2024-10-01-preview"])
    assert sent.header("api-key") == "fake-key"
    assert sent.header("authorization") == "Bearer fake-key"
    assert sent.header("extra-parameters") == ""
    assert sent.json() == {
        "model": LLM,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "stream": False,
    }


def test_parameters_outside_the_schema_go_with_pass_through(fake) -> None:
    request = ChatRequest(messages=ASK.messages, parameters={"top_k": 5})
    assert adapter(fake).chat(LLM, request).text == reply_to("hello there")
    sent = fake.received[-1]
    assert (sent.header("extra-parameters"), sent.json()["top_k"]) == ("pass-through", 5)


def test_stream_has_no_stream_options_and_reads_usage_from_the_last_chunk(fake) -> None:
    chunks = list(adapter(fake).stream(LLM, ASK))
    result = accumulate(iter(chunks))
    assert result.text == reply_to("hello there")
    assert (result.usage.completion_tokens, result.usage.counted) == (4, False)
    body = fake.received[-1].json()
    assert (body["stream"], "stream_options" in body) == (True, False)


def test_tool_calls_in_chat_and_stream(fake) -> None:
    request = ChatRequest(messages=ASK.messages, tools=(Tool("search", "find things"),))
    [call] = adapter(fake).chat(LLM, request).tool_calls
    assert (call.name, call.arguments) == ("search", '{"query": "weather"}')
    streamed = accumulate(adapter(fake).stream(LLM, request))
    assert (streamed.tool_calls[0].name, streamed.finish_reason) == ("search", "tool_calls")
    assert fake.received[-1].json()["tools"][0]["function"]["name"] == "search"


def test_a_full_chat_url_is_taken_as_the_endpoint(fake) -> None:
    assert adapter(fake, path="/chat/completions/").chat(LLM, ASK).text == reply_to("hello there")


def test_rerank_sends_cohere_v2_with_the_jwt_token(fake) -> None:
    docs = ["cats purr", "the capital of France is Paris", "Paris is in France"]
    result = adapter(fake, api_key="", jwt_token="fake-jwt").rerank(
        RERANK, "capital of France", docs, top_n=2
    )
    assert [h.index for h in result.hits] == [1, 2]
    assert result.hits[0].score == overlap_score("capital of France", docs[1])
    sent = fake.received[-1]
    assert (sent.path, sent.header("authorization"), sent.header("api-key")) == (
        "/v2/rerank",
        "Bearer fake-jwt",
        "",
    )
    assert sent.json() == {"model": RERANK, "query": "capital of France", "documents": docs,
                           "top_n": 2}  # fmt: skip
    given = adapter(fake, api_key="", jwt_token="fake-jwt", path="/v2/rerank")
    assert len(given.rerank(RERANK, "q", ["q", "r"]).hits) == 2
    assert fake.received[-1].path == "/v2/rerank"


def test_validation_of_each_type(fake) -> None:
    assert adapter(fake).validate(LLM, "llm").details == {"model": LLM}
    assert fake.received[-1].json()["max_tokens"] == 1
    ranked = adapter(fake, api_key="", jwt_token="fake-jwt").validate(RERANK, "rerank")
    assert ranked.details == {"documents_ranked": 2}
    with pytest.raises(errors.InvalidInput):
        adapter(fake).validate(LLM, "text-embedding")


def test_wrong_credentials_are_authorization_errors(fake) -> None:
    with pytest.raises(errors.UpstreamAuth, match="Access denied") as caught:
        adapter(fake, api_key="azure-wrong-key-1234").chat(LLM, ASK)
    assert "azure-wrong-key-1234" not in str(caught.value)
    with pytest.raises(errors.UpstreamAuth):
        adapter(fake, api_key="", jwt_token="wrong-jwt-5678").rerank(RERANK, "q", ["d"])


def test_an_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).chat("no-such-model", ASK)


def test_an_endpoint_is_required() -> None:
    bare = AzureAIStudioAdapter(Endpoint(base_url="", credentials={"api_key": "k"}), http.pool())
    with pytest.raises(errors.InvalidInput, match="endpoint is required"):
        bare.stream(LLM, ASK)  # raised at the call, not at the first next()


def test_429_with_retry_after_is_retried(fake) -> None:
    fake.fail("429", times=2, retry_after=0)
    before = len(fake.received)
    assert adapter(fake).chat(LLM, ASK).text == reply_to("hello there")
    assert len(fake.received) - before == 3


def test_5xx_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    before = len(fake.received)
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake).chat(LLM, ASK)
    assert len(fake.received) - before == 3


def test_a_slow_endpoint_times_out(fake) -> None:
    fake.fail("slow", seconds=1.0)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.3, retry=RetryPolicy(attempts=1)).chat(LLM, ASK)


def test_a_dropped_stream_is_an_error(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LLM, ASK))
