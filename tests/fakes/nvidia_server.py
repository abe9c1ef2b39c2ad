"""A fake of the NVIDIA API Catalog: integrate.api.nvidia.com's OpenAI-compatible /v1 (chat,
embeddings with `input_type` and `truncate`) and ai.api.nvidia.com's retrieval models (reranking,
the older NV-Embed-QA), both served here under /v1. Checked by the official `openai` client in
tests/unit/runtime/test_nvidia_fake.py (NVIDIA publishes no client for rerank).

Errors are RFC 7807 problems, `{"status", "title", "detail"}`: no Authorization header is a 401,
a key NVIDIA does not know a 403 "Authorization failed" (as build.nvidia.com answers). The
retrieval models' bodies are closed schemas: a field outside them is a 422 `extra_forbidden`."""

from __future__ import annotations

from dataclasses import replace
from http import HTTPStatus
from typing import Any

from providers.runtime.base import Endpoint
from tests.fakes.base import Handler, Reply, Request, embed_text, overlap_score, words
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.spec import FakeSpec, Refusal

INPUT_TYPES = ("query", "passage")
TRUNCATE = ("NONE", "START", "END")
MAX_WORDS = 64  # the fake retrieval models' context, in words
SHARED = {"nvidia/embeddings": "NV-Embed-QA", "nvidia/reranking": "nv-rerank-qa-mistral-4b:1"}
# The fields of the embedding and reranking requests (docs.api.nvidia.com/nim/reference).
EMBEDDING_FIELDS = {"model", "input", "input_type", "encoding_format", "truncate", "user"}
RERANKING_FIELDS = {"model", "query", "passages", "truncate"}


class NvidiaFake(OpenAIFake):
    def __init__(self, api_key: str | None = "nvapi-fake", models: dict[str, str] | None = None):
        super().__init__(
            api_key,
            models
            or {
                "meta/llama-3.1-8b-instruct": "llm",
                "nvidia/nv-embedqa-e5-v5": "text-embedding",
                "NV-Embed-QA": "text-embedding",
                "nvidia/llama-3.2-nv-rerankqa-1b-v2": "rerank",
                "nv-rerank-qa-mistral-4b:1": "rerank",
            },
        )
        self.route("POST", "/v1/retrieval/nvidia/embeddings", self.embeddings)
        self.route("POST", "/v1/retrieval/nvidia/reranking", self.reranking)
        self.route("POST", "/v1/retrieval/{namespace}/{name}/reranking", self.reranking)
        # The key is checked per request, before the route's handler (401 and 403 differ).
        self._routes = [(m, regex, self._checked(h)) for m, regex, h in self._routes]

    def authorized(self, request: Request) -> bool:
        return True  # see `_checked`

    def _checked(self, handler: Handler) -> Handler:
        def checked(request: Request) -> Reply:
            header = request.header("authorization")
            if not header.startswith("Bearer "):
                return self.unauthorized()
            if header != f"Bearer {self.api_key}":
                return self.error(403, "Authorization failed")
            return handler(request)

        return checked

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        return Reply(
            status, {"status": status, "title": HTTPStatus(status).phrase, "detail": message}
        )

    def unauthorized(self) -> Reply:
        return self.error(401, "Header of type `authorization` was missing")

    def _closed(self, body: Any, fields: set[str]) -> Reply | None:
        """A body that is no object, or has a field outside `fields`, as NVIDIA's validation
        refuses it (its words as quoted in lobehub issue #11548)."""
        if not isinstance(body, dict):
            return self.error(422, "Your request cannot be validated, it is incorrect. "
                              "detail={'type': 'dict_type', 'loc': ('body',)}")  # fmt: skip
        extra = sorted(set(body) - fields)
        if extra:
            name = extra[0]
            return self.error(
                422,
                "Your request cannot be validated, it is incorrect. detail={'type': "
                f"'extra_forbidden', 'loc': ('body', '{name}'), 'msg': 'Extra inputs are not "
                f"permitted', 'input': {body[name]!r}}}",
            )
        return None

    def _text_options(self, body: dict[str, Any]) -> tuple[str | None, Reply | None]:
        truncate = body.get("truncate", "NONE")
        if truncate not in TRUNCATE:
            return None, self.error(422, f"truncate: Input should be {', '.join(TRUNCATE)}")
        return truncate, None

    def _fit(self, text: str, truncate: str) -> str | None:
        """The text the model reads, or None when it is too long and truncation is off."""
        cut = text.split()
        if len(cut) <= MAX_WORDS:
            return text
        if truncate == "NONE":
            return None
        return " ".join(cut[:MAX_WORDS] if truncate == "END" else cut[-MAX_WORDS:])

    def embeddings(self, request: Request) -> Reply:
        body = request.json()
        refused = self._closed(body, EMBEDDING_FIELDS)
        if refused:
            return refused
        model = body.get("model", "")
        if request.path.startswith("/v1/retrieval/") and model != "NV-Embed-QA":
            return self.error(404, f"Model '{model}' is not served at this path")
        missing = self.unknown_model(model)
        if missing:
            return missing
        input_type = body.get("input_type")
        if input_type not in INPUT_TYPES:
            return self.error(
                400, "'input_type' parameter is required for asymmetric models (query|passage)"
            )
        truncate, refused = self._text_options(body)
        if refused:
            return refused
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not texts or not all(isinstance(t, str) for t in texts):
            return self.error(422, "input: Input should be a valid string or list of strings")
        fitted = [self._fit(t, truncate) for t in texts]
        if None in fitted:
            return self.error(400, f"Input length exceeds the model's maximum of {MAX_WORDS}")
        tokens = sum(words(t) for t in fitted)
        return Reply(
            200,
            {
                "object": "list",
                "model": model,
                "data": [
                    {
                        "object": "embedding",
                        "index": i,
                        "embedding": embed_text(f"{input_type}:{t}"),
                    }
                    for i, t in enumerate(fitted)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def reranking(self, request: Request) -> Reply:
        body = request.json()
        refused = self._closed(body, RERANKING_FIELDS)
        if refused:
            return refused
        model = body.get("model", "")
        path = request.path.removeprefix("/v1/retrieval/").removesuffix("/reranking")
        expected = SHARED.get(f"{path}/reranking") or path.replace("_", ".")
        if model != expected or self.models.get(model) != "rerank":
            return self.error(404, f"Model '{model}' not found at /v1/retrieval/{path}/reranking")
        query, passages = body.get("query"), body.get("passages")
        if not isinstance(query, dict) or not isinstance(query.get("text"), str):
            return self.error(422, "query.text: Field required")
        if not passages or not all(
            isinstance(p, dict) and isinstance(p.get("text"), str) for p in passages
        ):
            return self.error(422, "passages: a list of {text} is required")
        truncate, refused = self._text_options(body)
        if refused:
            return refused
        fitted = [self._fit(p["text"], truncate) for p in passages]
        if None in fitted:
            return self.error(400, f"Input length exceeds the model's maximum of {MAX_WORDS}")
        rankings = sorted(
            (
                {"index": i, "logit": round(overlap_score(query["text"], text) * 10 - 5, 4)}
                for i, text in enumerate(fitted)
            ),
            key=lambda row: -row["logit"],
        )
        return Reply(200, {"rankings": rankings})


def aim(endpoint: Endpoint, url: str) -> Endpoint:
    """Both NVIDIA hosts at the fake: the catalog's /v1 and the retrieval models under it."""
    return replace(
        endpoint,
        base_url=f"{url}/v1",
        options={**endpoint.options, "retrieval_url": f"{url}/v1/retrieval"},
    )


EMBED = "/v1/retrieval/nvidia/embeddings"
RERANK = "/v1/retrieval/nvidia/reranking"
HI = [{"role": "user", "content": "hi"}]
# NVIDIA's words as its API answers them, quoted in public threads: 401 "Header of type
# `authorization` was missing" (diegosouzapw/OmniRoute#6242), 403 "Authorization failed"
# (dmMaze/BallonsTranslator#1233), 422 extra_forbidden (lobehub/lobehub#11548); input_type and
# truncate as docs.api.nvidia.com documents the retrieval models.
SPEC = FakeSpec(
    family="nvidia",
    client="openai",
    serve=lambda credentials, models: NvidiaFake(
        api_key=credentials.get("api_key"), models={m: t for t, m in models.items()}
    ),
    aim=aim,
    refusals=(
        Refusal(
            "no Authorization header",
            "/v1/chat/completions",
            {"model": "{model}", "messages": HI},
            status=401,
            says="Header of type `authorization` was missing",
            headers={"Authorization": None},
        ),
        Refusal(
            "a wrong key",
            "/v1/chat/completions",
            {"model": "{model}", "messages": HI},
            status=403,
            says="Authorization failed",
            headers={"Authorization": "Bearer nvapi-wrong"},
        ),
        Refusal(
            "an unknown model",
            "/v1/chat/completions",
            {"model": "no-such/model", "messages": HI},
            status=404,
            says="Not Found",
        ),
        Refusal(
            "an embedding without input_type",
            EMBED,
            {"model": "{model}", "input": ["hi"]},
            says="'input_type' parameter is required",
            model_type="text-embedding",
        ),
        Refusal(
            "a field outside the embedding schema",
            EMBED,
            {"model": "{model}", "input": ["hi"], "input_type": "query", "dimensions": 1024},
            status=422,
            says="extra_forbidden",
            model_type="text-embedding",
        ),
        Refusal(
            "an unknown truncate",
            EMBED,
            {"model": "{model}", "input": ["hi"], "input_type": "query", "truncate": "MIDDLE"},
            status=422,
            says="truncate",
            model_type="text-embedding",
        ),
        Refusal(
            "a reranking query that is a string",
            RERANK,
            {"model": "{model}", "query": "hi", "passages": [{"text": "a"}]},
            status=422,
            says="query.text",
            model_type="rerank",
        ),
        Refusal(
            "a field outside the reranking schema",
            RERANK,
            {"model": "{model}", "query": {"text": "hi"}, "passages": [{"text": "a"}], "top_n": 1},
            status=422,
            says="extra_forbidden",
            model_type="rerank",
        ),
    ),
)
