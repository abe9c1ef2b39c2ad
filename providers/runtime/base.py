"""The runtime interface: what every protocol-family adapter offers, and its frozen I/O types.

Pure Python (stdlib + requests): adapters take plain values, never Django objects. An adapter is
built per call from cheap parts (`Endpoint` + a pooled `requests.Session`), so it holds no state
of its own. Every failure is one of `config.errors`' upstream classes (see `http.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests

from config import errors
from providers.runtime import probe
from providers.runtime.http import HttpClient, RetryPolicy, Timeouts

# --- Inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContentPart:
    type: str  # "text" | "image"
    text: str = ""
    image_url: str = ""  # an http(s) URL or a data: URL (base64)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # system | user | assistant | tool
    content: str | tuple[ContentPart, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if part.type == "text")

    def images(self) -> tuple[str, ...]:
        if isinstance(self.content, str):
            return ()
        return tuple(part.image_url for part in self.content if part.type == "image")


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)  # JSON Schema


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[Message, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)  # temperature, max_tokens, ...
    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None  # auto | none | required | <tool name>
    response_format: Mapping[str, Any] | None = None
    stop: tuple[str, ...] = ()

    @property
    def system(self) -> str:
        return "\n\n".join(m.text() for m in self.messages if m.role == "system")

    @property
    def max_tokens(self) -> int | None:
        value = self.parameters.get("max_tokens")
        return int(value) if value is not None else None


# --- Outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    counted: bool = False  # True when we counted because the backend reported nothing

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    usage: Usage = Usage()
    model: str = ""


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""  # a fragment of the JSON text


@dataclass(frozen=True, slots=True)
class ChatChunk:
    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None  # on the last chunk, when known


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage = Usage()

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0


@dataclass(frozen=True, slots=True)
class RerankHit:
    index: int
    score: float
    document: str = ""


@dataclass(frozen=True, slots=True)
class RerankResult:
    hits: tuple[RerankHit, ...]  # best first
    usage: Usage = Usage()


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str
    duration_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Speech:
    audio: bytes
    content_type: str
    characters: int


@dataclass(frozen=True, slots=True)
class Validation:
    """What a cheap probe learnt: `details` is what the backend reported (type, abilities, ...)."""

    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DiscoveredModel:
    model: str
    model_type: str
    details: Mapping[str, Any] = field(default_factory=dict)


# --- The adapter ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to reach a backend: everything an adapter needs besides the session."""

    base_url: str
    credentials: Mapping[str, Any] = field(default_factory=dict, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def secret_values(self) -> tuple[str, ...]:
        return tuple(str(v) for v in self.credentials.values() if isinstance(v, str) and v)


class Adapter:
    """One protocol family. Methods a family lacks raise `InvalidInput` (code `unsupported`)."""

    family: ClassVar[str] = ""
    error_field: ClassVar[str] = "error"  # where the family's error body keeps its message

    def __init__(self, endpoint: Endpoint, session: requests.Session) -> None:
        self.endpoint = endpoint
        self.http = HttpClient(
            base_url=endpoint.base_url,
            headers={**self.auth_headers(), **endpoint.extra_headers},
            session=session,
            timeouts=endpoint.timeouts,
            retry=endpoint.retry,
            secrets=endpoint.secret_values(),
            error_message=self.error_message,
        )

    # Families override these two.
    def auth_headers(self) -> dict[str, str]:
        return {}

    def error_message(self, body: Any) -> str:
        """The backend's own message out of an error body (already parsed JSON, or text)."""
        if isinstance(body, dict):
            value = body.get(self.error_field, body)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value
            return str(value)
        return str(body)

    def _unsupported(self, what: str) -> errors.InvalidInput:
        return errors.InvalidInput(f"The {self.family} protocol has no {what}.", code="unsupported")

    def validate(self, model: str, model_type: str) -> Validation:
        """The cheapest call that proves the credentials and the model work for that type: a
        1-token chat, one short embedding (its dimensions recorded), a two-document rerank, a
        tiny WAV, a short phrase. Families with a listing or model-info call override this."""
        if model_type == "llm":
            ping = ChatRequest(
                messages=(Message("user", probe.PING),), parameters={"max_tokens": 1}
            )
            return Validation({"model": self.chat(model, ping).model or model})
        if model_type == "text-embedding":
            return Validation({"dimensions": self.embed(model, [probe.PING]).dimensions})
        if model_type == "rerank":
            ranked = self.rerank(model, probe.PING, probe.RERANK_DOCUMENTS)
            return Validation({"documents_ranked": len(ranked.hits)})
        if model_type == "speech2text":
            self.transcribe(model, probe.TINY_WAV, "probe.wav")
            return Validation({})
        if model_type == "tts":
            speech = self.speak(model, probe.PING, self.endpoint.options.get("voice", "alloy"))
            return Validation({"audio_bytes": len(speech.audio)})
        raise self._unsupported(f"{model_type} models")

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        raise self._unsupported("chat")

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        raise self._unsupported("streaming chat")

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        raise self._unsupported("embeddings")

    def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        raise self._unsupported("rerank")

    def transcribe(
        self, model: str, audio: bytes, filename: str, language: str | None = None
    ) -> Transcription:
        raise self._unsupported("speech to text")

    def speak(self, model: str, text: str, voice: str, audio_format: str = "mp3") -> Speech:
        raise self._unsupported("text to speech")

    def list_models(self) -> list[DiscoveredModel]:
        raise self._unsupported("model listing")


def count_tokens(text: str) -> int:
    """A rough count for backends that report no usage: ~4 characters a token, at least 1."""
    return max(1, (len(text) + 3) // 4) if text else 0


class TokenTally:
    """Prompt tokens summed over batches: the backend's figure where it reports one, else counted
    (and the usage marked as counted)."""

    def __init__(self) -> None:
        self.tokens = 0
        self.counted = False

    def add(self, reported: int | None, texts: Sequence[str]) -> None:
        if reported is None:
            self.tokens += sum(count_tokens(t) for t in texts)
            self.counted = True
        else:
            self.tokens += int(reported)

    @property
    def usage(self) -> Usage:
        return Usage(self.tokens, 0, counted=self.counted)


def accumulate(chunks: Iterator[ChatChunk]) -> ChatResult:
    """Fold a stream into one result (what a worker stores after streaming)."""
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish, usage = "stop", None
    for chunk in chunks:
        text.append(chunk.text)
        for delta in chunk.tool_calls:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or delta.id
            call["name"] = call["name"] or delta.name
            call["arguments"] += delta.arguments
        finish = chunk.finish_reason or finish
        usage = chunk.usage or usage
    return ChatResult(
        text="".join(text),
        tool_calls=tuple(
            ToolCall(c["id"], c["name"], c["arguments"]) for _, c in sorted(calls.items())
        ),
        finish_reason=finish,
        usage=usage or Usage(),
    )
