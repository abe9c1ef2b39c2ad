"""NVIDIA Triton Inference Server: a language model served behind Triton's generate extension.

Credentials: `base_url` (the server's HTTP endpoint, e.g. http://host:8000). Options (Dify's form):
`completion_type` (`chat`: the messages become a "Role: text" transcript for the model to continue;
`completion`: their text as is), `stream` ("false": a stream is one generate call, as Dify does).
Triton asks for no key.

Calls: `POST v2/models/{model}/generate {text_input, max_tokens, parameters{...}}` ->
`{model_name, model_version, text_output}`; `.../generate_stream` answers the same objects as SSE
`data:` events, with no end marker, and may send `{"error": ...}` after a 200. Parameters are
model-specific scalars (temperature, top_p, top_k...); stop sequences are applied here, as the
extension has no common field for them. Triton reports no token usage: it is counted.
Every top-level field is an input tensor, and Triton refuses one the model lacks ("unexpected
inference input"): `max_tokens` goes top-level, as TensorRT-LLM's ensemble requires; a model that
refuses it there (the vLLM backend) is asked again with it among the parameters (Triton refuses
before inferring), and asked so from then on.

Validation reads the KServe v2 model metadata (`GET v2/models/{model}`: it must take `text_input`)
and readiness (`GET v2/models/{model}/ready`: 200 when ready, 400 when not); no inference call.

Errors are `{"error": "..."}`. An unknown model is 404 "Request for unknown model" (400 on older
servers: mapped to not found here).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from config import errors
from providers.runtime.base import (
    Adapter,
    ChatChunk,
    ChatRequest,
    ChatResult,
    Usage,
    Validation,
    count_tokens,
)
from providers.runtime.http import Response

DEFAULT_MAX_TOKENS = 512  # Dify's default for Triton
ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
UNKNOWN_MODEL = "unknown model"
NO_MAX_TOKENS_INPUT = "unexpected inference input 'max_tokens'"


class TritonAdapter(Adapter):
    family = "triton"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit_in_parameters: set[str] = set()  # models without a max_tokens input

    def base_url(self) -> str:
        base = str(self.endpoint.credentials.get("base_url") or self.endpoint.base_url or "")
        base = base.strip().rstrip("/")
        if not base:
            raise errors.InvalidInput(
                "The Triton server URL is required.", fields={"server_url": ["Required."]}
            )
        return base

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        if response.status_code == 400 and UNKNOWN_MODEL in failure.message.lower():
            return errors.UpstreamNotFound(failure.message)
        return failure

    @staticmethod
    def model_path(model: str, call: str = "") -> str:
        path = f"v2/models/{quote(model, safe='')}"
        return f"{path}/{call}" if call else path

    # --- the generate extension ----------------------------------------------------------------

    def prompt(self, request: ChatRequest) -> str:
        if str(self.endpoint.options.get("completion_type") or "chat") == "completion":
            return "\n\n".join(m.text() for m in request.messages if m.text())
        lines = [f"{ROLE_LABELS.get(m.role, m.role.title())}: {m.text()}" for m in request.messages]
        return "\n".join([*lines, "Assistant:"])

    def body(
        self, request: ChatRequest, prompt: str, *, stream: bool, limit_in_parameters: bool = False
    ) -> dict[str, Any]:
        if request.tools:
            raise self._unsupported("tool calls")
        parameters: dict[str, Any] = {
            name: value
            for name, value in request.parameters.items()
            if name != "max_tokens" and isinstance(value, (str, int, float, bool))
        }
        parameters["stream"] = stream
        limit = request.max_tokens or DEFAULT_MAX_TOKENS
        if limit_in_parameters:
            return {"text_input": prompt, "parameters": {**parameters, "max_tokens": limit}}
        return {"text_input": prompt, "max_tokens": limit, "parameters": parameters}

    def generate(self, model: str, request: ChatRequest, prompt: str, *, stream: bool) -> Any:
        """The generate call's JSON (generate_stream's open response); asked once more with
        `max_tokens` among the parameters when the model has no such input."""
        send = self.http.request if stream else self.http.json
        extra = {"stream": True} if stream else {}
        path = self.model_path(model, "generate_stream" if stream else "generate")
        if model not in self._limit_in_parameters:
            try:
                body = self.body(request, prompt, stream=stream)
                return send("POST", path, json_body=body, **extra)
            except errors.UpstreamBadRequest as exc:
                if NO_MAX_TOKENS_INPUT not in exc.message:
                    raise
            self._limit_in_parameters.add(model)  # the next calls ask the right way at once
        body = self.body(request, prompt, stream=stream, limit_in_parameters=True)
        return send("POST", path, json_body=body, **extra)

    @staticmethod
    def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
        """The text up to its first stop sequence, and whether one was found."""
        found = [text.index(s) for s in stop if s and s in text]
        return (text[: min(found)], True) if found else (text, False)

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        prompt = self.prompt(request)
        data = self.generate(model, request, prompt, stream=False)
        text = str(data["text_output"])
        # Backends that return the prompt with the output (vLLM's by default): keep the output.
        text = text.removeprefix(prompt)
        text, _ = self.cut_at_stop(text, request.stop)
        return ChatResult(
            text=text,
            usage=Usage(count_tokens(prompt), count_tokens(text), counted=True),
            model=str(data.get("model_name") or model),
        )

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        if str(self.endpoint.options.get("stream", "true")).lower() == "false":
            result = self.chat(model, request)
            yield ChatChunk(text=result.text, finish_reason="stop", usage=result.usage)
            return
        prompt = self.prompt(request)
        response = self.generate(model, request, prompt, stream=True)
        produced = ""
        events = self.http.sse(response)
        for _, payload in events:
            data = self.http.parse(payload)
            if "error" in data:  # an inference error after the 200
                raise errors.UpstreamUnavailable(self.http.bounded(self.error_message(data)))
            whole, stopped = self.cut_at_stop(
                produced + str(data.get("text_output") or ""), request.stop
            )
            if whole[len(produced) :]:
                yield ChatChunk(text=whole[len(produced) :])
            produced = whole
            if stopped:
                events.close()  # stop reading: the connection is closed, not reused
                break
        yield ChatChunk(
            finish_reason="stop",
            usage=Usage(count_tokens(prompt), count_tokens(produced), counted=True),
        )

    # --- KServe v2 model metadata --------------------------------------------------------------

    def validate(self, model: str, model_type: str) -> Validation:
        if model_type != "llm":
            raise self._unsupported(f"{model_type} models")
        metadata = self.http.json("GET", self.model_path(model))
        inputs = [str(i.get("name")) for i in metadata.get("inputs") or () if isinstance(i, dict)]
        if "text_input" not in inputs:
            raise errors.UpstreamBadRequest(
                self.http.bounded(
                    f"Model {model!r} takes {', '.join(inputs) or 'no inputs'}, not the "
                    "text_input the generate extension sends: it is no language model."
                )
            )
        try:
            self.http.request("GET", self.model_path(model, "ready"))
        except errors.UpstreamBadRequest as exc:  # Triton's answer for a model not ready
            raise errors.UpstreamUnavailable(
                self.http.bounded(f"Model {model!r} is in the repository but not ready.")
            ) from exc
        return Validation(
            {
                "model": str(metadata.get("name") or model),
                "versions": list(metadata.get("versions") or ()),
                "platform": str(metadata.get("platform") or ""),
            }
        )
