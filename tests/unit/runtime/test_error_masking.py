"""No adapter error shows a credential: every family's fake answers an error that quotes the key it
was sent (`fail("echo_key")`), every method the family offers is called through the real adapter,
and the key is in neither the raised error's message nor its str(). The masking is the base
class's (`Adapter.__init_subclass__`), so an adapter written without a thought for it is covered
too; a family in the registry without a row here fails `test_every_family_is_covered`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from config import errors
from providers.runtime import http, registry
from providers.runtime.anthropic import AnthropicAdapter
from providers.runtime.azure_ai_studio import AzureAIStudioAdapter
from providers.runtime.azure_openai import AzureOpenAIAdapter
from providers.runtime.base import (
    MASKED_METHODS,
    Adapter,
    ChatChunk,
    ChatRequest,
    Endpoint,
    Message,
)
from providers.runtime.bedrock import BedrockAdapter
from providers.runtime.cohere import CohereAdapter
from providers.runtime.google_gemini import GeminiAdapter
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.huggingface_hub import HuggingFaceHubAdapter
from providers.runtime.hunyuan import HunyuanAdapter
from providers.runtime.jina import JinaAdapter
from providers.runtime.minimax import MinimaxAdapter
from providers.runtime.nvidia import NvidiaAdapter
from providers.runtime.ollama import OllamaAdapter
from providers.runtime.openai_compat import OpenAICompatAdapter
from providers.runtime.openllm import OpenLLMAdapter
from providers.runtime.replicate import ReplicateAdapter
from providers.runtime.sagemaker import SageMakerAdapter
from providers.runtime.spark import SparkAdapter
from providers.runtime.tei import TEIAdapter
from providers.runtime.tencent_asr import TencentASRAdapter
from providers.runtime.tongyi import TongyiAdapter
from providers.runtime.triton import TritonAdapter
from providers.runtime.vertex_ai import VertexAIAdapter
from providers.runtime.volcengine import VolcengineAdapter
from providers.runtime.wenxin import WenxinAdapter
from providers.runtime.xinference import XinferenceAdapter
from providers.runtime.zhipuai import ZhipuAIAdapter
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.azure_ai_studio_server import AzureAIStudioFake
from tests.fakes.azure_openai_server import AzureOpenAIFake
from tests.fakes.base import FakeServer, wav_with_text
from tests.fakes.bedrock_server import BedrockFake
from tests.fakes.cohere_server import CohereFake
from tests.fakes.google_gemini_server import GeminiFake
from tests.fakes.huggingface_hub_server import HuggingFaceHubFake
from tests.fakes.hunyuan_server import HunyuanFake
from tests.fakes.jina_server import JinaFake
from tests.fakes.minimax_server import MinimaxFake
from tests.fakes.nvidia_server import NvidiaFake
from tests.fakes.ollama_server import OllamaFake
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.openllm_server import OpenLLMFake
from tests.fakes.replicate_server import ReplicateFake
from tests.fakes.sagemaker_server import SageMakerFake
from tests.fakes.spark_server import SparkFake
from tests.fakes.tei_server import TEIFake
from tests.fakes.tencent_asr_server import TencentASRFake
from tests.fakes.tongyi_server import TongyiFake
from tests.fakes.triton_server import TritonFake
from tests.fakes.vertex_ai_server import VertexFake, encoded, service_account
from tests.fakes.volcengine_server import ArkFake
from tests.fakes.wenxin_server import QianfanFake
from tests.fakes.xinference_server import XinferenceFake
from tests.fakes.zhipuai_server import PREFIX as ZHIPU_PREFIX
from tests.fakes.zhipuai_server import ZhipuFake

# No secret pattern (sk-..., key=...) knows this shape: only masking by value can hide it.
KEY = "k3y-7f9c2e41b8d05a6e"
ONCE = RetryPolicy(attempts=1)
ASK = ChatRequest(messages=(Message("user", "hello there"),))
WAV = wav_with_text("hello")


def endpoint(base_url: str = "", **kwargs: Any) -> Endpoint:
    return Endpoint(base_url=base_url, timeouts=Timeouts(connect=2, read=5), retry=ONCE, **kwargs)


@dataclass(frozen=True)
class Family:
    """How to reach one family's fake, and its model for each type it serves."""

    fake: Callable[[], FakeServer]
    adapter: Callable[[str], Adapter]  # the fake's URL -> the adapter
    models: dict[str, str]  # model type -> a model of that type
    lists_models: bool = True
    # (label, failure mode, call) beyond the generic ones: a family's own error paths.
    extra: tuple[tuple[str, str, Callable[[Adapter, dict[str, str]], Any]], ...] = field(default=())


def _cohere_stream(a: Adapter, models: dict[str, str]) -> Any:
    return list(a.stream(models["llm"], ASK))


def _volcengine_aksk_chat(a: Adapter, models: dict[str, str]) -> Any:
    """The same endpoint signed in with AK/SK: the GetApiKey exchange quotes the access key."""
    credentials = {**a.endpoint.credentials, "auth_method": "aksk", "access_key_id": KEY,
                   "secret_access_key": "volc-sk-8d1e"}  # fmt: skip
    aksk = VolcengineAdapter(replace(a.endpoint, credentials=credentials), http.pool())
    return aksk.chat(models["llm"], ASK)


AWS_SECRET = "aws/secret+key/0000000000000000000001"


def _aws_credentials() -> dict[str, str]:
    """SigV4 with the key as access key ID (a secret-input field), the fake as the endpoint."""
    return {"access_key_id": KEY, "secret_access_key": AWS_SECRET, "region": "us-east-1"}


FAMILIES: dict[str, Family] = {
    "openai_compat": Family(
        fake=lambda: OpenAIFake(api_key=KEY),
        adapter=lambda url: OpenAICompatAdapter(
            endpoint(f"{url}/v1", credentials={"api_key": KEY}), http.pool()
        ),
        models={
            "llm": "gpt-4o-mini",
            "text-embedding": "text-embedding-3-small",
            "rerank": "rerank-1",
            "speech2text": "whisper-1",
            "tts": "tts-1",
        },
    ),
    "azure_openai": Family(
        fake=lambda: AzureOpenAIFake(api_key=KEY),
        adapter=lambda url: AzureOpenAIAdapter(
            endpoint(
                credentials={
                    "base_url": url,
                    "api_key": KEY,
                    "api_version": "2024-10-21",
                    "auth_method": "api_key",
                    "base_model": "gpt-4o-mini",
                }
            ),
            http.pool(),
        ),
        models={
            "llm": "chat-prod",
            "text-embedding": "embedder",
            "speech2text": "whisper",
            "tts": "voice",
        },
        lists_models=False,  # deployments are listed by Azure's management API
    ),
    "azure_ai_studio": Family(
        fake=lambda: AzureAIStudioFake(api_key=KEY, rerank_key=KEY),
        adapter=lambda url: AzureAIStudioAdapter(
            endpoint(credentials={"base_url": url, "api_key": KEY, "jwt_token": KEY}),
            http.pool(),
        ),
        models={"llm": "Phi-4", "rerank": "cohere-rerank-v3.5"},
        lists_models=False,
    ),
    "anthropic": Family(
        fake=lambda: AnthropicFake(api_key=KEY),
        adapter=lambda url: AnthropicAdapter(
            endpoint(
                url, credentials={"api_key": KEY}, options={"anthropic_version": "2023-06-01"}
            ),
            http.pool(),
        ),
        models={"llm": "claude-sonnet-4-6"},
    ),
    "cohere": Family(
        fake=lambda: CohereFake(api_key=KEY),
        adapter=lambda url: CohereAdapter(endpoint(url, credentials={"api_key": KEY}), http.pool()),
        models={
            "llm": "command-a-03-2025",
            "text-embedding": "embed-english-v3.0",
            "rerank": "rerank-v3.5",
        },
        extra=(
            ("chat finish_reason ERROR", "echo_key_finish", lambda a, m: a.chat(m["llm"], ASK)),
            ("stream finish_reason ERROR", "echo_key_finish", _cohere_stream),
            ("stream error event", "echo_key_stream", _cohere_stream),
        ),
    ),
    "hunyuan": Family(
        fake=lambda: HunyuanFake(secret_id=KEY, secret_key="hunyuan-secret-key"),
        adapter=lambda url: HunyuanAdapter(
            endpoint(url, credentials={"secret_id": KEY, "secret_key": "hunyuan-secret-key"}),
            http.pool(),
        ),
        models={"llm": "hunyuan-turbos-latest"},
        lists_models=False,
        extra=(("stream error event", "echo_key_stream", _cohere_stream),),
    ),
    "google_gemini": Family(
        fake=lambda: GeminiFake(api_key=KEY),
        adapter=lambda url: GeminiAdapter(
            endpoint(credentials={"api_key": KEY, "base_url": url}), http.pool()
        ),
        models={"llm": "gemini-2.5-flash"},
        extra=(
            (
                "stream error object",
                "echo_key_stream",
                lambda a, m: list(a.stream(m["llm"], ASK)),
            ),
        ),
    ),
    "bedrock": Family(
        fake=lambda: BedrockFake({KEY: AWS_SECRET}),
        adapter=lambda url: BedrockAdapter(
            endpoint(url, credentials={**_aws_credentials(), "base_url": url}), http.pool()
        ),
        models={"llm": "amazon.nova-pro-v1:0", "text-embedding": "amazon.titan-embed-text-v2:0"},
        lists_models=False,
        extra=(
            (
                "stream exception frame",
                "echo_key_stream",
                lambda a, m: list(a.stream(m["llm"], ASK)),
            ),
        ),
    ),
    "huggingface_hub": Family(
        fake=lambda: HuggingFaceHubFake(api_key=KEY),
        adapter=lambda url: HuggingFaceHubAdapter(
            endpoint(
                f"{url}/hf-inference",
                credentials={"api_key": KEY},
                options={"hub_api_url": f"{url}/api/models"},
            ),
            http.pool(),
        ),
        models={"llm": "HuggingFaceH4/zephyr-7b-beta", "text-embedding": "BAAI/bge-small-en-v1.5"},
        lists_models=False,
        extra=(
            (
                "text2text endpoint stream",
                "echo_key",
                lambda a, m: list(
                    HuggingFaceHubAdapter(
                        endpoint(
                            credentials={
                                "api_key": KEY,
                                "api_type": "inference_endpoints",
                                "base_url": a.http.base_url.replace(
                                    "/hf-inference", "/endpoints/t5"
                                ),
                                "task_type": "text2text-generation",
                            }
                        ),
                        http.pool(),
                    ).stream("google/flan-t5-base", ASK)
                ),
            ),
        ),
    ),
    "sagemaker": Family(
        fake=lambda: SageMakerFake({KEY: AWS_SECRET}),
        adapter=lambda url: SageMakerAdapter(
            endpoint(url, credentials=_aws_credentials()), http.pool()
        ),
        models={
            "llm": "chat-endpoint",
            "text-embedding": "embed-endpoint",
            "rerank": "rerank-endpoint",
        },
        lists_models=False,
    ),
    "jina": Family(
        fake=lambda: JinaFake(api_key=KEY),
        adapter=lambda url: JinaAdapter(
            endpoint(f"{url}/v1", credentials={"api_key": KEY}), http.pool()
        ),
        models={
            "text-embedding": "jina-embeddings-v3",
            "rerank": "jina-reranker-v2-base-multilingual",
        },
        lists_models=False,
    ),
    "ollama": Family(
        fake=lambda: OllamaFake(api_key=KEY),
        adapter=lambda url: OllamaAdapter(
            endpoint(credentials={"base_url": url, "api_key": KEY}), http.pool()
        ),
        models={"llm": "llama3.2:latest", "text-embedding": "nomic-embed-text:latest"},
    ),
    "replicate": Family(
        fake=lambda: ReplicateFake(api_key=KEY),
        adapter=lambda url: ReplicateAdapter(
            endpoint(f"{url}/v1", credentials={"api_key": KEY}, options={"poll_interval": 0.01}),
            http.pool(),
        ),
        models={
            "llm": "meta/meta-llama-3-8b-instruct",
            "text-embedding": "nateraw/bge-large-en-v1.5",
        },
        lists_models=False,
    ),
    "tei": Family(
        fake=lambda: TEIFake(api_key=KEY, model_id="BAAI/bge-m3"),
        adapter=lambda url: TEIAdapter(
            endpoint(credentials={"base_url": url, "api_key": KEY}), http.pool()
        ),
        models={"text-embedding": "BAAI/bge-m3", "rerank": "BAAI/bge-m3"},
    ),
    "tongyi": Family(
        fake=lambda: TongyiFake(api_key=KEY),
        adapter=lambda url: TongyiAdapter(
            endpoint(f"{url}/api/v1", credentials={"api_key": KEY}), http.pool()
        ),
        models={
            "llm": "qwen-plus",
            "text-embedding": "text-embedding-v4",
            "tts": "qwen3-tts-flash",
        },
        lists_models=False,  # DashScope's native API lists no models
        extra=(
            (
                "stream error event",
                "echo_key_stream",
                lambda a, m: list(a.stream(m["llm"], ASK)),
            ),
        ),
    ),
    # Spark signs a WebSocket URL: the key travels base64-encoded in its `authorization`.
    "spark": Family(
        fake=lambda: SparkFake(app_id="4a7c2e10", api_key=KEY, api_secret="spark-api-secret"),
        adapter=lambda url: SparkAdapter(
            endpoint(
                url,
                credentials={
                    "app_id": "4a7c2e10",
                    "api_key": KEY,
                    "api_secret": "spark-api-secret",
                },
                options={"routes": {"spark-lite": {"path": "/v1.1/chat", "domain": "lite"}}},
            ),
            http.pool(),
        ),
        models={"llm": "spark-lite"},
        lists_models=False,
        extra=(
            (
                "stream error frame",
                "echo_key_stream",
                lambda a, m: list(a.stream(m["llm"], ASK)),
            ),
        ),
    ),
    "tencent_asr": Family(
        fake=lambda: TencentASRFake(app_id="1259228442", secret_id=KEY, secret_key="asr-key"),
        adapter=lambda url: TencentASRAdapter(
            endpoint(
                url,
                credentials={"app_id": "1259228442", "secret_id": KEY, "secret_key": "asr-key"},
            ),
            http.pool(),
        ),
        models={"speech2text": "tencent"},
        lists_models=False,
    ),
    "xinference": Family(
        fake=lambda: XinferenceFake(api_key=KEY),
        adapter=lambda url: XinferenceAdapter(
            endpoint(credentials={"base_url": url, "api_key": KEY}), http.pool()
        ),
        models={
            "llm": "qwen2.5-instruct",
            "text-embedding": "bge-m3",
            "rerank": "bge-reranker",
            "speech2text": "whisper-small",
            "tts": "ChatTTS",
        },
    ),
    "nvidia": Family(
        fake=lambda: NvidiaFake(api_key=KEY),
        adapter=lambda url: NvidiaAdapter(
            endpoint(
                f"{url}/v1",
                credentials={"api_key": KEY},
                options={"retrieval_url": f"{url}/v1/retrieval"},
            ),
            http.pool(),
        ),
        models={
            "llm": "meta/llama-3.1-8b-instruct",
            "text-embedding": "nvidia/nv-embedqa-e5-v5",
            "rerank": "nvidia/llama-3.2-nv-rerankqa-1b-v2",
        },
    ),
    # OpenLLM asks for no key: the credential here is a proxy's, sent as an extra header.
    "openllm": Family(
        fake=lambda: OpenLLMFake(),
        adapter=lambda url: OpenLLMAdapter(
            endpoint(
                credentials={"base_url": url},
                extra_headers={"Authorization": f"Bearer {KEY}"},
                secret_names=frozenset(),
            ),
            http.pool(),
        ),
        models={"llm": "google/gemma-3-1b-it", "text-embedding": "BAAI/bge-small-en-v1.5"},
    ),
    # Triton asks for no key either: a proxy's credential again.
    "triton": Family(
        fake=lambda: TritonFake(),
        adapter=lambda url: TritonAdapter(
            endpoint(
                credentials={"base_url": url},
                extra_headers={"Authorization": f"Bearer {KEY}"},
                secret_names=frozenset(),
            ),
            http.pool(),
        ),
        models={"llm": "ensemble"},
        lists_models=False,
    ),
    "zhipuai": Family(
        fake=lambda: ZhipuFake(api_key=KEY),  # no "<id>.<secret>": sent bare, so quoted bare
        adapter=lambda url: ZhipuAIAdapter(
            endpoint(credentials={"api_key": KEY, "base_url": url + ZHIPU_PREFIX}), http.pool()
        ),
        models={"llm": "glm-5-turbo", "text-embedding": "embedding-3"},
        lists_models=False,
        extra=(
            ("stream error object", "stream_error", lambda a, m: list(a.stream(m["llm"], ASK))),
        ),
    ),
    "minimax": Family(
        fake=lambda: MinimaxFake(api_key=KEY, group_id="1900000000000000001"),
        adapter=lambda url: MinimaxAdapter(
            endpoint(
                credentials={"api_key": KEY, "group_id": "1900000000000000001", "base_url": url}
            ),
            http.pool(),
        ),
        models={"llm": "MiniMax-M2.5", "text-embedding": "embo-01"},
        lists_models=False,
    ),
    "wenxin": Family(
        fake=lambda: QianfanFake(api_key=KEY),
        adapter=lambda url: WenxinAdapter(
            endpoint(f"{url}/v2", credentials={"api_key": KEY}), http.pool()
        ),
        models={"llm": "ernie-4.5-turbo-128k", "text-embedding": "embedding-v1"},
        lists_models=False,  # no listing offered: the catalog names its models
    ),
    "volcengine": Family(
        fake=lambda: ArkFake(api_key=KEY, access_keys={KEY: "volc-sk-8d1e"}),
        adapter=lambda url: VolcengineAdapter(
            endpoint(
                f"{url}/api/v3",
                credentials={"auth_method": "api_key", "api_key": KEY},
                options={"openapi_base_url": url},
            ),
            http.pool(),
        ),
        models={"llm": "ep-20250101000000-chat01", "text-embedding": "ep-20250101000000-embed1"},
        lists_models=False,  # endpoints are listed by Ark's management API
        extra=(("AK/SK GetApiKey exchange", "echo_key", _volcengine_aksk_chat),),
    ),
    # The credential on the wire is an exchanged token: the fake issues tokens holding KEY.
    "vertex_ai": Family(
        fake=lambda: VertexFake(token_prefix=f"ya29.{KEY}."),
        adapter=lambda url: VertexAIAdapter(
            endpoint(
                f"{url}/v1",
                credentials={
                    "project_id": "fake-project",
                    "location": "us-central1",
                    "service_account_key": encoded(service_account(token_uri=f"{url}/token")),
                },
                options={"regional_base_url": f"{url}/v1"},
            ),
            http.pool(),
        ),
        models={"llm": "gemini-2.5-flash", "text-embedding": "text-embedding-005"},
        lists_models=False,  # Vertex lists publisher models only in v1beta1's Model Garden
        extra=(
            (
                "claude chat",
                "echo_key",
                lambda a, m: a.chat("claude-sonnet-4-5@20250929", ASK),
            ),
        ),
    ),
}

# Each interface method: the model type it needs (None: none) and how to call it.
CALLS: dict[str, tuple[str | None, Callable[[Adapter, str], Any]]] = {
    "chat": ("llm", lambda a, model: a.chat(model, ASK)),
    "stream": ("llm", lambda a, model: list(a.stream(model, ASK))),
    "embed": ("text-embedding", lambda a, model: a.embed(model, ["hello", "world"])),
    "rerank": ("rerank", lambda a, model: a.rerank(model, "hello", ["hello", "world"])),
    "transcribe": ("speech2text", lambda a, model: a.transcribe(model, WAV, "hello.wav")),
    "speak": ("tts", lambda a, model: a.speak(model, "hello", "alloy")),
    "list_models": (None, lambda a, model: a.list_models()),
}
MODEL_TYPES = ("llm", "text-embedding", "rerank", "speech2text", "tts")


def _cases() -> Iterator[Any]:
    for name, family in FAMILIES.items():
        for method, (model_type, call) in CALLS.items():
            offered = family.lists_models if model_type is None else model_type in family.models
            model = family.models.get(model_type or "", "")
            yield pytest.param(
                name,
                "echo_key" if offered else "",
                (lambda a, m, c=call, x=model: c(a, x)),
                id=f"{name}-{method}" + ("" if offered else "-unsupported"),
            )
        for model_type, model in family.models.items():
            yield pytest.param(
                name,
                "echo_key",
                (lambda a, m, t=model_type, x=model: a.validate(x, t)),
                id=f"{name}-validate-{model_type}",
            )
        for label, mode, call in family.extra:
            yield pytest.param(
                name, mode, (lambda a, m, c=call: c(a, m)), id=f"{name}-{label.replace(' ', '-')}"
            )


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeServer]]:
    started = {name: family.fake().start() for name, family in FAMILIES.items()}
    yield started
    for server in started.values():
        server.stop()


def _texts(exc: BaseException) -> list[str]:
    """What could be shown of an error: its message, str(), args, field errors, and the same of
    the errors it was raised from."""
    texts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current.args), str(getattr(current, "message", ""))]
        texts.append(repr(getattr(current, "fields", "")))
        current = current.__cause__ or current.__context__
    return texts


def test_every_family_is_covered() -> None:
    assert set(FAMILIES) == set(registry.ADAPTERS)
    assert {*CALLS, "validate"} == set(MASKED_METHODS)


@pytest.mark.parametrize(("family", "mode", "call"), list(_cases()))
def test_an_echoed_key_never_reaches_the_error(fakes, family: str, mode: str, call) -> None:
    fake, spec = fakes[family], FAMILIES[family]
    fake.reset()
    adapter = spec.adapter(fake.url)
    if not mode:  # a method the family lacks: refused before any request
        with pytest.raises(errors.InvalidInput) as refused:
            call(adapter, spec.models)
        assert refused.value.code == "unsupported"
        return
    fake.fail(mode)
    sent = len(fake.received)
    try:
        with pytest.raises(errors.ServiceError) as caught:
            call(adapter, spec.models)
    finally:
        fake.reset()
    assert len(fake.received) > sent
    assert KEY in fake.echo_key(fake.received[-1])  # the backend did quote the key
    for text in _texts(caught.value):
        assert KEY not in text
    assert "***" in caught.value.message  # the quote reached the message, masked


# --- the masking is structural: an adapter that never thought of it -------------------------------

DERIVED = hashlib.sha256(KEY.encode()).hexdigest()  # a token the adapter derives from the key


class CarelessAdapter(Adapter):
    """Quotes its credentials in every error, never calling `http.bounded`."""

    family = "careless"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Signature {DERIVED}", "X-Region": "eu-west-1"}

    def chat(self, model: str, request: ChatRequest) -> Any:
        raise errors.UpstreamBadRequest(f"{KEY} signed as {DERIVED} may not use eu-west-1")

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        yield ChatChunk(text="partial")
        raise errors.UpstreamUnavailable(f"stream broke for {KEY}")

    def embed(self, model: str, texts: Any) -> Any:
        try:
            raise errors.UpstreamBadRequest(f"bad key {KEY}")
        except errors.UpstreamBadRequest as exc:
            raise errors.UpstreamQuota(f"over quota: {exc.message}") from exc

    def rerank(self, model: str, query: str, documents: Any, top_n: Any = None) -> Any:
        raise errors.InvalidInput(f"no {KEY}", fields={"documents": [f"signed {DERIVED}"]})

    def list_models(self) -> Any:
        raise ValueError(f"a bug that printed {KEY}")


def careless() -> CarelessAdapter:
    return CarelessAdapter(
        Endpoint(base_url="http://127.0.0.1:9", credentials={"api_key": KEY, "base_url": "x"}),
        http.pool(),
    )


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda a: a.chat("m", ASK), id="chat"),
        pytest.param(lambda a: list(a.stream("m", ASK)), id="stream"),
        pytest.param(lambda a: a.embed("m", ["x"]), id="embed-chained"),
        pytest.param(lambda a: a.rerank("m", "q", ["d"]), id="rerank-fields"),
        pytest.param(lambda a: a.validate("m", "llm"), id="validate"),
    ],
)
def test_a_new_adapter_is_masked_without_asking(call) -> None:
    with pytest.raises(errors.ServiceError) as caught:
        call(careless())
    for text in _texts(caught.value):
        assert KEY not in text
        assert DERIVED not in text  # the credential header's value, derived by the adapter
    assert "***" in caught.value.message


def test_what_is_not_a_secret_stays_readable() -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="may not use eu-west-1"):
        careless().chat("m", ASK)


def test_a_stream_still_yields_until_its_error() -> None:
    chunks = careless().stream("m", ASK)
    assert next(chunks).text == "partial"
    with pytest.raises(errors.UpstreamUnavailable, match=r"stream broke for \*\*\*"):
        next(chunks)


class CheckingAdapter(CarelessAdapter):
    """Its `stream` is no generator: it checks, then returns one (as Azure's does)."""

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        if not model:
            raise errors.InvalidInput(f"name a model to use {KEY} with")
        return super().stream(model, request)


def test_a_stream_that_checks_first_still_raises_at_the_call() -> None:
    checking = CheckingAdapter(careless().endpoint, http.pool())
    with pytest.raises(errors.InvalidInput, match=r"to use \*\*\* with"):
        checking.stream("", ASK)  # raised by the call, not at the first next()
    with pytest.raises(errors.UpstreamUnavailable, match=r"stream broke for \*\*\*"):
        list(checking.stream("m", ASK))
    unready = AzureOpenAIAdapter(endpoint(credentials={"api_key": KEY}), http.pool())
    with pytest.raises(errors.InvalidInput, match="base URL"):
        unready.stream("chat-prod", ASK)  # not iterated


def test_errors_reading_a_reply_become_a_typed_error_with_the_key_masked() -> None:
    """What reading a reply of the wrong shape raises (here a ValueError quoting the key) is the
    backend's fault: a typed `bad_response`, masked like every other upstream error."""
    with pytest.raises(errors.UpstreamUnavailable) as caught:
        careless().list_models()
    assert caught.value.code == "bad_response"
    assert KEY not in str(caught.value)
    assert "***" in caught.value.message
