"""A fake OpenLLM 0.6 server: BentoML's service with vLLM's OpenAI-compatible routes under /v1
(/models, /chat/completions, /completions, /embeddings) and BentoML's /readyz and /livez. Checked
by the official `openai` client in tests/unit/runtime/test_openllm_fake.py.

Like vLLM it serves each model for one task: an LLM refuses /embeddings and an embedding model
refuses chat, with a 400. Errors are vLLM's flat `{"object": "error", "message", "type", "param",
"code"}`; a path the service lacks is FastAPI's `{"detail": "Not Found"}`. No API key."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.base import Reply, Request
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.spec import FakeSpec

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

    def chat(self, request: Request) -> Reply:
        return self._serves(request, "llm") or super().chat(request)

    def complete(self, request: Request) -> Reply:
        return self._serves(request, "llm") or super().complete(request)

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


SPEC = FakeSpec(
    family="openllm",
    client="openai",
    serve=lambda credentials, models: OpenLLMFake(models={m: t for t, m in models.items()}),
)
