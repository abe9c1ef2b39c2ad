"""The Jina AI Search Foundation API: embeddings and rerank at https://api.jina.ai/v1.

    POST /embeddings {model, input[], task?}
                     -> {model, object: "list", data[{object: "embedding", index, embedding}],
                         usage{total_tokens, prompt_tokens}}
    POST /rerank {model, query, documents, top_n, return_documents: false}
                     -> {model, results[{index, relevance_score}], usage{total_tokens}}
    errors           {"detail": "...", "errors"?: [{field, message, type}]}: 400 unknown model
                     ("Model 'x' not found"), 401 bad key, 403 insufficient balance, 422 validation,
                     429 rate limit, 500.

Credentials: `api_key` (Bearer), `base_url` (overrides the manifest's; a pasted ".../embeddings" or
".../rerank" is trimmed back to the API root). Options: `max_chunks` (texts per embedding request,
default 512, never above the API's 2048), `task` (sent as-is for every model; without it
jina-embeddings-v3/v4 get "retrieval.passage", the indexing adapter, as Dify does, and other models
get no `task` because the API rejects it as an extra input for them).

The multimodal models (jina-clip-v1/v2, jina-embeddings-v4, jina-reranker-m0) take each text
wrapped as {"text": ...}. No model listing: the API has no endpoint for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from config import errors
from providers.runtime.base import (
    Adapter,
    EmbeddingResult,
    RerankHit,
    RerankResult,
    TokenTally,
    Usage,
    count_tokens,
)

DEFAULT_BASE_URL = "https://api.jina.ai/v1"
DEFAULT_BATCH = 512  # jina-embeddings-v4 accepts at most 512 inputs a request
MAX_BATCH = 2048  # the API's limit for every other embedding model
TASK_MODELS = frozenset({"jina-embeddings-v3", "jina-embeddings-v4"})
DEFAULT_TASK = "retrieval.passage"
MULTIMODAL_MODELS = frozenset(
    {"jina-clip-v1", "jina-clip-v2", "jina-embeddings-v4", "jina-reranker-m0"}
)


def _field_errors(items: Any) -> list[str]:
    found: list[str] = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            where = item.get("field") or ".".join(str(p) for p in item.get("loc") or ())
            what = item.get("message") or item.get("msg") or ""
            found.append(f"{where}: {what}" if where else str(what))
        else:
            found.append(str(item))
    return found


class JinaAdapter(Adapter):
    family = "jina"
    error_field = "detail"

    def base_url(self) -> str:
        base = (self.endpoint.credentials.get("base_url") or "").strip() or (
            self.endpoint.base_url or DEFAULT_BASE_URL
        )
        base = base.rstrip("/")
        for suffix in ("/embeddings", "/rerank"):
            base = base.removesuffix(suffix)
        return base

    def auth_headers(self) -> dict[str, str]:
        api_key = self.endpoint.credentials.get("api_key")
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def error_message(self, body: Any) -> str:
        """`detail` is a string (or FastAPI's list of {loc, msg}); `errors` lists field errors."""
        if not isinstance(body, dict):
            return str(body)
        detail = body.get("detail", body.get("message", body.get("error", "")))
        parts = _field_errors(detail) if isinstance(detail, list) else [str(detail or "")]
        parts += _field_errors(body.get("errors"))[:3]
        return "; ".join(p for p in parts if p) or str(body)

    # --- calls --------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST and parse; Jina's 400 "Model 'x' not found" is a not-found, a 403 about the
        balance is a quota error."""
        try:
            data = self.http.json("POST", path, json_body=body)
        except errors.UpstreamBadRequest as exc:
            lowered = exc.message.lower()
            if "model" in lowered and "not found" in lowered:
                raise errors.UpstreamNotFound(exc.message) from exc
            raise
        except errors.UpstreamAuth as exc:
            lowered = exc.message.lower()
            if exc.message.startswith("403") and ("balance" in lowered or "quota" in lowered):
                raise errors.UpstreamQuota(exc.message) from exc
            raise
        if not isinstance(data, dict):
            raise errors.UpstreamUnavailable(
                f"The backend's reply is not a JSON object: {self.http.bounded(str(data), 200)}"
            )
        return data

    @staticmethod
    def _input(model: str, text: str) -> Any:
        return {"text": text} if model in MULTIMODAL_MODELS else text

    def _batch_size(self) -> int:
        value = (
            self.endpoint.options.get("max_chunks")
            or self.endpoint.credentials.get("max_chunks")
            or DEFAULT_BATCH
        )
        return max(1, min(int(value), MAX_BATCH))

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        if not texts:
            return EmbeddingResult(())
        batch = self._batch_size()
        task = self.endpoint.options.get("task") or (DEFAULT_TASK if model in TASK_MODELS else "")
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), batch):
            chunk = list(texts[start : start + batch])
            body: dict[str, Any] = {"model": model, "input": [self._input(model, t) for t in chunk]}
            if task:
                body["task"] = task
            data = self._post("embeddings", body)
            rows = sorted(data.get("data") or (), key=lambda row: row.get("index", 0))
            if len(rows) != len(chunk):
                raise errors.UpstreamUnavailable(
                    f"Asked for {len(chunk)} embeddings, got {len(rows)}."
                )
            try:
                vectors.extend(tuple(float(x) for x in row["embedding"]) for row in rows)
            except (KeyError, TypeError, ValueError) as exc:
                raise errors.UpstreamUnavailable(
                    "The backend sent an embedding that is not a list of numbers."
                ) from exc
            usage = data.get("usage") or {}
            tally.add(usage.get("prompt_tokens") or usage.get("total_tokens"), chunk)
        return EmbeddingResult(tuple(vectors), tally.usage)

    def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        if not documents:
            return RerankResult(())
        data = self._post(
            "rerank",
            {
                "model": model,
                "query": query,
                "documents": [self._input(model, d) for d in documents],
                "top_n": top_n or len(documents),
                "return_documents": False,
            },
        )
        try:
            hits = [
                RerankHit(
                    index=int(r["index"]),
                    score=float(r["relevance_score"]),
                    document=documents[int(r["index"])],
                )
                for r in data.get("results") or ()
            ]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise errors.UpstreamUnavailable(
                "The backend's rerank results are not {index, relevance_score} pairs."
            ) from exc
        hits.sort(key=lambda h: -h.score)
        tokens = (data.get("usage") or {}).get("total_tokens")
        usage = (
            Usage(int(tokens))
            if tokens is not None
            else Usage(count_tokens(query) + sum(count_tokens(d) for d in documents), counted=True)
        )
        return RerankResult(tuple(hits[: top_n or None]), usage)

    # --- validation ---------------------------------------------------------------------------
