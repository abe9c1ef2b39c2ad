"""A fake OpenLLM 0.6 server: BentoML's service with vLLM's OpenAI-compatible routes under /v1
(/models, /chat/completions, /completions, /embeddings) and BentoML's /readyz and /livez. Checked
by the official `openai` client in tests/unit/runtime/test_openllm_fake.py.

Like vLLM it serves each model for one task: an LLM refuses /embeddings and an embedding model
refuses chat, with a 400. It refuses what vLLM refuses: max_tokens beyond the context left by the
prompt or below 1, a negative temperature, top_p outside (0, 1], stream_options without a stream,
and a body that fails validation (a 400 in vLLM's shape, not FastAPI's 422); unknown fields pass,
as vLLM lets them. Errors are vLLM's flat `{"object": "error", "message", "type", "param",
"code"}`; a path the service lacks is FastAPI's `{"detail": "Not Found"}`. No API key."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.base import Reply, Request, words
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.spec import FakeSpec, Refusal

ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError"}
CONTEXT = 4096  # max_model_len the fake reports
TASK_NAMES = {"llm": "Chat Completions", "text-embedding": "Embeddings"}


class OpenLLMFake(OpenAIFake):
    def __init__(self, api_key: str | None = None, models: dict[str, str] | None = None):
        super().__init__(
            api_key,
            models or {"google/gemma-3-1b-it": "llm", "BAAI/bge-small-en-v1.5": "text-embedding"},
        )
        # The bento mounts no rerank or audio routes: only vLLM's four and BentoML's health.
        kept = ("/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings")
        self._routes = [route for route in self._routes if route[1].pattern[1:-1] in kept]
        self.route("GET", "/readyz", lambda request: Reply(200, b"", content_type="text/plain"))
        self.route("GET", "/livez", lambda request: Reply(200, b"", content_type="text/plain"))

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        if status == 404 and message.startswith("No route"):
            return Reply(404, {"detail": "Not Found"})
        kind = ERROR_TYPES.get(status, "InternalServerError" if status >= 500 else "Error")
        return Reply(
            status,
            {"object": "error", "message": message, "type": kind, "param": None, "code": status},
        )

    def unauthorized(self) -> Reply:
        """What vLLM's --api-key middleware answers (OpenLLM itself asks for no key; a proxy in
        front of it may)."""
        return Reply(401, {"error": "Unauthorized"})

    def unknown_model(self, model: str) -> Reply | None:
        if model in self.models:
            return None
        return self.error(404, f"The model `{model}` does not exist.")

    def _serves(self, request: Request, task: str) -> Reply | None:
        model = (request.json() or {}).get("model", "")
        missing = self.unknown_model(model)
        if missing or self.models[model] == task:
            return missing
        return self.error(400, f"The model does not support {TASK_NAMES[task]} API")

    def _sampling(self, body: dict[str, Any], prompt_tokens: int) -> Reply | None:
        """What vLLM's request validators and SamplingParams._verify_args refuse."""
        if body.get("stream_options") is not None and not body.get("stream"):
            return self.error(400, "Stream options can only be defined when `stream=True`.")
        temperature, top_p = body.get("temperature"), body.get("top_p")
        if isinstance(temperature, int | float) and temperature < 0:
            return self.error(400, f"temperature must be non-negative, got {temperature}.")
        if isinstance(top_p, int | float) and not 0 < top_p <= 1:
            return self.error(400, f"top_p must be in (0, 1], got {top_p}.")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit < 1:
            return self.error(400, f"max_tokens must be at least 1, got {limit}.")
        if isinstance(limit, int) and prompt_tokens + limit > CONTEXT:
            return self.error(
                400,
                f"This model's maximum context length is {CONTEXT} tokens. However, you "
                f"requested {prompt_tokens + limit} tokens ({prompt_tokens} in the messages, "
                f"{limit} in the completion). Please reduce the length of the messages or "
                "completion.",
            )
        return None

    def _validated(self, request: Request, field: str) -> tuple[dict[str, Any], Reply | None]:
        """The body, or what FastAPI's validation of the request model refuses, which vLLM
        answers as a 400 in its own shape (api_server.py's RequestValidationError handler)."""
        try:
            body = request.json()
        except ValueError as exc:
            return {}, self.error(400, f"1 validation error: body: JSON decode error ({exc})")
        if not isinstance(body, dict):
            return {}, self.error(400, "1 validation error: body: Input should be a valid dict")
        if field not in body:
            return body, self.error(400, f"1 validation error: body.{field}: Field required")
        value = body[field]
        if field == "messages" and not (
            isinstance(value, list) and all(isinstance(m, dict) for m in value)
        ):
            return body, self.error(
                400, "1 validation error: body.messages: Input should be a valid list of objects"
            )
        if field == "prompt" and not isinstance(value, str | list):
            return body, self.error(
                400, "1 validation error: body.prompt: Input should be a valid string or list"
            )
        return body, None

    def chat(self, request: Request) -> Reply:
        body, refused = self._validated(request, "messages")
        refused = refused or self._serves(request, "llm")
        if refused:
            return refused
        prompt = sum(words(str(m.get("content") or "")) for m in body["messages"])
        return self._sampling(body, prompt) or super().chat(request)

    def complete(self, request: Request) -> Reply:
        body, refused = self._validated(request, "prompt")
        refused = refused or self._serves(request, "llm")
        if refused:
            return refused
        return self._sampling(body, words(str(body["prompt"]))) or super().complete(request)

    def embeddings(self, request: Request) -> Reply:
        return self._serves(request, "text-embedding") or super().embeddings(request)

    def list_models(self, request: Request) -> Reply:
        created = int(time.time())
        return Reply(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "created": created,
                        "owned_by": "vllm",
                        "root": name,
                        "parent": None,
                        "max_model_len": CONTEXT,
                    }
                    for name in self.models
                ],
            },
        )


def no_key(credentials, method: str, url: str, body: bytes, headers: dict[str, str]):
    """OpenLLM asks for no key: a request goes as it is."""
    return headers


CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
# vLLM's words (vllm/entrypoints/openai: serving_engine.py's context check and "does not exist",
# protocol.py's stream_options validator, sampling_params.py's _verify_args), as quoted in vLLM
# issues #4667 and #20409 ({"object": "error", "message", "type": "BadRequestError", "code": 400}).
SPEC = FakeSpec(
    family="openllm",
    client="openai",
    serve=lambda credentials, models: OpenLLMFake(models={m: t for t, m in models.items()}),
    sign_in=no_key,
    refusals=(
        Refusal(
            "an unknown model",
            CHAT,
            {"model": "no-such-model", "messages": HI},
            status=404,
            says="The model `no-such-model` does not exist.",
        ),
        Refusal("no messages", CHAT, {"model": "{model}"}, says="body.messages: Field required"),
        Refusal(
            "messages as a string",
            CHAT,
            {"model": "{model}", "messages": "hi"},
            says="Input should be a valid list",
        ),
        Refusal(
            "max_tokens beyond the context",
            CHAT,
            {"model": "{model}", "messages": HI, "max_tokens": CONTEXT},
            says=f"This model's maximum context length is {CONTEXT} tokens",
        ),
        Refusal(
            "max_tokens of 0",
            CHAT,
            {"model": "{model}", "messages": HI, "max_tokens": 0},
            says="max_tokens must be at least 1, got 0.",
        ),
        Refusal(
            "a negative temperature",
            CHAT,
            {"model": "{model}", "messages": HI, "temperature": -1},
            says="temperature must be non-negative",
        ),
        Refusal(
            "top_p above 1",
            CHAT,
            {"model": "{model}", "messages": HI, "top_p": 2},
            says="top_p must be in (0, 1]",
        ),
        Refusal(
            "stream_options without a stream",
            "/v1/completions",
            {"model": "{model}", "prompt": "hi", "stream_options": {"include_usage": True}},
            says="Stream options can only be defined when `stream=True`.",
        ),
        Refusal("a body that is no JSON", CHAT, b"{not json", says="JSON decode error"),
    ),
)
