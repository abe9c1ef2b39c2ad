"""Tencent Hunyuan over Tencent Cloud API 3.0: POST {base}/ with `X-TC-Action: ChatCompletions`,
`X-TC-Version: 2023-09-01` and a TC3-HMAC-SHA256 signature made afresh for every attempt (`sign`).

Credentials: `secret_id`, `secret_key`.
Options: `service` (the signature's service, default hunyuan), `api_version`, `region` (the
optional `X-TC-Region`).
Parameters: temperature, top_p, enable_enhance (`EnableEnhancement`), seed, stop. The API has no
output-token limit and no response format, so `max_tokens` and `response_format` are not sent
(the API refuses parameters it does not know).

Tencent answers its errors with HTTP 200 and `{"Response": {"Error": {"Code", "Message"}}}`; the
shared client only maps failed statuses, so this adapter reads the codes itself and retries the
retryable ones (rate limits, internal errors) by the endpoint's retry policy.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from config import errors
from providers.runtime.base import (
    Adapter,
    ChatChunk,
    ChatRequest,
    ChatResult,
    Message,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
    counted_usage,
)
from providers.runtime.http import Response

API_VERSION = "2023-09-01"
SERVICE = "hunyuan"
ALGORITHM = "TC3-HMAC-SHA256"
SIGNED_HEADERS = ("content-type", "host")
DEFAULT_PORTS = {"http": 80, "https": 443}

FINISH_REASONS = {"stop": "stop", "tool_calls": "tool_calls", "sensitive": "content_filter"}
# ChatRequest.parameters names (Dify's parameter rules) -> the ChatCompletions field.
PARAMETERS = {
    "temperature": "Temperature",
    "top_p": "TopP",
    "enable_enhance": "EnableEnhancement",
    "seed": "Seed",
}

# Error code prefixes (most specific first) -> our class. Codes: the API 3.0 common error codes
# and hunyuan's own (tencentcloud-sdk-python-hunyuan, v20230901/errorcodes.py).
ERROR_CODES: tuple[tuple[str, type[errors.UpstreamError]], ...] = (
    ("AuthFailure", errors.UpstreamAuth),
    ("UnauthorizedOperation", errors.UpstreamAuth),
    ("FailedOperation.UserUnAuthError", errors.UpstreamAuth),
    ("FailedOperation.ServiceNotActivated", errors.UpstreamAuth),
    ("RequestLimitExceeded", errors.UpstreamRateLimited),
    ("LimitExceeded", errors.UpstreamRateLimited),
    ("FailedOperation.EngineServerLimitExceeded", errors.UpstreamRateLimited),
    ("ResourceInsufficient", errors.UpstreamQuota),
    ("ResourceUnavailable.InArrears", errors.UpstreamQuota),
    ("ResourceUnavailable.LowBalance", errors.UpstreamQuota),
    ("ResourceUnavailable.StopUsing", errors.UpstreamQuota),
    ("FailedOperation.ResourcePackExhausted", errors.UpstreamQuota),
    ("FailedOperation.FreeResourcePackExhausted", errors.UpstreamQuota),
    ("FailedOperation.ServiceStop", errors.UpstreamQuota),
    ("FailedOperation.ServiceStopArrears", errors.UpstreamQuota),
    ("InvalidParameterValue.Model", errors.UpstreamNotFound),
    ("ResourceNotFound", errors.UpstreamNotFound),
    ("FailedOperation.EngineRequestTimeout", errors.UpstreamTimeout),
    ("FailedOperation.EngineServerError", errors.UpstreamUnavailable),
    ("InternalError", errors.UpstreamUnavailable),
    ("ServiceUnavailable", errors.UpstreamUnavailable),
)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    """Tencent's key chain: HMAC("TC3"+key, date) -> service -> "tc3_request", then the hex
    HMAC of the string to sign."""
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def canonical_host(url: str) -> str:
    """The Host header an HTTP client sends for `url`: the port only when it is not the
    scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port and parts.port != DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{parts.port}"
    return host


def string_to_sign(
    method: str, headers: Mapping[str, str], body: bytes, timestamp: int, scope: str
) -> str:
    """TC3's string to sign for a POST to `/` (no query), over `content-type;host`."""
    canonical_headers = "".join(
        f"{name}:{headers[name].strip().lower()}\n" for name in SIGNED_HEADERS
    )
    canonical_request = "\n".join(
        (
            method.upper(),
            "/",
            "",
            canonical_headers,
            ";".join(SIGNED_HEADERS),
            hashlib.sha256(body).hexdigest(),
        )
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def error_class(code: str) -> type[errors.UpstreamError]:
    for prefix, kind in ERROR_CODES:
        if code == prefix or code.startswith(prefix + "."):
            return kind
    return errors.UpstreamBadRequest


# --- request building -------------------------------------------------------------------------


def tool_json(tool: Tool) -> dict[str, Any]:
    """A function tool; its JSON Schema travels as a JSON string (`ToolFunction.Parameters`)."""
    return {
        "Type": "function",
        "Function": {
            "Name": tool.name,
            "Description": tool.description,
            "Parameters": json.dumps(tool.parameters or {"type": "object", "properties": {}}),
        },
    }


def message_json(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"Role": "tool", "Content": message.text(), "ToolCallId": message.tool_call_id}
    if message.role == "assistant" and message.tool_calls:
        return {
            "Role": "assistant",
            # Content may not be empty; Dify's plugin sends a space beside tool calls too.
            "Content": message.text() or " ",
            "ToolCalls": [
                {
                    "Id": call.id,
                    "Type": "function",
                    "Function": {"Name": call.name, "Arguments": call.arguments or "{}"},
                }
                for call in message.tool_calls
            ],
        }
    if message.role == "user" and message.images():
        parts: list[dict[str, Any]] = []
        for part in message.content:  # type: ignore[union-attr]
            if part.type == "image":
                parts.append({"Type": "image_url", "ImageUrl": {"Url": part.image_url}})
            elif part.text:
                parts.append({"Type": "text", "Text": part.text})
        return {"Role": "user", "Contents": parts}
    return {"Role": message.role, "Content": message.text()}


def _usage(data: Any, request: ChatRequest, text: str) -> Usage:
    if isinstance(data, dict) and ("PromptTokens" in data or "CompletionTokens" in data):
        return Usage(int(data.get("PromptTokens") or 0), int(data.get("CompletionTokens") or 0))
    return counted_usage(request, text)


def _finish(reason: Any) -> str:
    reason = str(reason or "stop")
    return FINISH_REASONS.get(reason, reason)


class HunyuanAdapter(Adapter):
    family = "hunyuan"

    # --- signing and errors -------------------------------------------------------------------

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        """TC3-HMAC-SHA256 over `content-type;host`, dated now (the API refuses a signature more
        than five minutes off)."""
        credentials = self.endpoint.credentials
        service = str(self.endpoint.options.get("service") or SERVICE)
        timestamp = int(time.time())
        date = datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d")
        scope = f"{date}/{service}/tc3_request"
        signed = {"content-type": headers.get("Content-Type", ""), "host": canonical_host(url)}
        signature = tc3_signature(
            str(credentials.get("secret_key") or ""),
            date,
            service,
            string_to_sign(method, signed, body or b"", timestamp, scope),
        )
        return {
            **headers,
            "X-TC-Timestamp": str(timestamp),
            "Authorization": (
                f"{ALGORITHM} Credential={credentials.get('secret_id', '')}/{scope}, "
                f"SignedHeaders={';'.join(SIGNED_HEADERS)}, Signature={signature}"
            ),
        }

    def error_message(self, body: Any) -> str:
        error = _error_of(body)
        if error is not None:
            return f"{error.get('Code', '')}: {error.get('Message', '')}"
        return super().error_message(body)

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """A failed status whose body names a Tencent error code: the code decides."""
        try:
            error = _error_of(response.json())
        except ValueError:
            return failure
        if error is None:
            return failure
        return error_class(str(error.get("Code", "")))(failure.message)

    def _failure(self, error: Mapping[str, Any]) -> errors.UpstreamError:
        code = str(error.get("Code", ""))
        message = self.http.bounded(f"{code}: {error.get('Message', '')}")
        return error_class(code)(message)

    # --- calls ----------------------------------------------------------------------------------

    def _headers(self, action: str) -> dict[str, str]:
        options = self.endpoint.options
        headers = {
            "Content-Type": "application/json",
            "X-TC-Action": action,
            "X-TC-Version": str(options.get("api_version") or API_VERSION),
        }
        if options.get("region"):
            headers["X-TC-Region"] = str(options["region"])
        return headers

    def _call(self, action: str, body: dict[str, Any], *, stream: bool = False) -> Any:
        """The action's `Response` object, or for a stream its open SSE response. An error in an
        HTTP 200 body raises; the retryable ones are tried again first."""

        def attempt() -> Any:
            response = self.http.request(
                "POST", "/", json_body=body, headers=self._headers(action), stream=stream
            )
            if stream and "text/event-stream" in response.headers.get("Content-Type", ""):
                return response
            reply = read_json(self, response).get("Response")
            if not isinstance(reply, dict):
                raise errors.UpstreamUnavailable(
                    f"Hunyuan's answer has no Response: {self.http.bounded(str(reply), 200)}"
                )
            if isinstance(reply.get("Error"), dict):
                return self._failure(reply["Error"])
            return reply

        return retry_answered_errors(self, attempt)

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Model": model,
            "Messages": [message_json(m) for m in request.messages],
            "Stream": stream,
        }
        for name, value in request.parameters.items():
            if value is not None and name in PARAMETERS:
                body[PARAMETERS[name]] = value
        stop = list(request.stop) or request.parameters.get("stop")
        if stop:
            body["Stop"] = [stop] if isinstance(stop, str) else list(stop)
        if request.tools:
            body["Tools"] = [tool_json(t) for t in request.tools]
            choice = (request.tool_choice or "auto").lower()
            named = [t for t in request.tools if t.name == request.tool_choice]
            if choice == "required" and len(request.tools) == 1:
                named = list(request.tools)
            if named:
                body["ToolChoice"] = "custom"
                body["CustomTool"] = tool_json(named[0])
            elif choice == "none":
                body["ToolChoice"] = "none"
        return body

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        reply = self._call("ChatCompletions", self.chat_body(model, request, stream=False))
        choices = reply.get("Choices") or []
        if not choices:
            raise errors.UpstreamUnavailable("Hunyuan's reply has no choices.")
        message = choices[0].get("Message") or {}
        text = message.get("Content") or ""
        calls = tuple(
            ToolCall(
                id=str(call.get("Id") or ""),
                name=(call.get("Function") or {}).get("Name") or "",
                arguments=(call.get("Function") or {}).get("Arguments") or "",
            )
            for call in message.get("ToolCalls") or ()
        )
        return ChatResult(
            text=text,
            tool_calls=calls,
            finish_reason=_finish(choices[0].get("FinishReason")),
            usage=_usage(reply.get("Usage"), request, text),
            model=model,
        )

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        response = self._call(
            "ChatCompletions", self.chat_body(model, request, stream=True), stream=True
        )
        produced: list[str] = []
        usage: Any = None
        for _, payload in self.http.sse(response):
            data = self.http.parse(payload)
            if not isinstance(data, dict):
                continue
            if isinstance(data.get("ErrorMsg"), dict):
                failure = data["ErrorMsg"]
                raise errors.UpstreamUnavailable(
                    self.http.bounded(
                        f"Hunyuan failed mid-stream ({failure.get('Code')}): "
                        f"{failure.get('Msg', '')}"
                    )
                )
            usage = data.get("Usage") or usage
            choices = data.get("Choices") or []
            if not choices:
                continue
            choice = choices[0]
            delta = choice.get("Delta") or {}
            text = delta.get("Content") or ""
            calls = tuple(
                ToolCallDelta(
                    index=int(call.get("Index") if call.get("Index") is not None else position),
                    id=str(call.get("Id") or ""),
                    name=(call.get("Function") or {}).get("Name") or "",
                    arguments=(call.get("Function") or {}).get("Arguments") or "",
                )
                for position, call in enumerate(delta.get("ToolCalls") or ())
            )
            if text or calls:
                produced.append(text)
                yield ChatChunk(text=text, tool_calls=calls)
            if choice.get("FinishReason"):
                yield ChatChunk(
                    finish_reason=_finish(choice["FinishReason"]),
                    usage=_usage(usage, request, "".join(produced)),
                )
                return
        raise errors.UpstreamConnection("Hunyuan's stream ended before its FinishReason.")


def read_json(adapter: Adapter, response: Response) -> dict[str, Any]:
    """A whole JSON object body (the response is closed after)."""
    try:
        data = response.json()
    except ValueError as exc:
        raise errors.UpstreamUnavailable(
            f"The backend answered with a body that is not JSON: "
            f"{adapter.http.bounded(response.text, 200)}"
        ) from exc
    finally:
        response.close()
    if not isinstance(data, dict):
        raise errors.UpstreamUnavailable(
            "The backend answered with JSON that is no object: "
            f"{adapter.http.bounded(str(data), 200)}"
        )
    return data


def retry_answered_errors(adapter: Adapter, attempt: Callable[[], Any]) -> Any:
    """`attempt()`'s result; an error it returns (one a backend answered with HTTP 200, which
    the shared client took for success) is raised, after the endpoint's retry policy has tried
    the retryable ones again."""
    retry = adapter.endpoint.retry
    deadline = time.monotonic() + adapter.endpoint.timeouts.total
    tries = 0
    while True:
        tries += 1
        outcome = attempt()
        if not isinstance(outcome, errors.UpstreamError):
            return outcome
        pause = retry.delay(tries, None)
        if not outcome.retryable or tries >= retry.attempts or time.monotonic() + pause > deadline:
            raise outcome
        adapter.http.sleep(pause)


def _error_of(body: Any) -> dict[str, Any] | None:
    reply = body.get("Response") if isinstance(body, dict) else None
    error = reply.get("Error") if isinstance(reply, dict) else None
    return error if isinstance(error, dict) else None
