"""Wenxin (Baidu Qianfan v2): OpenAI's bodies and replies at https://qianfan.baidubce.com/v2
(/chat/completions, /embeddings), Qianfan's batch limits and error codes.

Credentials: `api_key` (a Qianfan v2 API key, `bce-v3/ALTAK-.../...`, sent as Bearer), `base_url`
(overrides the manifest's). The form asks for that one key, as Dify's current plugin does; the
old core's API key + secret key pair (exchanged for an access token, v1 `wenxinworkshop` wire) is
not asked for, so not spoken here.

Beyond OpenAICompatAdapter:
- embeddings go at most 16 texts a request, one at a time for tao-8k (the API refuses more);
- errors are `{"error": {"code", "message", "type"}, "id"}`; a 401 `invalid_model` says the key
  may not use that model (or there is none by that name): not found, not bad credentials; a 401
  `no_parameter_permission` refuses a parameter: a bad request;
- an LLM is validated with 5 max tokens (what Dify's OpenAI-compatible check sends): ERNIE's
  max_tokens starts at 2 (Dify's parameter rules), so the shared 1-token probe would be refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from config import errors
from providers.runtime import probe
from providers.runtime.base import (
    ChatRequest,
    EmbeddingResult,
    Message,
    Usage,
    Validation,
)
from providers.runtime.http import Response
from providers.runtime.openai_compat import OpenAICompatAdapter, error_code

MAX_EMBED_BATCH = 16
SINGLE_TEXT_EMBEDDERS = frozenset({"tao-8k"})
VALIDATE_MAX_TOKENS = 5


class WenxinAdapter(OpenAICompatAdapter):
    family = "wenxin"
    offers = frozenset({"chat", "stream", "embed"})

    def error_message(self, body: Any) -> str:
        """The message, then its code: "IAM Certification failed (invalid_iam_token)"."""
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            code = error.get("code")
            return f"{error['message']} ({code})" if code else str(error["message"])
        return super().error_message(body)

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        if response.status_code != 401:
            return failure
        code = error_code(response)
        if code == "invalid_model":
            return errors.UpstreamNotFound(failure.message)
        if code == "no_parameter_permission":
            return errors.UpstreamBadRequest(failure.message)
        return failure

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        size = 1 if self.model_name(model) in SINGLE_TEXT_EMBEDDERS else MAX_EMBED_BATCH
        vectors: list[tuple[float, ...]] = []
        prompt_tokens, counted = 0, False
        for start in range(0, len(texts), size):
            part = super().embed(model, texts[start : start + size])
            vectors.extend(part.vectors)
            prompt_tokens += part.usage.prompt_tokens
            counted = counted or part.usage.counted
        return EmbeddingResult(tuple(vectors), Usage(prompt_tokens, counted=counted))

    def validate(self, model: str, model_type: str) -> Validation:
        if model_type != "llm":
            return super().validate(model, model_type)
        ping = ChatRequest(
            messages=(Message("user", probe.PING),),
            parameters={"max_tokens": VALIDATE_MAX_TOKENS},
        )
        return Validation({"model": self.chat(model, ping).model or model})
