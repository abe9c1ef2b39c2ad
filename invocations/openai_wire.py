"""OpenAI's wire shapes for the /v1 gateway: requests checked and turned into runtime dataclasses,
results and stream chunks turned into OpenAI's JSON.

Checked by hand, not by DRF serializers: this is the gateway's hot path, and a serializer's
field copying costs more than the rest of a call's own work. Every refusal is an InvalidInput
naming the offending parameter (`param` in OpenAI's error JSON), as OpenAI's API does.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import time
import uuid
from collections.abc import Mapping
from typing import Any

from config import errors, parsers
from providers.runtime import base as rt

MAX_STOPS = 4
TOOL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
ROLES = {"system", "developer", "user", "assistant", "tool"}
# Sampling settings every family takes (the adapters translate them); the rest only an
# OpenAI-shaped backend understands, and other families are refused them.
COMMON_PARAMETERS = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
OPENAI_ONLY = ("seed", "logit_bias", "logprobs", "top_logprobs", "parallel_tool_calls", "user")
CHAT_FIELDS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "tools", "tool_choice",
        "response_format", "stop", "max_tokens", "max_completion_tokens", "n",
        "reasoning_effort", "metadata", "store", "service_tier", "modalities",
        *COMMON_PARAMETERS, *OPENAI_ONLY,
    }
)  # fmt: skip


COMPLETION_FIELDS = frozenset(
    {
        "model", "prompt", "stream", "stream_options", "stop", "max_tokens", "n",
        *COMMON_PARAMETERS, "seed", "logit_bias", "user",
    }
)  # fmt: skip


def invalid(param: str, message: str) -> errors.InvalidInput:
    return errors.InvalidInput(message, fields={param: [message]})


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, as strict as the API's (config/parsers.py)."""
    try:
        data = parsers.loads(body.decode("utf-8"))
    except ValueError as exc:
        raise errors.InvalidInput(
            f"The body is not valid JSON: {str(exc)[:200]}", code="parse_error"
        ) from exc
    if not isinstance(data, dict):
        raise errors.InvalidInput("The body must be a JSON object.", code="parse_error")
    return data


def _string(data: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise invalid(name, f"'{name}' is required.")
        return None
    if not isinstance(value, str):
        raise invalid(name, f"'{name}' must be a string.")
    return value


def _number(data: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(name, f"'{name}' must be a number.")
    if not low <= value <= high:
        raise invalid(name, f"'{name}' must be between {low:g} and {high:g}.")
    return value


def _integer(data: Mapping[str, Any], name: str, low: int, high: int = 2**31 - 1) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, f"'{name}' must be an integer.")
    if not low <= value <= high:
        raise invalid(name, f"'{name}' must be from {low} to {high}.")
    return value


def model_name(data: Mapping[str, Any]) -> str:
    name = _string(data, "model", required=True) or ""
    if not name.strip() or len(name) > 320:
        raise invalid("model", "'model' must name a model: provider/model, an alias or default.")
    return name.strip()


# --- Chat -------------------------------------------------------------------------------------


def _content(value: Any, where: str) -> str | tuple[rt.ContentPart, ...]:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise invalid(where, "Content is text or a list of content parts.")
    parts = []
    for index, part in enumerate(value):
        at = f"{where}.{index}"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(rt.ContentPart("text", text=part["text"]))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:")):
                raise invalid(at, "An image_url part needs image_url.url (http(s) or data:).")
            parts.append(rt.ContentPart("image", image_url=url))
        else:
            raise invalid(at, f"Content parts of type {kind!r} are not supported.")
    return tuple(parts)


def _tool_calls(value: Any, where: str) -> tuple[rt.ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid(where, "tool_calls must be a list.")
    calls = []
    for index, call in enumerate(value):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise invalid(f"{where}.{index}", "A tool call needs function.name.")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            raise invalid(f"{where}.{index}.function.arguments", "Arguments are a JSON string.")
        calls.append(rt.ToolCall(str(call.get("id") or ""), function["name"], arguments))
    return tuple(calls)


def _messages(value: Any) -> tuple[rt.Message, ...]:
    if not isinstance(value, list) or not value:
        raise invalid("messages", "'messages' must be a non-empty list.")
    messages = []
    for index, message in enumerate(value):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise invalid(where, "Each message is an object.")
        role = message.get("role")
        if role not in ROLES:
            raise invalid(f"{where}.role", f"Unknown role {role!r}.")
        tool_call_id = message.get("tool_call_id")
        if role == "tool" and (not isinstance(tool_call_id, str) or not tool_call_id):
            raise invalid(f"{where}.tool_call_id", "A tool message needs tool_call_id.")
        messages.append(
            rt.Message(
                "system" if role == "developer" else role,
                _content(message.get("content"), f"{where}.content"),
                _tool_calls(message.get("tool_calls"), f"{where}.tool_calls")
                if role == "assistant"
                else (),
                tool_call_id if role == "tool" else "",
            )
        )
    return tuple(messages)


def _tools(value: Any) -> tuple[rt.Tool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid("tools", "'tools' must be a list.")
    tools = []
    for index, tool in enumerate(value):
        where = f"tools.{index}"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not function:
            raise invalid(where, "Each tool is {type: function, function: {name, ...}}.")
        name = function.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 64 or set(name) - TOOL_NAME_CHARS:
            raise invalid(f"{where}.function.name", "Tool names are 1-64 of a-z A-Z 0-9 _ -.")
        parameters = function.get("parameters", {})
        if not isinstance(parameters, dict):
            raise invalid(f"{where}.function.parameters", "Parameters are a JSON Schema object.")
        description = function.get("description", "")
        if not isinstance(description, str):
            raise invalid(f"{where}.function.description", "The description is a string.")
        tools.append(rt.Tool(name, description, parameters))
    return tuple(tools)


def _tool_choice(value: Any, tools: tuple[rt.Tool, ...]) -> str | None:
    if value is None:
        return None
    if value in ("none", "auto", "required"):
        return value
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise invalid("tool_choice", "tool_choice is none, auto, required or a function.")
    if name not in {t.name for t in tools}:
        raise invalid("tool_choice", f"tool_choice names {name!r}, which is not in tools.")
    return name


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise invalid("stop", "'stop' is a string or a list of strings.")
    if len(stops) > MAX_STOPS:
        raise invalid("stop", f"At most {MAX_STOPS} stop sequences.")
    return tuple(stops)


def _response_format(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise invalid(
            "response_format", "response_format.type is text, json_object or json_schema."
        )
    if kind == "json_schema" and not isinstance(value.get("json_schema"), dict):
        raise invalid("response_format.json_schema", "json_schema needs a schema object.")
    return None if kind == "text" else value


class ChatCall:
    """A checked POST /v1/chat/completions (or, with `prompt_only`, /v1/completions: the prompt
    becomes one user message)."""

    __slots__ = ("include_usage", "model", "openai_only", "request", "stream")

    def __init__(self, data: Mapping[str, Any], *, prompt_only: bool = False) -> None:
        known = COMPLETION_FIELDS if prompt_only else CHAT_FIELDS
        unknown = sorted(set(data) - known)
        if unknown:
            raise invalid(unknown[0], f"Unrecognized request argument supplied: {unknown[0]}")
        self.model = model_name(data)
        self.stream = _flag(data, "stream")
        options = data.get("stream_options")
        if options is not None and (not isinstance(options, dict) or not self.stream):
            raise invalid("stream_options", "stream_options is an object, given with stream.")
        self.include_usage = bool(options and options.get("include_usage"))
        if _integer(data, "n", 1, 128) not in (None, 1):
            raise invalid("n", "Only n=1 is supported: ask again for another answer.")
        parameters: dict[str, Any] = {}
        for name, (low, high) in COMMON_PARAMETERS.items():
            value = _number(data, name, low, high)
            if value is not None:
                parameters[name] = value
        most = _integer(data, "max_completion_tokens", 1) or _integer(data, "max_tokens", 1)
        if most is not None:
            parameters["max_tokens"] = most
        # Only an OpenAI-shaped backend takes these; `for_family` decides per call.
        self.openai_only = {
            name: data[name]
            for name in (*OPENAI_ONLY, "max_completion_tokens", "reasoning_effort")
            if data.get(name) is not None
        }
        _integer(data, "seed", -(2**63), 2**63 - 1)
        if prompt_only:
            self.request = rt.ChatRequest(
                messages=(rt.Message("user", _prompt(data.get("prompt"))),),
                parameters=parameters,
                stop=_stops(data.get("stop")),
            )
            return
        tools = _tools(data.get("tools"))
        self.request = rt.ChatRequest(
            messages=_messages(data.get("messages")),
            parameters=parameters,
            tools=tools,
            tool_choice=_tool_choice(data.get("tool_choice"), tools),
            response_format=_response_format(data.get("response_format")),
            stop=_stops(data.get("stop")),
        )

    def for_family(self, openai_shaped: bool) -> rt.ChatRequest:
        """The request as this backend should get it: an OpenAI-shaped one gets the settings
        only OpenAI has (seed, logit_bias, max_completion_tokens as given, ...)."""
        if not self.openai_only:
            return self.request
        if not openai_shaped:
            name = next(iter(self.openai_only))
            if name in ("max_completion_tokens", "user"):
                return self.request  # the limit is already max_tokens; `user` is a label
            raise invalid(name, f"'{name}' is not supported by this model's provider.")
        parameters = dict(self.request.parameters)
        if "max_completion_tokens" in self.openai_only:
            parameters.pop("max_tokens", None)
        parameters.update(self.openai_only)
        return rt.ChatRequest(
            messages=self.request.messages,
            parameters=parameters,
            tools=self.request.tools,
            tool_choice=self.request.tool_choice,
            response_format=self.request.response_format,
            stop=self.request.stop,
        )


def _prompt(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str) or not value:
        raise invalid("prompt", "'prompt' is one non-empty string (batches are not supported).")
    return value


def _flag(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(name, f"'{name}' must be true or false.")
    return value


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _tool_calls_json(calls: tuple[rt.ToolCall, ...]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id or f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for c in calls
    ]


def usage_json(usage: rt.Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def finish_reason(result_reason: str | None, has_tool_calls: bool) -> str:
    if has_tool_calls:
        return "tool_calls"
    return result_reason if result_reason in ("stop", "length", "content_filter") else "stop"


def chat_completion(result: rt.ChatResult, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": result.text if result.text or not result.tool_calls else None,
        "refusal": None,
    }
    if result.tool_calls:
        message["tool_calls"] = _tool_calls_json(result.tool_calls)
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(result.finish_reason, bool(result.tool_calls)),
            }
        ],
        "usage": usage_json(result.usage),
    }


def text_completion(result: rt.ChatResult, model: str) -> dict[str, Any]:
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "text": result.text,
                "index": 0,
                "logprobs": None,
                "finish_reason": finish_reason(result.finish_reason, False),
            }
        ],
        "usage": usage_json(result.usage),
    }


class ChunkWriter:
    """Runtime chunks -> OpenAI's chat.completion.chunk events (SSE lines, bytes); with
    `text=True`, /v1/completions' text_completion events."""

    def __init__(self, model: str, include_usage: bool, *, text: bool = False) -> None:
        self.text = text
        self.head = {
            "id": f"cmpl-{uuid.uuid4().hex}" if text else completion_id(),
            "object": "text_completion" if text else "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        self.include_usage = include_usage
        self.usage: rt.Usage | None = None
        self.tool_calls_seen = False
        self.finished = False

    def _event(self, body: dict[str, Any]) -> bytes:
        return (
            b"data: " + json.dumps({**self.head, **body}, separators=(",", ":")).encode() + b"\n\n"
        )

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        if self.text:
            choice = {"text": delta.get("content", ""), "index": 0, "logprobs": None}
            return self._event({"choices": [{**choice, "finish_reason": finish}]})
        return self._event(
            {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        )

    def start(self) -> bytes:
        if self.text:
            return b""
        return self._choice({"role": "assistant", "content": "", "refusal": None})

    def chunk(self, chunk: rt.ChatChunk) -> bytes:
        if chunk.usage is not None:
            self.usage = chunk.usage
        out = b""
        delta: dict[str, Any] = {}
        if chunk.text:
            delta["content"] = chunk.text
        if chunk.tool_calls:
            self.tool_calls_seen = True
            delta["tool_calls"] = [
                {
                    "index": c.index,
                    **({"id": c.id, "type": "function"} if c.id else {}),
                    "function": {
                        **({"name": c.name} if c.name else {}),
                        "arguments": c.arguments,
                    },
                }
                for c in chunk.tool_calls
            ]
        if delta:
            out += self._choice(delta)
        if chunk.finish_reason and not self.finished:
            self.finished = True
            out += self._choice({}, finish_reason(chunk.finish_reason, self.tool_calls_seen))
        return out

    def end(self) -> bytes:
        out = b""
        if not self.finished:
            self.finished = True
            out += self._choice({}, finish_reason("stop", self.tool_calls_seen))
        if self.include_usage:
            out += self._event({"choices": [], "usage": usage_json(self.usage or rt.Usage())})
        return out + b"data: [DONE]\n\n"

    @staticmethod
    def error(body: dict[str, Any]) -> bytes:
        """A failure after the stream began: an error event (the openai SDK raises it)."""
        return b"data: " + json.dumps(body).encode() + b"\n\n"


# --- Embeddings -------------------------------------------------------------------------------

EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
MAX_INPUTS = 2048


class EmbeddingCall:
    __slots__ = ("base64", "model", "texts")

    def __init__(self, data: Mapping[str, Any]) -> None:
        unknown = sorted(set(data) - EMBEDDING_FIELDS)
        if unknown:
            raise invalid(unknown[0], f"Unrecognized request argument supplied: {unknown[0]}")
        self.model = model_name(data)
        given = data.get("input")
        texts = [given] if isinstance(given, str) else given
        if not isinstance(texts, list) or not texts:
            raise invalid("input", "'input' is a string or a non-empty list of strings.")
        if len(texts) > MAX_INPUTS:
            raise invalid("input", f"At most {MAX_INPUTS} inputs per request.")
        if not all(isinstance(t, str) and t for t in texts):
            raise invalid(
                "input", "Each input is a non-empty string (token-id inputs are not supported)."
            )
        self.texts = texts
        encoding = data.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise invalid("encoding_format", "encoding_format is float or base64.")
        self.base64 = encoding == "base64"
        if data.get("dimensions") is not None:
            raise invalid("dimensions", "'dimensions' is not supported; the model's own are used.")


def embeddings(result: rt.EmbeddingResult, model: str, as_base64: bool) -> dict[str, Any]:
    def encoded(vector: tuple[float, ...]) -> Any:
        if not as_base64:
            return list(vector)
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()

    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encoded(v)}
            for i, v in enumerate(result.vectors)
        ],
        "model": model,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "total_tokens": result.usage.prompt_tokens,
        },
    }


# --- Rerank (Cohere's and Jina's shape) --------------------------------------------------------

RERANK_FIELDS = frozenset(
    {"model", "query", "documents", "top_n", "return_documents", "max_chunks_per_doc"}
)
MAX_DOCUMENTS = 1000


class RerankCall:
    __slots__ = ("documents", "model", "query", "return_documents", "top_n")

    def __init__(self, data: Mapping[str, Any]) -> None:
        unknown = sorted(set(data) - RERANK_FIELDS)
        if unknown:
            raise invalid(unknown[0], f"Unrecognized request argument supplied: {unknown[0]}")
        self.model = model_name(data)
        self.query = _string(data, "query", required=True) or ""
        documents = data.get("documents")
        if not isinstance(documents, list) or not documents:
            raise invalid("documents", "'documents' is a non-empty list.")
        if len(documents) > MAX_DOCUMENTS:
            raise invalid("documents", f"At most {MAX_DOCUMENTS} documents per request.")
        texts = []
        for index, document in enumerate(documents):
            text = document.get("text") if isinstance(document, dict) else document
            if not isinstance(text, str):
                raise invalid(f"documents.{index}", "A document is text, or {text: ...}.")
            texts.append(text)
        self.documents = texts
        self.top_n = _integer(data, "top_n", 1)
        self.return_documents = _flag(data, "return_documents")


def reranked(result: rt.RerankResult, call: RerankCall, model: str) -> dict[str, Any]:
    hits = result.hits[: call.top_n] if call.top_n else result.hits
    return {
        "id": f"rerank-{uuid.uuid4().hex}",
        "model": model,
        "results": [
            {
                "index": hit.index,
                "relevance_score": hit.score,
                **(
                    {"document": {"text": call.documents[hit.index]}}
                    if call.return_documents and 0 <= hit.index < len(call.documents)
                    else {}
                ),
            }
            for hit in hits
        ],
        "usage": {"total_tokens": result.usage.total_tokens},
    }


# --- Audio ------------------------------------------------------------------------------------

SPEECH_FIELDS = frozenset({"model", "input", "voice", "response_format", "speed", "instructions"})
SPEECH_FORMATS = {
    "mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
    "wav": "audio/wav", "pcm": "audio/pcm",
}  # fmt: skip
TRANSCRIPTION_FORMATS = ("json", "text", "verbose_json")


class SpeechCall:
    __slots__ = ("format", "model", "text", "voice")

    def __init__(self, data: Mapping[str, Any]) -> None:
        unknown = sorted(set(data) - SPEECH_FIELDS)
        if unknown:
            raise invalid(unknown[0], f"Unrecognized request argument supplied: {unknown[0]}")
        self.model = model_name(data)
        self.text = _string(data, "input", required=True) or ""
        if not self.text.strip() or len(self.text) > 4096:
            raise invalid("input", "'input' is 1 to 4096 characters of text.")
        self.voice = _string(data, "voice", required=True) or ""
        if not self.voice or len(self.voice) > 64:
            raise invalid("voice", "'voice' names a voice of the model.")
        self.format = _string(data, "response_format") or "mp3"
        if self.format not in SPEECH_FORMATS:
            raise invalid(
                "response_format", f"response_format is one of {', '.join(SPEECH_FORMATS)}."
            )
        _number(data, "speed", 0.25, 4.0)


class TranscriptionCall:
    __slots__ = ("audio", "filename", "format", "language", "model")

    def __init__(self, fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes]]) -> None:
        self.model = model_name(fields)
        if "file" not in files or not files["file"][1]:
            raise invalid("file", "Send the audio as the multipart field 'file'.")
        self.filename, self.audio = files["file"]
        self.language = _string(fields, "language")
        self.format = fields.get("response_format") or "json"
        if self.format not in TRANSCRIPTION_FORMATS:
            raise invalid("response_format", "response_format is json, text or verbose_json.")
        temperature = fields.get("temperature")
        if temperature is not None:
            try:
                value = float(temperature)
            except ValueError:
                value = math.nan
            if not 0 <= value <= 1:  # NaN too
                raise invalid("temperature", "'temperature' must be between 0 and 1.")
