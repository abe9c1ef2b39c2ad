"""Hugging Face Text Embeddings Inference (TEI): one embedding or reranker model per server.

    GET  /info     {model_id, model_sha, model_dtype, model_type: {"embedding": {"pooling"}} |
                    {"reranker": {"id2label"}} | {"classifier": {...}}, max_input_length,
                    max_client_batch_size, max_batch_tokens, version, ...}
    POST /embed    {inputs: [..], normalize: true, truncate: true} -> [[float]]
    POST /rerank   {query, texts, truncate: true, return_text: false, raw_scores: false}
                   -> [{index, score}], best first
    errors         {"error": "...", "error_type": Validation | Tokenizer | Empty | Backend |
                   Overloaded | Unhealthy}: 422 / 422 / 400 / 424 / 429 / 503; a bad or missing
                   key is a bare 401, an unknown route a bare 404, a too-large body 413.

Credentials: `base_url` (the server URL, form field `server_url`; required), `api_key` (sent as
Bearer, only when TEI was started with --api-key), `max_chunks` (optional). The form's
`invoke_timeout` (seconds) and `max_retries` are the caller's to map into `Endpoint.timeouts.read`
and `Endpoint.retry` (attempts = max_retries + 1); this adapter reads neither.
Options: `max_chunks` (texts per request; else credentials' `max_chunks`, else 32, TEI's default
max_client_batch_size; validation reports the server's own value as `max_chunks`).

Usage: TEI puts the tokens it computed in the `x-compute-tokens` response header (router/src/lib.rs,
ResponseMetadata); it is summed as reported usage. Where the header is missing (older servers,
proxies that strip it) the texts are counted (~4 characters a token) and marked `counted`. The
/tokenize route is not used: it would cost a second request per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from config import errors
from providers.runtime import probe
from providers.runtime.base import (
    Adapter,
    DiscoveredModel,
    EmbeddingResult,
    RerankHit,
    RerankResult,
    Usage,
    Validation,
    count_tokens,
)
from providers.runtime.http import Response

DEFAULT_BATCH = 32
TOKENS_HEADER = "x-compute-tokens"
# Our model type -> the one key TEI's /info `model_type` must have.
TEI_KIND = {"text-embedding": "embedding", "rerank": "reranker"}
MODEL_TYPE = {kind: model_type for model_type, kind in TEI_KIND.items()}


class TEIAdapter(Adapter):
    family = "tei"

    def base_url(self) -> str:
        base = (self.endpoint.credentials.get("base_url") or "").strip() or (
            self.endpoint.base_url or ""
        ).strip()
        if not base:
            raise errors.InvalidInput(
                "The Text Embeddings Inference server URL is required.",
                fields={"server_url": ["This field is required."]},
            )
        return base.rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        api_key = self.endpoint.credentials.get("api_key")
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict) and "error" in body:
            kind = body.get("error_type")
            return f"{body['error']} ({kind})" if kind else str(body["error"])
        return super().error_message(body)

    # --- plumbing -----------------------------------------------------------------------------

    def _json(self, response: Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise errors.UpstreamUnavailable(
                f"The backend answered {response.status_code} with a body that is not JSON: "
                f"{self.http.bounded(response.text, 200)}"
            ) from exc

    @staticmethod
    def _tokens(response: Response) -> int | None:
        try:
            return int(response.headers[TOKENS_HEADER])
        except (KeyError, ValueError):
            return None

    def _batch_size(self) -> int:
        value = (
            self.endpoint.options.get("max_chunks")
            or self.endpoint.credentials.get("max_chunks")
            or DEFAULT_BATCH
        )
        return max(1, int(value))

    def info(self) -> dict[str, Any]:
        data = self.http.json("GET", "info")
        if not isinstance(data, dict) or not isinstance(data.get("model_type"), dict):
            raise errors.UpstreamBadRequest(
                "This server's /info has no model_type: it does not look like Text Embeddings "
                "Inference."
            )
        return data

    @staticmethod
    def _kind(info: dict[str, Any]) -> str:
        """The server's model kind: embedding, reranker or classifier ("" if not exactly one)."""
        keys = list(info["model_type"])
        return str(keys[0]) if len(keys) == 1 else ""

    # --- calls --------------------------------------------------------------------------------

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        """TEI serves one model, so `model` only names it for the caller; it is not sent."""
        if not texts:
            return EmbeddingResult(())
        batch = self._batch_size()
        vectors: list[tuple[float, ...]] = []
        prompt_tokens, counted = 0, False
        for start in range(0, len(texts), batch):
            chunk = list(texts[start : start + batch])
            response = self.http.request(
                "POST", "embed", json_body={"inputs": chunk, "normalize": True, "truncate": True}
            )
            data = self._json(response)
            if not isinstance(data, list) or len(data) != len(chunk):
                got = len(data) if isinstance(data, list) else type(data).__name__
                raise errors.UpstreamUnavailable(f"Asked for {len(chunk)} embeddings, got {got}.")
            try:
                vectors.extend(tuple(float(x) for x in row) for row in data)
            except (TypeError, ValueError) as exc:
                raise errors.UpstreamUnavailable(
                    "The backend sent an embedding that is not a list of numbers."
                ) from exc
            tokens = self._tokens(response)
            if tokens is None:
                tokens, counted = sum(count_tokens(t) for t in chunk), True
            prompt_tokens += tokens
        return EmbeddingResult(tuple(vectors), Usage(prompt_tokens, 0, counted=counted))

    def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        """Documents go in batches of `max_chunks` (each pair is scored on its own, so batches
        merge exactly); the hits are then ranked together."""
        if not documents:
            return RerankResult(())
        batch = self._batch_size()
        hits: list[RerankHit] = []
        prompt_tokens, counted = 0, False
        for start in range(0, len(documents), batch):
            chunk = list(documents[start : start + batch])
            response = self.http.request(
                "POST",
                "rerank",
                json_body={
                    "query": query,
                    "texts": chunk,
                    "truncate": True,
                    "return_text": False,
                    "raw_scores": False,
                },
            )
            data = self._json(response)
            try:
                for row in data:
                    index = start + int(row["index"])
                    hits.append(RerankHit(index, float(row["score"]), documents[index]))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise errors.UpstreamUnavailable(
                    "The backend's rerank reply is not a list of {index, score}."
                ) from exc
            tokens = self._tokens(response)
            if tokens is None:
                tokens = count_tokens(query) * len(chunk) + sum(count_tokens(d) for d in chunk)
                counted = True
            prompt_tokens += tokens
        hits.sort(key=lambda h: -h.score)
        return RerankResult(tuple(hits[: top_n or None]), Usage(prompt_tokens, 0, counted=counted))

    def list_models(self) -> list[DiscoveredModel]:
        """The server's one model, when it is an embedding model or a reranker (a classifier
        fits none of our model types, so it lists nothing)."""
        info = self.info()
        model_type = MODEL_TYPE.get(self._kind(info))
        if not model_type or not info.get("model_id"):
            return []
        return [DiscoveredModel(str(info["model_id"]), model_type, details=_details(info))]

    # --- validation ---------------------------------------------------------------------------

    def validate(self, model: str, model_type: str) -> Validation:
        """GET /info must show the kind of model the type needs; then one tiny real call."""
        expected = TEI_KIND.get(model_type)
        if expected is None:
            raise self._unsupported(f"{model_type} models")
        info = self.info()
        kind = self._kind(info)
        if kind != expected:
            served = f"{_a(kind)} model" if kind else f"a model of type {list(info['model_type'])}"
            raise errors.UpstreamBadRequest(
                f"This Text Embeddings Inference server serves {served} "
                f"({info.get('model_id', 'unknown')}), not {_a(expected)} model, so it cannot be "
                f"used as {_a(model_type)} model."
            )
        details = _details(info)
        if model_type == "text-embedding":
            details["dimensions"] = self.embed(model, [probe.PING]).dimensions
        else:
            details["documents_ranked"] = len(
                self.rerank(model, probe.PING, probe.RERANK_DOCUMENTS).hits
            )
        return Validation(details)


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _details(info: dict[str, Any]) -> dict[str, Any]:
    kind = next(iter(info["model_type"]), "")
    details: dict[str, Any] = {"model_id": info.get("model_id"), "model_type": kind}
    if info.get("max_input_length") is not None:
        details["context_size"] = int(info["max_input_length"])
    if info.get("max_client_batch_size") is not None:
        details["max_chunks"] = int(info["max_client_batch_size"])
    pooling = (info["model_type"].get("embedding") or {}).get("pooling")
    if pooling:
        details["pooling"] = pooling
    if info.get("version"):
        details["version"] = info["version"]
    return details
