"""The OpenAI-compatible gateway under /v1: the workspace's models, called the way the `openai`
SDK calls OpenAI, answered in the request (no queue), through the same routed call path as
invocation jobs (load balancing, cool-downs, fallbacks, quotas, key limits and budgets).

It is a plain WSGI application in front of Django's (`mount`): /v1 requests skip Django's
middleware, URL resolver and DRF, which would cost several times the gateway's own work per call.
What they would have given is done here: the Host header is checked against ALLOWED_HOSTS, the
API key (Bearer, or `api-key` as Azure clients send it) against the workspace's keys (cached in
memory under a version in Redis, as for /api/v1), and every failure is OpenAI's error JSON,
never an HTML page. Usage rows are written after the answer by `recorder`.

Endpoints: POST /v1/chat/completions and /v1/completions (streaming or not), /v1/embeddings,
/v1/rerank (Cohere's and Jina's shape), /v1/audio/speech, /v1/audio/transcriptions (multipart);
GET /v1/models and /v1/models/{provider/model}.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.http.request import split_domain_port, validate_host

from config import errors, parsers, shared_state, text_input
from invocations import codec, limits, openai_wire
from invocations.models import Invocation, Source
from invocations.recorder import recorder
from providers import balancing, routing, selectors
from providers.models import JobStatus
from providers.runtime import base as rt
from providers.runtime.openai_compat import OpenAICompatAdapter
from tenants import services as tenant_services
from tenants import throttling
from tenants.models import ApiKey
from tenants.principals import Perm, Principal

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
JSON_HEADERS = [("Content-Type", "application/json")]
STATUS_TEXT = {
    200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized", 403: "403 Forbidden",
    404: "404 Not Found", 405: "405 Method Not Allowed", 409: "409 Conflict",
    413: "413 Content Too Large", 429: "429 Too Many Requests", 500: "500 Internal Server Error",
    502: "502 Bad Gateway", 503: "503 Service Unavailable", 504: "504 Gateway Timeout",
}  # fmt: skip


class GatewayError(errors.ServiceError):
    """A refusal of the gateway's own, with OpenAI's error type."""

    def __init__(
        self, status: int, message: str, *, kind: str, code: str | None = None, allow: str = ""
    ) -> None:
        super().__init__(message, code=code)
        self.http_status = status
        self.kind = kind
        self.allow = allow  # for a 405: the method the path takes


# --- Errors, in OpenAI's shape ------------------------------------------------------------------

# How a backend's failure reaches the caller: (status, OpenAI error type).
UPSTREAM_STATUS: tuple[tuple[type[errors.ServiceError], int, str], ...] = (
    (errors.UpstreamRateLimited, 429, "rate_limit_error"),
    (errors.UpstreamQuota, 429, "insufficient_quota"),
    (errors.UpstreamTimeout, 504, "timeout"),
    (errors.UpstreamConnection, 503, "api_connection_error"),
    (errors.UpstreamBadRequest, 400, "invalid_request_error"),
    (errors.UpstreamNotFound, 404, "invalid_request_error"),
    (errors.UpstreamError, 502, "api_error"),
)


def error_body(exc: errors.ServiceError) -> tuple[int, dict[str, Any]]:
    """(status, OpenAI error JSON) for a ServiceError."""
    param = None
    if isinstance(exc, GatewayError):
        status, kind = exc.http_status, exc.kind
    elif isinstance(exc, errors.InvalidInput):
        status, kind = 400, "invalid_request_error"
        param = next(iter(exc.fields), None)
    elif isinstance(exc, errors.RateLimited):
        status = 429
        kind = "insufficient_quota" if exc.code == "budget_exhausted" else "rate_limit_error"
    elif isinstance(exc, errors.NotFound):
        status, kind, param = 404, "invalid_request_error", "model"
    elif isinstance(exc, errors.Conflict):
        status, kind, param = 409, "invalid_request_error", "model"
    elif isinstance(exc, errors.PermissionDenied):
        status, kind = 403, "permission_error"
    else:
        status, kind = next(
            ((s, k) for cls, s, k in UPSTREAM_STATUS if isinstance(exc, cls)), (500, "api_error")
        )
    code = "model_not_found" if isinstance(exc, errors.NotFound) else exc.code
    error = {"message": exc.message, "type": kind, "param": param, "code": code}
    return status, {"error": error}


def _respond_error(exc: errors.ServiceError, start_response: StartResponse) -> list[bytes]:
    status, body = error_body(exc)
    headers = list(JSON_HEADERS)
    if isinstance(exc, GatewayError) and exc.allow:
        headers.append(("Allow", exc.allow))
    retry_after = getattr(exc, "retry_after", None)
    if status == 429 and retry_after:
        headers.append(("Retry-After", str(max(1, math.ceil(retry_after)))))
    return _respond(status, body, start_response, headers)


def _respond(
    status: int,
    body: dict[str, Any],
    start_response: StartResponse,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(
        STATUS_TEXT.get(status, f"{status} Error"),
        [*(headers or JSON_HEADERS), ("Content-Length", str(len(data)))],
    )
    return [data]


# --- Requests -----------------------------------------------------------------------------------


class Call:
    """One gateway request: who asks, what for, and what gets recorded."""

    __slots__ = ("api_key", "environ", "hold", "principal", "started", "started_at")

    def __init__(self, environ: dict[str, Any], principal: Principal) -> None:
        self.environ = environ
        self.principal = principal
        self.api_key: ApiKey = principal.api_key  # type: ignore[assignment]
        self.hold: limits.TokenHold | None = None
        self.started = time.perf_counter()
        self.started_at = time.time()

    def admit(self, estimate: Callable[[], int] = lambda: 0) -> None:
        """The key's limits and budgets (429 when one is reached); tokens held meanwhile."""
        self.hold = limits.admit(self.principal.tenant, self.api_key, estimate)

    @property
    def tenant_id(self) -> int:
        return self.principal.tenant.pk

    def body(self) -> dict[str, Any]:
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.GATEWAY_MAX_BODY:
            raise GatewayError(413, "The request body is too large.", kind="invalid_request_error")
        stream = self.environ["wsgi.input"]
        data = stream.read(length) if length else stream.read(settings.GATEWAY_MAX_BODY + 1)
        if len(data) > settings.GATEWAY_MAX_BODY:
            raise GatewayError(413, "The request body is too large.", kind="invalid_request_error")
        return openai_wire.parse_json(data)

    def record(
        self,
        *,
        model_type: str,
        provider: str,
        model: str,
        endpoint: str,
        served: routing.Served[Any] | None = None,
        usage: rt.Usage | None = None,
        failure: errors.ServiceError | None = None,
        ttft_ms: int | None = None,
        stream: bool = False,
        characters: int | None = None,
        audio_seconds: float | None = None,
    ) -> None:
        """Queue this call's usage row (written by the recorder thread)."""
        finished = time.time()
        row = Invocation(
            tenant_id=self.tenant_id,
            api_key_id=self.api_key.pk,
            source=Source.GATEWAY,
            model_type=model_type,
            provider=provider,
            model=model,
            request={"endpoint": endpoint, "stream": stream},
            status=JobStatus.FAILED if failure else JobStatus.SUCCEEDED,
            latency_ms=int((time.perf_counter() - self.started) * 1000),
            ttft_ms=ttft_ms,
            attempts=1,
            created_at=_moment(self.started_at),
            characters=characters,
            audio_seconds=audio_seconds,
            started_at=_moment(self.started_at),
            finished_at=_moment(finished),
        )
        if failure is not None:
            row.error_code, row.error_message = failure.code, failure.message[:2000]
        if usage is not None:
            row.prompt_tokens, row.completion_tokens = usage.prompt_tokens, usage.completion_tokens
            row.usage_counted = usage.counted
        if served is not None:
            entry, answered = served.entry, served.route
            row.credential_id, row.custom_model_id = entry.credential_id, entry.custom_model_id
            row.lb_entry_id, row.served_by = entry.lb_entry_id, entry.label[:100]
            row.answered_provider, row.answered_model = answered.provider, answered.model
            row.cost, row.currency = routing.cost(
                answered,
                {
                    "prompt_tokens": row.prompt_tokens,
                    "completion_tokens": row.completion_tokens,
                    "characters": characters,
                    "audio_seconds": audio_seconds,
                },
            )
        recorder.add(row, self.hold)


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _raw_key(environ: dict[str, Any]) -> str:
    scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return environ.get("HTTP_API_KEY", "").strip()


def authenticate(environ: dict[str, Any]) -> Principal:
    raw = _raw_key(environ)
    if not raw:
        raise GatewayError(
            401,
            "You didn't provide an API key: send Authorization: Bearer <key> (or api-key).",
            kind="invalid_request_error",
            code="missing_api_key",
        )
    address = throttling.client_address(environ)
    throttling.api_key_check(address)
    api_key = tenant_services.api_key_authenticate(raw_key=raw)
    if api_key is None:
        throttling.api_key_failed(address)
        raise GatewayError(
            401, "Unknown or revoked API key.", kind="invalid_request_error", code="invalid_api_key"
        )
    principal = Principal.for_api_key(api_key)
    if not principal.can(Perm.INVOKE):
        raise GatewayError(
            403,
            "This API key may not call models: it lacks the invoke scope.",
            kind="permission_error",
            code="insufficient_scope",
        )
    return principal


def _check_host(environ: dict[str, Any]) -> None:
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, allowed):
        raise GatewayError(
            400, "Invalid Host header.", kind="invalid_request_error", code="disallowed_host"
        )


def resolve(principal: Principal, name: str, model_type: str) -> tuple[str, str]:
    """`provider/model`, a workspace alias, or `default` (the workspace's default model of the
    type)."""
    known = routing.names(principal.tenant)
    if name == "default":
        found = known.defaults.get(model_type)
        if found is None:
            raise errors.Conflict(
                f"This workspace has no usable {model_type} model to use as default.",
                code="no_model",
            )
        return found
    provider, slash, model = name.partition("/")
    if slash and model and provider in selectors.catalog():
        return provider, model
    target = None if slash else known.aliases.get(name)
    if target is not None:
        provider, kind, model = target
        if kind != model_type:
            raise errors.NotFound(
                f"{name!r} is a {kind} model; this endpoint calls {model_type} models.",
                code="model_not_found",
            )
        return provider, model
    raise errors.NotFound(
        f"The model {name!r} does not exist: name it provider/model or by its alias (see "
        "GET /v1/models), or default.",
        code="model_not_found",
    )


def _openai_shaped(adapter: rt.Adapter) -> bool:
    return isinstance(adapter, OpenAICompatAdapter)


# --- Chat ---------------------------------------------------------------------------------------


def _answer_once(
    adapter: rt.Adapter, model: str, request: rt.ChatRequest
) -> Iterator[rt.ChatChunk]:
    """A model whose protocol has no streaming answers in one piece, sent as one chunk."""
    result = adapter.chat(model, request)
    calls = tuple(
        rt.ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(result.tool_calls)
    )
    return iter(
        (
            rt.ChatChunk(result.text, calls, result.finish_reason),
            rt.ChatChunk(usage=result.usage),
        )
    )


def chat_completions(call: Call, start_response: StartResponse) -> Iterable[bytes]:
    return _chat(call, start_response, text=False)


def completions(call: Call, start_response: StartResponse) -> Iterable[bytes]:
    """/v1/completions: the prompt goes to the model as one user message, or as a prompt to a
    model set up in completion mode."""
    return _chat(call, start_response, text=True)


def _chat(call: Call, start_response: StartResponse, *, text: bool) -> Iterable[bytes]:
    wanted = openai_wire.ChatCall(call.body(), prompt_only=text)
    endpoint = "completions" if text else "chat/completions"
    provider, model = resolve(call.principal, wanted.model, "llm")
    route = routing.route(
        tenant_id=call.tenant_id, provider=provider, model_type="llm", model=model
    )
    estimate = lambda: codec.estimate_chat(wanted.request)  # noqa: E731
    call.admit(estimate)
    record = {"model_type": "llm", "provider": provider, "model": model, "endpoint": endpoint}
    if not wanted.stream:
        try:
            served = routing.call(
                route,
                lambda adapter, name: adapter.chat(
                    name, wanted.for_family(_openai_shaped(adapter))
                ),
                routing.Usage(estimate, lambda result: result.usage.total_tokens),
            )
        except errors.ServiceError as exc:
            call.record(**record, failure=exc)
            raise
        result = served.value
        call.record(**record, served=served, usage=result.usage)
        answered = f"{served.route.provider}/{served.route.model}"
        shape = openai_wire.text_completion if text else openai_wire.chat_completion
        return _respond(200, shape(result, answered), start_response)

    def open_stream(adapter: rt.Adapter, name: str) -> Iterator[rt.ChatChunk]:
        request = wanted.for_family(_openai_shaped(adapter))
        try:
            return routing.primed(adapter.stream(name, request))
        except errors.InvalidInput as exc:
            if exc.code != "unsupported":
                raise
            return _answer_once(adapter, name, request)

    try:
        served = routing.call(
            route,
            open_stream,
            routing.Usage(
                estimate,
                lambda chunk: chunk.usage.total_tokens if chunk.usage else 0,
                streamed=True,
            ),
        )
    except errors.ServiceError as exc:
        call.record(**record, failure=exc, stream=True)
        raise
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),  # a proxy in front must not hold chunks back
        ],
    )
    answered = f"{served.route.provider}/{served.route.model}"
    writer = openai_wire.ChunkWriter(answered, wanted.include_usage, text=text)
    return _events(call, record, served, writer)


def _events(
    call: Call,
    record: dict[str, str],
    served: routing.Served[Iterator[rt.ChatChunk]],
    writer: openai_wire.ChunkWriter,
) -> Iterator[bytes]:
    """The SSE body. A failure midway ends the stream with an error event; a client that hangs
    up closes this generator (the server's write fails), which closes the backend's response."""
    ttft: int | None = None
    failure: errors.ServiceError | None = None
    try:
        # The role chunk goes out with the first chunk (already fetched: the stream is primed),
        # one write instead of two on the way to the first token.
        pending = writer.start()
        for chunk in served.value:
            if ttft is None and (chunk.text or chunk.tool_calls):
                ttft = int((time.perf_counter() - call.started) * 1000)
            out = writer.chunk(chunk)
            if out:
                yield pending + out
                pending = b""
        yield pending + writer.end()
    except errors.ServiceError as exc:
        failure = exc
        yield writer.error(error_body(exc)[1])
    except Exception:  # the stream's edge: the client gets an error event, the log the rest
        logger.exception("Gateway stream failed")
        failure = errors.UpstreamUnavailable("The stream failed inside the gateway.")
        yield writer.error(error_body(failure)[1])
    finally:
        routing.close(served.value)
        call.record(
            **record,
            served=served,
            usage=writer.usage or rt.Usage(),
            failure=failure,
            ttft_ms=ttft,
            stream=True,
        )


# --- Embeddings ---------------------------------------------------------------------------------


def embeddings(call: Call, start_response: StartResponse) -> Iterable[bytes]:
    wanted = openai_wire.EmbeddingCall(call.body())
    provider, model = resolve(call.principal, wanted.model, "text-embedding")
    route = routing.route(
        tenant_id=call.tenant_id, provider=provider, model_type="text-embedding", model=model
    )
    call.admit(lambda: codec.estimate("text-embedding", {"texts": wanted.texts}))
    record = {"model_type": "text-embedding", "provider": provider, "model": model}
    try:
        served = routing.call(
            route,
            lambda adapter, name: adapter.embed(name, wanted.texts),
            routing.Usage(
                lambda: codec.estimate("text-embedding", {"texts": wanted.texts}),
                lambda result: result.usage.total_tokens,
            ),
        )
    except errors.ServiceError as exc:
        call.record(**record, endpoint="embeddings", failure=exc)
        raise
    call.record(**record, endpoint="embeddings", served=served, usage=served.value.usage)
    answered = f"{served.route.provider}/{served.route.model}"
    return _respond(
        200, openai_wire.embeddings(served.value, answered, wanted.base64), start_response
    )


# --- Rerank and audio ---------------------------------------------------------------------------


def rerank(call: Call, start_response: StartResponse) -> Iterable[bytes]:
    wanted = openai_wire.RerankCall(call.body())
    provider, model = resolve(call.principal, wanted.model, "rerank")
    route = routing.route(
        tenant_id=call.tenant_id, provider=provider, model_type="rerank", model=model
    )
    record = {"model_type": "rerank", "provider": provider, "model": model, "endpoint": "rerank"}
    data = {"query": wanted.query, "documents": wanted.documents}
    call.admit(lambda: codec.estimate("rerank", data))
    try:
        served = routing.call(
            route,
            lambda adapter, name: adapter.rerank(
                name, wanted.query, wanted.documents, wanted.top_n
            ),
            routing.Usage(
                lambda: codec.estimate("rerank", data), lambda result: result.usage.total_tokens
            ),
        )
    except errors.ServiceError as exc:
        call.record(**record, failure=exc)
        raise
    call.record(**record, served=served, usage=served.value.usage)
    answered = f"{served.route.provider}/{served.route.model}"
    return _respond(200, openai_wire.reranked(served.value, wanted, answered), start_response)


def speech(call: Call, start_response: StartResponse) -> Iterable[bytes]:
    wanted = openai_wire.SpeechCall(call.body())
    provider, model = resolve(call.principal, wanted.model, "tts")
    route = routing.route(
        tenant_id=call.tenant_id, provider=provider, model_type="tts", model=model
    )
    call.admit()
    record = {"model_type": "tts", "provider": provider, "model": model, "endpoint": "audio/speech"}
    try:
        served = routing.call(
            route,
            lambda adapter, name: adapter.speak(name, wanted.text, wanted.voice, wanted.format),
        )
    except errors.ServiceError as exc:
        call.record(**record, failure=exc)
        raise
    spoken = served.value
    call.record(**record, served=served, characters=spoken.characters)
    # The backend's word for what the bytes are is kept only when it is audio: never served as a
    # type a browser would run.
    kind = spoken.content_type.split(";", 1)[0].strip().lower()
    if not kind.startswith("audio/"):
        kind = openai_wire.SPEECH_FORMATS[wanted.format]
    start_response(
        "200 OK",
        [
            ("Content-Type", kind),
            ("Content-Length", str(len(spoken.audio))),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [spoken.audio]


def _multipart(call: Call) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    environ = call.environ
    if not environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        raise openai_wire.invalid("file", "Send multipart/form-data with the audio as 'file'.")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.GATEWAY_MAX_BODY:
        raise GatewayError(413, "The request body is too large.", kind="invalid_request_error")
    handlers = [MemoryFileUploadHandler(), TemporaryFileUploadHandler()]
    try:
        fields, files = MultiPartParser(environ, environ["wsgi.input"], handlers).parse()
    except RequestDataTooBig as exc:  # the fields besides the file past DATA_UPLOAD_MAX_MEMORY_SIZE
        raise GatewayError(
            413, "The form fields besides the file are too large.", kind="invalid_request_error"
        ) from exc
    except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent, ValueError) as exc:
        raise openai_wire.invalid("file", f"The multipart body is not valid: {exc}") from exc
    for name, value in fields.items():
        if problem := parsers.text_problem(name) or parsers.text_problem(value):
            raise openai_wire.invalid(name[:64], f"The form field {name[:64]!r} {problem}.")
    found = {}
    for name, upload in files.items():
        with upload:
            if upload.size > codec.MAX_AUDIO_BYTES:
                raise GatewayError(
                    413,
                    f"The file is larger than 25 MB ({codec.MAX_AUDIO_BYTES} bytes).",
                    kind="invalid_request_error",
                )
            found[name] = (upload.name or "audio", upload.read())
    return fields.dict(), found


def transcriptions(call: Call, start_response: StartResponse) -> Iterable[bytes]:
    wanted = openai_wire.TranscriptionCall(*_multipart(call))
    provider, model = resolve(call.principal, wanted.model, "speech2text")
    route = routing.route(
        tenant_id=call.tenant_id, provider=provider, model_type="speech2text", model=model
    )
    call.admit()
    record = {
        "model_type": "speech2text", "provider": provider, "model": model,
        "endpoint": "audio/transcriptions",
    }  # fmt: skip
    try:
        served = routing.call(
            route,
            lambda adapter, name: adapter.transcribe(
                name, wanted.audio, wanted.filename, wanted.language
            ),
        )
    except errors.ServiceError as exc:
        call.record(**record, failure=exc)
        raise
    heard = served.value
    call.record(**record, served=served, audio_seconds=heard.duration_seconds)
    if wanted.format == "text":
        data = heard.text.encode()
        start_response(
            "200 OK",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))],
        )
        return [data]
    body: dict[str, Any] = {"text": heard.text}
    if wanted.format == "verbose_json":
        body = {
            "task": "transcribe",
            "language": wanted.language or "",
            "duration": heard.duration_seconds,
            "text": heard.text,
        }
    return _respond(200, body, start_response)


# --- Models -------------------------------------------------------------------------------------


def _model_json(view: selectors.ModelView) -> dict[str, Any]:
    return {
        "id": f"{view.provider}/{view.model}",
        "object": "model",
        "created": 0,
        "owned_by": view.provider,
        "model_type": view.model_type,
    }


def _listed(call: Call) -> list[dict[str, Any]]:
    """Each usable model by provider/model, and again by its alias when it has one."""
    listed = []
    for view in selectors.available_models(tenant=call.principal.tenant):
        listed.append(_model_json(view))
        if view.alias:
            listed.append({**_model_json(view), "id": view.alias})
    return listed


def list_models(call: Call, start_response: StartResponse) -> Iterable[bytes]:
    return _respond(200, {"object": "list", "data": _listed(call)}, start_response)


def get_model(call: Call, start_response: StartResponse, name: str) -> Iterable[bytes]:
    for model in _listed(call):
        if model["id"] == name:
            return _respond(200, model, start_response)
    raise errors.NotFound(f"The model {name!r} does not exist.", code="model_not_found")


# --- The WSGI application -----------------------------------------------------------------------

POSTS: dict[str, Callable[[Call, StartResponse], Iterable[bytes]]] = {
    "/v1/chat/completions": chat_completions,
    "/v1/completions": completions,
    "/v1/embeddings": embeddings,
    "/v1/rerank": rerank,
    "/v1/audio/speech": speech,
    "/v1/audio/transcriptions": transcriptions,
}
MODELS = "/v1/models"


class Gateway:
    """/v1 here, everything else to Django."""

    def __init__(self, django_app: Callable[..., Iterable[bytes]]) -> None:
        self.django_app = django_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != "/v1" and not path.startswith("/v1/"):
            return self.django_app(environ, start_response)
        try:
            return self.serve(environ, start_response, path.rstrip("/"))
        except errors.ServiceError as exc:
            return _respond_error(exc, start_response)
        except Exception:  # the gateway's edge: OpenAI's error JSON, never a traceback page
            logger.exception("Gateway request failed")
            failure = GatewayError(500, "The gateway failed; this is logged.", kind="api_error")
            return _respond_error(failure, start_response)

    def serve(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Any:
        _check_host(environ)
        problem = text_input.query_problem(environ.get("QUERY_STRING", ""))
        if problem:
            raise GatewayError(400, problem, kind="invalid_request_error", code="invalid_query")
        method = environ.get("REQUEST_METHOD", "GET")
        handler = POSTS.get(path)
        is_models = path == MODELS or path.startswith(MODELS + "/")
        if handler is None and not is_models:
            raise GatewayError(
                404, f"Unknown endpoint: {method} {path}.", kind="invalid_request_error",
                code="unknown_url",
            )  # fmt: skip
        wanted = "POST" if handler is not None else "GET"
        if method != wanted:
            raise GatewayError(
                405, f"{path} takes {wanted}.", kind="invalid_request_error",
                code="method_not_allowed", allow=wanted,
            )  # fmt: skip
        # The API keys' and (for a key seen before) its workspace's cache versions, and the
        # address's failed keys, in one read.
        versions = [
            tenant_services.KEYS_VERSION,
            throttling.api_key_failures_key(throttling.client_address(environ)),
        ]
        tenant_id = tenant_services.known_tenant_id(_raw_key(environ))
        if tenant_id is not None:
            versions.append(balancing.version_key(tenant_id))
        with shared_state.read_together(versions):
            call = Call(environ, authenticate(environ))
            if handler is not None:
                return handler(call, start_response)
            if path == MODELS:
                return list_models(call, start_response)
            return get_model(call, start_response, path[len(MODELS) + 1 :])


def mount(django_app: Callable[..., Iterable[bytes]]) -> Gateway:
    return Gateway(django_app)
