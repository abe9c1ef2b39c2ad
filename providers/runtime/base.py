"""The runtime interface: what every protocol-family adapter offers, and its frozen I/O types.

Pure Python (stdlib + urllib3): adapters take plain values, never Django objects. An adapter is
made of an `Endpoint` and the process's connection pools (`http.Pool`) and holds no state of its
own, so a route keeps one for many calls and many threads. Every failure is one of
`config.errors`' upstream classes (see `http.py`).

A family is small: its wire protocol's bodies and replies, and the hooks the base adapter and its
one HTTP client consult: `base_url` (where), `auth_headers` (how it signs in), `error_message`
(the backend's words out of an error body), `classify` (its own status conventions), `target`
(where a call goes, when the body decides it: Azure's deployments) and `sign` (per-request
signatures and exchanged tokens).

Every error an adapter's public method raises has its text masked here, in one place: the
`Adapter` base wraps `MASKED_METHODS` of every subclass when the class is defined, so a new
family cannot forget it, whatever backend text it quotes (see `_masked`).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from config import errors
from config.redact import scrub_values
from providers.runtime import probe
from providers.runtime.http import (
    CREDENTIAL_HEADER,
    HttpClient,
    Pool,
    Response,
    RetryPolicy,
    Timeouts,
)

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


# What a chat call's body builder sets itself: never taken from ChatRequest.parameters.
RESERVED_PARAMETERS = frozenset(
    {
        "model", "messages", "prompt", "input", "stream", "stream_options", "tools",
        "tool_choice", "functions", "function_call", "n", "best_of",
    }
)  # fmt: skip


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
    def sampling(self) -> dict[str, Any]:
        """The parameters a body builder may pass on: set ones, none that it sets itself."""
        return {
            k: v
            for k, v in self.parameters.items()
            if v is not None and k not in RESERVED_PARAMETERS
        }

    @property
    def max_tokens(self) -> int | None:
        value = self.parameters.get("max_tokens")
        return int(value) if value is not None else None


# --- Outputs ----------------------------------------------------------------------------------


MAX_TOKENS = 2**31 - 1  # what a usage column holds


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    counted: bool = False  # True when we counted because the backend reported nothing

    def __post_init__(self) -> None:
        # A backend's figures, made whole numbers in the columns' range: a negative or absurd
        # count must not fail the write that ends a job. Text that is no number is a ValueError.
        for name in ("prompt_tokens", "completion_tokens"):
            value = int(getattr(self, name) or 0)
            object.__setattr__(self, name, min(max(value, 0), MAX_TOKENS))

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
    """Where and how to reach a backend: everything an adapter needs besides its pools.

    `credentials` are the form's values by adapter argument, `options` the family's settings and
    the form's other values. Which of them are secrets is the manifest's word (its secret-input
    fields): `secret_names`. An Endpoint made without a manifest (`None`) treats every credential
    as a secret."""

    base_url: str
    credentials: Mapping[str, Any] = field(default_factory=dict, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    secret_names: frozenset[str] | None = None

    @property
    def secrets(self) -> dict[str, str]:
        """The secret values by name (credential argument or option)."""
        if self.secret_names is None:
            return {k: v for k, v in self.credentials.items() if isinstance(v, str) and v}
        return {
            name: value
            for values in (self.options, self.credentials)
            for name, value in values.items()
            if name in self.secret_names and isinstance(value, str) and value
        }

    @property
    def settings(self) -> dict[str, Any]:
        """The credentials that are no secret: addresses, regions, model names, versions."""
        return {k: v for k, v in self.credentials.items() if k not in self.secrets}


# --- Masking ----------------------------------------------------------------------------------

# The calls a family may serve.
SERVED_METHODS = ("chat", "stream", "embed", "rerank", "transcribe", "speak", "list_models")
# The adapter interface: what callers reach, so where an error's text leaves the runtime.
MASKED_METHODS = ("validate", *SERVED_METHODS)


def _mask(exc: BaseException, secrets: Sequence[str]) -> None:
    """Mask `secrets` (and known secret shapes) in a ServiceError's message, args and field
    errors, and in the ServiceErrors it was raised from. Other exceptions are left as they are."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while isinstance(current, errors.ServiceError) and id(current) not in seen:
        seen.add(id(current))
        current.message = scrub_values(str(current.message), secrets)
        current.args = tuple(
            scrub_values(arg, secrets) if isinstance(arg, str) else arg for arg in current.args
        )
        if isinstance(current, errors.InvalidInput):
            current.fields = {
                name: [scrub_values(str(problem), secrets) for problem in problems]
                for name, problems in current.fields.items()
            }
        current = current.__cause__ or current.__context__


# What reading a reply of an unexpected shape raises (a list where an object was due, a missing
# field, a number that is text, nesting past Python's limit): the backend's fault, a typed error.
_SHAPE_ERRORS = (
    AttributeError, KeyError, IndexError, TypeError, ValueError, RecursionError, OverflowError,
)  # fmt: skip


def _bad_shape(adapter: Adapter, exc: Exception) -> errors.UpstreamError:
    detail = scrub_values(" ".join(f"{type(exc).__name__}: {exc}".split()), adapter.secret_values())
    return errors.UpstreamUnavailable(
        f"The backend's answer is not what the {adapter.family} protocol sends ({detail[:200]}).",
        code="bad_response",
    )


def _masked(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method`, with any ServiceError it raises masked by the adapter's `secret_values()`. A
    generator stays a generator (its errors come at `next()`); an iterator another method returns
    (a stream that checks its arguments first) is wrapped the same way."""
    if getattr(method, "__masked__", False):
        return method

    def iterate(adapter: Adapter, chunks: Iterable[Any]) -> Iterator[Any]:
        try:
            yield from chunks
        except errors.ServiceError as exc:
            _mask(exc, adapter.secret_values())
            raise
        except _SHAPE_ERRORS as exc:
            raise _bad_shape(adapter, exc) from exc

    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: Adapter, *args: Any, **kwargs: Any) -> Iterator[Any]:
            yield from iterate(self, method(self, *args, **kwargs))

        wrapper: Callable[..., Any] = generator
    else:

        @functools.wraps(method)
        def function(self: Adapter, *args: Any, **kwargs: Any) -> Any:
            try:
                result = method(self, *args, **kwargs)
            except errors.ServiceError as exc:
                _mask(exc, self.secret_values())
                raise
            except _SHAPE_ERRORS as exc:
                raise _bad_shape(self, exc) from exc
            return iterate(self, result) if isinstance(result, Iterator) else result

        wrapper = function
    wrapper.__masked__ = True  # type: ignore[attr-defined]
    return wrapper


def _mask_methods(cls: type) -> None:
    for name in MASKED_METHODS:
        method = cls.__dict__.get(name)
        if callable(method):
            setattr(cls, name, _masked(method))


class Adapter:
    """One protocol family. Methods a family lacks raise `InvalidInput` (code `unsupported`).

    Errors from the `MASKED_METHODS` of every subclass leave with `secret_values()` masked: the
    wrapping happens when the subclass is defined (`__init_subclass__`)."""

    family: ClassVar[str] = ""
    # The SERVED_METHODS this family serves; the others answer `unsupported` even where a parent
    # family has them (the OpenAI wire has audio; a family built on it may not). None: what the
    # class defines.
    offers: ClassVar[frozenset[str] | None] = None
    error_field: ClassVar[str] = "error"  # where the family's error body keeps its message
    # The voice `speak` uses when the caller names none ("": let the backend choose).
    default_voice: ClassVar[str] = "alloy"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        offers = cls.__dict__.get("offers")
        if offers is not None:
            for name in set(SERVED_METHODS) - offers:
                setattr(cls, name, Adapter.__dict__[name])
        _mask_methods(cls)

    def __init__(self, endpoint: Endpoint, pool: Pool) -> None:
        self.endpoint = endpoint
        self.http = HttpClient(
            base_url=self.base_url(),
            headers={**self.auth_headers(), **endpoint.extra_headers},
            pool=pool,
            timeouts=endpoint.timeouts,
            retry=endpoint.retry,
            secrets=(),
            error_message=self.error_message,
            classify=self.classify,
            target=self.target,
            sign=self.sign if type(self).sign is not Adapter.sign else None,
        )
        self.http.secrets = self.secret_values()

    # --- Hooks a family overrides -------------------------------------------------------------

    def base_url(self) -> str:
        """Where the family's paths start (a base given in the credentials, normalised)."""
        return self.endpoint.base_url

    def auth_headers(self) -> dict[str, str]:
        return {}

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        """The headers to send for one attempt, for families that sign each request (AWS
        SigV4, Tencent TC3) or send a token exchanged for their credentials (`tokens.py`).
        Called again for every retry; what it adds to credential headers is masked."""
        return headers

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """The family's own reading of a failed answer, over the shared status mapping."""
        return failure

    def target(
        self, path: str, fields: Any, params: Mapping[str, Any] | None
    ) -> tuple[str, Mapping[str, Any] | None]:
        """Where a call goes: its path under the base URL and its query, given the body's
        fields (Azure puts the deployment named there into the path)."""
        return path, params

    def error_message(self, body: Any) -> str:
        """The backend's own message out of an error body (already parsed JSON, or text)."""
        if isinstance(body, dict):
            value = body.get(self.error_field, body)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value
            return str(value)
        return str(body)

    def secret_values(self) -> tuple[str, ...]:
        """What error text must never show, longest first (a value and its prefix both go): the
        endpoint's secrets, the credential headers sent, whole and without their auth scheme (an
        adapter may derive one: a Basic token, a signature, an exchanged token), and whatever else
        the HTTP client was given to mask."""
        values = set(self.endpoint.secrets.values())
        values.update(self.http.secrets)
        values.update(self.http.derived_secrets())
        for name, value in self.http.headers.items():
            if CREDENTIAL_HEADER.search(name) and value:
                values.update((str(value), str(value).split(" ", 1)[-1]))
        return tuple(sorted(values, key=len, reverse=True))

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
            voice = self.endpoint.options.get("voice") or self.default_voice
            speech = self.speak(model, probe.PING, voice)
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
        """`voice` "" is the family's `default_voice`."""
        raise self._unsupported("text to speech")

    def list_models(self) -> list[DiscoveredModel]:
        raise self._unsupported("model listing")


_mask_methods(Adapter)  # the shared `validate` (and the `unsupported` answers) too


def count_tokens(text: str) -> int:
    """A rough count for backends that report no usage: ~4 characters a token, at least 1."""
    return max(1, (len(text) + 3) // 4) if text else 0


def arguments_object(arguments: str) -> dict[str, Any]:
    """A tool call's arguments (JSON text, as the model wrote it) as the object protocols that
    carry them as objects want; text that is no JSON object gives {}."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def counted_usage(request: ChatRequest, text: str) -> Usage:
    """The usage of a chat whose backend reported none: its messages and answer, counted."""
    prompt = sum(count_tokens(m.text()) for m in request.messages)
    return Usage(prompt, count_tokens(text), counted=True)


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
