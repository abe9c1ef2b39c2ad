"""Azure AI Studio (Azure AI Foundry) endpoints: the Azure AI model inference chat API and the
Cohere-shaped rerank of serverless rerank deployments.

    POST {endpoint}/chat/completions?api-version=<version>   OpenAI's bodies and replies
    POST {endpoint}/v2/rerank                                  Cohere's {query, documents, top_n}

Credentials: `base_url` (the endpoint), `api_key` (chat: sent both as `Authorization: Bearer` and
`api-key`, as the azure-ai-inference client does: serverless and managed endpoints read the first,
Azure OpenAI and the unified `services.ai.azure.com/models` endpoints the second), `api_version`,
`jwt_token` (rerank: sent as Bearer).
Options: `default_api_version`, `rerank_path` (`/v2/rerank`).

The inference API refuses body fields outside its schema (422) unless the `extra-parameters`
header says `pass-through`: parameters beyond the standard ones go with that header, as the
client's `model_extras` do. The API has no `stream_options` (usage comes in the last chunk) and no
completions route: the form's completion mode is a chat too, as in Dify.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from config import errors
from providers.runtime.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    RerankHit,
    RerankResult,
    Usage,
    count_tokens,
)
from providers.runtime.openai_compat import OpenAICompatAdapter

DEFAULT_API_VERSION = "2024-05-01-preview"
RERANK_PATH = "/v2/rerank"
# The chat request fields in the inference API schema (azure-ai-inference ChatCompletionsClient).
STANDARD_FIELDS = frozenset(
    {
        "messages", "model", "stream", "frequency_penalty", "presence_penalty", "temperature",
        "top_p", "max_tokens", "response_format", "stop", "tools", "tool_choice", "seed",
    }
)  # fmt: skip


class AzureAIStudioAdapter(OpenAICompatAdapter):
    family = "azure_ai_studio"
    # What the catalog lists: chat on the inference API, rerank on Cohere's wire.
    offers = frozenset({"chat", "stream", "rerank"})

    def base_url(self) -> str:
        base = str(self.endpoint.credentials.get("base_url") or self.endpoint.base_url or "")
        base = base.strip().rstrip("/")
        return base.removesuffix("/chat/completions")

    def auth_headers(self) -> dict[str, str]:
        api_key = str(self.endpoint.credentials.get("api_key") or "")
        if api_key:
            return {"Authorization": f"Bearer {api_key}", "api-key": api_key}
        token = str(self.endpoint.credentials.get("jwt_token") or "")
        return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def api_version(self) -> str:
        return str(
            self.endpoint.credentials.get("api_version")
            or self.endpoint.options.get("default_api_version")
            or DEFAULT_API_VERSION
        ).strip()

    def target(
        self, path: str, fields: Any, params: Mapping[str, Any] | None
    ) -> tuple[str, Mapping[str, Any] | None]:
        if path == "chat/completions":
            return path, {**(params or {}), "api-version": self.api_version}
        return path, params

    def completion_mode(self, model: str) -> bool:
        return False

    def _ready(self) -> None:
        if not self.http.base_url:
            raise errors.InvalidInput("The Azure AI Studio endpoint is required.", code="invalid")

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().chat_body(model, request, stream=stream)
        body.pop("stream_options", None)
        body["stream"] = stream
        return body

    def _extra_headers(self, body: Mapping[str, Any]) -> dict[str, str]:
        return {"extra-parameters": "pass-through"} if set(body) - STANDARD_FIELDS else {}

    def _answer(self, model: str, path: str, body: dict[str, Any]) -> tuple[dict, dict]:
        data = self.http.json("POST", path, json_body=body, headers=self._extra_headers(body))
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise errors.UpstreamUnavailable("The endpoint's reply has no choices.")
        return data, choices[0]

    def _events(self, model: str, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        response = self.http.request(
            "POST", path, json_body=body, headers=self._extra_headers(body), stream=True
        )
        for _, payload in self.http.sse(response):
            data = self.http.parse(payload)
            if isinstance(data, dict) and "error" in data and not data.get("choices"):
                raise errors.UpstreamUnavailable(self.http.bounded(self.error_message(data)))
            yield data

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        self._ready()
        return super().chat(model, request)

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        self._ready()
        return super().stream(model, request)

    def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        """Cohere's rerank at the endpoint (which may already end in /rerank), the JWT token as
        Bearer; `model` only names the deployment for the caller, as in Dify."""
        self._ready()
        if self.http.base_url.endswith("/rerank"):
            path = self.http.base_url
        else:
            path = str(self.endpoint.options.get("rerank_path") or RERANK_PATH)
        headers = {}
        token = str(self.endpoint.credentials.get("jwt_token") or "")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body: dict[str, Any] = {"model": model, "query": query, "documents": list(documents)}
        if top_n:
            body["top_n"] = top_n
        data = self.http.json("POST", path, json_body=body, headers=headers)
        hits = []
        for row in data.get("results") or ():
            index = int(row["index"])
            if not 0 <= index < len(documents):
                raise errors.UpstreamUnavailable(
                    f"The endpoint ranked a document it was not sent: {index}."
                )
            hits.append(RerankHit(index, float(row["relevance_score"]), documents[index]))
        hits.sort(key=lambda hit: -hit.score)
        counted = count_tokens(query) + sum(count_tokens(d) for d in documents)
        return RerankResult(tuple(hits[: top_n or None]), Usage(counted, counted=True))
