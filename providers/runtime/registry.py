"""Protocol family -> adapter class. A family listed in the schema but absent here is known to the
catalog (its forms work) but cannot be validated or invoked yet."""

from __future__ import annotations

from config import errors
from providers.runtime.anthropic import AnthropicAdapter
from providers.runtime.azure_openai import AzureOpenAIAdapter
from providers.runtime.base import Adapter
from providers.runtime.bedrock import BedrockAdapter
from providers.runtime.cohere import CohereAdapter
from providers.runtime.jina import JinaAdapter
from providers.runtime.ollama import OllamaAdapter
from providers.runtime.openai_compat import OpenAICompatAdapter
from providers.runtime.sagemaker import SageMakerAdapter
from providers.runtime.tei import TEIAdapter
from providers.runtime.xinference import XinferenceAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    adapter.family: adapter
    for adapter in (
        OpenAICompatAdapter,
        AzureOpenAIAdapter,
        AnthropicAdapter,
        CohereAdapter,
        JinaAdapter,
        OllamaAdapter,
        TEIAdapter,
        XinferenceAdapter,
        BedrockAdapter,
        SageMakerAdapter,
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
