"""Ollama's native API (not its OpenAI shim): /api/chat, /api/generate, /api/embed, /api/tags,
/api/show.

Credentials: `base_url` (the Ollama server, e.g. http://host:11434; a trailing /api or /v1 is
dropped), `api_key` (optional, sent as Bearer for servers behind an authenticating proxy), `mode`
(`chat`, the default, or `completion` for /api/generate) when the manifest maps it.
Options: `mode`, `keep_alive`, `max_chunks` (embedding batch size).

Wire facts: replies are JSON, streams are NDJSON (one object a line, the last with `done: true`
and the counts), errors are `{"error": "..."}` (also as a line mid-stream), images are raw base64
in a message's `images`, tool-call arguments are JSON objects, usage is `prompt_eval_count` /
`eval_count`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from config import errors
from providers.runtime import probe
from providers.runtime.base import (
    Adapter,
    ChatChunk,
    ChatRequest,
    ChatResult,
    DiscoveredModel,
    EmbeddingResult,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
    Validation,
    count_tokens,
)
from providers.runtime.openai_compat import function_tools

DEFAULT_BATCH = 256
# Parameters that are top-level request fields in Ollama; everything else goes in `options`.
TOP_LEVEL = ("format", "keep_alive", "think")
_DATA_URL = re.compile(r"^data:[^,]*?;base64,", re.IGNORECASE)
_EMBEDDING_HINTS = ("embed", "bert")  # "bert" also covers nomic-bert


def image_base64(url: str) -> str:
    """Ollama takes images as raw base64: strip a data: URL's prefix."""
    match = _DATA_URL.match(url)
    if match:
        return url[match.end() :]
    if url.startswith(("http://", "https://")):
        raise errors.InvalidInput(
            "Ollama takes images as base64 data, not links: send the image as a data: URL.",
            code="unsupported",
        )
    return url  # already bare base64


def _arguments_object(text: str) -> Any:
    """Our tool-call arguments are JSON text; Ollama wants the object."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {"input": text}


def _arguments_text(value: Any) -> str:
    """Ollama's tool-call arguments are an object; ours are JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value if value is not None else {}, ensure_ascii=False)


def messages_json(messages: Sequence[Message]) -> list[dict[str, Any]]:
    names = {c.id: c.name for m in messages for c in m.tool_calls if c.id}
    out: list[dict[str, Any]] = []
    for message in messages:
        data: dict[str, Any] = {"role": message.role, "content": message.text()}
        images = [image_base64(url) for url in message.images()]
        if images:
            data["images"] = images
        if message.tool_calls:
            data["tool_calls"] = [
                {
                    **({"id": c.id} if c.id else {}),
                    "function": {
                        "index": i,
                        "name": c.name,
                        "arguments": _arguments_object(c.arguments),
                    },
                }
                for i, c in enumerate(message.tool_calls)
            ]
        if message.tool_call_id:
            data["tool_call_id"] = message.tool_call_id
            if message.tool_call_id in names:
                data["tool_name"] = names[message.tool_call_id]
        out.append(data)
    return out


def _tool_calls(raw: Any, start: int = 0) -> tuple[ToolCall, ...]:
    calls = []
    for i, call in enumerate(raw or (), start=start):
        function = call.get("function") or {}
        calls.append(
            ToolCall(
                id=call.get("id") or f"call_{i}",
                name=function.get("name", ""),
                arguments=_arguments_text(function.get("arguments")),
            )
        )
    return tuple(calls)


def _finish(data: dict[str, Any], has_tool_calls: bool) -> str:
    if has_tool_calls:
        return "tool_calls"
    return "length" if data.get("done_reason") == "length" else "stop"


def _prompt_tokens(request: ChatRequest) -> int:
    return sum(count_tokens(m.text()) for m in request.messages)


def _usage(data: dict[str, Any], request: ChatRequest, text: str) -> Usage:
    """Counts from the final object; a count Ollama left out (it omits zeros) is estimated."""
    prompt, completion = data.get("prompt_eval_count"), data.get("eval_count")
    counted = prompt is None or completion is None
    return Usage(
        int(prompt) if prompt is not None else _prompt_tokens(request),
        int(completion) if completion is not None else count_tokens(text),
        counted=counted,
    )


def _is_embedding(name: str, details: dict[str, Any]) -> bool:
    families = [details.get("family") or "", *(details.get("families") or ())]
    return any(hint in text.lower() for text in (name, *families) for hint in _EMBEDDING_HINTS)


class OllamaAdapter(Adapter):
    family = "ollama"

    def base_url(self) -> str:
        base = (self.endpoint.credentials.get("base_url") or self.endpoint.base_url or "").strip()
        base = base.rstrip("/")
        for suffix in ("/api", "/v1"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        return base

    def auth_headers(self) -> dict[str, str]:
        api_key = (self.endpoint.credentials.get("api_key") or "").strip()
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @property
    def completion_mode(self) -> bool:
        mode = self.endpoint.credentials.get("mode") or self.endpoint.options.get("mode")
        return str(mode or "chat").lower() == "completion"

    # --- chat ---------------------------------------------------------------------------------

    def _common(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "stream": stream}
        options: dict[str, Any] = {}
        for name, value in request.parameters.items():
            if value is None:
                continue
            if name == "max_tokens":
                options["num_predict"] = int(value)
            elif name == "json_schema":
                body["format"] = _schema(value)
            elif name in TOP_LEVEL:
                body[name] = value
            else:
                options[name] = value
        if "keep_alive" not in body and self.endpoint.options.get("keep_alive") is not None:
            body["keep_alive"] = self.endpoint.options["keep_alive"]
        if request.stop:
            options["stop"] = list(request.stop)
        if request.response_format and "format" not in body:
            wanted = _format(request.response_format)
            if wanted is not None:
                body["format"] = wanted
        if options:
            body["options"] = options
        return body

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = self._common(model, request, stream=stream)
        body["messages"] = messages_json(request.messages)
        if request.tools and request.tool_choice != "none":
            tools = request.tools
            if request.tool_choice not in (None, "auto", "required"):
                tools = tuple(t for t in tools if t.name == request.tool_choice) or tools
            body["tools"] = function_tools(tools)
        return body

    def generate_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """Completion mode: the conversation's non-system text as one prompt."""
        body = self._common(model, request, stream=stream)
        turns = [m for m in request.messages if m.role != "system"]
        body["prompt"] = "\n\n".join(m.text() for m in turns)
        if request.system:
            body["system"] = request.system
        images = [image_base64(url) for m in turns for url in m.images()]
        if images:
            body["images"] = images
        return body

    def _send(self, model: str, request: ChatRequest, *, stream: bool) -> Any:
        if self.completion_mode:
            path, body = "api/generate", self.generate_body(model, request, stream=stream)
        else:
            path, body = "api/chat", self.chat_body(model, request, stream=stream)
        if stream:
            return self.http.request("POST", path, json_body=body, stream=True)
        return self.http.json("POST", path, json_body=body)

    def _failed(self, data: Any) -> errors.UpstreamError:
        return errors.UpstreamUnavailable(self.http.bounded(self.error_message(data)))

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        data = self._send(model, request, stream=False)
        if not isinstance(data, dict) or ("message" not in data and "response" not in data):
            if isinstance(data, dict) and data.get("error"):
                raise self._failed(data)
            raise errors.UpstreamUnavailable(
                f"The backend's reply has no message: {self.http.bounded(json.dumps(data), 200)}"
            )
        if "message" in data:
            message = data.get("message") or {}
            text = message.get("content") or ""
            calls = _tool_calls(message.get("tool_calls"))
        else:
            text, calls = data.get("response") or "", ()
        return ChatResult(
            text=text,
            tool_calls=calls,
            finish_reason=_finish(data, bool(calls)),
            usage=_usage(data, request, text),
            model=data.get("model") or model,
        )

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        response = self._send(model, request, stream=True)
        produced: list[str] = []
        calls_seen = 0
        for line in self.http.lines(response):
            if not line.strip():
                continue
            data = self.http.parse(line)
            if not isinstance(data, dict):
                raise errors.UpstreamUnavailable(
                    f"The backend sent a line that is not an object: {self.http.bounded(line)}"
                )
            if data.get("error"):
                raise self._failed(data)
            message = data.get("message") or {}
            text = message.get("content") or data.get("response") or ""
            produced.append(text)
            calls = _tool_calls(message.get("tool_calls"), start=calls_seen)
            deltas = tuple(
                ToolCallDelta(index=calls_seen + i, id=c.id, name=c.name, arguments=c.arguments)
                for i, c in enumerate(calls)
            )
            calls_seen += len(calls)
            if data.get("done"):
                if text or deltas:
                    yield ChatChunk(text=text, tool_calls=deltas)
                yield ChatChunk(
                    finish_reason=_finish(data, calls_seen > 0),
                    usage=_usage(data, request, "".join(produced)),
                )
                return
            if text or deltas:
                yield ChatChunk(text=text, tool_calls=deltas)
        raise errors.UpstreamConnection("The stream ended before Ollama said it was done.")

    # --- embeddings ---------------------------------------------------------------------------

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        batch = max(1, int(self.endpoint.options.get("max_chunks") or DEFAULT_BATCH))
        vectors: list[tuple[float, ...]] = []
        prompt_tokens, counted = 0, False
        for start in range(0, len(texts), batch):
            chunk = list(texts[start : start + batch])
            body: dict[str, Any] = {"model": model, "input": chunk, "truncate": True}
            if self.endpoint.options.get("keep_alive") is not None:
                body["keep_alive"] = self.endpoint.options["keep_alive"]
            data = self.http.json("POST", "api/embed", json_body=body)
            rows = data.get("embeddings") if isinstance(data, dict) else None
            if rows is None or len(rows) != len(chunk):
                raise errors.UpstreamUnavailable(
                    f"Asked for {len(chunk)} embeddings, got {len(rows or ())}."
                )
            vectors.extend(tuple(float(x) for x in row) for row in rows)
            if data.get("prompt_eval_count") is not None:
                prompt_tokens += int(data["prompt_eval_count"])
            else:
                prompt_tokens += sum(count_tokens(t) for t in chunk)
                counted = True
        return EmbeddingResult(tuple(vectors), Usage(prompt_tokens, 0, counted=counted))

    # --- discovery and validation -------------------------------------------------------------

    def list_models(self) -> list[DiscoveredModel]:
        data = self.http.json("GET", "api/tags")
        found = []
        for row in (data.get("models") if isinstance(data, dict) else None) or ():
            name = row.get("name") or row.get("model")
            if not name:
                continue
            details = row.get("details") or {}
            found.append(
                DiscoveredModel(
                    model=name,
                    model_type="text-embedding" if _is_embedding(name, details) else "llm",
                    details={
                        "family": details.get("family"),
                        "parameter_size": details.get("parameter_size"),
                        "quantization_level": details.get("quantization_level"),
                        "size": row.get("size"),
                        "digest": row.get("digest"),
                        "modified_at": row.get("modified_at"),
                    },
                )
            )
        return found

    def show(self, model: str) -> dict[str, Any]:
        """/api/show: proves the model is pulled; 404 when it is not."""
        try:
            data = self.http.json("POST", "api/show", json_body={"model": model})
        except errors.UpstreamNotFound as exc:
            message = exc.message
            if "pull" not in message.lower():
                message += f" (try pulling it first: ollama pull {model})"
            raise errors.UpstreamNotFound(message) from exc
        return data if isinstance(data, dict) else {}

    def validate(self, model: str, model_type: str) -> Validation:
        """llm: /api/show proves the model is pulled (no generation needed); text-embedding: one
        short embedding, recording its dimensions."""
        if model_type == "llm":
            data = self.show(model)
            capabilities = list(data.get("capabilities") or ())
            if capabilities and "completion" not in capabilities:
                raise errors.UpstreamBadRequest(
                    f'"{self.http.bounded(model)}" does not support chat '
                    f"(its capabilities: {', '.join(capabilities)})."
                )
            details = data.get("details") or {}
            found: dict[str, Any] = {
                "model": model,
                "family": details.get("family"),
                "parameter_size": details.get("parameter_size"),
                "quantization_level": details.get("quantization_level"),
            }
            if capabilities:
                found["capabilities"] = capabilities
                found["vision"] = "vision" in capabilities
                found["tool_call"] = "tools" in capabilities
            context = _context_length(data.get("model_info") or {})
            if context:
                found["context_length"] = context
            return Validation({k: v for k, v in found.items() if v is not None})
        if model_type == "text-embedding":
            result = self.embed(model, [probe.PING])
            return Validation({"dimensions": result.dimensions})
        raise self._unsupported(f"{model_type} models")


def _schema(value: Any) -> Any:
    """A `json_schema` parameter (JSON text or an object); unparseable text means plain JSON."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return "json"
    return dict(value)


def _format(response_format: Any) -> Any:
    """OpenAI-style response_format -> Ollama's `format` ("json", a JSON schema, or None)."""
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = response_format.get("json_schema") or {}
        return dict(schema.get("schema") or schema)
    if kind in ("json_object", "json"):
        return "json"
    if kind == "text":
        return None
    return dict(response_format)  # already a bare JSON schema


def _context_length(model_info: dict[str, Any]) -> int | None:
    architecture = model_info.get("general.architecture")
    value = model_info.get(f"{architecture}.context_length") if architecture else None
    if value is None:
        value = next((v for k, v in model_info.items() if k.endswith(".context_length")), None)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
