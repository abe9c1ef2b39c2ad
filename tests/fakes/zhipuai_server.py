# ruff: noqa: RUF001, RUF002 -- the platform's own messages use full-width punctuation
"""A fake of Zhipu AI's BigModel API v4 under /api/paas/v4: POST /chat/completions (JSON, or SSE
chunks ending in `data: [DONE]` with usage in the last chunk) and POST /embeddings. Checked by the
official `zhipuai` client in tests/unit/runtime/test_zhipuai_fake.py.

Auth is `Authorization: Bearer <token>`, where the token is the bare API key or an HS256 JWT made
from its `<id>.<secret>` (header `sign_type: SIGN`, payload `api_key`, `exp`, `timestamp` in
milliseconds), whose signature is checked with the secret. Errors are
`{"error": {"code": "<business code>", "message": ...}}` with the codes and words of
https://docs.bigmodel.cn/cn/faq/api-code: 401 with 1001 (no header), 1002 (a token that is not
valid), 1003 (an expired token); an unknown bare key gets the 401 answer users report
("令牌已过期或验证不正确！"); 400 with 1211 (unknown model), 1213/1214 (a missing or invalid field:
an ill-typed content, tools or calls, a temperature or top_p outside [0, 1], more than one stop
word), 1210 (a body that is not an object). Its Chinese words come as they are, not escaped.

Extra failure modes: "1113" (arrears, 429), "1302" (rate limit, 429), "1261" (prompt too long,
400), "1301" (unsafe content, 400), "sensitive" (a reply cut off by moderation:
`finish_reason: sensitive`), "network_error" (the same with `finish_reason: network_error`) and
"stream_error" (a stream whose chunks are followed by an error object quoting the credential).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import jwt
from zhipuai.core._jwt_token import generate_token

from tests.fakes.base import Failure, FakeServer, Reply, Request, reply_to, sse, words
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

PREFIX = "/api/paas/v4"
MESSAGES = {
    "1001": "Header中未收到Authorization参数，无法进行身份验证。",
    "1002": "Authorization Token非法，请确认Authorization Token正确传递。",
    "1003": "Authorization Token已过期，请重新生成/获取。",
    "1113": "您的账户已欠费，请充值后重试。",
    "1211": "模型不存在，请检查模型代码。",
    "1261": "Prompt 超长。",
    "1301": "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语",
    "1302": "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。",
}
CODED_FAILURES = {"1113": 429, "1302": 429, "1261": 400, "1301": 400}
STATUS_CODES = {400: "1210", 404: "1211", 429: "1302", 500: "500"}
EMBEDDING_3_DIMENSIONS = (256, 512, 1024, 2048)
MAX_EMBED_TEXTS = 64
ROLES = ("system", "user", "assistant", "tool")


class BadRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def vector(text: str, dimensions: int) -> list[float]:
    """A stable vector of any length for a text."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(round(b / 255, 6) for b in digest)
        counter += 1
    return values[:dimensions]


def _content_text(content: Any) -> tuple[str, int]:
    if isinstance(content, list):
        text = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        return text, sum(1 for p in content if p.get("type") == "image_url")
    return str(content or ""), 0


class ZhipuFake(FakeServer):
    """Serves `models` (name -> llm | text-embedding); `vision` models take images."""

    def __init__(
        self,
        api_key: str | None = "fake-id.fake-secret",
        models: Mapping[str, str] | None = None,
        vision: set[str] | None = None,
    ) -> None:
        super().__init__(api_key)
        self.models = dict(
            models
            or {
                "glm-5-turbo": "llm",
                "glm-4.7": "llm",
                "glm-4.6v": "llm",
                "embedding-3": "text-embedding",
                "embedding-2": "text-embedding",
            }
        )
        self.vision = vision if vision is not None else {"glm-4.6v", "glm-5v-turbo"}
        self.tokens_seen: list[str] = []  # every JWT accepted, in order
        self._refusal = threading.local()
        self.route("POST", f"{PREFIX}/chat/completions", self.chat)
        self.route("POST", f"{PREFIX}/embeddings", self.embeddings)

    # --- auth ---------------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        self._refusal.code = self._auth_problem(request.header("authorization"))
        return self._refusal.code is None

    def _auth_problem(self, header: str) -> str | None:
        if self.api_key is None:
            return None
        if not header:
            return "1001"
        token = header.removeprefix("Bearer ").strip()
        if token == self.api_key:
            return None
        if token.count(".") != 2:
            return "401"
        key_id, _, secret = self.api_key.partition(".")
        head, payload, signature = token.split(".")
        expected = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256)
        try:
            claims = json.loads(_b64(payload))
            header_fields = json.loads(_b64(head))
            signed = hmac.compare_digest(_b64(signature), expected.digest())
        except (ValueError, TypeError):
            return "1002"
        if not signed or header_fields.get("alg") != "HS256" or claims.get("api_key") != key_id:
            return "1002"
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time() * 1000:
            return "1003"
        self.tokens_seen.append(token)
        return None

    def unauthorized(self) -> Reply:
        code = getattr(self._refusal, "code", None) or "1002"
        if code == "401":
            return self.error(401, "令牌已过期或验证不正确！", code="401")
        return self.coded(401, code)

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        code = str(extra.get("code") or "")
        if not code.isdigit():
            code = STATUS_CODES.get(status, str(status))
        # The platform writes its Chinese words as they are, not as \\u escapes.
        body = {"error": {"code": code, "message": message}}
        return Reply(status, json.dumps(body, ensure_ascii=False).encode())

    def coded(self, status: int, code: str, message: str = "") -> Reply:
        return self.error(status, message or MESSAGES[code], code=code)

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        mode = failure.mode if failure is not None else ""
        if mode in CODED_FAILURES:
            return self.coded(CODED_FAILURES[mode], mode)
        if mode in ("sensitive", "network_error", "stream_error"):
            reply = super()._reply(request, None)
            if reply.stream is not None:
                reply.stream = self._cut(reply.stream, mode, request)
            elif isinstance(reply.body, dict) and reply.body.get("choices"):
                reply.body["choices"][0]["finish_reason"] = mode
            return reply
        return super()._reply(request, failure)

    def _cut(self, frames: Iterator[bytes], mode: str, request: Request) -> Iterator[bytes]:
        for i, frame in enumerate(frames):
            if i == 2:
                if mode == "stream_error":
                    error = {"error": {"code": "1234", "message": self.echo_key(request)}}
                    yield f"data: {json.dumps(error)}\n\n".encode()
                    return
                last = {"id": "cut", "choices": [{"index": 0, "finish_reason": mode, "delta": {}}]}
                yield f"data: {json.dumps(last)}\n\n".encode()
                yield b"data: [DONE]\n\n"
                return
            yield frame

    # --- checks -------------------------------------------------------------------------------

    def check_model(self, body: Any, model_type: str) -> None:
        if not isinstance(body, dict):
            raise BadRequest("1210", "API 调用参数有误，请检查文档。")
        model = body.get("model")
        if not model:
            raise BadRequest("1213", "未正常接收到model参数")
        if self.models.get(model) != model_type:
            raise BadRequest("1211", MESSAGES["1211"])

    def check_chat(self, body: dict[str, Any]) -> None:
        self.check_model(body, "llm")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("1213", "未正常接收到messages参数")
        called: set[str] = set()
        for message in messages:
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ROLES:
                raise BadRequest("1214", "messages参数非法。请检查文档。")
            calls, content = message.get("tool_calls") or [], message.get("content")
            if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
                raise BadRequest("1214", "messages参数非法。请检查文档。")
            if not (
                content is None
                or isinstance(content, str)
                or (isinstance(content, list) and all(isinstance(p, dict) for p in content))
            ):
                raise BadRequest("1214", "messages参数非法。请检查文档。")
            called.update(c.get("id", "") for c in calls)
            if role == "tool" and message.get("tool_call_id") not in called:
                raise BadRequest("1214", "messages参数非法：tool_call_id 不对应任何工具调用。")
            _, images = _content_text(message.get("content"))
            if images and body["model"] not in self.vision:
                raise BadRequest("1210", "当前模型不支持图片输入。")
            for part in message.get("content") if isinstance(message.get("content"), list) else ():
                url = (part.get("image_url") or {}).get("url", "")
                if part.get("type") == "image_url" and (not url or url.startswith("data:")):
                    raise BadRequest("1214", "image_url参数非法。请检查文档。")
        for name, low, high in (("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0)):
            value = body.get(name)
            if value is not None and not (isinstance(value, (int, float)) and low <= value <= high):
                raise BadRequest("1214", f"{name}参数非法。请检查文档。")
        if "max_tokens" in body and not (
            isinstance(body["max_tokens"], int) and body["max_tokens"] >= 1
        ):
            raise BadRequest("1214", "max_tokens参数非法。请检查文档。")
        if body.get("tool_choice", "auto") != "auto":
            raise BadRequest("1214", "tool_choice参数非法，目前仅支持auto。")
        thinking = body.get("thinking")
        if thinking is not None and (thinking or {}).get("type") not in ("enabled", "disabled"):
            raise BadRequest("1214", "thinking参数非法。请检查文档。")
        tools = body.get("tools") or []
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise BadRequest("1214", "tools参数非法。请检查文档。")
        stop = body.get("stop")
        if stop is not None and not (
            isinstance(stop, list) and len(stop) <= 1 and all(isinstance(w, str) for w in stop)
        ):
            raise BadRequest("1214", "stop参数非法，目前仅支持单个停止词。")
        for tool in tools:
            if tool.get("type") == "function" and not (tool.get("function") or {}).get("name"):
                raise BadRequest("1214", "tools参数非法。请检查文档。")

    # --- chat ---------------------------------------------------------------------------------

    def chat(self, request: Request) -> Reply:
        try:
            body = request.json()
            self.check_chat(body)
        except BadRequest as exc:
            return self.coded(400, exc.code, str(exc))
        except ValueError:
            return self.coded(400, "1214", "请求体不是合法的 JSON。")
        message, finish = self.answer(body)
        prompt = sum(words(_content_text(m.get("content"))[0]) for m in body["messages"])
        completion = words(message.get("content") or "") + sum(
            words(c["function"]["arguments"]) for c in message.get("tool_calls") or ()
        )
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        reply_id = f"2025{len(self.received):016d}"
        if body.get("stream"):
            return Reply(
                stream=self._stream(reply_id, body["model"], message, finish, usage),
                content_type="text/event-stream; charset=utf-8",
            )
        return Reply(
            200,
            {
                "id": reply_id,
                "request_id": reply_id,
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                "usage": usage,
            },
        )

    def answer(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        messages = body["messages"]
        message: dict[str, Any] = {"role": "assistant"}
        if (body.get("thinking") or {}).get("type") == "enabled":
            message["reasoning_content"] = "The user wrote something; I will echo it."
        functions = [t["function"] for t in body.get("tools") or () if t.get("type") == "function"]
        if messages[-1]["role"] == "tool":
            results = []
            for earlier in reversed(messages):
                if earlier["role"] != "tool":
                    break
                results.insert(0, _content_text(earlier.get("content"))[0])
            text = "Tool said: " + " | ".join(results)
        else:
            heard, images = next(
                (
                    _content_text(m.get("content"))
                    for m in reversed(messages)
                    if m["role"] == "user"
                ),
                ("", 0),
            )
            if functions:
                arguments = json.dumps({"query": heard}, ensure_ascii=False)
                digest = hashlib.sha256(arguments.encode()).hexdigest()[:12]
                message["content"] = ""
                message["tool_calls"] = [
                    {
                        "id": f"call_{f['name']}_{digest}",
                        "type": "function",
                        "index": i,
                        "function": {"name": f["name"], "arguments": arguments},
                    }
                    for i, f in enumerate(functions)
                ]
                return message, "tool_calls"
            text = reply_to(heard + (f" [{images} image(s)]" if images else ""))
        finish = "stop"
        for stop in body.get("stop") or ():
            if stop and stop in text:
                text = text[: text.index(stop)]
        limit = body.get("max_tokens")
        if limit and words(text) > limit:
            text, finish = " ".join(text.split()[:limit]), "length"
        message["content"] = text
        return message, finish

    def _stream(self, reply_id, model, message, finish, usage) -> Iterator[bytes]:
        def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
            choice = {"index": 0, "delta": {"role": "assistant", **delta}, **extra}
            return {
                "id": reply_id,
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
            }

        events = []
        if message.get("reasoning_content"):
            events.append(chunk({"reasoning_content": message["reasoning_content"]}))
        if message.get("tool_calls"):
            events.append(chunk({"tool_calls": message["tool_calls"]}))
        else:
            for i, word in enumerate(message["content"].split(" ")):
                events.append(chunk({"content": word if i == 0 else " " + word}))
        events.append({**chunk({"content": ""}, finish_reason=finish), "usage": usage})
        return sse(events)

    # --- embeddings ---------------------------------------------------------------------------

    def embeddings(self, request: Request) -> Reply:
        try:
            body = request.json()
            self.check_model(body, "text-embedding")
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else texts
            if not texts or not all(isinstance(t, str) and t for t in texts):
                raise BadRequest("1214", "input参数非法。请检查文档。")
            if len(texts) > MAX_EMBED_TEXTS:
                raise BadRequest("1214", f"input参数非法，数组最大不得超过{MAX_EMBED_TEXTS}。")
            dimensions = body.get("dimensions")
            allowed = EMBEDDING_3_DIMENSIONS if body["model"] == "embedding-3" else (1024,)
            if dimensions is not None and dimensions not in allowed:
                raise BadRequest("1214", "dimensions参数非法。请检查文档。")
        except BadRequest as exc:
            return self.coded(400, exc.code, str(exc))
        size = dimensions or 8  # the fake's own default: short vectors keep tests quick
        tokens = sum(words(t) for t in texts)
        return Reply(
            200,
            {
                "model": body["model"],
                "object": "list",
                "data": [
                    {"index": i, "object": "embedding", "embedding": vector(t, size)}
                    for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
            },
        )


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> ZhipuFake:
    return ZhipuFake(
        api_key=credentials.get("api_key"),
        models={model: kind for kind, model in models.items()},
        vision={models["llm"]} if "llm" in models else set(),
    )


SAMPLE_KEY = "9f8e7d6c5b4a.Zs3cr3tP4rtOfTheKey"
CHAT = f"{PREFIX}/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def _token(secret: str, exp_millis: int) -> str:
    """A JWT for the sample key's id, signed with `secret`, expiring at `exp_millis`."""
    claims = {"api_key": SAMPLE_KEY.split(".")[0], "exp": exp_millis, "timestamp": 0}
    headers = {"alg": "HS256", "sign_type": "SIGN"}
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers)


def _sign_in(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """As the official SDK signs in: a JWT made from `<id>.<secret>` (its own generator)."""
    return {**headers, "Authorization": f"Bearer {generate_token(credentials['api_key'])}"}


# Codes and words: https://docs.bigmodel.cn/cn/faq/api-code (https://docs.z.ai/api-reference/
# api-code); a wrong bare key's words as users quote them; ranges and the single stop word:
# https://docs.bigmodel.cn/api-reference (chat completions: temperature [0, 1], "stop" holds
# one word).
SPEC = FakeSpec(
    family="zhipuai",
    client="zhipuai",
    serve=_serve,
    aim=aim_base_url(PREFIX),
    samples=lambda: {"api_key": SAMPLE_KEY},
    sign_in=_sign_in,
    refusals=(
        Refusal(
            "no Authorization header",
            CHAT,
            {"model": "{model}", "messages": HI},
            status=401,
            says="1001",
            headers={"Authorization": None},
        ),
        Refusal(
            "a wrong bare key",
            CHAT,
            {"model": "{model}", "messages": HI},
            status=401,
            says="令牌已过期或验证不正确",
            headers={"Authorization": "Bearer 0000.wrong"},
        ),
        Refusal(
            "a JWT signed with another secret",
            CHAT,
            {"model": "{model}", "messages": HI},
            status=401,
            says="1002",
            headers={"Authorization": f"Bearer {_token('not-the-secret', 4102444800000)}"},
        ),
        Refusal(
            "an expired JWT",
            CHAT,
            {"model": "{model}", "messages": HI},
            status=401,
            says="1003",
            headers={"Authorization": f"Bearer {_token(SAMPLE_KEY.split('.')[1], 1000)}"},
        ),
        Refusal("no model", CHAT, {"messages": HI}, says="1213"),
        Refusal("no messages", CHAT, {"model": "{model}"}, says="1213"),
        Refusal("an unknown model", CHAT, {"model": "glm-no-such", "messages": HI}, says="1211"),
        Refusal(
            "a content that is an object",
            CHAT,
            {"model": "{model}", "messages": [{"role": "user", "content": {"text": "hi"}}]},
            says="1214",
        ),
        Refusal(
            "a temperature of 1.5",
            CHAT,
            {"model": "{model}", "messages": HI, "temperature": 1.5},
            says="1214",
        ),
        Refusal(
            "two stop words",
            CHAT,
            {"model": "{model}", "messages": HI, "stop": ["a", "b"]},
            says="1214",
        ),
        Refusal("a body that is a list", CHAT, [{"model": "{model}"}], says="1210"),
        Refusal(
            "an embedding of an empty text",
            f"{PREFIX}/embeddings",
            {"model": "{model}", "input": [""]},
            says="1214",
            model_type="text-embedding",
        ),
    ),
)
