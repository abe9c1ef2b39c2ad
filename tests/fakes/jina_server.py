"""A fake of the Jina AI Search Foundation API (https://api.jina.ai/v1): /v1/embeddings and
/v1/rerank, Bearer keys, and Jina's error bodies:

    {"detail": "Model 'x' not found"}                                    400 unknown model
    {"detail": "Invalid API key"}                                        401
    {"detail": "Insufficient account balance"}                           403
    {"detail": "[RID: ...] Validation errors in 1 fields",
     "errors": [{"field", "message", "type", "input"}]}                  422

The embeddings reply follows OpenAI's shape, so the official `openai` client checks this fake
(tests/unit/runtime/test_jina_fake.py); rerank is checked with plain HTTP.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Any

from tests.fakes.base import FakeServer, Reply, Request, embed_text, overlap_score, words
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

MODELS = {
    "jina-embeddings-v3": "text-embedding",
    "jina-embeddings-v4": "text-embedding",
    "jina-clip-v2": "text-embedding",
    "jina-embeddings-v2-base-zh": "text-embedding",
    "jina-reranker-v2-base-multilingual": "rerank",
    "jina-reranker-v3": "rerank",
    "jina-reranker-m0": "rerank",
    "jina-colbert-v2": "rerank",
}
TASKS = {"retrieval.query", "retrieval.passage", "separation", "classification", "text-matching"}
TASK_MODELS = {"jina-embeddings-v3", "jina-embeddings-v4", "jina-clip-v2"}
MULTIMODAL = {"jina-clip-v2", "jina-embeddings-v4", "jina-reranker-m0"}
MAX_INPUTS = {"jina-embeddings-v4": 512}
DEFAULT_MAX_INPUTS = 2048


class JinaFake(FakeServer):
    def __init__(self, api_key: str | None = "fake-key", models: dict[str, str] | None = None):
        super().__init__(api_key)
        self.models = models or dict(MODELS)
        self.balance_exhausted = False
        self.route("POST", "/v1/embeddings", self.embeddings)
        self.route("POST", "/v1/rerank", self.rerank)

    # --- family hooks -------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        return self.api_key is None or request.header("authorization") == f"Bearer {self.api_key}"

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        return Reply(status, {"detail": message, **extra})

    def unauthorized(self) -> Reply:
        return self.error(401, "Invalid API key")

    def invalid(self, *problems: tuple[str, str, str, Any]) -> Reply:
        """422 the way the API words it: one entry per (field, message, type, input)."""
        return Reply(
            422,
            {
                "detail": f"[RID: fake] Validation errors in {len(problems)} fields",
                "errors": [
                    {"field": f, "message": m, "type": t, "input": i} for f, m, t, i in problems
                ],
            },
        )

    def check_model(self, model: Any, kind: str) -> Reply | None:
        if self.balance_exhausted:
            return self.error(403, "Insufficient account balance")
        if model is None:
            return self.invalid(("body -> model", "Field required", "missing", None))
        if not isinstance(model, str):
            return self.invalid(
                ("body -> model", "Input should be a valid string", "string_type", model)
            )
        if self.models.get(model) != kind:
            return self.error(400, f"Model '{model}' not found")
        return None

    # --- routes -------------------------------------------------------------------------------

    def _text(self, model: str, item: Any, field: str) -> tuple[str | None, Reply | None]:
        if isinstance(item, str):
            return item, None
        if model in MULTIMODAL and isinstance(item, dict):
            if "text" in item:
                return str(item["text"]), None
            if "image" in item:
                return f"[image] {item['image']}", None
        return None, self.invalid((field, "Input should be a valid string", "string_type", item))

    @staticmethod
    def _int(value: Any) -> bool:
        return value is None or (isinstance(value, int) and not isinstance(value, bool))

    def embeddings(self, request: Request) -> Reply:
        body = request.json()
        model = body.get("model")
        problem = self.check_model(model, "text-embedding")
        if problem:
            return problem
        items = body.get("input")
        items = [items] if isinstance(items, str | dict) else items
        if not items:
            return self.invalid((f"body -> {model} -> input", "Field required", "missing", None))
        if not isinstance(items, list):
            return self.invalid(
                (f"body -> {model} -> input", "Input should be a valid list", "list_type", items)
            )
        if not self._int(body.get("dimensions")):
            return self.invalid(
                (
                    f"body -> {model} -> dimensions",
                    "Input should be a valid integer",
                    "int_type",
                    body["dimensions"],
                )
            )
        limit = MAX_INPUTS.get(model, DEFAULT_MAX_INPUTS)
        if len(items) > limit:
            return self.invalid(
                (f"body -> {model}", f"Each input list can contain at most {limit} items.", "", "")
            )
        task = body.get("task")
        if task is not None and model not in TASK_MODELS:
            return self.invalid(
                (
                    f"body -> {model} -> task",
                    "Extra inputs are not permitted",
                    "extra_forbidden",
                    task,
                )
            )
        if task is not None and task not in TASKS:
            return self.invalid((f"body -> {model} -> task", "Invalid task", "enum", task))
        texts: list[str] = []
        for i, item in enumerate(items):
            text, problem = self._text(model, item, f"body -> {model} -> input -> {i}")
            if problem:
                return problem
            texts.append(text or "")
        encoding = body.get("encoding_format") or body.get("embedding_type") or "float"
        dimensions = body.get("dimensions")
        data = []
        for i, text in enumerate(texts):
            vector: Any = embed_text(text)[: dimensions or None]
            if encoding == "base64":
                vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens = sum(words(t) for t in texts)
        return Reply(
            200,
            {
                "model": model,
                "object": "list",
                "usage": {"total_tokens": tokens, "prompt_tokens": tokens},
                "data": data,
            },
        )

    def rerank(self, request: Request) -> Reply:
        body = request.json()
        model = body.get("model")
        problem = self.check_model(model, "rerank")
        if problem:
            return problem
        query = body.get("query")
        if not isinstance(query, str) or not query:
            return self.invalid((f"body -> {model} -> query", "Field required", "missing", query))
        if not isinstance(body.get("documents", []), list):
            return self.invalid(
                (
                    f"body -> {model} -> documents",
                    "Input should be a valid list",
                    "list_type",
                    body["documents"],
                )
            )
        if not self._int(body.get("top_n")):
            return self.invalid(
                (
                    f"body -> {model} -> top_n",
                    "Input should be a valid integer",
                    "int_type",
                    body["top_n"],
                )
            )
        documents: list[str] = []
        for i, item in enumerate(body.get("documents") or ()):
            text, problem = self._text(model, item, f"body -> {model} -> documents -> {i}")
            if problem:
                return problem
            documents.append(text or "")
        if not documents:
            return self.invalid(
                (f"body -> {model} -> documents", "Field required", "missing", None)
            )
        ranked = sorted(
            (
                {
                    "index": i,
                    "relevance_score": overlap_score(query, d),
                    **({"document": {"text": d}} if body.get("return_documents") else {}),
                }
                for i, d in enumerate(documents)
            ),
            key=lambda hit: -hit["relevance_score"],
        )
        if body.get("top_n"):
            ranked = ranked[: int(body["top_n"])]
        tokens = words(query) * len(documents) + sum(words(d) for d in documents)
        return Reply(200, {"model": model, "usage": {"total_tokens": tokens}, "results": ranked})


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> JinaFake:
    return JinaFake(
        api_key=credentials["api_key"], models={model: kind for kind, model in models.items()}
    )


EMBED = {"model": "{model}", "input": ["hi"]}
RANK = {"model": "{model}", "query": "capital", "documents": ["Paris", "Rome"]}
# Sources: the bodies in this module's docstring (api.jina.ai answers as its reference at
# jina.ai/embeddings and jina.ai/reranker documents them), one 422 entry per bad field.
REFUSALS = (
    Refusal(
        "a wrong key",
        "/v1/embeddings",
        EMBED,
        status=401,
        says="Invalid API key",
        headers={"Authorization": "Bearer jina_wrong"},
    ),
    Refusal(
        "no key",
        "/v1/embeddings",
        EMBED,
        status=401,
        says="Invalid API key",
        headers={"Authorization": None},
    ),
    Refusal(
        "an unknown model",
        "/v1/embeddings",
        {**EMBED, "model": "jina-nope"},
        says="Model 'jina-nope' not found",
        model_type="text-embedding",
    ),
    Refusal(
        "no model",
        "/v1/embeddings",
        {"input": ["hi"]},
        status=422,
        says="Field required",
        model_type="text-embedding",
    ),
    Refusal(
        "no input",
        "/v1/embeddings",
        {"model": "{model}"},
        status=422,
        says="Field required",
        model_type="text-embedding",
    ),
    Refusal(
        "input as a number",
        "/v1/embeddings",
        {**EMBED, "input": 42},
        status=422,
        says="Input should be a valid list",
        model_type="text-embedding",
    ),
    Refusal(
        "dimensions as a string",
        "/v1/embeddings",
        {**EMBED, "dimensions": "64"},
        status=422,
        says="Input should be a valid integer",
        model_type="text-embedding",
    ),
    Refusal(
        "documents as a string",
        "/v1/rerank",
        {**RANK, "documents": "Paris"},
        status=422,
        says="Input should be a valid list",
        model_type="rerank",
    ),
    Refusal(
        "no query",
        "/v1/rerank",
        {"model": "{model}", "documents": ["Paris"]},
        status=422,
        says="Field required",
        model_type="rerank",
    ),
    Refusal(
        "top_n as a string",
        "/v1/rerank",
        {**RANK, "top_n": "one"},
        status=422,
        says="Input should be a valid integer",
        model_type="rerank",
    ),
)

SPEC = FakeSpec("jina", client="openai", serve=_serve, aim=aim_base_url("/v1"), refusals=REFUSALS)
