"""The Cohere v2 wire protocol: /v2/chat (typed SSE when streaming), /v2/embed, /v2/rerank, and
the model listing at /v1/models.

Credentials: `api_key` (sent as Bearer), `base_url` (overrides the manifest's; a trailing /v1 or
/v2 is dropped, since every path here names its version).
Options: `input_type` (embeddings: search_document by default, search_query for queries;
`embed(..., input_type=...)` wins), `max_chunks` (embedding batch size, at most 96 as the API
allows). The manifest's `api_version: v1` records what Dify used; this adapter always speaks v2,
which the same keys reach.

Status codes beyond the shared mapping: 498 (a deny-listed token in the request or reply, per
Cohere's API definition) is a bad request, not an auth failure; 499 (request cancelled upstream)
is retried like a 5xx; a 429 about a monthly trial allowance is a quota, not a rate limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from config import errors
from providers.runtime.base import (
    Adapter,
    ChatChunk,
    ChatRequest,
    ChatResult,
    DiscoveredModel,
    EmbeddingResult,
    Message,
    RerankHit,
    RerankResult,
    TokenTally,
    ToolCall,
    ToolCallDelta,
    Usage,
    count_tokens,
)
from providers.runtime.http import Response
from providers.runtime.openai_compat import content_json, function_tools

MAX_EMBED_BATCH = 96  # the API refuses more texts in one request
MAX_MODEL_PAGES = 50

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
# ChatRequest.parameters names (Dify's parameter rules) -> the v2 field.
RENAMED_PARAMETERS = {"top_p": "p", "top_k": "k", "stop": "stop_sequences"}
INPUT_TYPES = {
    "query": "search_query",
    "search_query": "search_query",
    "document": "search_document",
    "search_document": "search_document",
    "classification": "classification",
    "clustering": "clustering",
}
ENDPOINT_TYPES = (("chat", "llm"), ("embed", "text-embedding"), ("rerank", "rerank"))


# --- request building -------------------------------------------------------------------------


def message_json(message: Message) -> dict[str, Any]:
    """One message in v2 form. An assistant turn that called tools carries its words as
    `tool_plan`, as the API returned them; a tool result names its call."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text()}
    if message.role == "assistant" and message.tool_calls:
        data: dict[str, Any] = {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments or "{}"},
                }
                for c in message.tool_calls
            ],
        }
        if message.text():
            data["tool_plan"] = message.text()
        return data
    if message.role in ("system", "assistant"):
        return {"role": message.role, "content": message.text()}
    return {"role": "user", "content": content_json(message)}


def _response_format(value: Any) -> dict[str, Any] | None:
    """OpenAI-style response_format -> v2's {type: json_object, json_schema?}."""
    if not value:
        return None
    kind = value.get("type")
    if kind == "json_object":
        result: dict[str, Any] = {"type": "json_object"}
        if value.get("json_schema") or value.get("schema"):
            result["json_schema"] = value.get("json_schema") or value.get("schema")
        return result
    if kind == "json_schema":
        spec = value.get("json_schema") or {}
        return {"type": "json_object", "json_schema": spec.get("schema", spec)}
    return None


# --- reply reading ----------------------------------------------------------------------------


def _usage(data: Any, request: ChatRequest | None = None, text: str = "") -> Usage:
    """Billed units first (what the price list charges), then raw tokens, else counted."""
    if isinstance(data, dict):
        for key in ("billed_units", "tokens"):
            part = data.get(key)
            if isinstance(part, dict) and ("input_tokens" in part or "output_tokens" in part):
                return Usage(
                    int(part.get("input_tokens") or 0), int(part.get("output_tokens") or 0)
                )
    prompt = sum(count_tokens(m.text()) for m in request.messages) if request else 0
    return Usage(prompt, count_tokens(text), counted=True)


def _text_of(content: Any) -> str:
    """The answer's text parts (a reasoning model's `thinking` parts are left out)."""
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text") or ""
        for part in content or ()
        if isinstance(part, dict) and part.get("type", "text") == "text"
    )


class CohereAdapter(Adapter):
    family = "cohere"
    error_field = "message"

    def base_url(self) -> str:
        base = (self.endpoint.credentials.get("base_url") or "").strip() or self.endpoint.base_url
        base = base.rstrip("/")
        for suffix in ("/v1", "/v2"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        return base

    def auth_headers(self) -> dict[str, str]:
        api_key = self.endpoint.credentials.get("api_key")
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """Cohere's own status codes (see the module docstring)."""
        lowered = failure.message.lower()
        if response.status_code == 499:
            return errors.UpstreamUnavailable(failure.message)
        if isinstance(failure, errors.UpstreamRateLimited) and (
            "/ month" in lowered or "per month" in lowered or "monthly" in lowered
        ):
            return errors.UpstreamQuota(failure.message)
        return failure

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict):
            value = body.get("message") or body.get("error") or body.get("detail") or body
            if isinstance(value, dict):
                value = value.get("message") or value
            return str(value)
        return str(body)

    def _finish(self, reason: Any, error: Any = None) -> str:
        """The common finish reason; an ERROR or TIMEOUT finish raises, quoting the backend's
        `error` bounded and masked like any other backend text."""
        reason = str(reason or "COMPLETE").upper()
        if reason == "ERROR":
            detail = self.http.bounded(str(error)) if error else "no detail"
            raise errors.UpstreamUnavailable(f"Cohere stopped with an error: {detail}")
        if reason == "TIMEOUT":
            raise errors.UpstreamTimeout("Cohere timed out while generating the reply.")
        return FINISH_REASONS.get(reason, reason.lower())

    # --- chat ---------------------------------------------------------------------------------

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [message_json(m) for m in request.messages],
        }
        for name, value in request.parameters.items():
            if value is None or name in ("stream", "model", "messages"):
                continue
            name = RENAMED_PARAMETERS.get(name, name)
            if name == "stop_sequences" and isinstance(value, str):
                value = [value]
            body[name] = value
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        tools = request.tools
        choice = (request.tool_choice or "auto").lower() if tools else "auto"
        if tools and choice not in ("auto", "none", "required"):
            # v2 cannot name one tool: offer only that one, and require a call.
            tools = tuple(t for t in tools if t.name == request.tool_choice) or tools
            choice = "required"
        if tools:
            body["tools"] = function_tools(tools)
            if choice in ("none", "required"):
                body["tool_choice"] = choice.upper()
        response_format = _response_format(request.response_format)
        if response_format:
            body["response_format"] = response_format
        body["stream"] = stream
        return body

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        data = self.http.json(
            "POST", "v2/chat", json_body=self.chat_body(model, request, stream=False)
        )
        message = data.get("message") if isinstance(data, dict) else None
        if not isinstance(message, dict):
            raise errors.UpstreamUnavailable(
                f"Cohere's reply has no message: {self.http.bounded(json.dumps(data), 200)}"
            )
        text = _text_of(message.get("content"))
        calls = tuple(
            ToolCall(
                id=c.get("id", ""),
                name=(c.get("function") or {}).get("name", ""),
                arguments=(c.get("function") or {}).get("arguments", "") or "",
            )
            for c in message.get("tool_calls") or ()
        )
        return ChatResult(
            text=text,
            tool_calls=calls,
            finish_reason=self._finish(data.get("finish_reason"), data.get("error")),
            usage=_usage(data.get("usage"), request, text),
            model=model,
        )

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        response = self.http.request(
            "POST", "v2/chat", json_body=self.chat_body(model, request, stream=True), stream=True
        )
        produced: list[str] = []
        ended = False
        for event, payload in self.http.sse(response):
            data = self.http.parse(payload)
            if not isinstance(data, dict):
                continue
            kind = data.get("type") or event
            delta = data.get("delta") or {}
            message = delta.get("message") or {}
            if kind in ("content-start", "content-delta"):
                content = message.get("content") or {}
                text = content.get("text") or ""
                if text and content.get("type", "text") == "text":
                    produced.append(text)
                    yield ChatChunk(text=text)
            elif kind in ("tool-call-start", "tool-call-delta"):
                call = message.get("tool_calls") or {}
                if isinstance(call, list):  # tolerate a list-shaped delta
                    call = call[0] if call else {}
                function = call.get("function") or {}
                yield ChatChunk(
                    tool_calls=(
                        ToolCallDelta(
                            index=int(data.get("index") or 0),
                            id=call.get("id") or "",
                            name=function.get("name") or "",
                            arguments=function.get("arguments") or "",
                        ),
                    )
                )
            elif kind == "message-end":
                ended = True
                usage = (
                    _usage(delta["usage"])
                    if delta.get("usage")
                    else _usage(None, request, "".join(produced))
                )
                yield ChatChunk(
                    finish_reason=self._finish(delta.get("finish_reason"), delta.get("error")),
                    usage=usage,
                )
            elif not data.get("type") and isinstance(data.get("message"), str):
                # An error object ({"message": ...}) sent in the stream instead of an event.
                raise errors.UpstreamUnavailable(self.http.bounded(self.error_message(data)))
        if not ended:
            raise errors.UpstreamConnection("Cohere's stream ended before its message-end event.")

    # --- embeddings and rerank ----------------------------------------------------------------

    def embed(
        self, model: str, texts: Sequence[str], *, input_type: str | None = None
    ) -> EmbeddingResult:
        wanted = (
            input_type
            or self.endpoint.options.get("input_type")
            or self.endpoint.credentials.get("input_type")
            or "search_document"
        )
        kind = INPUT_TYPES.get(str(wanted).lower(), str(wanted))
        limit = self.endpoint.options.get("max_chunks") or self.endpoint.credentials.get(
            "max_chunks"
        )
        batch = max(1, min(MAX_EMBED_BATCH, int(limit or MAX_EMBED_BATCH)))
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), batch):
            chunk = list(texts[start : start + batch])
            data = self.http.json(
                "POST",
                "v2/embed",
                json_body={
                    "model": model,
                    "texts": chunk,
                    "input_type": kind,
                    "embedding_types": ["float"],
                },
            )
            rows = ((data.get("embeddings") or {}) if isinstance(data, dict) else {}).get("float")
            if not isinstance(rows, list) or len(rows) != len(chunk):
                got = len(rows) if isinstance(rows, list) else 0
                raise errors.UpstreamUnavailable(
                    f"Asked Cohere for {len(chunk)} float embeddings, got {got}."
                )
            vectors.extend(tuple(float(x) for x in row) for row in rows)
            billed = (data.get("meta") or {}).get("billed_units") or {}
            tally.add(billed.get("input_tokens"), chunk)
        return EmbeddingResult(tuple(vectors), tally.usage)

    def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        if not documents:
            return RerankResult(())
        body: dict[str, Any] = {"model": model, "query": query, "documents": list(documents)}
        if top_n:
            body["top_n"] = top_n
        data = self.http.json("POST", "v2/rerank", json_body=body)
        hits = []
        for row in data.get("results") or ():
            index = int(row.get("index", -1))
            if not 0 <= index < len(documents):
                raise errors.UpstreamUnavailable(
                    f"Cohere ranked a document it was not sent: {index}."
                )
            hits.append(RerankHit(index, float(row.get("relevance_score", 0.0)), documents[index]))
        hits.sort(key=lambda h: -h.score)
        # Rerank bills search units, not tokens; tokens only when the reply reports them.
        tokens = ((data.get("meta") or {}).get("tokens") or {}).get("input_tokens")
        usage = (
            Usage(int(tokens))
            if tokens is not None
            else Usage(count_tokens(query) + sum(count_tokens(d) for d in documents), counted=True)
        )
        return RerankResult(tuple(hits[: top_n or None]), usage)

    # --- listing and validation ---------------------------------------------------------------

    def list_models(self) -> list[DiscoveredModel]:
        found: list[DiscoveredModel] = []
        token: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            params: dict[str, Any] = {"page_size": 1000}
            if token:
                params["page_token"] = token
            data = self.http.json("GET", "v1/models", params=params)
            for row in data.get("models") or ():
                name, endpoints = row.get("name"), row.get("endpoints") or ()
                for endpoint, model_type in ENDPOINT_TYPES:
                    if name and endpoint in endpoints:
                        found.append(DiscoveredModel(name, model_type, details=row))
            token = data.get("next_page_token")
            if not token:
                break
        return found
