"""DashScope's native HTTP API (Alibaba Cloud Model Studio, Tongyi Qianwen): chat at
services/aigc/text-generation/generation, multimodal models (Qwen-VL, Qwen3.5+ with vision) and
Qwen-TTS at services/aigc/multimodal-generation/generation, embeddings at
services/embeddings/text-embedding/text-embedding.

Credentials: `api_key` (sent as Bearer). Options: `use_international_endpoint` ("true": the
`international_base_url`, Singapore), `multimodal_models` (models that take the multimodal
path, as Dify routes its vision models; a name with "-vl" and any request with images go there
too), `text_type` (embeddings: document by default), `voice` and `language_type` (speech).

Streams are SSE frames `id:` / `event:result|error` / `:HTTP_STATUS/<code>` / `data:`, sent with
`incremental_output` so each frame carries only what is new. An error can come mid-stream under
HTTP 200 as an `event:error` frame. Errors are `{"code", "message", "request_id"}`; the code says
more than the status: Arrearage (400) and Throttling.AllocationQuota (429) are quotas, the other
Throttling codes rate limits, "Model not exist." (400) an unknown model.

Qwen-TTS answers with a URL to a WAV file (on Alibaba's OSS, signed in its query) that is
fetched through the same guarded pools, without our Authorization header.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from config import errors
from providers.runtime import probe
from providers.runtime.base import (
    Adapter,
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    Message,
    Speech,
    TokenTally,
    ToolCall,
    Usage,
    Validation,
    counted_usage,
)
from providers.runtime.http import HttpClient, Response
from providers.runtime.openai_compat import function_tools, tool_call_deltas

TEXT_PATH = "services/aigc/text-generation/generation"
MULTIMODAL_PATH = "services/aigc/multimodal-generation/generation"
EMBEDDING_PATH = "services/embeddings/text-embedding/text-embedding"
MAX_EMBED_BATCH = 10  # text-embedding-v3/v4 take at most 10 texts a request
DEFAULT_VOICE = "Cherry"
# ChatRequest.parameters our body builds itself, or that are no DashScope parameter.
RESERVED = {
    "stream", "model", "messages", "incremental_output", "result_format", "stop",
    "response_format", "tools", "tool_choice",
}  # fmt: skip

AUTH_CODES = {"InvalidApiKey", "AccessDenied", "AccessDenied.Unpurchased", "Model.AccessDenied"}
QUOTA_CODES = {"Arrearage", "Throttling.AllocationQuota", "AllocationQuota.FreeTierOnly"}


def _error_kind(code: str, message: str) -> type[errors.UpstreamError] | None:
    """The error class a DashScope error code means, where it says more than the status."""
    if code in AUTH_CODES:
        return errors.UpstreamAuth
    if code in QUOTA_CODES:
        return errors.UpstreamQuota
    if code.startswith("Throttling"):
        return errors.UpstreamRateLimited
    if code == "ModelNotFound" or "model not exist" in message.lower():
        return errors.UpstreamNotFound
    return None  # InternalError.Algo.InvalidParameter (400) included: the status says it


def _status_kind(status: int) -> type[errors.UpstreamError]:
    """The shared status mapping, for errors that come as stream frames (no response of their
    own to map)."""
    if status in (401, 403):
        return errors.UpstreamAuth
    if status == 429:
        return errors.UpstreamRateLimited
    if status == 404:
        return errors.UpstreamNotFound
    if status >= 500:
        return errors.UpstreamUnavailable
    return errors.UpstreamBadRequest


def _retry_after(response: Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


# --- request building -------------------------------------------------------------------------


def _parts(message: Message) -> list[dict[str, str]]:
    """A message's content as multimodal parts: {"text": ...} and {"image": url or data URL}."""
    if isinstance(message.content, str):
        return [{"text": message.content}]
    return [
        {"image": part.image_url} if part.type == "image" else {"text": part.text}
        for part in message.content
    ]


def message_json(message: Message, names: Mapping[str, str], multimodal: bool) -> dict[str, Any]:
    """One message; `names` maps the tool calls made so far to their function names (a tool
    result names its function)."""
    data: dict[str, Any] = {
        "role": message.role,
        "content": _parts(message) if multimodal else message.text(),
    }
    if message.tool_calls:
        data["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments or "{}"},
            }
            for c in message.tool_calls
        ]
    if message.role == "tool":
        data["tool_call_id"] = message.tool_call_id
        if message.tool_call_id in names:
            data["name"] = names[message.tool_call_id]
    return data


def _response_format(request: ChatRequest) -> dict[str, Any] | None:
    """json_object / json_schema as given; Dify's "JSON" template value is json_object."""
    value = request.response_format or request.parameters.get("response_format")
    if not value:
        return None
    if not isinstance(value, Mapping):
        return {"type": "json_object"} if str(value).upper() == "JSON" else None
    return dict(value) if value.get("type") in ("json_object", "json_schema") else None


def _tool_choice(request: ChatRequest) -> Any:
    """DashScope takes "auto", "none" or one named function; "required" with one tool names it."""
    choice = request.tool_choice
    if not request.tools or not choice or choice == "auto":
        return None
    if choice == "none":
        return "none"
    if choice == "required":
        if len(request.tools) != 1:
            return None  # DashScope cannot require "some tool"; the model decides
        choice = request.tools[0].name
    return {"type": "function", "function": {"name": choice}}


# --- reply reading ----------------------------------------------------------------------------


def _text(content: Any) -> str:
    """A reply message's text: a string (text models) or parts (multimodal models)."""
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return content or ""


def _usage(data: Any, request: ChatRequest, text: str) -> Usage:
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict) and ("input_tokens" in usage or "output_tokens" in usage):
        return Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))
    return counted_usage(request, text)


def _finish(reason: Any) -> str | None:
    """The finish reason; DashScope sends the string "null" until the last frame."""
    if reason in (None, "", "null"):
        return None
    return str(reason)


class TongyiAdapter(Adapter):
    family = "tongyi"
    error_field = "message"

    def base_url(self) -> str:
        options = self.endpoint.options
        switch = options.get("international_switch") or "use_international_endpoint"
        chosen = options.get(switch, self.endpoint.credentials.get(switch, ""))
        if str(chosen).lower() == "true" and options.get("international_base_url"):
            return str(options["international_base_url"]).rstrip("/")
        return self.endpoint.base_url.rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        api_key = self.endpoint.credentials.get("api_key")
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict) and body.get("message"):
            code = body.get("code")
            return f"{body['message']} ({code})" if code else str(body["message"])
        return super().error_message(body)

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """The error code's word over the status's (see the module docstring)."""
        try:
            body = response.json()
        except ValueError:
            return failure
        code = str(body.get("code") or "") if isinstance(body, dict) else ""
        kind = _error_kind(code, failure.message)
        if kind is None or type(failure) is kind:
            return failure
        if kind is errors.UpstreamRateLimited:
            return errors.UpstreamRateLimited(failure.message, retry_after=_retry_after(response))
        return kind(failure.message)

    def _frame_error(self, status: int, body: Any) -> errors.UpstreamError:
        """An `event:error` frame (sent under HTTP 200) as the error its code and status mean."""
        body = body if isinstance(body, dict) else {"message": str(body)}
        message = f"{status}: {self.http.bounded(self.error_message(body))}"
        kind = _error_kind(str(body.get("code") or ""), message) or _status_kind(status)
        return kind(message)

    # --- chat ---------------------------------------------------------------------------------

    def multimodal(self, model: str, request: ChatRequest) -> bool:
        listed = self.endpoint.options.get("multimodal_models") or ()
        return (
            model in listed or "-vl" in model.lower() or any(m.images() for m in request.messages)
        )

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        multimodal = self.multimodal(model, request)
        names = {c.id: c.name for m in request.messages for c in m.tool_calls}
        parameters: dict[str, Any] = {"result_format": "message"}
        for name, value in request.parameters.items():
            if value is not None and name not in RESERVED:
                parameters[name] = value
        stop = list(request.stop) or request.parameters.get("stop")
        if stop:
            parameters["stop"] = [stop] if isinstance(stop, str) else list(stop)
        if request.tools:
            parameters["tools"] = function_tools(request.tools)
            choice = _tool_choice(request)
            if choice is not None:
                parameters["tool_choice"] = choice
        response_format = _response_format(request)
        if response_format:
            parameters["response_format"] = response_format
        if stream:
            parameters["incremental_output"] = True
        return {
            "model": model,
            "input": {"messages": [message_json(m, names, multimodal) for m in request.messages]},
            "parameters": parameters,
        }

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        path = MULTIMODAL_PATH if self.multimodal(model, request) else TEXT_PATH
        data = self.http.json("POST", path, json_body=self.chat_body(model, request, stream=False))
        choices = (data.get("output") or {}).get("choices") if isinstance(data, dict) else None
        if not choices:
            raise errors.UpstreamUnavailable(
                f"DashScope's reply has no choices: {self.http.bounded(json.dumps(data), 200)}"
            )
        choice = choices[0]
        message = choice.get("message") or {}
        text = _text(message.get("content"))
        calls = tuple(
            ToolCall(
                id=c.get("id") or "",
                name=(c.get("function") or {}).get("name") or "",
                arguments=(c.get("function") or {}).get("arguments") or "",
            )
            for c in message.get("tool_calls") or ()
        )
        return ChatResult(
            text=text,
            tool_calls=calls,
            finish_reason=_finish(choice.get("finish_reason")) or "stop",
            usage=_usage(data, request, text),
            model=model,
        )

    def _frames(self, response: Response) -> Iterator[tuple[str, int, Any]]:
        """(event, HTTP status the frame reports, parsed data) for each SSE frame."""
        event, status, data = "", 200, []
        for line in self.http.lines(response):
            if not line:
                if data:
                    yield event or "result", status, self.http.parse("\n".join(data))
                event, status, data = "", 200, []
            elif line.startswith(":HTTP_STATUS/"):
                status = int(line.removeprefix(":HTTP_STATUS/").strip() or 200)
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            yield event or "result", status, self.http.parse("\n".join(data))

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        path = MULTIMODAL_PATH if self.multimodal(model, request) else TEXT_PATH
        response = self.http.request(
            "POST",
            path,
            json_body=self.chat_body(model, request, stream=True),
            headers={"X-DashScope-SSE": "enable", "Accept": "text/event-stream"},
            stream=True,
        )
        produced: list[str] = []
        finished = False
        for event, status, data in self._frames(response):
            if event == "error" or status >= 400:
                raise self._frame_error(status, data)
            choices = (data.get("output") or {}).get("choices") or ()
            if not choices:
                continue
            choice = choices[0]
            message = choice.get("message") or {}
            text = _text(message.get("content"))
            deltas = tool_call_deltas(message.get("tool_calls"))
            produced.append(text)
            finish = _finish(choice.get("finish_reason"))
            if finish:
                finished = True
                usage = _usage(data, request, "".join(produced))
                yield ChatChunk(text=text, tool_calls=deltas, finish_reason=finish, usage=usage)
            elif text or deltas:
                yield ChatChunk(text=text, tool_calls=deltas)
        if not finished:
            raise errors.UpstreamConnection("DashScope's stream ended before its last frame.")

    # --- embeddings ---------------------------------------------------------------------------

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        text_type = str(self.endpoint.options.get("text_type") or "document")
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), MAX_EMBED_BATCH):
            chunk = list(texts[start : start + MAX_EMBED_BATCH])
            data = self.http.json(
                "POST",
                EMBEDDING_PATH,
                json_body={
                    "model": model,
                    "input": {"texts": chunk},
                    "parameters": {"text_type": text_type},
                },
            )
            rows = sorted(
                (data.get("output") or {}).get("embeddings") or (),
                key=lambda row: int(row["text_index"]),
            )
            if [int(row["text_index"]) for row in rows] != list(range(len(chunk))):
                raise errors.UpstreamUnavailable(
                    f"Asked DashScope for {len(chunk)} embeddings, got {len(rows)}."
                )
            vectors.extend(tuple(float(x) for x in row["embedding"]) for row in rows)
            tally.add((data.get("usage") or {}).get("total_tokens"), chunk)
        return EmbeddingResult(tuple(vectors), tally.usage)

    # --- speech -------------------------------------------------------------------------------

    def validate(self, model: str, model_type: str) -> Validation:
        if model_type == "tts":  # the shared probe's voice is OpenAI's; Qwen-TTS has its own
            speech = self.speak(model, probe.PING, "")
            return Validation({"audio_bytes": len(speech.audio)})
        return super().validate(model, model_type)

    def speak(self, model: str, text: str, voice: str, audio_format: str = "mp3") -> Speech:
        """Qwen-TTS over HTTP. It makes WAV only (24 kHz), whatever `audio_format` asks for;
        the content type says so."""
        options = self.endpoint.options
        wanted: dict[str, Any] = {
            "text": text,
            "voice": voice or options.get("voice") or DEFAULT_VOICE,
        }
        if options.get("language_type"):
            wanted["language_type"] = options["language_type"]
        data = self.http.json("POST", MULTIMODAL_PATH, json_body={"model": model, "input": wanted})
        audio = (data.get("output") or {}).get("audio") or {}
        if audio.get("data"):
            content = base64.b64decode(audio["data"])
        elif audio.get("url"):
            content = self._download(str(audio["url"]))
        else:
            raise errors.UpstreamUnavailable("DashScope's speech reply has no audio.")
        characters = (data.get("usage") or {}).get("characters")
        return Speech(
            audio=content,
            content_type="audio/wav",
            characters=int(characters) if characters is not None else len(text),
        )

    def _download(self, url: str) -> bytes:
        """The audio file at `url`: through the guarded pools, without the API key (the URL is
        signed in its query, and OSS refuses a second credential)."""
        client = HttpClient(
            base_url="",
            headers={},
            pool=self.http.pool,
            timeouts=self.endpoint.timeouts,
            retry=self.endpoint.retry,
            secrets=self.http.secrets,
            error_message=str,  # cut to length after masking, by the client
        )
        return client.request("GET", url).content
