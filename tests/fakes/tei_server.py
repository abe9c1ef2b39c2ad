"""A fake Hugging Face Text Embeddings Inference (TEI) server, after router/src/http/server.rs:

- one model per server, `kind` "embedding", "reranker" or "classifier" (GET /info `model_type`);
- POST /embed, /rerank, /similarity, /v1/embeddings, and POST / mapped to /embed (embedding) or
  /rerank (reranker) the way TEI does; GET /health, GET / and GET /ping answer without a key;
- an optional API key checked as `Authorization: Bearer <key>`; a wrong one is a bare 401;
- errors `{"error", "error_type"}`: Empty 400, Validation/Tokenizer 422, Backend 424,
  Overloaded 429, Unhealthy 503; unknown routes a bare 404;
- a body its serde types cannot take is axum's `Json` rejection, before any handler code: a
  plain-text 422 "Failed to deserialize the JSON body into the target type: ..." (a missing
  field, a string where a list or a bool is due: router/src/http/types.rs), or a 400 "Failed to
  parse the request body as JSON" for a body that is not JSON;
- the `x-compute-tokens` / `x-compute-characters` headers on embed and rerank replies.

Checked by huggingface_hub's InferenceClient in tests/unit/runtime/test_tei_fake.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from tests.fakes.base import Failure, FakeServer, Reply, Request, embed_text, overlap_score, words
from tests.fakes.spec import FakeSpec, Refusal

ERROR_TYPES = {
    400: "Empty",
    413: "Validation",
    422: "Validation",
    429: "Overloaded",
    503: "Unhealthy",
}
PUBLIC = {("GET", "/health"), ("GET", "/"), ("GET", "/ping"), ("GET", "/metrics")}
# What each route's request type takes (router/src/http/types.rs): field -> (required, check, the
# serde words for a value it refuses). `Input` is an untagged enum: a string or a list.
_LIST = (lambda v: isinstance(v, list), "expected a sequence")
_BOOL = (lambda v: isinstance(v, bool), "expected a boolean")
_STR = (lambda v: isinstance(v, str), "expected a string")
_INPUT = (
    lambda v: isinstance(v, str | list),
    "data did not match any variant of untagged enum Input",
)
_UINT = (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "expected usize")
FIELDS = {
    "EmbedRequest": {
        "inputs": (True, *_INPUT),
        "truncate": (False, *_BOOL),
        "normalize": (False, *_BOOL),
        "dimensions": (False, *_UINT),
    },
    "RerankRequest": {
        "query": (True, *_STR),
        "texts": (True, *_LIST),
        "truncate": (False, *_BOOL),
        "raw_scores": (False, *_BOOL),
        "return_text": (False, *_BOOL),
    },
    "OpenAICompatRequest": {"input": (True, *_INPUT), "model": (False, *_STR)},
}


def tei_vector(text: str, dimensions: int = 8, normalize: bool = True) -> list[float]:
    """What the fake embeds `text` to: `embed_text`, scaled to unit length when normalizing."""
    vector = embed_text(text, dimensions)
    if not normalize:
        return vector
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [round(x / norm, 6) for x in vector]


def tokens(text: str) -> int:
    """The fake tokenizer: a token a word, plus [CLS] and [SEP]."""
    return words(text) + 2


class TEIFake(FakeServer):
    def __init__(
        self,
        api_key: str | None = "fake-key",
        *,
        kind: str = "embedding",
        model_id: str = "BAAI/bge-m3",
        max_client_batch_size: int = 32,
        max_input_length: int = 512,
        dimensions: int = 8,
    ) -> None:
        super().__init__(api_key)
        self.kind = kind
        self.model_id = model_id
        self.max_client_batch_size = max_client_batch_size
        self.max_input_length = max_input_length
        self.dimensions = dimensions
        self.auto_truncate = False
        self.report_tokens = True  # False: leave out x-compute-tokens, as a stripping proxy does
        self.route("GET", "/info", self.info)
        self.route("GET", "/health", self.health)
        self.route("GET", "/", self.health)
        self.route("GET", "/ping", self.health)
        self.route("POST", "/embed", self.embed)
        self.route("POST", "/rerank", self.rerank)
        self.route("POST", "/similarity", self.similarity)
        self.route("POST", "/v1/embeddings", self.openai_embed)
        self.route("POST", "/", self.root)

    # --- family hooks -------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if self.api_key is None or (request.method, request.path) in PUBLIC:
            return True
        return request.header("authorization") == f"Bearer {self.api_key}"

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        if status == 404:  # axum's fallback: no body
            return Reply(404, b"", content_type="text/plain")
        error_type = extra.get("error_type") or ERROR_TYPES.get(status, "Backend")
        return Reply(status, {"error": message, "error_type": error_type})

    def unauthorized(self) -> Reply:
        return Reply(401, b"", content_type="text/plain")

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        """Adds `fail("503")`: TEI's Unhealthy answer, and "429" worded as TEI's Overloaded."""
        if failure is not None and failure.mode == "503":
            return self.error(503, "Model is unhealthy")
        if failure is not None and failure.mode == "429":
            return self.error(429, "Model is overloaded")
        return super()._reply(request, failure)

    def deserialize(self, request: Request, kind: str) -> tuple[dict[str, Any], Reply | None]:
        """axum's `Json<T>` extractor: the body as `kind`, or its plain-text rejection."""
        try:
            body = request.json()
        except ValueError as exc:
            return {}, Reply(
                400,
                f"Failed to parse the request body as JSON: {exc}".encode(),
                content_type="text/plain; charset=utf-8",
            )
        problem = ""
        if not isinstance(body, dict):
            problem = f"invalid type: expected struct {kind}"
        else:
            for field, (required, ok, expected) in FIELDS[kind].items():
                if field not in body or body[field] is None:
                    problem = f"missing field `{field}`" if required else ""
                elif not ok(body[field]):
                    value = json.dumps(body[field])
                    problem = f"{field}: invalid type: {value}, {expected}"
                if problem:
                    break
        if problem:
            return {}, Reply(
                422,
                f"Failed to deserialize the JSON body into the target type: {problem}".encode(),
                content_type="text/plain; charset=utf-8",
            )
        return body, None

    # --- routes -------------------------------------------------------------------------------

    def model_type(self) -> dict[str, Any]:
        if self.kind == "embedding":
            return {"embedding": {"pooling": "cls"}}
        labels = {"0": "LABEL_0"} if self.kind == "reranker" else {"0": "NEG", "1": "POS"}
        return {self.kind: {"id2label": labels, "label2id": {v: int(k) for k, v in labels.items()}}}

    def info(self, request: Request) -> Reply:
        return Reply(
            200,
            {
                "model_id": self.model_id,
                "model_sha": "5617a9f61b028005a4858fdac845db406aefb181",
                "model_dtype": "float16",
                "served_model_name": self.model_id,
                "model_type": self.model_type(),
                "max_concurrent_requests": 512,
                "max_input_length": self.max_input_length,
                "max_batch_tokens": 16384,
                "max_batch_requests": None,
                "max_client_batch_size": self.max_client_batch_size,
                "auto_truncate": self.auto_truncate,
                "tokenization_workers": 4,
                "version": "1.8.2",
                "sha": None,
                "docker_label": None,
            },
        )

    def health(self, request: Request) -> Reply:
        return Reply(200, b"", content_type="text/plain")

    def root(self, request: Request) -> Reply:
        if self.kind == "reranker":
            return self.rerank(request)
        if self.kind == "classifier":
            return self.error(424, "predict is not part of this fake")
        return self.embed(request)

    def _check_inputs(self, texts: list[str], truncate: bool) -> Reply | None:
        if not texts:
            return self.error(400, "`inputs` cannot be empty")
        if len(texts) > self.max_client_batch_size:
            return self.error(
                422,
                f"batch size {len(texts)} > maximum allowed batch size "
                f"{self.max_client_batch_size}",
            )
        for text in texts:
            if not truncate and tokens(text) > self.max_input_length:
                return self.error(
                    422,
                    f"Input validation error: `inputs` must have less than "
                    f"{self.max_input_length} tokens. Given: {tokens(text)}",
                )
        return None

    def _headers(self, texts: list[str]) -> dict[str, str]:
        if not self.report_tokens:
            return {}
        counted = sum(min(tokens(t), self.max_input_length) for t in texts)
        return {
            "x-compute-type": "cpu",
            "x-compute-characters": str(sum(len(t) for t in texts)),
            "x-compute-tokens": str(counted),
        }

    def embed(self, request: Request) -> Reply:
        body, rejected = self.deserialize(request, "EmbedRequest")
        if rejected:
            return rejected
        inputs = body["inputs"]
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        truncate = body.get("truncate")
        problem = self._check_inputs(texts, self.auto_truncate if truncate is None else truncate)
        if problem:
            return problem
        if self.kind != "embedding":
            return self.error(424, "model is not an embedding model")
        normalize = body.get("normalize", True)
        vectors = [tei_vector(t, self.dimensions, normalize) for t in texts]
        if body.get("dimensions"):
            vectors = [v[: body["dimensions"]] for v in vectors]
        return Reply(200, vectors, headers=self._headers(texts))

    def rerank(self, request: Request) -> Reply:
        body, rejected = self.deserialize(request, "RerankRequest")
        if rejected:
            return rejected
        texts = list(body["texts"])
        if not texts:
            return self.error(400, "`texts` cannot be empty")
        if self.kind != "reranker":
            return self.error(424, "model is not a re-ranker model")
        truncate = body.get("truncate")
        pairs = [f"{body['query']} {t}" for t in texts]
        problem = self._check_inputs(pairs, self.auto_truncate if truncate is None else truncate)
        if problem:
            return problem
        ranks = []
        for index, text in enumerate(texts):
            score = overlap_score(body["query"], text)
            if body.get("raw_scores"):  # the logit before the sigmoid
                score = round(math.log(max(score, 1e-6) / max(1 - score, 1e-6)), 4)
            rank: dict[str, Any] = {"index": index, "score": score}
            if body.get("return_text"):
                rank["text"] = text
            ranks.append(rank)
        ranks.sort(key=lambda r: -r["score"])
        return Reply(200, ranks, headers=self._headers(pairs))

    def similarity(self, request: Request) -> Reply:
        """{inputs: {source_sentence, sentences}} -> cosine of each sentence with the source."""
        body = request.json()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, dict) or "source_sentence" not in inputs:
            return Reply(
                422,
                b"Failed to deserialize the JSON body into the target type: missing field `inputs`",
                content_type="text/plain; charset=utf-8",
            )
        if self.kind != "embedding":
            return self.error(424, "model is not an embedding model")
        sentences = list(inputs.get("sentences") or ())
        problem = self._check_inputs([inputs["source_sentence"], *sentences], truncate=True)
        if problem:
            return problem
        source = tei_vector(inputs["source_sentence"], self.dimensions)
        scores = [
            round(
                sum(a * b for a, b in zip(source, tei_vector(s, self.dimensions), strict=True)), 6
            )
            for s in sentences
        ]
        return Reply(200, scores, headers=self._headers([inputs["source_sentence"], *sentences]))

    def openai_embed(self, request: Request) -> Reply:
        body, rejected = self.deserialize(request, "OpenAICompatRequest")
        if rejected:
            return rejected
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or ())
        problem = self._check_inputs(texts, truncate=True)
        if problem:
            return Reply(
                problem.status,
                {
                    "message": problem.body["error"],
                    "code": problem.status,
                    "type": problem.body["error_type"],
                },
            )
        if self.kind != "embedding":
            return Reply(
                424, {"message": "model is not an embedding model", "code": 424, "type": "Backend"}
            )
        count = sum(tokens(t) for t in texts)
        return Reply(
            200,
            {
                "object": "list",
                "model": self.model_id,
                "data": [
                    {"object": "embedding", "index": i, "embedding": tei_vector(t, self.dimensions)}
                    for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": count, "total_tokens": count},
            },
        )


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> TEIFake:
    ((kind, model),) = models.items()
    return TEIFake(
        api_key=credentials.get("api_key") or None,
        kind="reranker" if kind == "rerank" else "embedding",
        model_id=model,
    )


# Sources: text-embeddings-inference router/src/http/server.rs (handlers, ErrorResponse and its
# statuses, the API-key check) and router/src/http/types.rs (the request types); axum's `Json`
# rejection texts. TEI serves one model and reads no model name on its native routes.
REFUSALS = (
    Refusal(
        "a wrong key",
        "/embed",
        {"inputs": ["hi"]},
        status=401,
        headers={"Authorization": "Bearer wrong"},
        model_type="text-embedding",
    ),
    Refusal(
        "no key",
        "/embed",
        {"inputs": ["hi"]},
        status=401,
        headers={"Authorization": None},
        model_type="text-embedding",
    ),
    Refusal(
        "no inputs",
        "/embed",
        {"normalize": True},
        status=422,
        says="missing field `inputs`",
        model_type="text-embedding",
    ),
    Refusal(
        "inputs as a number",
        "/embed",
        {"inputs": 42},
        status=422,
        says="did not match any variant of untagged enum Input",
        model_type="text-embedding",
    ),
    Refusal(
        "truncate as a string",
        "/embed",
        {"inputs": ["hi"], "truncate": "yes"},
        status=422,
        says="truncate: invalid type",
        model_type="text-embedding",
    ),
    Refusal("empty inputs", "/embed", {"inputs": []}, says="Empty", model_type="text-embedding"),
    Refusal(
        "texts as a string",
        "/rerank",
        {"query": "capital", "texts": "Paris"},
        status=422,
        says="texts: invalid type",
        model_type="rerank",
    ),
    Refusal(
        "no query",
        "/rerank",
        {"texts": ["Paris"]},
        status=422,
        says="missing field `query`",
        model_type="rerank",
    ),
    Refusal(
        "reranking on an embedding model",
        "/rerank",
        {"query": "capital", "texts": ["Paris"]},
        status=424,
        says="model is not a re-ranker model",
        model_type="text-embedding",
    ),
    Refusal(
        "no input on the OpenAI route",
        "/v1/embeddings",
        {"model": "{model}"},
        status=422,
        says="missing field `input`",
        model_type="text-embedding",
    ),
)

SPEC = FakeSpec("tei", client="huggingface_hub", serve=_serve, refusals=REFUSALS)
