"""A fake of MiniMax's API: the Anthropic-compatible Messages API under /anthropic (the Anthropic
fake's checks and framing, MiniMax's models, a `thinking` block opening every answer as the M
models' do, MiniMax's 401 words, its 400s as `bad_request_error` "invalid params, ... (2013)"
with an `http_code`, an unknown model among them; temperature and top_p in (0, 1]; neither
`max_tokens` nor the anthropic-version header required) and the native
POST /v1/embeddings?GroupId=<group>.

The chat side is checked by the official `anthropic` client in
tests/unit/runtime/test_minimax_fake.py. The native embeddings API has no official Python client
on PyPI; this fake follows MiniMax's documented shapes (https://www.minimaxi.com/document/guides/
embeddings, and the implementations in Dify's plugin and LangChain): Bearer auth, a body of
`{model: "embo-01", texts, type: "db" | "query"}`, a reply of `{vectors, total_tokens, base_resp}`,
and every error an HTTP 200 whose `base_resp.status_code` is not 0 (1004 auth, 1002 rate limit,
1008 balance, 2013 invalid parameters, 1000 unknown error; `fail("401" | "429" | "500" | "404" |
"1008")` answers those there). A missing GroupId is a 2013 and a
GroupId not of the key's account a 1004: both are this fake's guesses (not documented).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.fakes.anthropic_server import AnthropicFake, BadRequest
from tests.fakes.base import Failure, FakeServer, Reply, Request, embed_text, words
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

LOGIN_FAIL = (
    "login fail: Please carry the API secret key in the 'Authorization' field of the request header"
)
CHAT_MODELS = (
    "MiniMax-M3",
    "MiniMax-M2.7",
    "MiniMax-M2.7-highspeed",
    "MiniMax-M2.5",
    "MiniMax-M2.5-highspeed",
    "MiniMax-M2.1",
    "MiniMax-M2",
)
EMBEDDING_MODELS = ("embo-01",)
DEFAULT_MAX_TOKENS = 2048
BASE_RESP_FAILURES = {"401": 1004, "429": 1002, "500": 1000, "404": 2013, "1008": 1008}
STATUS_MESSAGES = {
    1000: "unknown error",
    1002: "rate limit exceeded",
    1004: LOGIN_FAIL,
    1008: "insufficient balance",
    2013: "invalid params",
}


class MinimaxFake(AnthropicFake):
    """Serves `chat_models` at /anthropic/v1/messages and `embedding_models` at /v1/embeddings
    for the account `group_id`."""

    def __init__(
        self,
        api_key: str | None = "fake-key",
        group_id: str = "1900000000000000001",
        chat_models: tuple[str, ...] = CHAT_MODELS,
        embedding_models: tuple[str, ...] = EMBEDDING_MODELS,
    ) -> None:
        super().__init__(api_key, models={m: m for m in chat_models})
        self.group_id = group_id
        self.embedding_models = embedding_models
        self._routes.clear()  # the Anthropic routes move under /anthropic
        self.route("POST", "/anthropic/v1/messages", self.messages)

    # --- the Anthropic-compatible side --------------------------------------------------------

    def unauthorized(self) -> Reply:
        return self.error(401, LOGIN_FAIL)

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        """Anthropic's error body as MiniMax fills it: a 400 is `bad_request_error` with
        "invalid params, ... (2013)", and every error names its `http_code`."""
        if status == 400:
            extra["type"] = "bad_request_error"
            if not message.startswith("invalid params"):
                message = f"invalid params, {message} (2013)"
        reply = super().error(status, message, **extra)
        reply.body["error"]["http_code"] = str(status)
        return reply

    def unknown_model(self, model: str) -> Reply | None:
        if model in self.models:
            return None
        return self.error(400, f"invalid params, unknown model '{model}' (2013)")

    def check(self, body: Any, version: str = "2023-06-01") -> None:
        """Anthropic's checks, less the `max_tokens` MiniMax does without, plus its sampling
        ranges: temperature and top_p in (0, 1]."""
        if isinstance(body, dict) and "max_tokens" not in body:
            body = {**body, "max_tokens": DEFAULT_MAX_TOKENS}
        super().check(body, version)
        for name in ("temperature", "top_p"):
            value = body.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadRequest(f"{name}: Input should be a valid number")
            if not 0 < value <= 1:
                raise BadRequest(f"{name} must be in (0, 1]")

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        if request.path.startswith("/anthropic/"):
            # MiniMax does not ask for Anthropic's version header (its curl examples send none).
            request.headers.setdefault("anthropic-version", "2023-06-01")
            return super()._reply(request, failure)
        return self._native(request, failure)

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        message = super().answer(body)
        if not any(block["type"] == "thinking" for block in message["content"]):
            heard = words(str(body["messages"][-1].get("content")))
            thought = {"type": "thinking", "thinking": f"{heard} words to answer.", "signature": ""}
            message["content"].insert(0, thought)
        return message

    # --- the native side ----------------------------------------------------------------------

    def base_resp(self, code: int, message: str = "", **fields: Any) -> Reply:
        status = {"status_code": code, "status_msg": message or STATUS_MESSAGES.get(code, "")}
        return Reply(200, {**fields, "base_resp": status})

    def _native(self, request: Request, failure: Failure | None) -> Reply:
        if not request.path.startswith("/v1/"):
            return AnthropicFake._reply(self, request, failure)
        mode = failure.mode if failure is not None else ""
        if mode == "echo_key":
            return self.base_resp(1004, self.echo_key(request))
        if mode in BASE_RESP_FAILURES:
            return self.base_resp(BASE_RESP_FAILURES[mode])
        if mode == "broken_json" or (request.method, request.path) != ("POST", "/v1/embeddings"):
            return FakeServer._reply(self, request, failure)
        if self.api_key is not None and request.header("authorization") != f"Bearer {self.api_key}":
            return self.base_resp(1004)  # the native API reads the Bearer header only
        return self.embeddings(request)

    def embeddings(self, request: Request) -> Reply:
        group = (request.query.get("GroupId") or [""])[0]
        if not group:
            return self.base_resp(2013, "invalid params, GroupId is required")
        if group != self.group_id:
            return self.base_resp(1004, "login fail: the GroupId does not match the API key")
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.base_resp(2013, "invalid params, the body is not a JSON object")
        texts, kind = body.get("texts"), body.get("type")
        if body.get("model") not in self.embedding_models:
            return self.base_resp(2013, f"invalid params, model {body.get('model')} not supported")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return self.base_resp(2013, "invalid params, texts must be a non-empty string list")
        if kind not in ("db", "query"):
            return self.base_resp(2013, "invalid params, type must be db or query")
        return self.base_resp(
            0,
            "success",
            vectors=[embed_text(f"{kind}:{text}") for text in texts],
            total_tokens=sum(words(t) for t in texts),
        )


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> MinimaxFake:
    return MinimaxFake(
        api_key=credentials.get("api_key"),
        group_id=credentials.get("group_id") or "1900000000000000001",
        chat_models=(models["llm"],) if "llm" in models else CHAT_MODELS,
        embedding_models=(models["text-embedding"],) if "text-embedding" in models else (),
    )


MESSAGES = "/anthropic/v1/messages"
EMBEDDINGS = "/v1/embeddings?GroupId=1900000000000000001"
HI = [{"role": "user", "content": "hi"}]

# The /anthropic words as users quote them (github.com/Kilo-Org/kilocode/issues/3773: the 401;
# github.com/jlcodes99/cockpit-tools/issues/1431: "invalid params, unknown model '...' (2013)";
# github.com/BigPizzaV3/CodexPlusPlus/issues/267: bad_request_error, http_code), the ranges from
# https://platform.minimax.io/docs/api-reference/text-chat-anthropic (temperature, top_p in
# (0, 1]); the native API's base_resp codes from https://platform.minimaxi.com/document/
# guides/embeddings and its error-code page (1004 auth, 2013 invalid parameters).
SPEC = FakeSpec(
    family="minimax",
    client="anthropic",
    serve=_serve,
    aim=aim_base_url(),
    samples=lambda: {"minimax_group_id": "1900000000000000001"},
    refusals=(
        Refusal(
            "a wrong key",
            MESSAGES,
            {"model": "{model}", "max_tokens": 16, "messages": HI},
            status=401,
            says="login fail",
            headers={"Authorization": "Bearer wrong-key"},
        ),
        Refusal(
            "no key",
            MESSAGES,
            {"model": "{model}", "max_tokens": 16, "messages": HI},
            status=401,
            says="authentication_error",
            headers={"Authorization": None},
        ),
        Refusal(
            "an unknown model",
            MESSAGES,
            {"model": "gpt-5.5", "max_tokens": 16, "messages": HI},
            says="unknown model 'gpt-5.5' (2013)",
        ),
        Refusal("no messages", MESSAGES, {"model": "{model}", "max_tokens": 16}, says="2013"),
        Refusal(
            "a system message among the messages",
            MESSAGES,
            {"model": "{model}", "messages": [{"role": "system", "content": "be brief"}, *HI]},
            says="bad_request_error",
        ),
        Refusal(
            "a content that is a number",
            MESSAGES,
            {"model": "{model}", "messages": [{"role": "user", "content": 7}]},
            says="messages.0.content",
        ),
        Refusal(
            "a temperature of 0",
            MESSAGES,
            {"model": "{model}", "messages": HI, "temperature": 0},
            says="temperature must be in (0, 1]",
        ),
        Refusal(
            "a wrong key, natively",
            EMBEDDINGS,
            {"model": "{model}", "texts": ["hi"], "type": "db"},
            status=200,
            says='"status_code": 1004',
            headers={"Authorization": "Bearer wrong-key"},
            model_type="text-embedding",
        ),
        Refusal(
            "no GroupId",
            "/v1/embeddings",
            {"model": "{model}", "texts": ["hi"], "type": "db"},
            status=200,
            says='"status_code": 2013',
            model_type="text-embedding",
        ),
        Refusal(
            "an embedding type the API lacks",
            EMBEDDINGS,
            {"model": "{model}", "texts": ["hi"], "type": "document"},
            status=200,
            says='"status_code": 2013',
            model_type="text-embedding",
        ),
        Refusal(
            "texts as a string",
            EMBEDDINGS,
            {"model": "{model}", "texts": "hi", "type": "db"},
            status=200,
            says='"status_code": 2013',
            model_type="text-embedding",
        ),
    ),
)
