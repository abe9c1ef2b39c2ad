"""A fake of the Anthropic Messages API: POST /v1/messages (plain and SSE-streamed),
POST /v1/messages/count_tokens, GET /v1/models[/{id}], with `x-api-key` (or
`Authorization: Bearer`) + `anthropic-version` auth and `{"type": "error", "error": {"type",
"message"}}` error bodies. Checked by the official `anthropic` client in
tests/unit/runtime/test_anthropic_fake.py.

API versions (platform.claude.com/docs/en/api/versioning): 2023-01-01, 2023-06-01 and
2026-10-21; any other is a 400 `anthropic-version: "x" is not a valid version` (quoted in
directus-labs/extensions#285). Under 2026-10-21 `temperature`, `top_p` and `top_k` are gone
(400 "Extra inputs are not permitted", even at their defaults); under the older ones
temperature and top_p lie in 0..1 ("temperature: range: 0..1", anthropic-sdk-python#893) and
the models from Opus 4.1 / Sonnet 4.5 on refuse both together ("`temperature` and `top_p`
cannot both be specified for this model", BerriAI/litellm#15097).

Extra failure modes on top of FakeServer's: "403", "413", "529" (overloaded) and "stream_error"
(a streamed reply that sends a few events, then an `event: error` overloaded_error frame).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from tests.fakes.base import Failure, FakeServer, Reply, Request, reply_to, sse, words
from tests.fakes.spec import FakeSpec, Refusal

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

TOP_LEVEL = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "thinking",
    "metadata",
    "service_tier",
    "output_config",
    "container",
    "mcp_servers",
    "context_management",
    "inference_geo",
}

VERSIONS = {"2023-01-01", "2023-06-01", "2026-10-21"}
UNSAMPLED_VERSIONS = {"2026-10-21"}  # the versions without temperature, top_p and top_k
SAMPLING = ("temperature", "top_p", "top_k")
# The models that still take temperature and top_p together (before Opus 4.1 / Sonnet 4.5).
BOTH_SAMPLING = ("claude-2", "claude-3", "claude-opus-4-2025", "claude-sonnet-4-2025")
TOOL_CHOICES = {"auto", "any", "tool", "none"}

BLOCK_TYPES = {
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
}


class BadRequest(Exception):
    pass


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content or () if b.get("type") == "text")


def _describe(content: Any) -> str:
    """What the fake "model" reads in a user turn: its text, images/documents and tool results."""
    if isinstance(content, str):
        return content
    texts, media, results = [], 0, []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind in ("image", "document"):
            media += 1
        elif kind == "tool_result":
            results.append(_text_of(block.get("content", "")))
    text = " ".join([*results, *texts]) if results else " ".join(texts)
    return text + (f" [{media} image(s)]" if media else "")


class AnthropicFake(FakeServer):
    """Models it serves are `models` (id -> display name); an unknown one is a 404."""

    def __init__(self, api_key: str | None = "fake-key", models: dict[str, str] | None = None):
        super().__init__(api_key)
        self._auth = threading.local()
        self.models = models or {
            "claude-sonnet-4-6": "Claude Sonnet 4.6",
            "claude-haiku-4-5-20251001": "Claude Haiku 4.5",
            "claude-opus-4-5-20251101": "Claude Opus 4.5",
        }
        self.route("POST", "/v1/messages", self.messages)
        self.route("POST", "/v1/messages/count_tokens", self.count_tokens)
        self.route("GET", "/v1/models", self.list_models)
        self.route("GET", "/v1/models/{model_id}", self.get_model)

    # --- family hooks -------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        # `x-api-key` is the documented header; the official client (2.x) sends the same key as
        # `Authorization: Bearer`, which the API takes too, reading x-api-key when both come.
        key, authorization = request.header("x-api-key"), request.header("authorization")
        self._auth.missing = not key and not authorization.startswith("Bearer ")
        if self.api_key is None:
            return True
        if key:
            return key == self.api_key
        return authorization == f"Bearer {self.api_key}"

    def unauthorized(self) -> Reply:
        if getattr(self._auth, "missing", False):
            return self.error(401, "x-api-key header is required")
        return self.error(401, "invalid x-api-key")

    def presented_key(self, request: Request) -> tuple[str, str]:
        if request.header("x-api-key"):
            return request.header("x-api-key"), request.header("x-api-key")
        return super().presented_key(request)

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        kind = extra.get("type") or ERROR_TYPES.get(status, "api_error")
        return Reply(
            status,
            {
                "type": "error",
                "error": {"type": kind, "message": message},
                "request_id": f"req_fake{len(self.received):06d}",
            },
            headers={"request-id": f"req_fake{len(self.received):06d}"},
        )

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        mode = failure.mode if failure is not None else ""
        if mode == "403":
            return self.error(403, "Your API key does not have permission to use the model.")
        if mode == "413":
            return self.error(413, "Request exceeds the maximum allowed number of bytes.")
        if mode == "529":
            return self.error(529, "Overloaded")
        if mode == "500":
            return self.error(500, "Internal server error")
        if mode == "429":
            reply = self.error(
                429, "Number of request tokens has exceeded your per-minute rate limit."
            )
            reply.headers["retry-after"] = str(failure.retry_after)
            return reply
        if mode == "404":
            return self.error(404, "model: claude-missing")
        if mode == "broken_json":
            return Reply(200, b'{"id": "msg_x", "type": "message", "content": [')
        if mode in ("", "slow", "drop_stream", "stream_error"):
            version = request.header("anthropic-version")
            if not version:
                return self.error(400, "anthropic-version: header is required")
            if version not in VERSIONS:
                return self.error(400, f'anthropic-version: "{version}" is not a valid version')
        if mode == "stream_error":
            reply = super()._reply(request, None)
            if reply.stream is not None:
                reply.stream = self._fail_midway(reply.stream)
            return reply
        return super()._reply(request, failure)

    def _fail_midway(self, frames: Iterator[bytes]) -> Iterator[bytes]:
        for i, frame in enumerate(frames):
            if i == 5:
                break
            yield frame
        payload = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        yield f"event: error\ndata: {json.dumps(payload)}\n\n".encode()

    # --- /v1/messages -------------------------------------------------------------------------

    def unknown_model(self, model: str) -> Reply | None:
        if model in self.models:
            return None
        return self.error(404, f"model: {model}")

    def check(self, body: Any, version: str = "2023-06-01") -> None:
        """The API's own validation (under API `version`), as far as our code could get it
        wrong."""
        if not isinstance(body, dict):
            raise BadRequest("body: Input should be an object")
        for key in body:
            if key not in TOP_LEVEL or (version in UNSAMPLED_VERSIONS and key in SAMPLING):
                raise BadRequest(f"{key}: Extra inputs are not permitted")
        for key in ("model", "max_tokens", "messages"):
            if key not in body:
                raise BadRequest(f"{key}: Field required")
        if not isinstance(body["model"], str):
            raise BadRequest("model: Input should be a valid string")
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            raise BadRequest("max_tokens: Input should be greater than or equal to 1")
        self._check_sampling(body)
        messages = body["messages"]
        if not isinstance(messages, list):
            raise BadRequest("messages: Input should be a valid list")
        if not messages:
            raise BadRequest("messages: at least one message is required")
        tool_ids: set[str] = set()
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise BadRequest(f"messages.{i}: Input should be a valid dictionary")
            role = message.get("role")
            if role not in ("user", "assistant"):
                raise BadRequest(
                    f'messages.{i}.role: Input should be "user" or "assistant" (system prompts '
                    'go in the top-level "system" parameter)'
                )
            content = message.get("content")
            if isinstance(content, str):
                tool_ids = set()
                continue
            if not isinstance(content, list):
                raise BadRequest(f"messages.{i}.content: Input should be a string or a list")
            for j, block in enumerate(content):
                self._check_block(block, f"messages.{i}.content.{j}", role, tool_ids)
            tool_ids = {b["id"] for b in content if b.get("type") == "tool_use"}
        self._check_tool_choice(body.get("tool_choice"))
        for k, tool in enumerate(body.get("tools") or ()):
            if not tool.get("name") or "input_schema" not in tool:
                raise BadRequest(f"tools.{k}: name and input_schema are required")
            if tool["input_schema"].get("type") != "object":
                raise BadRequest(f"tools.{k}.input_schema.type: Input should be 'object'")
        for stop in body.get("stop_sequences") or ():
            if not stop.strip():
                raise BadRequest("stop_sequences: each stop sequence must contain non-whitespace")
        thinking = body.get("thinking") or {}
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens") or 0
            if budget < 1024 or budget >= body["max_tokens"]:
                raise BadRequest(
                    "thinking.budget_tokens: must be at least 1024 and less than max_tokens"
                )
        if thinking.get("type") in ("enabled", "adaptive") and body.get("temperature", 1) != 1:
            raise BadRequest("temperature may only be set to 1 when thinking is enabled")

    @staticmethod
    def _check_sampling(body: dict[str, Any]) -> None:
        for key in ("temperature", "top_p"):
            value = body.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadRequest(f"{key}: Input should be a valid number")
            if not 0 <= value <= 1:
                raise BadRequest(f"{key}: range: 0..1")
        top_k = body.get("top_k")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
            raise BadRequest("top_k: Input should be a non-negative integer")
        both = body.get("temperature") is not None and body.get("top_p") is not None
        if both and not str(body["model"]).startswith(BOTH_SAMPLING):
            raise BadRequest(
                "`temperature` and `top_p` cannot both be specified for this model. "
                "Please use only one."
            )

    @staticmethod
    def _check_tool_choice(choice: Any) -> None:
        if choice is None:
            return
        if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES:
            raise BadRequest(
                "tool_choice: Input tag found using 'type' does not match any of the expected "
                "tags: 'auto', 'any', 'tool', 'none'"
            )
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise BadRequest("tool_choice.tool.name: Field required")

    def _check_block(self, block: Any, where: str, role: str, tool_ids: set[str]) -> None:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            raise BadRequest(f"{where}.type: Input tag '{kind}' found is not one of the expected")
        if kind == "text" and not block.get("text"):
            raise BadRequest(f"{where}: text content blocks must be non-empty")
        if kind in ("image", "document"):
            source = block.get("source") or {}
            if source.get("type") == "base64":
                if not source.get("media_type") or not source.get("data"):
                    raise BadRequest(f"{where}.source: media_type and data are required")
            elif source.get("type") == "url":
                if not str(source.get("url", "")).startswith(("http://", "https://")):
                    raise BadRequest(f"{where}.source.url: must be an http(s) URL")
            else:
                raise BadRequest(f"{where}.source.type: must be base64 or url")
        if kind == "tool_use" and (role != "assistant" or not isinstance(block.get("input"), dict)):
            raise BadRequest(f"{where}: tool_use blocks need an object input, in assistant turns")
        if kind == "tool_result":
            if role != "user":
                raise BadRequest(f"{where}: tool_result blocks belong in user turns")
            if block.get("tool_use_id") not in tool_ids:
                raise BadRequest(
                    f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message."
                )

    def messages(self, request: Request) -> Reply:
        try:
            body = request.json()
            self.check(body, request.header("anthropic-version"))
        except (BadRequest, ValueError) as exc:
            return self.error(400, str(exc))
        missing = self.unknown_model(body["model"])
        if missing:
            return missing
        message = self.answer(body)
        if body.get("stream"):
            return Reply(stream=self._stream(message), content_type="text/event-stream")
        return Reply(200, message)

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The reply message, computed from the request."""
        last = body["messages"][-1]
        heard = _describe(last["content"]) if last["role"] == "user" else ""
        answered_tool = isinstance(last["content"], list) and any(
            b.get("type") == "tool_result" for b in last["content"]
        )
        content: list[dict[str, Any]] = []
        thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        if thinking:
            content.append(
                {"type": "thinking", "thinking": f"They said {heard}.", "signature": "c2lnbmF0dXJl"}
            )
        tools = body.get("tools") or []
        choice = body.get("tool_choice") or {"type": "auto"}
        stop_reason, stop_sequence = "end_turn", None
        if tools and choice.get("type") != "none" and not answered_tool:
            tool = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_fake{len(self.received):04d}",
                    "name": tool["name"],
                    "input": {"query": heard},
                }
            )
            stop_reason = "tool_use"
        else:
            answer = reply_to(heard)
            for stop in body.get("stop_sequences") or ():
                if stop in answer:
                    answer, stop_reason, stop_sequence = (
                        answer.split(stop)[0],
                        "stop_sequence",
                        stop,
                    )
                    break
            if words(answer) > body["max_tokens"]:
                answer = " ".join(answer.split()[: body["max_tokens"]])
                stop_reason, stop_sequence = "max_tokens", None
            content.append({"type": "text", "text": answer})
        system = body.get("system") or ""
        system_text = system if isinstance(system, str) else _text_of(system)
        input_tokens = words(system_text) + sum(
            words(_describe(m["content"])) if m["role"] == "user" else words(_text_of(m["content"]))
            for m in body["messages"]
        )
        output_tokens = sum(
            words(b.get("text") or b.get("thinking") or json.dumps(b.get("input", "")))
            for b in content
        )
        return {
            "id": f"msg_fake{len(self.received):06d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output_tokens,
                "service_tier": "standard",
            },
        }

    def _stream(self, message: dict[str, Any]) -> Iterator[bytes]:
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**message["usage"], "output_tokens": 1},
        }
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start})
        ]
        for index, block in enumerate(message["content"]):
            kind = block["type"]
            if kind == "text":
                opening: dict[str, Any] = {"type": "text", "text": ""}
                pieces = [
                    ("text_delta", "text", w if i == 0 else " " + w)
                    for i, w in enumerate(block["text"].split(" "))
                ]
            elif kind == "thinking":
                opening = {"type": "thinking", "thinking": "", "signature": ""}
                pieces = [("thinking_delta", "thinking", block["thinking"])]
                pieces.append(("signature_delta", "signature", block["signature"]))
            else:
                opening = {**block, "input": {}}
                arguments = json.dumps(block["input"])
                cut = len(arguments) // 2
                pieces = [
                    ("input_json_delta", "partial_json", ""),
                    ("input_json_delta", "partial_json", arguments[:cut]),
                    ("input_json_delta", "partial_json", arguments[cut:]),
                ]
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": opening},
                )
            )
            if index == 0:
                events.append(("ping", {"type": "ping"}))
            for delta_type, name, value in pieces:
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": delta_type, name: value},
                        },
                    )
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": message["stop_reason"],
                        "stop_sequence": message["stop_sequence"],
                    },
                    "usage": {"output_tokens": message["usage"]["output_tokens"]},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return sse(events, named=True, done=False)

    def count_tokens(self, request: Request) -> Reply:
        body = request.json()
        missing = self.unknown_model(body.get("model", ""))
        if missing:
            return missing
        try:
            self.check({**body, "max_tokens": 1}, request.header("anthropic-version"))
        except BadRequest as exc:
            return self.error(400, str(exc))
        return Reply(
            200, {"input_tokens": self.answer({**body, "max_tokens": 1})["usage"]["input_tokens"]}
        )

    # --- /v1/models ---------------------------------------------------------------------------

    def _model(self, model_id: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model_id,
            "display_name": self.models[model_id],
            "created_at": "2025-10-01T00:00:00Z",
        }

    def list_models(self, request: Request) -> Reply:
        ids = list(self.models)
        limit = int((request.query.get("limit") or ["20"])[0])
        if not 1 <= limit <= 1000:
            return self.error(400, "limit: Input should be between 1 and 1000")
        after = (request.query.get("after_id") or [""])[0]
        if after:
            ids = ids[ids.index(after) + 1 :] if after in ids else []
        page = ids[:limit]
        return Reply(
            200,
            {
                "data": [self._model(i) for i in page],
                "has_more": len(ids) > limit,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            },
        )

    def get_model(self, request: Request) -> Reply:
        model_id = request.params["model_id"]
        if model_id not in self.models:
            return self.error(404, f"model: {model_id}")
        return Reply(200, self._model(model_id))


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> AnthropicFake:
    return AnthropicFake(api_key=credentials["api_key"], models={m: m for m in models.values()})


def sign_in(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """As the API reference's curl examples do: `x-api-key` and `anthropic-version`."""
    return {**headers, "x-api-key": credentials["api_key"], "anthropic-version": "2023-06-01"}


HI = {"model": "{model}", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
TOOL = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
# Sources: the API reference (platform.claude.com/docs/en/api/messages, .../api/errors,
# .../api/versioning) and the bodies quoted in the module docstring's threads.
REFUSALS = (
    Refusal(
        "a wrong key",
        "/v1/messages",
        HI,
        status=401,
        says="authentication_error",
        headers={"x-api-key": "sk-ant-wrong"},
    ),
    Refusal(
        "no key",
        "/v1/messages",
        HI,
        status=401,
        says="x-api-key header is required",
        headers={"x-api-key": None},
    ),
    Refusal(
        "the key in Authorization without Bearer",
        "/v1/messages",
        HI,
        status=401,
        says="authentication_error",
        # the walk's sample key for Anthropic's form (tests/fakes/catalog.py `_sample`)
        headers={"x-api-key": None, "Authorization": "sample-anthropic-anthropic_api_key-7f3a"},
    ),
    Refusal(
        "no anthropic-version",
        "/v1/messages",
        HI,
        says="anthropic-version: header is required",
        headers={"anthropic-version": None},
    ),
    Refusal(
        "an unknown anthropic-version",
        "/v1/messages",
        HI,
        says="is not a valid version",
        headers={"anthropic-version": "2023-10-01"},
    ),
    Refusal(
        "no max_tokens",
        "/v1/messages",
        {"model": "{model}", "messages": [{"role": "user", "content": "hi"}]},
        says="max_tokens: Field required",
    ),
    Refusal(
        "messages as a string",
        "/v1/messages",
        {**HI, "messages": "hi"},
        says="messages: Input should be a valid list",
    ),
    Refusal("an unknown model", "/v1/messages", {**HI, "model": "claude-nope"}, status=404),
    Refusal(
        "an unknown field",
        "/v1/messages",
        {**HI, "frequency_penalty": 1},
        says="frequency_penalty: Extra inputs are not permitted",
    ),
    Refusal(
        "temperature 5", "/v1/messages", {**HI, "temperature": 5}, says="temperature: range: 0..1"
    ),
    Refusal(
        "temperature and top_p together",
        "/v1/messages",
        {**HI, "temperature": 0.5, "top_p": 0.9},
        says="cannot both be specified",
    ),
    Refusal(
        "temperature under 2026-10-21",
        "/v1/messages",
        {**HI, "temperature": 1},
        says="temperature: Extra inputs are not permitted",
        headers={"anthropic-version": "2026-10-21"},
    ),
    Refusal(
        "a tool choice without a name",
        "/v1/messages",
        {**HI, "tools": [TOOL], "tool_choice": {"type": "tool"}},
        says="tool_choice.tool.name: Field required",
    ),
)

SPEC = FakeSpec("anthropic", client="anthropic", serve=_serve, refusals=REFUSALS, sign_in=sign_in)
