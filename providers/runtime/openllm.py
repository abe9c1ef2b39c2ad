"""OpenLLM (BentoML): a self-hosted server for open models, called at the server URL of Dify's form.

OpenLLM 0.6 (`openllm serve <model>`) runs a BentoML service that mounts vLLM's OpenAI-compatible
routes under /v1: /models, /chat/completions, /completions and /embeddings (an embedding model
served with TASK=embed). The /v1/generate API Dify's adapter called was OpenLLM 0.4's and is gone,
so inference reuses the OpenAI-compatible adapter. The model name is the name the server serves
(its Hugging Face id, e.g. `google/gemma-3-1b-it`). OpenLLM has no API key.

Validation of an LLM reads /v1/models (the model must be served; its context length is kept);
an embedding model embeds one short text (its dimensions are kept).

Errors are vLLM's: `{"object": "error", "message", "type", "code"}` (newer vLLM nests the same
under "error"); an unknown model is a 404, a model asked for a task it does not serve a 400.
"""

from __future__ import annotations

from typing import Any

from config import errors
from providers.runtime.base import Validation
from providers.runtime.openai_compat import OpenAICompatAdapter


class OpenLLMAdapter(OpenAICompatAdapter):
    family = "openllm"
    # OpenLLM's service mounts no rerank or audio routes.
    offers = frozenset({"chat", "stream", "embed", "list_models"})

    def base_url(self) -> str:
        base = str(self.endpoint.credentials.get("base_url") or self.endpoint.base_url or "")
        base = base.strip().rstrip("/")
        if not base:
            raise errors.InvalidInput(
                "The OpenLLM server URL is required.", fields={"server_url": ["Required."]}
            )
        return base if base.endswith("/v1") else f"{base}/v1"

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict) and body.get("object") == "error" and "message" in body:
            return str(body["message"])
        return super().error_message(body)

    def validate(self, model: str, model_type: str) -> Validation:
        if model_type != "llm":
            return super().validate(model, model_type)
        data = self.http.json("GET", "models")
        served = {row["id"]: row for row in data.get("data") or () if row.get("id")}
        if model not in served:
            names = ", ".join(sorted(served)) or "none"
            raise errors.UpstreamNotFound(
                self.http.bounded(
                    f"The OpenLLM server does not serve {model!r} (it serves {names})."
                )
            )
        details: dict[str, Any] = {"model": model}
        if served[model].get("max_model_len"):
            details["context_size"] = int(served[model]["max_model_len"])
        return Validation(details)
