"""The openai_compat family's catalog providers against the strict OpenAI fake, through the
endpoint a workspace's form values make (`routing.endpoint`): OpenAI's reasoning models get
`max_completion_tokens` and no refused sampling values, GPUStack's server URL reaches its /v1 API
whatever API path it ends with, and the international switch picks the international base."""

from __future__ import annotations

from dataclasses import replace

import pytest

from config import errors
from providers import routing, selectors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, accumulate
from providers.runtime.openai_compat import OpenAICompatAdapter
from tests.fakes.openai_server import OpenAIFake

MODELS = {"gpt-4o-mini": "llm", "o3-mini": "llm", "gpt-5": "llm", "gpt-5-chat-latest": "llm"}


@pytest.fixture(scope="module")
def fake():
    with OpenAIFake(api_key="sk-test", models=MODELS) as server:
        yield server


def openai(fake) -> OpenAICompatAdapter:
    values = {"openai_api_key": "sk-test", "openai_api_base": fake.url}
    endpoint = routing.endpoint(selectors.manifest_get("openai"), values)
    return OpenAICompatAdapter(endpoint, http.pool())


def ask(**parameters) -> ChatRequest:
    return ChatRequest(
        messages=(Message("user", "think about it"),), parameters=parameters, stop=("END",)
    )


@pytest.mark.parametrize("model", ["o3-mini", "gpt-5"])
def test_reasoning_models_validate_and_chat(fake, model) -> None:
    adapter = openai(fake)
    assert adapter.validate(model, "llm").details["model"] == model
    sent = fake.received[-1].json()
    assert sent["max_completion_tokens"] == 1
    assert "max_tokens" not in sent
    request = ask(max_tokens=50, temperature=0.2, top_p=0.9)
    assert adapter.chat(model, request).text == "You said: think about it"
    assert accumulate(adapter.stream(model, request)).text == "You said: think about it"
    sent = fake.received[-1].json()
    assert sent["max_completion_tokens"] == 50
    assert not {"max_tokens", "temperature", "top_p", "stop"} & set(sent)


def test_other_models_keep_their_parameters(fake) -> None:
    adapter = openai(fake)
    adapter.chat("gpt-4o-mini", ask(max_tokens=50, temperature=0.2))
    sent = fake.received[-1].json()
    assert (sent["max_tokens"], sent["temperature"], sent["stop"]) == (50, 0.2, ["END"])
    adapter.chat("gpt-5-chat-latest", ask(max_tokens=50, temperature=0.2))
    sent = fake.received[-1].json()  # a -chat model samples, but takes no max_tokens
    assert (sent["max_completion_tokens"], sent["temperature"]) == (50, 0.2)


def test_the_fake_refuses_max_tokens_to_a_reasoning_model(fake) -> None:
    """Without `reasoning_models` (a backend not known as OpenAI's) nothing is renamed, and
    OpenAI's refusal comes through as a bad request."""
    endpoint = replace(openai(fake).endpoint, options={"append_v1": True})
    with pytest.raises(errors.UpstreamBadRequest, match="max_completion_tokens"):
        OpenAICompatAdapter(endpoint, http.pool()).chat("o3-mini", ask(max_tokens=5))


def test_an_explicit_token_parameter_name_wins(fake) -> None:
    endpoint = Endpoint(
        base_url=f"{fake.url}/v1",
        credentials={"api_key": "sk-test"},
        options={"token_param_name": "max_completion_tokens"},
    )
    OpenAICompatAdapter(endpoint, http.pool()).chat("gpt-4o-mini", ask(max_tokens=7))
    assert fake.received[-1].json()["max_completion_tokens"] == 7


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1-openai", "/v1-openai/"])
def test_gpustack_reaches_v1_from_the_server_url(fake, suffix) -> None:
    """Dify's GPUStack plugin cuts /v1 or /v1-openai (the OpenAI path of early GPUStack)
    off the server URL and calls {server}/v1."""
    values = {"endpoint_url": fake.url + suffix, "api_key": "sk-test", "mode": "chat"}
    endpoint = routing.endpoint(selectors.manifest_get("gpustack"), values)
    adapter = OpenAICompatAdapter(endpoint, http.pool())
    assert adapter.http.base_url == f"{fake.url}/v1"
    assert adapter.chat("gpt-4o-mini", ask()).text == "You said: think about it"


@pytest.mark.parametrize(
    ("provider", "china", "international"),
    [
        ("siliconflow", "https://api.siliconflow.cn/v1", "https://api.siliconflow.com/v1"),
        ("stepfun", "https://api.stepfun.com/v1", "https://api.stepfun.ai/v1"),
    ],
)
def test_the_international_switch_picks_the_international_base(
    provider, china, international
) -> None:
    manifest = selectors.manifest_get(provider)

    def base(switch: str) -> str:
        values = {"api_key": "k", "use_international_endpoint": switch}
        return OpenAICompatAdapter(routing.endpoint(manifest, values), http.pool()).http.base_url

    assert base("true") == international
    assert base("false") == china
