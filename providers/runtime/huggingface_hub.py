"""Hugging Face Hub: the hosted Inference API (the `hf-inference` provider behind
router.huggingface.co) and your own Inference Endpoints (TGI for generation, TEI-style feature
extraction), as huggingface_hub's InferenceClient calls them.

    hosted     chat        POST {router}/models/{repo}/v1/chat/completions   OpenAI's shape
               embeddings  POST {router}/models/{repo}/pipeline/feature-extraction  {inputs}
    endpoint   chat        POST {url}/v1/chat/completions (TGI's Messages API, model "tgi")
               text2text   POST {url} {inputs, parameters, stream} -> [{generated_text}] or TGI
                           SSE `data: {token, generated_text}`
               embeddings  POST {url} {inputs} -> [[float]]
    validation GET {hub}/api/models/{repo} (its pipeline_tag) for the hosted API;
               GET {endpoints API}/{namespace} (the endpoint whose URL is ours must run the
               model) for an embedding endpoint; then one cheap call.

Credentials: `api_key` (an hf_ token, Bearer everywhere), `api_type` (hosted_inference_api |
inference_endpoints), `base_url` (the endpoint URL), `namespace`, `task_type`.
Options: `hub_api_url`, `endpoints_api_url`, `max_chunks` (embedding batch size).

Errors are `{"error": "..."}` (a string, or OpenAI's object on chat routes); a model still
loading answers 503 with `estimated_time`: unavailable, retried after that long (capped).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from config import errors
from providers.runtime.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    TokenTally,
    Usage,
    Validation,
    count_tokens,
)
from providers.runtime.http import Response
from providers.runtime.openai_compat import OpenAICompatAdapter

HOSTED, ENDPOINTS = "hosted_inference_api", "inference_endpoints"
HUB_API_URL = "https://huggingface.co/api/models"
ENDPOINTS_API_URL = "https://api.endpoints.huggingface.cloud/v2/endpoint"
TEXT2TEXT = "text2text-generation"
# The hosted API serves chat (the `conversational` task) for these tags only.
LLM_TAGS = frozenset({"text-generation", "image-text-to-text"})
EMBEDDING_TAGS = frozenset({"feature-extraction", "sentence-similarity"})
DEFAULT_BATCH = 32
# ChatRequest.parameters -> TGI's `parameters` for the text-generation API.
GENERATION_PARAMETERS = {
    "max_tokens": "max_new_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "repetition_penalty": "repetition_penalty",
}
FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}


def _tgi_sampling(parameters: dict[str, Any], *, generation: bool) -> dict[str, Any]:
    """Leave out the sampling values TGI refuses (its router/src/validation.rs wants
    0 < top_p < 1 and, on the generation API, temperature > 0; text-generation-inference#2222)
    where leaving them out means the same: a top_p of 1.0 keeps every token, as none does, and
    a temperature of 0 asks for greedy decoding, the generation API's default."""
    dropped = {"top_p": 1.0, **({"temperature": 0} if generation else {})}
    return {k: v for k, v in parameters.items() if k not in dropped or v != dropped[k]}


class HuggingFaceHubAdapter(OpenAICompatAdapter):
    family = "huggingface_hub"
    offers = frozenset({"chat", "stream", "embed"})

    # --- where and how ------------------------------------------------------------------------

    @property
    def hosted(self) -> bool:
        return str(self.endpoint.credentials.get("api_type") or HOSTED) != ENDPOINTS

    @property
    def endpoint_url(self) -> str:
        return str(self.endpoint.credentials.get("base_url") or "").strip().rstrip("/")

    def base_url(self) -> str:
        if self.hosted:
            return self.endpoint.base_url.rstrip("/")
        return self.endpoint_url

    def auth_headers(self) -> dict[str, str]:
        token = self.endpoint.credentials.get("api_key")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """A model still loading (503 with `estimated_time`) is retried after that long."""
        if response.status_code != 503:
            return failure
        try:
            wait = float(response.json().get("estimated_time"))
        except (AttributeError, TypeError, ValueError):
            return failure
        failure.retry_after = max(0.0, wait)  # type: ignore[attr-defined]
        return failure

    def _ready(self) -> None:
        if not self.endpoint.credentials.get("api_key"):
            raise errors.InvalidInput("A Hugging Face API token is required.", code="invalid")
        if not self.hosted and not self.endpoint_url:
            raise errors.InvalidInput("The Inference Endpoint URL is required.", code="invalid")

    def _model_path(self, model: str) -> str:
        return f"models/{quote(model, safe='/')}"

    def route(self, model: str, path: str) -> str:
        if self.hosted:
            return f"{self._model_path(model)}/v1/{path}"
        return f"v1/{path}"

    def model_name(self, model: str) -> str:
        return model if self.hosted else "tgi"

    def completion_mode(self, model: str) -> bool:
        """An endpoint set up for text2text-generation serves TGI's text-generation API only."""
        task = str(self.endpoint.credentials.get("task_type") or "")
        return not self.hosted and task == TEXT2TEXT

    # --- text generation (text2text endpoints) ------------------------------------------------

    def generation_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        parameters: dict[str, Any] = {"return_full_text": False, "details": True}
        for name, value in request.parameters.items():
            if value is not None and name in GENERATION_PARAMETERS:
                parameters[GENERATION_PARAMETERS[name]] = value
        if request.stop:
            parameters["stop"] = list(request.stop)
        parameters = _tgi_sampling(parameters, generation=True)
        return {"inputs": self.prompt(request), "parameters": parameters, "stream": stream}

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return _tgi_sampling(super().chat_body(model, request, stream=stream), generation=False)

    def _complete(self, model: str, request: ChatRequest) -> ChatResult:
        data = self.http.json(
            "POST", self.http.base_url, json_body=self.generation_body(request, stream=False)
        )
        output = data[0] if isinstance(data, list) else data
        text = output["generated_text"]
        details = output.get("details") or {}
        return ChatResult(
            text=text,
            finish_reason=FINISH_REASONS.get(details.get("finish_reason"), "stop"),
            usage=_generation_usage(request, text, details.get("generated_tokens")),
            model=model,
        )

    def _stream_completion(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        response = self.http.request(
            "POST",
            self.http.base_url,
            json_body=self.generation_body(request, stream=True),
            stream=True,
        )
        produced: list[str] = []
        for _, payload in self.http.sse(response):
            data = self.http.parse(payload)
            if data.get("error") is not None:
                raise errors.UpstreamUnavailable(self.http.bounded(self.error_message(data)))
            token = data.get("token") or {}
            text = "" if token.get("special") else str(token.get("text") or "")
            if text:
                produced.append(text)
                yield ChatChunk(text=text)
            if data.get("generated_text") is not None:
                details = data.get("details") or {}
                yield ChatChunk(
                    finish_reason=FINISH_REASONS.get(details.get("finish_reason"), "stop"),
                    usage=_generation_usage(
                        request, "".join(produced), details.get("generated_tokens")
                    ),
                )
                return
        raise errors.UpstreamConnection("The endpoint's stream ended before its last token.")

    # --- the interface ------------------------------------------------------------------------

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        self._ready()
        return super().chat(model, request)

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        self._ready()
        return super().stream(model, request)

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        self._ready()
        path = (
            f"{self._model_path(model)}/pipeline/feature-extraction"
            if self.hosted
            else self.http.base_url
        )
        batch = int(self.endpoint.options.get("max_chunks") or DEFAULT_BATCH)
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), max(1, batch)):
            chunk = list(texts[start : start + batch])
            rows = self.http.json("POST", path, json_body={"inputs": chunk})
            if not isinstance(rows, list) or len(rows) != len(chunk):
                got = len(rows) if isinstance(rows, list) else 0
                raise errors.UpstreamUnavailable(f"Asked for {len(chunk)} embeddings, got {got}.")
            vectors.extend(tuple(float(x) for x in row) for row in rows)
            tally.add(None, chunk)
        return EmbeddingResult(tuple(vectors), tally.usage)

    # --- validation ---------------------------------------------------------------------------

    def validate(self, model: str, model_type: str) -> Validation:
        """The Hub's word on the model (hosted) or the endpoint's (an embedding endpoint), then
        one cheap call of that type."""
        self._ready()
        if model_type not in ("llm", "text-embedding"):
            raise self._unsupported(f"{model_type} models")
        details: dict[str, Any] = {"api_type": HOSTED if self.hosted else ENDPOINTS}
        if self.hosted:
            details["pipeline_tag"] = self._pipeline_tag(model, model_type)
        elif model_type == "text-embedding":
            details.update(self._check_endpoint(model))
        details.update(super().validate(model, model_type).details)
        return Validation(details)

    def _pipeline_tag(self, model: str, model_type: str) -> str:
        hub = str(self.endpoint.options.get("hub_api_url") or HUB_API_URL).rstrip("/")
        info = self.http.json("GET", f"{hub}/{quote(model, safe='/')}")
        tag = str(info.get("pipeline_tag") or "")
        wanted = LLM_TAGS if model_type == "llm" else EMBEDDING_TAGS
        if tag not in wanted:
            raise errors.UpstreamBadRequest(
                f"{model} is a {tag or 'untagged'} model on the Hub, not one of "
                f"{', '.join(sorted(wanted))}."
            )
        return tag

    def _check_endpoint(self, model: str) -> dict[str, Any]:
        """The namespace's endpoint at our URL must run `model` (as Dify checks)."""
        namespace = str(self.endpoint.credentials.get("namespace") or "").strip()
        if not namespace:
            raise errors.InvalidInput(
                "Name the user or organisation that owns the endpoint.",
                code="invalid",
                fields={"namespace": ["This field is required."]},
            )
        api = str(self.endpoint.options.get("endpoints_api_url") or ENDPOINTS_API_URL)
        data = self.http.json("GET", f"{api.rstrip('/')}/{quote(namespace, safe='')}")
        for item in data.get("items") or ():
            url = str((item.get("status") or {}).get("url") or "").rstrip("/")
            if url and url == self.endpoint_url:
                repository = (item.get("model") or {}).get("repository")
                if repository != model:
                    raise errors.UpstreamBadRequest(
                        f"The endpoint at this URL runs {repository}, not {model}."
                    )
                return {"endpoint_name": item.get("name"), "repository": repository}
        raise errors.UpstreamNotFound(f"{namespace} has no Inference Endpoint at this URL.")


def _generation_usage(request: ChatRequest, text: str, generated: Any) -> Usage:
    prompt = sum(count_tokens(m.text()) for m in request.messages)
    if generated is None:
        return Usage(prompt, count_tokens(text), counted=True)
    return Usage(prompt, int(generated), counted=True)
