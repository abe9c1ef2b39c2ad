"""The Anthropic Messages wire protocol: POST {base}/v1/messages and GET {base}/v1/models.

Credentials: `api_key` (sent as `x-api-key`), `base_url` (overrides the manifest's; with or
without a trailing /v1).
Options: `anthropic_version` (the `anthropic-version` header, default 2023-06-01),
`anthropic_beta` (an optional `anthropic-beta` header), `validate_model`.
Parameters: max_tokens (required by the API: 1024 when the request gives none), temperature,
top_p, top_k, thinking (+ thinking_budget: `enabled` with that budget, else `adaptive`), effort
(`output_config.effort`), json_schema / response_format (`output_config.format`).

The API version is chosen, not inherited from a client: 2023-06-01. Version 2026-10-21 (what
the `anthropic` SDK 2.x sends) removes temperature, top_p and top_k, which the manifest still
offers for the Claude 4.x models; 2023-06-01 keeps them (platform.claude.com/docs/en/api/
versioning). An endpoint configured for 2026-10-21 gets no sampling parameters. Under 2023-06-01
the models from Opus 4.1 / Sonnet 4.5 on refuse temperature and top_p together, so top_p is
left out when a temperature is given (Anthropic's advice: alter one of them, not both).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
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

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
MAX_MODEL_PAGES = 20

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# The error `type` of a body (or of an `event: error` stream frame) -> our error class.
ERROR_TYPES: dict[str, type[errors.UpstreamError]] = {
    "invalid_request_error": errors.UpstreamBadRequest,
    "request_too_large": errors.UpstreamBadRequest,
    "authentication_error": errors.UpstreamAuth,
    "permission_error": errors.UpstreamAuth,
    "billing_error": errors.UpstreamQuota,
    "not_found_error": errors.UpstreamNotFound,
    "rate_limit_error": errors.UpstreamRateLimited,
    "api_error": errors.UpstreamUnavailable,
    "overloaded_error": errors.UpstreamUnavailable,
    "timeout_error": errors.UpstreamTimeout,
}

PASSED_THROUGH = ("temperature", "top_p", "top_k", "metadata", "service_tier")
SAMPLING = ("temperature", "top_p", "top_k")
UNSAMPLED_VERSIONS = {"2026-10-21"}  # API versions without temperature, top_p and top_k


# --- request building -------------------------------------------------------------------------


def _media_block(url: str) -> dict[str, Any]:
    """An image (or PDF) part: a data: URL becomes a base64 source, anything else a url source."""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type = header.split(";")[0] or "image/png"
        kind = "document" if media_type == "application/pdf" else "image"
        return {
            "type": kind,
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    kind = "document" if url.lower().split("?")[0].endswith(".pdf") else "image"
    return {"type": kind, "source": {"type": "url", "url": url}}


def content_blocks(message: Message) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        if part.type == "image" and part.image_url:
            blocks.append(_media_block(part.image_url))
        elif part.text:  # the API refuses empty text blocks
            blocks.append({"type": "text", "text": part.text})
    return blocks


def messages_json(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Our messages as Anthropic turns: no system role, tool results inside user turns, and
    consecutive turns of one role merged (tool results must sit together after a tool_use)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            role = "user"
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
            blocks = content_blocks(message)
            if any(b["type"] != "text" for b in blocks):
                result["content"] = blocks
            else:
                result["content"] = message.text()
            blocks = [result]
        elif message.role == "assistant":
            role = "assistant"
            blocks = content_blocks(message)
            blocks += [
                {
                    "type": "tool_use",
                    "id": c.id,
                    "name": c.name,
                    "input": arguments_object(c.arguments),
                }
                for c in message.tool_calls
            ]
        else:
            role = "user"
            blocks = content_blocks(message)
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            if role == "user" and blocks and blocks[0]["type"] == "tool_result":
                # tool results go first in their user turn
                results = [b for b in previous if b["type"] == "tool_result"]
                others = [b for b in previous if b["type"] != "tool_result"]
                turns[-1]["content"] = results + blocks + others
            else:
                previous.extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # plain one-text turns as strings, like the API's own examples
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
        elif not content:
            turn["content"] = ""
    return turns


def _json_schema(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except ValueError as exc:
            raise errors.InvalidInput(
                "json_schema is not valid JSON.", fields={"json_schema": [str(exc)]}
            ) from exc
    if not isinstance(value, dict):
        return None
    # OpenAI's wrapper {"name", "schema"} or a bare schema
    schema = value.get("schema") if isinstance(value.get("schema"), dict) else value
    return dict(schema)


def _usage(data: Any) -> Usage:
    data = data if isinstance(data, dict) else {}
    prompt = sum(
        int(data.get(key) or 0)
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return Usage(prompt, int(data.get("output_tokens") or 0))


class AnthropicAdapter(Adapter):
    family = "anthropic"

    def base_url(self) -> str:
        base = (self.endpoint.credentials.get("base_url") or "").strip() or self.endpoint.base_url
        base = base.rstrip("/")
        if base.endswith("/v1"):  # we add /v1/... ourselves
            base = base[:-3]
        return base

    def api_version(self) -> str:
        return str(self.endpoint.options.get("anthropic_version") or API_VERSION)

    def auth_headers(self) -> dict[str, str]:
        options = self.endpoint.options
        headers = {"anthropic-version": self.api_version()}
        api_key = self.endpoint.credentials.get("api_key")
        if api_key:
            headers["x-api-key"] = str(api_key)
        beta = options.get("anthropic_beta") or self.endpoint.credentials.get("anthropic_beta")
        if beta:
            headers["anthropic-beta"] = str(beta)
        return headers

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            message = str(error.get("message") or "")
            kind = error.get("type")
            return f"{kind}: {message}" if kind and message else message or str(kind or body)
        return super().error_message(body)

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """Anthropic's low-credit 400 is an exhausted quota."""
        if isinstance(failure, errors.UpstreamBadRequest) and "credit balance" in (
            failure.message.lower()
        ):
            return errors.UpstreamQuota(failure.message)
        return failure

    def _json(self, response: Any) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise errors.UpstreamUnavailable(
                f"The backend answered {response.status_code} with a body that is not JSON: "
                f"{self.http.bounded(response.text, 200)}"
            ) from exc

    # --- chat ---------------------------------------------------------------------------------

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        params = {k: v for k, v in request.parameters.items() if v is not None}
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": messages_json(request.messages),
        }
        system = request.system
        for key in PASSED_THROUGH:
            if key in params:
                body[key] = params[key]
        extra_stops = params.get("stop") or params.get("stop_sequences") or ()
        if isinstance(extra_stops, str):
            extra_stops = (extra_stops,)
        stops = [*request.stop, *extra_stops]
        stops = [s for s in dict.fromkeys(stops) if isinstance(s, str) and s.strip()]
        if stops:
            body["stop_sequences"] = stops

        thinking = params.get("thinking")
        if isinstance(thinking, dict):
            body["thinking"] = dict(thinking)
        elif thinking is True or str(thinking).lower() == "true":
            budget = params.get("thinking_budget")
            body["thinking"] = (
                {"type": "enabled", "budget_tokens": int(budget)}
                if budget
                else {"type": "adaptive"}
            )
        thinking_on = body.get("thinking", {}).get("type") in ("enabled", "adaptive")
        if thinking_on or self.api_version() in UNSAMPLED_VERSIONS:
            for key in SAMPLING:  # the API refuses sampling settings while thinking
                body.pop(key, None)
        elif "temperature" in body:  # newer models refuse temperature and top_p together
            body.pop("top_p", None)

        output: dict[str, Any] = {}
        if params.get("effort"):
            output["effort"] = params["effort"]
        schema = None
        response_format = request.response_format or params.get("response_format") or {}
        if not isinstance(response_format, Mapping):  # Dify's "JSON" / "text" template value
            is_json = str(response_format).upper() == "JSON"
            response_format = {"type": "json_object"} if is_json else {}
        if response_format.get("type") == "json_schema":
            schema = _json_schema(response_format.get("json_schema"))
        if schema is None and params.get("json_schema"):
            schema = _json_schema(params["json_schema"])
        wants_json = response_format.get("type") == "json_object"
        if schema is not None:
            output["format"] = {"type": "json_schema", "schema": schema}
        elif wants_json:
            instruction = "Respond with one valid JSON object and nothing else."
            system = f"{system}\n\n{instruction}" if system else instruction
        if output:
            body["output_config"] = output
        if system:
            body["system"] = system

        if request.tools:
            body["tools"] = [
                {
                    "name": t.name,
                    "description": t.description,
                    "input_schema": dict(t.parameters) or {"type": "object", "properties": {}},
                }
                for t in request.tools
            ]
            choice = request.tool_choice
            if choice in ("auto", "none"):
                body["tool_choice"] = {"type": choice}
            elif choice == "required":
                body["tool_choice"] = {"type": "any"}
            elif choice:
                body["tool_choice"] = {"type": "tool", "name": choice}
        if stream:
            body["stream"] = True
        return body

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        response = self.http.request(
            "POST", "v1/messages", json_body=self.chat_body(model, request, stream=False)
        )
        data = self._json(response)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            if isinstance(data, dict) and data.get("type") == "error":
                raise self._stream_error(data)
            raise errors.UpstreamUnavailable(
                f"The backend's reply has no content: {self.http.bounded(json.dumps(data), 200)}"
            )
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in data["content"]:
            if block.get("type") == "text":
                texts.append(block.get("text") or "")
            elif block.get("type") == "tool_use":
                calls.append(
                    ToolCall(
                        id=block.get("id", ""),
                        name=block.get("name", ""),
                        arguments=json.dumps(block.get("input") or {}),
                    )
                )
        text = "".join(texts)
        usage = _usage(data["usage"]) if isinstance(data.get("usage"), dict) else None
        return ChatResult(
            text=text,
            tool_calls=tuple(calls),
            finish_reason=FINISH_REASONS.get(data.get("stop_reason") or "end_turn", "stop"),
            usage=usage or counted_usage(request, text),
            model=data.get("model", model),
        )

    def _stream_error(self, data: Any) -> errors.UpstreamError:
        error = data.get("error") if isinstance(data, dict) else None
        kind = error.get("type", "") if isinstance(error, dict) else ""
        cls = ERROR_TYPES.get(kind, errors.UpstreamUnavailable)
        message = self.http.bounded(self.error_message(data))
        if "credit balance" in message.lower():
            cls = errors.UpstreamQuota
        return cls(message)

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        response = self.http.request(
            "POST",
            "v1/messages",
            json_body=self.chat_body(model, request, stream=True),
            stream=True,
        )
        produced: list[str] = []
        tool_index: dict[int, int] = {}  # content block index -> tool call ordinal
        tool_args: dict[int, bool] = {}  # block index -> any arguments streamed
        usage: dict[str, Any] = {}
        finish: str | None = None
        for event, payload in self.http.sse(response):
            data = self.http.parse(payload)
            kind = data.get("type", event) if isinstance(data, dict) else event
            if event == "error" or kind == "error":
                raise self._stream_error(data)
            if not isinstance(data, dict):
                continue
            if kind == "message_start":
                usage.update((data.get("message") or {}).get("usage") or {})
            elif kind == "content_block_start":
                index, block = data.get("index", 0), data.get("content_block") or {}
                if block.get("type") == "tool_use":
                    tool_index[index] = len(tool_index)
                    initial = block.get("input")
                    arguments = json.dumps(initial) if initial else ""
                    tool_args[index] = bool(arguments)
                    yield ChatChunk(
                        tool_calls=(
                            ToolCallDelta(
                                index=tool_index[index],
                                id=block.get("id", ""),
                                name=block.get("name", ""),
                                arguments=arguments,
                            ),
                        )
                    )
                elif block.get("type") == "text" and block.get("text"):
                    produced.append(block["text"])
                    yield ChatChunk(text=block["text"])
            elif kind == "content_block_delta":
                index, delta = data.get("index", 0), data.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    produced.append(delta["text"])
                    yield ChatChunk(text=delta["text"])
                elif delta.get("type") == "input_json_delta" and index in tool_index:
                    fragment = delta.get("partial_json") or ""
                    if fragment:
                        tool_args[index] = True
                        yield ChatChunk(
                            tool_calls=(ToolCallDelta(index=tool_index[index], arguments=fragment),)
                        )
            elif kind == "content_block_stop":
                index = data.get("index", 0)
                if index in tool_index and not tool_args.get(index):
                    tool_args[index] = True  # no input streamed: an empty object, as in chat()
                    yield ChatChunk(
                        tool_calls=(ToolCallDelta(index=tool_index[index], arguments="{}"),)
                    )
            elif kind == "message_delta":
                stop_reason = (data.get("delta") or {}).get("stop_reason")
                if stop_reason:
                    finish = FINISH_REASONS.get(stop_reason, "stop")
                usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            elif kind == "message_stop":
                reported = _usage(usage) if usage else counted_usage(request, "".join(produced))
                yield ChatChunk(finish_reason=finish or "stop", usage=reported)
                return
        raise errors.UpstreamConnection("The stream ended before its message_stop event.")

    # --- models and validation ----------------------------------------------------------------

    def list_models(self) -> list[DiscoveredModel]:
        found: list[DiscoveredModel] = []
        params: dict[str, Any] = {"limit": 1000}
        for _ in range(MAX_MODEL_PAGES):
            data = self._json(self.http.request("GET", "v1/models", params=params))
            rows = data.get("data") if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise errors.UpstreamUnavailable(
                    f"The model list has no data: {self.http.bounded(json.dumps(data), 200)}"
                )
            found.extend(
                DiscoveredModel(model=row["id"], model_type="llm", details=row)
                for row in rows
                if isinstance(row, dict) and row.get("id")
            )
            if not data.get("has_more") or not data.get("last_id"):
                break
            params = {"limit": 1000, "after_id": data["last_id"]}
        return found
