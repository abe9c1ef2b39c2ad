"""The Azure AI Studio fake is trusted because the official clients talk to it: azure-ai-inference's
ChatCompletionsClient (chat, stream, tool calls, model info, extra parameters, auth failure) and
cohere's ClientV2 (the serverless rerank's Cohere v2 API)."""

from __future__ import annotations

import cohere
import pytest
from azure.ai.inference import ChatCompletionsClient
from azure.ai.inference.models import ChatCompletionsToolDefinition, FunctionDefinition
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from tests.fakes.azure_ai_studio_server import AzureAIStudioFake
from tests.fakes.base import overlap_score, reply_to


@pytest.fixture(scope="module")
def fake():
    with AzureAIStudioFake() as server:
        yield server


def client(fake, key: str = "fake-key") -> ChatCompletionsClient:
    return ChatCompletionsClient(
        endpoint=fake.url, credential=AzureKeyCredential(key), retry_total=0
    )


def test_chat_sends_both_key_headers_and_the_api_version(fake) -> None:
    result = client(fake).complete(messages=[{"role": "user", "content": "hello"}], model="Phi-4")
    assert result.choices[0].message.content == reply_to("hello")
    assert result.usage.prompt_tokens == 1
    sent = fake.received[-1]
    assert sent.header("api-key") == "fake-key"
    assert sent.header("authorization") == "Bearer fake-key"
    assert sent.query["api-version"] == ["2024-05-01-preview"]


def test_stream_ends_with_usage(fake) -> None:
    updates = list(client(fake).complete(messages=[{"role": "user", "content": "hi"}], stream=True))
    text = "".join(u.choices[0].delta.content or "" for u in updates if u.choices)
    assert text == reply_to("hi")
    assert updates[-1].usage.completion_tokens == 3


def test_tool_calls(fake) -> None:
    tool = ChatCompletionsToolDefinition(
        function=FunctionDefinition(name="search", parameters={"type": "object"})
    )
    result = client(fake).complete(messages=[{"role": "user", "content": "x"}], tools=[tool])
    call = result.choices[0].message.tool_calls[0]
    assert (call.function.name, result.choices[0].finish_reason) == ("search", "tool_calls")


def test_model_info(fake) -> None:
    info = client(fake).get_model_info()
    assert (info.model_name, info.model_type) == ("Phi-4", "chat-completion")


def test_extra_parameters_pass_through_with_the_header(fake) -> None:
    result = client(fake).complete(
        messages=[{"role": "user", "content": "hi"}], model_extras={"top_k": 3}
    )
    assert result.choices[0].message.content == reply_to("hi")
    assert fake.received[-1].header("extra-parameters") == "pass-through"


def test_errors_reach_the_client_typed(fake) -> None:
    with pytest.raises(ClientAuthenticationError) as caught:
        client(fake, "wrong").complete(messages=[{"role": "user", "content": "x"}])
    assert "Access denied" in str(caught.value)
    with pytest.raises(HttpResponseError) as caught:
        client(fake).complete(messages=[{"role": "user", "content": "x"}], model="nope")
    assert caught.value.status_code == 404


def test_rerank_with_the_cohere_client(fake) -> None:
    docs = ["cats purr", "the capital of France is Paris"]
    rerank = cohere.ClientV2(api_key="fake-jwt", base_url=fake.url)
    result = rerank.rerank(model="cohere-rerank-v3.5", query="capital of France", documents=docs)
    assert [r.index for r in result.results] == [1, 0]
    assert result.results[0].relevance_score == overlap_score("capital of France", docs[1])
    with pytest.raises(cohere.UnauthorizedError):
        cohere.ClientV2(api_key="fake-key", base_url=fake.url).rerank(
            model="m", query="q", documents=["d"]
        )
