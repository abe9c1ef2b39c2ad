"""Protocol family -> adapter class. A family listed in the schema but absent here is known to the
catalog (its forms work) but cannot be validated or invoked yet."""

from __future__ import annotations

from config import errors
from providers.runtime.anthropic import AnthropicAdapter
from providers.runtime.azure_ai_studio import AzureAIStudioAdapter
from providers.runtime.azure_openai import AzureOpenAIAdapter
from providers.runtime.base import Adapter
from providers.runtime.bedrock import BedrockAdapter
from providers.runtime.cohere import CohereAdapter
from providers.runtime.google_gemini import GeminiAdapter
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

ADAPTERS: dict[str, type[Adapter]] = {
    adapter.family: adapter
    for adapter in (
        OpenAICompatAdapter,
        AnthropicAdapter,
        AzureAIStudioAdapter,
        AzureOpenAIAdapter,
        BedrockAdapter,
        CohereAdapter,
        GeminiAdapter,
        HuggingFaceHubAdapter,
        HunyuanAdapter,
        JinaAdapter,
        MinimaxAdapter,
        NvidiaAdapter,
        OllamaAdapter,
        OpenLLMAdapter,
        ReplicateAdapter,
        SageMakerAdapter,
        SparkAdapter,
        TEIAdapter,
        TencentASRAdapter,
        TongyiAdapter,
        TritonAdapter,
        VertexAIAdapter,
        VolcengineAdapter,
        WenxinAdapter,
        XinferenceAdapter,
        ZhipuAIAdapter,
    )
}


def adapter_class(family: str) -> type[Adapter]:
    found = ADAPTERS.get(family)
    if found is None:
        raise errors.InvalidInput(
            f"Calling providers of the {family!r} protocol family is not supported yet.",
            code="unsupported",
        )
    return found
