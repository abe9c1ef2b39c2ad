"""Zhipu AI's BigModel open platform (API v4): OpenAI-like /chat/completions (SSE ending in
`data: [DONE]`, usage in the last chunk) and /embeddings, under https://open.bigmodel.cn/api/paas/v4.

Credentials: `api_key`, `base_url` (overrides the manifest's). A key of the form `<id>.<secret>`
is sent as a short-lived HS256 JWT signed with the secret, made as the official `zhipuai` SDK
makes it (header `{"alg": "HS256", "sign_type": "SIGN"}`, payload `{api_key, exp, timestamp}` in
milliseconds, 210 s of life) and kept in `tokens.TOKENS`; any other key is sent as it is (the
platform takes a bare key as Bearer too, which is what the SDK sends by default).

Errors carry a business code, `{"error": {"code": "1002", "message": ...}}`, which decides the
class over the HTTP status: 1000-1004 auth (1003: the token expired), 1113 arrears and the
1304/1308/1310 usage caps quota, 1302/1303/1305/1312 rate limits, 1211 an unknown model, 1210-
1215, 1261 (prompt too long) and 1301 (unsafe content) bad requests. More than one stop word
is refused here, as the API would refuse it (1214).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import jwt

from config import errors
from providers.runtime.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    TokenTally,
    Tool,
)
from providers.runtime.http import Response
from providers.runtime.openai_compat import OpenAICompatAdapter, function_tools
from providers.runtime.tokens import TOKENS, TokenCache

TOKEN_SECONDS = 210  # the official SDK's token life (a 3-minute cache, plus 30 s)
MAX_EMBED_BATCH = 64  # embedding-3 takes at most 64 texts a request

AUTH_CODES = {
    "1000",
    "1001",
    "1002",
    "1003",
    "1004",
    "1110",
    "1111",
    "1112",
    "1120",
    "1121",
    "1220",
}
QUOTA_CODES = {"1113", "1304", "1308", "1309", "1310"}
RATE_CODES = {"1302", "1303", "1305", "1312", "1313"}
NOT_FOUND_CODES = {"1211", "1221", "1222"}
BAD_REQUEST_CODES = {"1210", "1212", "1213", "1214", "1215", "1261", "1300", "1301"}
MAX_STOPS = 1  # the API's `stop` holds one word (its OpenAPI: maxItems 1)
FINISH_REASONS = {"sensitive": "content_filter", "model_context_window_exceeded": "length"}


def signed_token(api_key: str, now: float | None = None) -> str:
    """The JWT Zhipu takes for `<id>.<secret>`, valid TOKEN_SECONDS from `now`."""
    key_id, _, secret = api_key.partition(".")
    millis = round((time.time() if now is None else now) * 1000)
    return jwt.encode(
        {"api_key": key_id, "exp": millis + TOKEN_SECONDS * 1000, "timestamp": millis},
        secret,
        algorithm="HS256",
        headers={"alg": "HS256", "sign_type": "SIGN"},
    )


def _signs(api_key: str) -> bool:
    key_id, dot, secret = api_key.partition(".")
    return bool(dot and key_id and secret and "." not in secret)


def error_code(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def error_class(code: str, default: type[errors.UpstreamError]) -> type[errors.UpstreamError]:
    for codes, cls in (
        (AUTH_CODES, errors.UpstreamAuth),
        (QUOTA_CODES, errors.UpstreamQuota),
        (RATE_CODES, errors.UpstreamRateLimited),
        (NOT_FOUND_CODES, errors.UpstreamNotFound),
        (BAD_REQUEST_CODES, errors.UpstreamBadRequest),
    ):
        if code in codes:
            return cls
    return default


class ZhipuAIAdapter(OpenAICompatAdapter):
    family = "zhipuai"
    offers = frozenset({"chat", "stream", "embed"})
    tokens: ClassVar[TokenCache] = TOKENS

    # --- auth ---------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {}  # `sign` adds the token for every attempt

    def _api_key(self) -> str:
        return str(self.endpoint.credentials.get("api_key") or "").strip()

    def _token_key(self) -> str:
        return TokenCache.key(self.family, self._api_key())

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        api_key = self._api_key()
        if not api_key:
            return headers
        token = api_key
        if _signs(api_key):
            token = self.tokens.get(
                self._token_key(), lambda: (signed_token(api_key), float(TOKEN_SECONDS))
            )
        return {**headers, "Authorization": f"Bearer {token}"}

    # --- errors -------------------------------------------------------------------------------

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """The business code decides; a refused token is dropped so the next call signs anew."""
        if response.status_code == 401:
            self.tokens.forget(self._token_key())
        try:
            code = error_code(response.json())
        except ValueError:
            return failure
        cls = error_class(code, type(failure))
        if cls is type(failure):
            return failure
        if cls is errors.UpstreamRateLimited:
            return errors.UpstreamRateLimited(
                failure.message, retry_after=getattr(failure, "retry_after", None)
            )
        return cls(failure.message)

    def error_message(self, body: Any) -> str:
        code = error_code(body)
        message = super().error_message(body)
        return f"{message} (code {code})" if code else message

    # --- chat ---------------------------------------------------------------------------------

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The OpenAI body, less what Zhipu lacks (stream_options, tool choices beyond auto),
        plus its own switches (thinking, web_search) and base64 images without a data: header."""
        body = super().chat_body(model, request, stream=stream)
        body.pop("stream_options", None)
        if len(body.get("stop") or ()) > MAX_STOPS:
            raise errors.InvalidInput(
                f"Zhipu takes one stop word at most; {len(body['stop'])} were given.",
                fields={"stop": ["At most one stop word."]},
            )
        for message in body["messages"]:
            for part in message["content"] if isinstance(message["content"], list) else ():
                if part.get("type") == "image_url":
                    url = part["image_url"]["url"]
                    part["image_url"]["url"] = url.split(";base64,", 1)[-1]
        thinking = body.pop("thinking", None)
        if isinstance(thinking, dict):
            body["thinking"] = thinking
        elif thinking is not None:
            enabled = thinking is True or str(thinking).lower() == "true"
            body["thinking"] = {"type": "enabled" if enabled else "disabled"}
        schema = body.pop("json_schema", None)
        if isinstance(body.get("response_format"), str):
            body["response_format"] = {"type": body["response_format"]}
        if schema and body.get("response_format", {}).get("type") == "json_schema":
            body["response_format"]["json_schema"] = (
                json.loads(schema) if isinstance(schema, str) else schema
            )
        tools = self._offered(request)
        body.pop("tools", None)
        body.pop("tool_choice", None)
        web_search = body.pop("web_search", None)
        entries = function_tools(tools)
        if web_search is True or str(web_search).lower() == "true":
            entries.append({"type": "web_search", "web_search": {"enable": True}})
        if entries:
            body["tools"] = entries
            body["tool_choice"] = "auto"  # the only choice the API takes
        return body

    @staticmethod
    def _offered(request: ChatRequest) -> tuple[Tool, ...]:
        """The tools to offer: none for `none`, only the named one when one is named."""
        choice = request.tool_choice
        if not request.tools or choice == "none":
            return ()
        if choice and choice not in ("auto", "required"):
            return tuple(t for t in request.tools if t.name == choice) or request.tools
        return request.tools

    def _finish(self, reason: str | None) -> str | None:
        if reason == "network_error":
            raise errors.UpstreamUnavailable(
                "Zhipu's model failed while answering (network_error)."
            )
        return FINISH_REASONS.get(reason or "", reason)

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        result = super().chat(model, request)
        finish = self._finish(result.finish_reason) or "stop"
        return ChatResult(result.text, result.tool_calls, finish, result.usage, result.model)

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        for chunk in super().stream(model, request):
            if chunk.finish_reason:
                chunk = ChatChunk(
                    chunk.text, chunk.tool_calls, self._finish(chunk.finish_reason), chunk.usage
                )
            yield chunk

    def _events(self, model: str, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The streamed chunks; an error sent in the stream raises by its code."""
        response = self.http.request("POST", path, json_body=body, stream=True)
        for _, payload in self.http.sse(response):
            data = self.http.parse(payload)
            if isinstance(data, dict) and "error" in data and not data.get("choices"):
                cls = error_class(error_code(data), errors.UpstreamUnavailable)
                raise cls(self.http.bounded(self.error_message(data)))
            yield data

    # --- embeddings ---------------------------------------------------------------------------

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        options = self.endpoint.options
        batch = max(1, min(MAX_EMBED_BATCH, int(options.get("max_chunks") or MAX_EMBED_BATCH)))
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), batch):
            chunk = list(texts[start : start + batch])
            body: dict[str, Any] = {"model": model, "input": chunk}
            if options.get("dimensions"):
                body["dimensions"] = int(options["dimensions"])
            data = self.http.json("POST", "embeddings", json_body=body)
            rows = sorted(data.get("data") or (), key=lambda row: row.get("index", 0))
            if len(rows) != len(chunk):
                raise errors.UpstreamUnavailable(
                    f"Asked Zhipu for {len(chunk)} embeddings, got {len(rows)}: "
                    f"{self.http.bounded(json.dumps(data), 200)}"
                )
            vectors.extend(tuple(float(x) for x in row["embedding"]) for row in rows)
            usage = data.get("usage") or {}
            tally.add(usage.get("prompt_tokens", usage.get("total_tokens")), chunk)
        return EmbeddingResult(tuple(vectors), tally.usage)
