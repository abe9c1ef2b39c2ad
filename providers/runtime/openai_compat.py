"""The OpenAI wire protocol: OpenAI itself and every provider that speaks /v1/chat/completions,
/v1/embeddings, /v1/audio/*, plus the common /v1/rerank (and /rerank) shape.

Credentials: `api_key` (sent as Bearer when given), `organization`, `base_url` (overrides the
manifest's), `endpoint_model_name` (the name the backend knows the model by).
Options: `append_v1` (add /v1 to a user-given base without it), `strip_suffixes` (API paths a
user-given server URL may end with, cut before `append_v1`), `validate_model`,
`international_base_url` + `international_switch` (the form value that picks it),
`max_chunks` (embedding batch size), `reasoning_models` (the backend is OpenAI's: its reasoning
models take `max_completion_tokens` and refuse other sampling values), `token_param_name`
(`max_tokens` | `max_completion_tokens` | `auto`: how the output limit is sent).
"""

from __future__ import annotations

import json
import re
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
    Speech,
    TokenTally,
    Tool,
    ToolCall,
    ToolCallDelta,
    Transcription,
    Usage,
    count_tokens,
)
from providers.runtime.http import Response

DEFAULT_BATCH = 512
# OpenAI's reasoning models (o1, o3, o4-mini..., the gpt-5 family), told by name as Dify's OpenAI
# and GPUStack plugins do: they take `max_completion_tokens` instead of `max_tokens`; all but the
# gpt-5 -chat models also refuse `stop` and sampling values other than the default.
REASONING_MODEL = re.compile(r"^(o\d|gpt-5)", re.IGNORECASE)
FIXED_SAMPLING_MODEL = re.compile(r"^(o\d|gpt-5(?!.*-chat))", re.IGNORECASE)
REASONING_REFUSED = ("stop", "temperature", "top_p", "presence_penalty", "frequency_penalty")


def function_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """Tools in the OpenAI function shape (also what Cohere v2 and Ollama take)."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": dict(t.parameters) or {"type": "object", "properties": {}},
            },
        }
        for t in tools
    ]


def content_json(message: Message) -> Any:
    """A message's content: its text, or OpenAI content parts (text and image_url)."""
    if isinstance(message.content, str):
        return message.content
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if part.type == "image":
            parts.append({"type": "image_url", "image_url": {"url": part.image_url}})
        else:
            parts.append({"type": "text", "text": part.text})
    return parts


def message_json(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": content_json(message)}
    if message.tool_calls:
        data["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        data["tool_call_id"] = message.tool_call_id
    return data


def _usage(data: Any, request: ChatRequest | None = None, text: str = "") -> Usage:
    if isinstance(data, dict) and ("prompt_tokens" in data or "completion_tokens" in data):
        return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0))
    prompt = sum(count_tokens(m.text()) for m in request.messages) if request else 0
    return Usage(prompt, count_tokens(text), counted=True)


def tool_call_deltas(calls: Any) -> tuple[ToolCallDelta, ...]:
    """The tool-call fragments of an OpenAI-shaped stream delta's `tool_calls`."""
    return tuple(
        ToolCallDelta(
            index=int(c.get("index") or 0),
            id=c.get("id") or "",
            name=(c.get("function") or {}).get("name") or "",
            arguments=(c.get("function") or {}).get("arguments") or "",
        )
        for c in calls or ()
    )


def error_code(response: Response) -> str:
    """The `error.code` of an OpenAI-shaped error body ("" when there is none)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


class OpenAICompatAdapter(Adapter):
    family = "openai_compat"

    def base_url(self) -> str:
        options, credentials = self.endpoint.options, self.endpoint.credentials
        base = (credentials.get("base_url") or "").strip()
        switch = options.get("international_switch")
        # The switch is a form value other than a credential: routing passes it as an option.
        chosen = options.get(switch, credentials.get(switch, "")) if switch else ""
        if not base and str(chosen).lower() == "true":
            base = options.get("international_base_url", "")
        if not base:
            return self.endpoint.base_url.rstrip("/")
        base = base.rstrip("/")
        for suffix in options.get("strip_suffixes") or ():
            base = base.removesuffix(suffix.rstrip("/"))
        if options.get("append_v1") and not base.endswith("/v1"):
            base += "/v1"
        return base

    def auth_headers(self) -> dict[str, str]:
        headers = {}
        api_key = self.endpoint.credentials.get("api_key")
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        organization = self.endpoint.credentials.get("organization")
        if organization:
            headers["OpenAI-Organization"] = organization
        return headers

    def route(self, model: str, path: str) -> str:
        """`path` under the base URL; a per-model host template (`{model}`) is filled in."""
        if "{model}" in self.http.base_url:
            return f"{self.http.base_url.format(model=model)}/{path}"
        return path

    def model_name(self, model: str) -> str:
        return self.endpoint.credentials.get("endpoint_model_name") or model

    def completion_mode(self, model: str) -> bool:
        """A model set up in completion mode (the form's `mode`) takes a prompt at /completions,
        not messages at /chat/completions."""
        return str(self.endpoint.options.get("mode") or "chat").lower() == "completion"

    # --- completion mode ----------------------------------------------------------------------

    @staticmethod
    def prompt(request: ChatRequest) -> str:
        """The messages as one prompt: the text of each, in order."""
        return "\n\n".join(m.text() for m in request.messages if m.text())

    def completion_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_name(model),
            "prompt": self.prompt(request),
            **request.sampling,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _answer(self, model: str, path: str, body: dict[str, Any]) -> tuple[dict, dict]:
        """(the reply, its first choice) of a chat or completion call."""
        data = self.http.json("POST", self.route(model, path), json_body=body)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise errors.UpstreamUnavailable(
                f"The backend's reply has no choices: {self.http.bounded(json.dumps(data), 200)}"
            )
        return data, choices[0]

    def _complete(self, model: str, request: ChatRequest) -> ChatResult:
        body = self.completion_body(model, request, stream=False)
        data, choice = self._answer(model, "completions", body)
        text = choice.get("text") or ""
        return ChatResult(
            text=text,
            finish_reason=choice.get("finish_reason") or "stop",
            usage=_usage(data.get("usage"), request, text),
            model=data.get("model", model),
        )

    def _events(self, model: str, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The backend's streamed events, a JSON object each; an error event raises. A backend
        that ignores `stream` and answers one JSON reply gives it as a single event (its
        messages read as deltas), not an empty answer."""
        response = self.http.request("POST", self.route(model, path), json_body=body, stream=True)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            self.http.read_body(response)
            whole = self.http.parse(response.text)
            for choice in whole.get("choices") or ():
                if "message" in choice:
                    choice["delta"] = choice["message"]
            yield whole
            return
        for _, payload in self.http.sse(response):
            data = self.http.parse(payload)
            if isinstance(data, dict) and "error" in data and not data.get("choices"):
                raise errors.UpstreamUnavailable(self.http.bounded(self.error_message(data)))
            yield data

    def _stream_completion(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        body = self.completion_body(model, request, stream=True)
        produced: list[str] = []
        usage_seen = False
        for data in self._events(model, "completions", body):
            if data.get("usage"):
                usage_seen = True
                yield ChatChunk(usage=_usage(data["usage"]))
            for choice in data.get("choices") or ():
                text = choice.get("text") or ""
                produced.append(text)
                if text or choice.get("finish_reason"):
                    yield ChatChunk(text=text, finish_reason=choice.get("finish_reason"))
        if not usage_seen:
            yield ChatChunk(usage=_usage(None, request, "".join(produced)))

    # --- chat ---------------------------------------------------------------------------------

    def reasoning_name(self, model: str) -> str | None:
        """The OpenAI model name to tell a reasoning model by; None where the backend is not
        OpenAI's (its models are no OpenAI reasoning models whatever their names)."""
        if not self.endpoint.options.get("reasoning_models"):
            return None
        return self.model_name(model)

    def shape_limits(self, model: str, body: dict[str, Any]) -> None:
        """Send the output limit under the name the model takes; leave out what a reasoning
        model refuses."""
        chosen = str(self.endpoint.options.get("token_param_name") or "auto")
        name = self.reasoning_name(model) or ""
        renamed = chosen == "max_completion_tokens" or (
            chosen != "max_tokens" and bool(REASONING_MODEL.match(name))
        )
        if renamed and "max_tokens" in body:
            body.setdefault("max_completion_tokens", body.pop("max_tokens"))
        if FIXED_SAMPLING_MODEL.match(name):
            for parameter in REASONING_REFUSED:
                body.pop(parameter, None)

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_name(model),
            "messages": [message_json(m) for m in request.messages],
            **request.sampling,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        self.shape_limits(model, body)
        if request.tools:
            body["tools"] = function_tools(request.tools)
            if request.tool_choice:
                body["tool_choice"] = (
                    request.tool_choice
                    if request.tool_choice in {"auto", "none", "required"}
                    else {"type": "function", "function": {"name": request.tool_choice}}
                )
        if request.response_format:
            body["response_format"] = dict(request.response_format)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        if self.completion_mode(model):
            return self._complete(model, request)
        body = self.chat_body(model, request, stream=False)
        data, choice = self._answer(model, "chat/completions", body)
        message = choice.get("message") or {}
        text = message.get("content") or ""
        calls = tuple(
            ToolCall(
                id=c.get("id", ""),
                name=(c.get("function") or {}).get("name", ""),
                arguments=(c.get("function") or {}).get("arguments", ""),
            )
            for c in message.get("tool_calls") or ()
        )
        return ChatResult(
            text=text,
            tool_calls=calls,
            finish_reason=choice.get("finish_reason") or "stop",
            usage=_usage(data.get("usage"), request, text),
            model=data.get("model", model),
        )

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        if self.completion_mode(model):
            yield from self._stream_completion(model, request)
            return
        body = self.chat_body(model, request, stream=True)
        produced: list[str] = []
        usage_seen = False
        for data in self._events(model, "chat/completions", body):
            usage = None
            if data.get("usage"):
                usage, usage_seen = _usage(data["usage"]), True
            for choice in data.get("choices") or ():
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
                produced.append(text)
                calls = tool_call_deltas(delta.get("tool_calls"))
                if text or calls or choice.get("finish_reason"):
                    yield ChatChunk(
                        text=text, tool_calls=calls, finish_reason=choice.get("finish_reason")
                    )
            if usage is not None:
                yield ChatChunk(usage=usage)
        if not usage_seen:
            yield ChatChunk(usage=_usage(None, request, "".join(produced)))

    # --- other model types --------------------------------------------------------------------

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        batch = int(
            self.endpoint.options.get("max_chunks")
            or self.endpoint.credentials.get("max_chunks")
            or DEFAULT_BATCH
        )
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), max(1, batch)):
            chunk = list(texts[start : start + batch])
            data = self.http.json(
                "POST",
                self.route(model, "embeddings"),
                json_body={"model": self.model_name(model), "input": chunk},
            )
            rows = sorted(data.get("data") or (), key=lambda row: row.get("index", 0))
            if len(rows) != len(chunk):
                raise errors.UpstreamUnavailable(
                    f"Asked for {len(chunk)} embeddings, got {len(rows)}."
                )
            vectors.extend(tuple(float(x) for x in row["embedding"]) for row in rows)
            usage = data.get("usage") or {}
            reported = None
            if "prompt_tokens" in usage or "total_tokens" in usage:
                reported = usage.get("prompt_tokens") or usage.get("total_tokens") or 0
            tally.add(reported, chunk)
        return EmbeddingResult(tuple(vectors), tally.usage)

    def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        body: dict[str, Any] = {
            "model": self.model_name(model),
            "query": query,
            "documents": list(documents),
            "return_documents": False,
        }
        if top_n:
            body["top_n"] = top_n
        path = self.route(model, self.endpoint.options.get("rerank_path", "rerank"))
        data = self.http.json("POST", path, json_body=body)
        hits = tuple(
            RerankHit(
                index=int(r["index"]),
                score=float(r.get("relevance_score", r.get("score", 0.0))),
                document=documents[int(r["index"])],
            )
            for r in data.get("results") or ()
        )
        hits = tuple(sorted(hits, key=lambda h: -h.score))[: top_n or None]
        tokens = ((data.get("meta") or {}).get("tokens") or {}).get("input_tokens")
        usage = (
            Usage(int(tokens))
            if tokens is not None
            else Usage(count_tokens(query) + sum(count_tokens(d) for d in documents), counted=True)
        )
        return RerankResult(hits, usage)

    def transcribe(
        self, model: str, audio: bytes, filename: str, language: str | None = None
    ) -> Transcription:
        data: dict[str, Any] = {"model": self.model_name(model)}
        if language:
            data["language"] = language
        reply = self.http.json(
            "POST",
            self.route(model, "audio/transcriptions"),
            data=data,
            files={"file": (filename, audio)},
        )
        return Transcription(text=reply.get("text", ""), duration_seconds=reply.get("duration"))

    def speak(self, model: str, text: str, voice: str, audio_format: str = "mp3") -> Speech:
        response = self.http.request(
            "POST",
            self.route(model, "audio/speech"),
            json_body={
                "model": self.model_name(model),
                "input": text,
                "voice": voice or self.default_voice,
                "response_format": audio_format,
            },
        )
        return Speech(
            audio=response.content,
            content_type=response.headers.get("Content-Type", f"audio/{audio_format}"),
            characters=len(text),
        )

    def list_models(self) -> list[DiscoveredModel]:
        data = self.http.json("GET", "models")
        return [
            DiscoveredModel(model=row["id"], model_type=_guess_type(row["id"]), details=row)
            for row in data.get("data") or ()
            if row.get("id")
        ]

    # --- validation ---------------------------------------------------------------------------


def _guess_type(model_id: str) -> str:
    """/v1/models lists names only: guess the type from the usual naming."""
    name = model_id.lower()
    if "rerank" in name:
        return "rerank"
    if "embed" in name or name.startswith(("bge-", "e5-", "gte-")):
        return "text-embedding"
    if "whisper" in name or "transcribe" in name or "asr" in name:
        return "speech2text"
    if name.startswith("tts") or "-tts" in name or "speech" in name:
        return "tts"
    return "llm"
