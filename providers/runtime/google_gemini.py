"""Google's generateContent wire, shared by the Gemini API (this module's `GeminiAdapter`) and
Vertex AI (`vertex_ai.py`): `GenerativeAdapter` builds the bodies and reads the replies; a
subclass says where a model's methods live and how it signs in.

Gemini API credentials: `api_key` (sent as `x-goog-api-key`), `base_url` (an override of
https://generativelanguage.googleapis.com; `/v1beta` is added when it names no version).

Errors come as {"error": {code, message, status, details}}. A bad API key is a 400
INVALID_ARGUMENT whose details carry reason API_KEY_INVALID: an auth failure, not a bad request.
A 429 RESOURCE_EXHAUSTED is a rate limit (retried after its RetryInfo delay) unless the quota
it names is a daily one. A prompt blocked for safety comes back 200 with no candidates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from config import errors
from providers.runtime.base import (
    Adapter,
    ChatChunk,
    ChatRequest,
    ChatResult,
    DiscoveredModel,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
    arguments_object,
    counted_usage,
)
from providers.runtime.http import Response

MAX_MODEL_PAGES = 20
# Google's documented stand-in for a thought signature we do not have (a tool call made by
# another model, or before signatures existed): https://ai.google.dev/gemini-api/docs/thought-signatures
SKIP_SIGNATURE = "skip_thought_signature_validator"
# A tool call's id carries the thought signature the API sent with it, which must go back with
# the call in the next turn: "<id>::sig::<signature>" (Dify's plugin does the same).
SIGNATURE_SEPARATOR = "::sig::"
# The id we give a call the API sent without one; never sent back as the API's id.
UNNAMED_CALL = "gemini_call_"

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
# ChatRequest.parameters names (Dify's parameter rules) -> generationConfig fields.
GENERATION_FIELDS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "seed": "seed",
}
TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


# --- request building -------------------------------------------------------------------------


def _media_part(url: str) -> dict[str, Any]:
    """An image: a data: URL goes inline, any other URL as file data."""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        return {"inlineData": {"mimeType": header.split(";")[0] or "image/png", "data": data}}
    path = url.lower().split("?")[0]
    mime = "application/pdf" if path.endswith(".pdf") else "image/png"
    for suffix, kind in ((".jpg", "image/jpeg"), (".jpeg", "image/jpeg"), (".webp", "image/webp")):
        if path.endswith(suffix):
            mime = kind
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _user_parts(message: Message) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"text": message.content}]
    parts = [
        _media_part(p.image_url) if p.type == "image" else {"text": p.text}
        for p in message.content
        if (p.image_url if p.type == "image" else p.text)
    ]
    return parts or [{"text": ""}]


def split_call_id(call_id: str) -> tuple[str, str]:
    """A tool call id as we hand it out -> (the API's id, the thought signature)."""
    call, _, signature = call_id.partition(SIGNATURE_SEPARATOR)
    return call, signature


def _tool_result(text: str) -> dict[str, Any]:
    """A functionResponse's `response` must be an object: a JSON object passes as it is."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


def contents_json(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation as `contents`: assistant turns are role "model"; a tool result is a
    functionResponse part naming its function, and consecutive results share one user turn."""
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "assistant":
            parts: list[dict[str, Any]] = [{"text": message.text()}] if message.text() else []
            for call in message.tool_calls:
                call_id, signature = split_call_id(call.id)
                names[call.id] = call.name
                function: dict[str, Any] = {
                    "name": call.name,
                    "args": arguments_object(call.arguments),
                }
                if call_id and not call_id.startswith(UNNAMED_CALL):
                    function["id"] = call_id
                parts.append(
                    {"functionCall": function, "thoughtSignature": signature or SKIP_SIGNATURE}
                )
            contents.append({"role": "model", "parts": parts or [{"text": ""}]})
        elif message.role == "tool":
            call_id, _ = split_call_id(message.tool_call_id)
            response: dict[str, Any] = {
                "name": names.get(message.tool_call_id, call_id),
                "response": _tool_result(message.text()),
            }
            if call_id and not call_id.startswith(UNNAMED_CALL):
                response["id"] = call_id
            part = {"functionResponse": response}
            previous = contents[-1] if contents else None
            if (
                previous
                and previous["role"] == "user"
                and "functionResponse" in previous["parts"][0]
            ):
                previous["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            contents.append({"role": "user", "parts": _user_parts(message)})
    return contents


def _schema(value: Any) -> Any:
    """A json_schema parameter or response_format's schema: text or an object, maybe wrapped."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, Mapping) and isinstance(value.get("schema"), Mapping):
        return dict(value["schema"])
    return dict(value) if isinstance(value, Mapping) else None


def generation_config(request: ChatRequest) -> dict[str, Any]:
    params = {k: v for k, v in request.parameters.items() if v is not None}
    config = {GENERATION_FIELDS[k]: v for k, v in params.items() if k in GENERATION_FIELDS}
    stops = [*request.stop]
    extra = params.get("stop") or params.get("stop_sequences") or ()
    stops += [extra] if isinstance(extra, str) else list(extra)
    stops = [s for s in dict.fromkeys(stops) if isinstance(s, str) and s]
    if stops:
        config["stopSequences"] = stops[:5]  # the API takes at most five
    thinking: dict[str, Any] = {}
    if params.get("thinking_level"):
        thinking["thinkingLevel"] = str(params["thinking_level"]).upper()
    if params.get("thinking_budget") is not None:
        thinking["thinkingBudget"] = int(params["thinking_budget"])
    if thinking:
        config["thinkingConfig"] = thinking
    response_format = request.response_format or params.get("response_format") or {}
    if not isinstance(response_format, Mapping):  # Dify's "JSON" / "text" template value
        response_format = {"type": "json_object"} if str(response_format).upper() == "JSON" else {}
    schema = None
    if response_format.get("type") == "json_schema":
        schema = _schema(response_format.get("json_schema"))
    if schema is None and params.get("json_schema"):
        schema = _schema(params["json_schema"])
    if schema is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = schema
    elif response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    return config


def generate_body(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": contents_json(request.messages)}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    config = generation_config(request)
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [
            {
                "functionDeclarations": [
                    {
                        "name": t.name,
                        "description": t.description,
                        "parametersJsonSchema": dict(t.parameters)
                        or {"type": "object", "properties": {}},
                    }
                    for t in request.tools
                ]
            }
        ]
        choice = request.tool_choice
        if choice in TOOL_MODES:
            body["toolConfig"] = {"functionCallingConfig": {"mode": TOOL_MODES[choice]}}
        elif choice:
            body["toolConfig"] = {
                "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice]}
            }
    return body


# --- reply reading ----------------------------------------------------------------------------


def usage_of(data: Mapping[str, Any], request: ChatRequest, text: str) -> Usage:
    """usageMetadata: thinking tokens are billed as output. Counted when the reply has none."""
    meta = data.get("usageMetadata")
    if isinstance(meta, Mapping) and "promptTokenCount" in meta:
        output = int(meta.get("candidatesTokenCount") or 0) + int(
            meta.get("thoughtsTokenCount") or 0
        )
        return Usage(int(meta.get("promptTokenCount") or 0), output)
    return counted_usage(request, text)


class GenerativeAdapter(Adapter):
    """generateContent and streamGenerateContent, wherever a subclass says a model lives."""

    def model_url(self, model: str, method: str) -> str:
        """The path (or URL) of `model`'s `method` (generateContent, predict, ...)."""
        raise NotImplementedError

    # --- errors -------------------------------------------------------------------------------

    def error_message(self, body: Any) -> str:
        if isinstance(body, list) and body:  # a streamed call's error comes as a JSON array
            body = body[0]
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            status, message = error.get("status"), str(error.get("message") or "")
            return f"{status}: {message}" if status else message
        return super().error_message(body)

    @staticmethod
    def _details(response: Response) -> list[Mapping[str, Any]]:
        try:
            body = response.json()
        except ValueError:
            return []
        if isinstance(body, list) and body:
            body = body[0]
        error = body.get("error") if isinstance(body, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        return [d for d in details or () if isinstance(d, Mapping)]

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """A 400 about the API key is an auth failure; a 429 a rate limit unless daily."""
        details = self._details(response)
        reasons = {str(d.get("reason")) for d in details}
        if response.status_code == 400 and (
            "API_KEY_INVALID" in reasons or "api key not valid" in failure.message.lower()
        ):
            return errors.UpstreamAuth(failure.message)
        if response.status_code == 429:
            quotas = [
                str(v.get("quotaId", ""))
                for d in details
                for v in d.get("violations") or ()
                if isinstance(v, Mapping)
            ]
            if any("PerDay" in quota for quota in quotas):
                return errors.UpstreamQuota(failure.message)
            delays = [
                _RETRY_DELAY.match(str(d.get("retryDelay", "")))
                for d in details
                if str(d.get("@type", "")).endswith("RetryInfo")
            ]
            retry_after = getattr(failure, "retry_after", None)
            if retry_after is None and delays and delays[0]:
                retry_after = float(delays[0].group(1))
            return errors.UpstreamRateLimited(failure.message, retry_after=retry_after)
        return failure

    def _reply_error(self, data: Mapping[str, Any]) -> errors.UpstreamError:
        """An error object sent inside a 200 answer (mid-stream)."""
        error = data.get("error") or {}
        code = int(error.get("code") or 500) if isinstance(error, Mapping) else 500
        message = self.http.bounded(self.error_message(data))
        if code == 429:
            return errors.UpstreamRateLimited(message)
        if code in (401, 403):
            return errors.UpstreamAuth(message)
        if 400 <= code < 500:
            return errors.UpstreamBadRequest(message)
        return errors.UpstreamUnavailable(message)

    def _blocked(self, data: Mapping[str, Any]) -> errors.UpstreamError | None:
        feedback = data.get("promptFeedback") or {}
        reason = feedback.get("blockReason") if isinstance(feedback, Mapping) else None
        if reason and not data.get("candidates"):
            return errors.UpstreamBadRequest(f"Google blocked the prompt: {reason}.")
        return None

    # --- chat ---------------------------------------------------------------------------------

    def chat_body(self, model: str, request: ChatRequest) -> dict[str, Any]:
        return generate_body(request)

    @staticmethod
    def _calls(parts: Sequence[Any], start: int) -> list[ToolCall]:
        calls = []
        for part in parts:
            function = part.get("functionCall") if isinstance(part, Mapping) else None
            if not isinstance(function, Mapping):
                continue
            call_id = str(function.get("id") or f"{UNNAMED_CALL}{start + len(calls)}")
            if part.get("thoughtSignature"):
                call_id += SIGNATURE_SEPARATOR + str(part["thoughtSignature"])
            calls.append(
                ToolCall(
                    call_id, str(function.get("name", "")), json.dumps(function.get("args") or {})
                )
            )
        return calls

    @staticmethod
    def _text(parts: Sequence[Any]) -> str:
        """The answer's text (thought summaries left out)."""
        return "".join(
            str(p.get("text") or "")
            for p in parts
            if isinstance(p, Mapping) and "text" in p and not p.get("thought")
        )

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        data = self.http.json(
            "POST",
            self.model_url(model, "generateContent"),
            json_body=self.chat_body(model, request),
        )
        if not isinstance(data, dict):
            raise errors.UpstreamUnavailable("Google's reply is not a JSON object.")
        if data.get("error"):
            raise self._reply_error(data)
        blocked = self._blocked(data)
        if blocked:
            raise blocked
        candidates = data.get("candidates")
        if not candidates or not isinstance(candidates, list):
            raise errors.UpstreamUnavailable(
                f"Google's reply has no candidates: {self.http.bounded(json.dumps(data), 200)}",
                code="bad_response",
            )
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text, calls = self._text(parts), self._calls(parts, 0)
        reason = str(candidate.get("finishReason") or "STOP")
        finish = "tool_calls" if calls else FINISH_REASONS.get(reason, reason.lower())
        return ChatResult(
            text=text,
            tool_calls=tuple(calls),
            finish_reason=finish,
            usage=usage_of(data, request, text),
            model=str(data.get("modelVersion") or model),
        )

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        response = self.http.request(
            "POST",
            self.model_url(model, "streamGenerateContent"),
            json_body=self.chat_body(model, request),
            params={"alt": "sse"},
            stream=True,
        )
        produced: list[str] = []
        calls = 0
        finish: str | None = None
        last: Mapping[str, Any] = {}
        events = 0
        for _, payload in self.http.sse(response):
            events += 1
            data = self.http.parse(payload)
            if not isinstance(data, dict):
                continue
            if data.get("error"):
                raise self._reply_error(data)
            blocked = self._blocked(data)
            if blocked:
                raise blocked
            last = data if data.get("usageMetadata") else last
            for candidate in data.get("candidates") or ():
                parts = (candidate.get("content") or {}).get("parts") or []
                text = self._text(parts)
                if text:
                    produced.append(text)
                    yield ChatChunk(text=text)
                for call in self._calls(parts, calls):
                    yield ChatChunk(
                        tool_calls=(ToolCallDelta(calls, call.id, call.name, call.arguments),)
                    )
                    calls += 1
                if candidate.get("finishReason"):
                    reason = str(candidate["finishReason"])
                    finish = FINISH_REASONS.get(reason, reason.lower())
        if not events:
            raise errors.UpstreamUnavailable(
                "Google's answer to a streamed call is not a stream of events.", code="bad_response"
            )
        if finish is None:
            raise errors.UpstreamConnection("Google's stream ended before its finishReason.")
        yield ChatChunk(
            finish_reason="tool_calls" if calls else finish,
            usage=usage_of(last, request, "".join(produced)),
        )


class GeminiAdapter(GenerativeAdapter):
    family = "google_gemini"

    def base_url(self) -> str:
        base = (self.endpoint.credentials.get("base_url") or "").strip() or self.endpoint.base_url
        base = base.rstrip("/")
        if not re.search(r"/v1(alpha|beta)?$", base):
            base += "/v1beta"
        return base

    def auth_headers(self) -> dict[str, str]:
        api_key = self.endpoint.credentials.get("api_key")
        return {"x-goog-api-key": str(api_key)} if api_key else {}

    def model_url(self, model: str, method: str) -> str:
        return f"models/{model.removeprefix('models/')}:{method}"

    def list_models(self) -> list[DiscoveredModel]:
        found: list[DiscoveredModel] = []
        params: dict[str, Any] = {"pageSize": 1000}
        for _ in range(MAX_MODEL_PAGES):
            data = self.http.json("GET", "models", params=params)
            for row in data.get("models") or ():
                name = str(row.get("name") or "").removeprefix("models/")
                methods = row.get("supportedGenerationMethods") or ()
                if name and "generateContent" in methods:
                    found.append(DiscoveredModel(name, "llm", details=row))
                elif name and "embedContent" in methods:
                    found.append(DiscoveredModel(name, "text-embedding", details=row))
            if not data.get("nextPageToken"):
                break
            params = {"pageSize": 1000, "pageToken": data["nextPageToken"]}
        return found
