"""Protocol family -> adapter class. A family listed in the schema but absent here is known to the
catalog (its forms work) but cannot be validated or invoked yet."""

from __future__ import annotations

from config import errors
from providers.runtime.anthropic import AnthropicAdapter
from providers.runtime.azure_openai import AzureOpenAIAdapter
from providers.runtime.base import Adapter
from providers.runtime.ollama import OllamaAdapter
from providers.runtime.openai_compat import OpenAICompatAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    adapter.family: adapter
    for adapter in (
        OpenAICompatAdapter,
        AzureOpenAIAdapter,
        AnthropicAdapter,
        OllamaAdapter,
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
