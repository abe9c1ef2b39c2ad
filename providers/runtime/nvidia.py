"""The NVIDIA API Catalog (build.nvidia.com): hosted NIM endpoints behind one `nvapi-...` key.

Credentials: `api_key` (Bearer). Options: `retrieval_url` (where the retrieval models live,
https://ai.api.nvidia.com/v1/retrieval), `input_type` (`query` | `passage`, what embeddings are
made for; `query` as Dify sends), `truncate` (`NONE` | `START` | `END`: what a retrieval model
does with a text past its context).

Chat is OpenAI-compatible at https://integrate.api.nvidia.com/v1 (the OpenAI adapter, as is).
Embeddings are OpenAI's /embeddings body plus `input_type` and `truncate`; the older NV-Embed-QA
lives on the retrieval host. Rerank is NVIDIA's own shape, `{model, query: {text}, passages:
[{text}]}` -> `{rankings: [{index, logit}]}`, at a path per model; the logits become scores in
(0, 1) by the logistic function, as Dify does.

Errors are RFC 7807 problems, `{"status", "title", "detail"}` (a wrong key is 403 "Authorization
failed", a missing one 401); NIM's own validation errors are OpenAI's or vLLM's shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from config import errors
from providers.runtime.base import (
    EmbeddingResult,
    RerankHit,
    RerankResult,
    TokenTally,
    Usage,
    count_tokens,
)
from providers.runtime.openai_compat import OpenAICompatAdapter

RETRIEVAL_URL = "https://ai.api.nvidia.com/v1/retrieval"
EMBEDDING_BATCH = 50  # what NVIDIA's own clients send at a time
# Models the retrieval host serves at its shared paths (the first API Catalog models); every other
# rerank model has its own path, its name with "." as "_".
SHARED_PATHS = {"NV-Embed-QA": "nvidia/embeddings", "nv-rerank-qa-mistral-4b:1": "nvidia/reranking"}


def sigmoid(logit: float) -> float:
    if logit < -700:  # math.exp overflows past ~709
        return 0.0
    return 1 / (1 + math.exp(-logit))


class NvidiaAdapter(OpenAICompatAdapter):
    family = "nvidia"
    # No audio: NVIDIA's speech NIMs are Riva services, not the OpenAI wire's /audio routes.
    offers = frozenset({"chat", "stream", "embed", "rerank", "list_models"})

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict):
            if "detail" in body or "title" in body:  # an RFC 7807 problem
                detail = body.get("detail")
                if isinstance(detail, list):  # a request validation error: [{loc, msg}, ...]
                    detail = "; ".join(
                        str(item.get("msg", item)) if isinstance(item, dict) else str(item)
                        for item in detail
                    )
                return str(detail or body.get("title"))
            if body.get("object") == "error" and "message" in body:  # vLLM's flat error
                return str(body["message"])
        return super().error_message(body)

    def retrieval_url(self, model: str, kind: str) -> str:
        base = str(self.endpoint.options.get("retrieval_url") or RETRIEVAL_URL).rstrip("/")
        if model in SHARED_PATHS:
            return f"{base}/{SHARED_PATHS[model]}"
        namespace, _, name = model.rpartition("/")
        return f"{base}/{namespace or 'nvidia'}/{name.replace('.', '_')}/{kind}"

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        options = self.endpoint.options
        path = self.retrieval_url(model, "embeddings") if model in SHARED_PATHS else "embeddings"
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), EMBEDDING_BATCH):
            batch = list(texts[start : start + EMBEDDING_BATCH])
            body = {
                "model": model,
                "input": batch,
                "input_type": options.get("input_type") or "query",
                "encoding_format": "float",
                "truncate": options.get("truncate") or "END",
            }
            data = self.http.json("POST", path, json_body=body)
            rows = sorted(data.get("data") or (), key=lambda row: row.get("index", 0))
            if len(rows) != len(batch):
                raise errors.UpstreamUnavailable(
                    f"Asked for {len(batch)} embeddings, got {len(rows)}."
                )
            vectors.extend(tuple(float(x) for x in row["embedding"]) for row in rows)
            usage = data.get("usage") or {}
            tally.add(usage.get("prompt_tokens", usage.get("total_tokens")), batch)
        return EmbeddingResult(tuple(vectors), tally.usage)

    def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        body = {
            "model": model,
            "query": {"text": query},
            "passages": [{"text": document} for document in documents],
            "truncate": self.endpoint.options.get("truncate") or "END",
        }
        data = self.http.json("POST", self.retrieval_url(model, "reranking"), json_body=body)
        hits = sorted(
            (
                RerankHit(
                    index=int(row["index"]),
                    score=sigmoid(float(row["logit"])),
                    document=documents[int(row["index"])],
                )
                for row in data["rankings"]
            ),
            key=lambda hit: -hit.score,
        )
        usage = data.get("usage") or {}
        if "prompt_tokens" in usage or "total_tokens" in usage:
            spent = Usage(int(usage.get("prompt_tokens", usage.get("total_tokens")) or 0))
        else:
            spent = Usage(
                count_tokens(query) + sum(count_tokens(d) for d in documents), counted=True
            )
        return RerankResult(tuple(hits[: top_n or None]), spent)
