"""A fake Azure AI Studio (Azure AI Foundry) endpoint: the Azure AI model inference API and a
serverless Cohere rerank deployment. Checked by `azure-ai-inference`'s ChatCompletionsClient and
`cohere`'s ClientV2 in tests/unit/runtime/test_azure_ai_studio_fake.py.

Wire facts it keeps (learn.microsoft.com/azure/ai-studio/reference/reference-model-inference-api):
- `POST /chat/completions?api-version=...` (OpenAI's bodies and replies; SSE with `[DONE]`, usage
  in the last chunk, no `stream_options`), `GET /info?api-version=...` (model_name, model_type,
  model_provider_name); without api-version a 400 [U: the client always sends one];
- the key in `Authorization: Bearer` or `api-key` (the client sends both); a wrong one is 401;
- a body the schema refuses is a 422 "Invalid input" with pydantic's details: a field outside
  it (`extra_forbidden`, unless the `extra-parameters` header says `pass-through` (kept) or
  `drop` (ignored)), no or ill-typed `messages`;
- `model` names a model on a multi-model endpoint; without one the endpoint's own model answers,
  another is 404 `unknown_model` (as quoted in microsoft/Generative-AI-for-beginners-dotnet#302);
- `POST /v2/rerank` (Cohere v2: query, documents, top_n) with the JWT token as Bearer;
- errors `{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.base import Failure, FakeServer, Reply, Request, overlap_score
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.spec import FakeSpec, Refusal

STANDARD_FIELDS = frozenset(
    {
        "messages", "model", "stream", "frequency_penalty", "presence_penalty", "temperature",
        "top_p", "max_tokens", "response_format", "stop", "tools", "tool_choice", "seed",
    }
)  # fmt: skip
CODES = {401: "Unauthorized", 404: "NotFound", 429: "TooManyRequests", 500: "InternalServerError"}
UNAUTHORIZED = "Access denied due to invalid subscription key or wrong API endpoint."


class AzureAIStudioFake(OpenAIFake):
    prefix = ""
    # Fields outside the schema are its own `extra-parameters` check's (see `chat`).
    chat_fields = None

    def __init__(
        self,
        api_key: str | None = "fake-key",
        *,
        rerank_key: str = "fake-jwt",
        models: dict[str, str] | None = None,
    ) -> None:
        super().__init__(api_key, models or {"Phi-4": "llm", "cohere-rerank-v3.5": "rerank"})
        self.rerank_key = rerank_key
        self._routes = [r for r in self._routes if r[0] == "POST" and "chat" in r[1].pattern]
        self.route("GET", "/info", self.info)
        self.route("POST", "/v2/rerank", self.cohere_rerank)

    # --- family hooks -------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if request.path.endswith("/rerank"):
            return request.header("authorization") == f"Bearer {self.rerank_key}"
        return self.api_key in (
            request.header("api-key"),
            request.header("authorization").removeprefix("Bearer "),
        )

    def presented_key(self, request: Request) -> tuple[str, str]:
        if request.header("api-key"):
            return request.header("api-key"), request.header("api-key")
        return super().presented_key(request)

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        code = extra.get("code") or CODES.get(status, "Error")
        return Reply(status, {"error": {"code": code, "message": message, "status": status}})

    def unauthorized(self) -> Reply:
        return self.error(401, UNAUTHORIZED, code="Unauthorized")

    def invalid(self, kind: str, where: str, message: str, given: Any = None) -> Reply:
        """The 422 of a body the API's schema refuses, with pydantic's detail."""
        detail = {"type": kind, "loc": ["body", *where.split(".")], "msg": message}
        if given is not None:
            detail["input"] = given
        return Reply(
            422,
            {"error": {"code": "Invalid input", "status": 422, "message": "invalid input error",
                       "details": [detail]}},
        )  # fmt: skip

    def unknown_model(self, model: str) -> Reply | None:
        if model in self.models:
            return None
        message = f"Unknown model: {model}"
        return Reply(404, {"error": {"code": "unknown_model", "message": message,
                                     "details": message}})  # fmt: skip

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        if failure is None and not request.path.endswith("/rerank"):
            version = request.query.get("api-version", [""])[0]
            if not version and self.authorized(request):
                return self.error(400, "Missing required query parameter: api-version",
                                  code="MissingApiVersionParameter")  # fmt: skip
        return super()._reply(request, failure)

    # --- routes -------------------------------------------------------------------------------

    def default_model(self) -> str:
        return next(name for name, kind in self.models.items() if kind == "llm")

    def chat(self, request: Request) -> Reply:
        try:
            body = request.json()
        except ValueError:
            return self.invalid("json_invalid", "0", "JSON decode error")
        if not isinstance(body, dict):
            return self.invalid("model_attributes_type", "", "Input should be a valid dictionary")
        extra = sorted(set(body) - STANDARD_FIELDS)
        policy = request.header("extra-parameters") or "error"
        if extra and policy == "error":
            return self.invalid(
                "extra_forbidden", extra[0], "Extra inputs are not permitted", body[extra[0]]
            )
        if "messages" not in body:
            return self.invalid("missing", "messages", "Field required")
        if not isinstance(body["messages"], list) or not all(
            isinstance(m, dict) for m in body["messages"]
        ):
            return self.invalid("list_type", "messages", "Input should be a valid list")
        if extra and policy == "drop":
            body = {k: v for k, v in body.items() if k not in extra}
        body.setdefault("model", self.default_model())
        if body.get("stream"):  # usage always comes in the last chunk
            body["stream_options"] = {"include_usage": True}
        return super().chat(replace(request, body=json.dumps(body).encode()))

    def info(self, request: Request) -> Reply:
        name = self.default_model()
        return Reply(200, {"model_name": name, "model_type": "chat-completion",
                           "model_provider_name": "Microsoft"})  # fmt: skip

    def cohere_rerank(self, request: Request) -> Reply:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return self.error(400, "invalid request: query must be a string", code="BadRequest")
        documents = body.get("documents")
        top_n = body.get("top_n")
        if top_n is not None and (
            isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1
        ):
            return self.error(400, "invalid request: top_n must be a positive integer",
                              code="BadRequest")  # fmt: skip
        if not isinstance(documents, list) or not documents:
            return self.error(400, "invalid request: documents must not be empty",
                              code="BadRequest")  # fmt: skip
        ranked = sorted(
            ({"index": i, "relevance_score": overlap_score(body["query"], str(d))}
             for i, d in enumerate(documents)),
            key=lambda hit: -hit["relevance_score"],
        )  # fmt: skip
        if top_n:
            ranked = ranked[:top_n]
        return Reply(
            200,
            {
                "id": "rerank-fake",
                "results": ranked,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            },
        )


def serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> FakeServer:
    return AzureAIStudioFake(
        credentials.get("api_key") or "fake-key",
        rerank_key=credentials.get("jwt_token") or "fake-jwt",
        models={model: kind for kind, model in models.items()},
    )


def key_headers(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """Signed in as azure-ai-inference does, the key as `api-key` and as a Bearer token; a
    Cohere rerank deployment with its JWT token as Bearer."""
    if urlsplit(url).path.endswith("/rerank"):
        return {**headers, "Authorization": f"Bearer {credentials.get('jwt_token', '')}"}
    key = credentials.get("api_key", "")
    return {**headers, "api-key": key, "Authorization": f"Bearer {key}"}


CHAT = "/chat/completions?api-version=2024-05-01-preview"
HI = [{"role": "user", "content": "hi"}]
# learn.microsoft.com/azure/ai-studio/reference/reference-model-inference-api (api-version,
# extra-parameters, the 422 of a body outside the schema); "unknown_model" as quoted above.
SPEC = FakeSpec(
    family="azure_ai_studio",
    client="azure-ai-inference",
    serve=serve,
    sign_in=key_headers,
    refusals=(
        Refusal(
            "a wrong key",
            CHAT,
            {"messages": HI},
            status=401,
            says="Access denied",
            headers={"api-key": "wrong", "Authorization": "Bearer wrong"},
        ),
        Refusal(
            "no key",
            CHAT,
            {"messages": HI},
            status=401,
            says="Unauthorized",
            headers={"api-key": None, "Authorization": None},
        ),
        Refusal(
            "no api-version",
            "/chat/completions",
            {"messages": HI},
            says="api-version",
        ),
        Refusal(
            "a field outside the schema, without extra-parameters",
            CHAT,
            {"messages": HI, "top_k": 3},
            status=422,
            says="extra_forbidden",
        ),
        Refusal(
            "a field outside the schema, with extra-parameters: error",
            CHAT,
            {"messages": HI, "safe_prompt": True},
            status=422,
            says="Extra inputs are not permitted",
            headers={"extra-parameters": "error"},
        ),
        Refusal("no messages", CHAT, {"model": "{model}"}, status=422, says="Field required"),
        Refusal(
            "messages as a string",
            CHAT,
            {"messages": "hi"},
            status=422,
            says="Input should be a valid list",
        ),
        Refusal(
            "a rerank top_n that is a string",
            "/v2/rerank",
            {"query": "q", "documents": ["a"], "top_n": "two"},
            says="top_n must be a positive integer",
            model_type="rerank",
        ),
        Refusal(
            "an unknown model",
            CHAT,
            {"model": "no-such-model", "messages": HI},
            status=404,
            says="unknown_model",
        ),
    ),
)
