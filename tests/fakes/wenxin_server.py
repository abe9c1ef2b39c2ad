"""A fake of Baidu Qianfan's v2 API (OpenAI-compatible): POST /v2/chat/completions (JSON, or SSE
ending `data: [DONE]`) and POST /v2/embeddings. Checked by the official `openai` client in
tests/unit/runtime/test_wenxin_fake.py.

As Qianfan documents (https://cloud.baidu.com/doc/qianfan-api/s/Om9b4yj3w, error codes;
https://cloud.baidu.com/doc/qianfan-api/s/Fm7u3ropn, embeddings): auth is
`Authorization: Bearer <v2 API key>`; errors are `{"error": {"code", "message", "type"}, "id"}`:
a missing or wrong key is 401 `invalid_iam_token`, a model the key may not use (or that does not
exist) 401 `invalid_model`, no model 400 `invalid_model`, a body that is not JSON 400
`malformed_json`, bad messages 400 `invalid_messages`; embeddings take at most 16 non-empty
texts, and only one for tao-8k. A max_tokens below 2 is 400 `invalid_argument` (the minimum
Dify's parameter rules give ERNIE; the wording is this fake's), and so are a temperature outside
(0, 1], a top_p outside [0, 1], a penalty_score outside [1, 2] and a message content that is
neither text nor parts. Replies are the OpenAI fake's
(echoes, hashed vectors).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from tests.fakes.base import Reply, Request
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_TEXTS = 16
QIANFAN_CODES = frozenset(
    {"invalid_iam_token", "invalid_model", "malformed_json", "invalid_messages", "invalid_argument"}
)
SINGLE_TEXT = frozenset({"tao-8k"})
# name -> (low, high, low excluded), as the v2 chat API documents them for ERNIE
# (https://cloud.baidu.com/doc/qianfan-api/s/3m7of64lb: temperature "(0, 1.0]", may not be 0).
RANGES = {
    "temperature": (0.0, 1.0, True),
    "top_p": (0.0, 1.0, False),
    "penalty_score": (1.0, 2.0, False),
}
# (code, type) by status, for the shared failure modes that name no Qianfan code.
BY_STATUS = {
    401: ("invalid_iam_token", "invalid_request_error"),
    404: ("invalid_model", "invalid_request_error"),
    429: ("rpm_rate_limit_exceeded", "rate_limit_exceeded"),
    500: ("internal_error", "internal_error"),
}


class QianfanFake(OpenAIFake):
    """Models it serves are `models` (name -> type)."""

    prefix = "/v2"

    def __init__(self, api_key: str | None = "fake-key", models: dict[str, str] | None = None):
        super().__init__(
            api_key,
            models
            or {
                "ernie-4.5-turbo-128k": "llm",
                "ernie-4.5-turbo-32k": "llm",
                "ernie-speed-128k": "llm",
                "embedding-v1": "text-embedding",
                "bge-large-zh": "text-embedding",
                "tao-8k": "text-embedding",
            },
        )
        self._ids = itertools.count(1)
        self._routes = []  # only what Qianfan v2 serves and the adapter uses
        self.route("POST", "/v2/chat/completions", self.chat)
        self.route("POST", "/v2/embeddings", self.embeddings)

    # --- family hooks -------------------------------------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        code, kind = BY_STATUS.get(status, ("invalid_argument", "invalid_request_error"))
        if extra.get("code") in QIANFAN_CODES:
            code = extra["code"]
        body = {
            "error": {"code": code, "message": message, "type": kind},
            "id": f"as-{next(self._ids):010d}",
        }
        return Reply(status, body)

    def unauthorized(self) -> Reply:
        return self.error(401, "IAM Certification failed", code="invalid_iam_token")

    def unknown_model(self, model: str) -> Reply | None:
        if not model:
            return self.error(400, "model is empty", code="invalid_model")
        if model not in self.models:
            return self.error(401, "No permission to use the model", code="invalid_model")
        return None

    def _body(self, request: Request) -> tuple[dict[str, Any] | None, Reply | None]:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return None, self.error(400, "Invalid Argument", code="malformed_json")
        return body, None

    def _wrong_type(self, model: str, kind: str) -> Reply | None:
        missing = self.unknown_model(model)
        if missing or self.models[model] == kind:
            return missing
        return self.error(401, "No permission to use the model", code="invalid_model")

    # --- routes -------------------------------------------------------------------------------

    def chat(self, request: Request) -> Reply:
        body, problem = self._body(request)
        if problem or body is None:
            return problem or self.error(400, "Invalid Argument", code="malformed_json")
        problem = self._wrong_type(str(body.get("model") or ""), "llm")
        if problem:
            return problem
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error(400, "messages is empty", code="invalid_messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                return self.error(400, f"messages[{i}].role is not valid", code="invalid_messages")
        for i, message in enumerate(messages):
            content = message.get("content")
            if not (
                content is None
                or isinstance(content, str)
                or (isinstance(content, list) and all(isinstance(p, dict) for p in content))
            ):
                return self.error(
                    400, f"messages[{i}].content is not valid", code="invalid_messages"
                )
        for name, (low, high, open_low) in RANGES.items():
            value = body.get(name)
            if value is None:
                continue
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not numeric or not (low < value <= high if open_low else low <= value <= high):
                bounds = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
                return self.error(
                    400, f"{name} must be a number in {bounds}", code="invalid_argument"
                )
        for name in ("max_tokens", "max_completion_tokens"):
            limit = body.get(name)
            if limit is not None and (not isinstance(limit, int) or limit < 2):
                return self.error(
                    400, f"{name} must be an integer of at least 2", code="invalid_argument"
                )
        return super().chat(request)

    def embeddings(self, request: Request) -> Reply:
        body, problem = self._body(request)
        if problem or body is None:
            return problem or self.error(400, "Invalid Argument", code="malformed_json")
        model = str(body.get("model") or "")
        problem = self._wrong_type(model, "text-embedding")
        if problem:
            return problem
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts:
            return self.error(400, "input must not be empty", code="invalid_argument")
        if not all(isinstance(t, str) and t for t in texts):
            return self.error(400, "input must not hold an empty text", code="invalid_argument")
        limit = 1 if model in SINGLE_TEXT else MAX_TEXTS
        if len(texts) > limit:
            return self.error(
                400, f"the number of texts must not exceed {limit}", code="invalid_argument"
            )
        return super().embeddings(request)


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> QianfanFake:
    return QianfanFake(
        api_key=credentials.get("api_key"),
        models={model: model_type for model_type, model in models.items()},
    )


CHAT = "/v2/chat/completions"
HI = [{"role": "user", "content": "hi"}]

# Codes, statuses and types: https://cloud.baidu.com/doc/qianfan-api/s/Om9b4yj3w (error codes);
# the ranges: RANGES; the embedding limits: https://cloud.baidu.com/doc/qianfan-api/s/Fm7u3ropn.
SPEC = FakeSpec(
    family="wenxin",
    client="openai",
    serve=_serve,
    aim=aim_base_url("/v2"),
    refusals=(
        Refusal(
            "a wrong key",
            CHAT,
            {"model": "{model}", "messages": HI},
            status=401,
            says="invalid_iam_token",
            headers={"Authorization": "Bearer bce-v3/ALTAK-wrong/0000"},
        ),
        Refusal(
            "no key",
            CHAT,
            {"model": "{model}", "messages": HI},
            status=401,
            says="invalid_iam_token",
            headers={"Authorization": None},
        ),
        Refusal("no model", CHAT, {"messages": HI}, says="invalid_model"),
        Refusal(
            "an unknown model",
            CHAT,
            {"model": "ernie-no-such", "messages": HI},
            status=401,
            says="invalid_model",
        ),
        Refusal("a body that is not JSON", CHAT, b"{model: ernie", says="malformed_json"),
        Refusal("no messages", CHAT, {"model": "{model}"}, says="invalid_messages"),
        Refusal(
            "a role the API lacks",
            CHAT,
            {"model": "{model}", "messages": [{"role": "robot", "content": "hi"}]},
            says="invalid_messages",
        ),
        Refusal(
            "a content that is a number",
            CHAT,
            {"model": "{model}", "messages": [{"role": "user", "content": 7}]},
            says="invalid_messages",
        ),
        Refusal(
            "a temperature of 0",
            CHAT,
            {"model": "{model}", "messages": HI, "temperature": 0},
            says="invalid_argument",
        ),
        Refusal(
            "a penalty_score of 3",
            CHAT,
            {"model": "{model}", "messages": HI, "penalty_score": 3},
            says="invalid_argument",
        ),
        Refusal(
            "seventeen texts to embed",
            "/v2/embeddings",
            {"model": "{model}", "input": [f"text {i}" for i in range(17)]},
            says="invalid_argument",
            model_type="text-embedding",
        ),
    ),
)
