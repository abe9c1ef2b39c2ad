"""A fake NVIDIA Triton Inference Server: the KServe v2 HTTP protocol's health, server and model
metadata and readiness routes (what the official `tritonclient[http]` calls; checked in
tests/unit/runtime/test_triton_fake.py) and Triton's generate extension, /generate and
/generate_stream (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_generate.md).

Models are name -> platform: "ensemble" (TensorRT-LLM: returns only the new text), "vllm" (the vLLM
backend: without streaming it returns the prompt followed by the new text) or any other platform (an
image model with no `text_input`, which the generate extension cannot feed). Every top-level
field of a generate body but `id` and `parameters` is an input tensor: one the model lacks is
refused ("unexpected inference input"), and so is a body without a required one (text_input;
max_tokens on an ensemble). Errors are `{"error": "..."}`; an unknown model is 404 "Request for
unknown model: 'x' is not found", a model `not_ready` answers 400 with no body on /ready.
No auth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.fakes.base import FakeServer, Reply, Request, reply_to
from tests.fakes.spec import FakeSpec, Refusal

VERSION = "2.57.0"
EXTENSIONS = ["classification", "sequence", "model_repository", "schedule_policy",
              "model_configuration", "system_shared_memory", "cuda_shared_memory",
              "binary_tensor_data", "parameters", "statistics", "trace", "logging",
              "generate"]  # fmt: skip
LLM_INPUTS = {
    "ensemble": ["text_input", "max_tokens", "bad_words", "stop_words", "stream"],
    "vllm": ["text_input", "stream", "sampling_parameters", "exclude_input_in_output"],
}
# The inputs a model's config does not mark optional (tensorrtllm_backend's ensemble, the vLLM
# backend's model.json): a request without one is refused.
REQUIRED = {"ensemble": ["text_input", "max_tokens"], "vllm": ["text_input"]}
SCALARS = (str, int, float, bool)


class TritonFake(FakeServer):
    def __init__(self, models: dict[str, str] | None = None) -> None:
        super().__init__(api_key=None)
        self.models = models or {"ensemble": "ensemble", "vllm_model": "vllm", "densenet": "onnx"}
        self.not_ready: set[str] = set()
        self.route("GET", "/v2", self.server_metadata)
        self.route("GET", "/v2/health/live", self.healthy)
        self.route("GET", "/v2/health/ready", self.healthy)
        self.route("GET", "/v2/models/{model}", self.model_metadata)
        self.route("GET", "/v2/models/{model}/ready", self.model_ready)
        self.route("POST", "/v2/models/{model}/generate", self.generate)
        self.route("POST", "/v2/models/{model}/generate_stream", self.generate_stream)

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        return Reply(status, {"error": message})

    def unauthorized(self) -> Reply:
        """What an authenticating proxy in front of Triton answers (Triton has no auth)."""
        return self.error(401, "Unauthorized")

    def unknown(self, model: str) -> Reply | None:
        if model in self.models:
            return None
        return self.error(404, f"Request for unknown model: '{model}' is not found")

    # --- KServe v2 ------------------------------------------------------------------------------

    def healthy(self, request: Request) -> Reply:
        return Reply(200, b"", content_type="text/plain")

    def server_metadata(self, request: Request) -> Reply:
        return Reply(200, {"name": "triton", "version": VERSION, "extensions": EXTENSIONS})

    def model_metadata(self, request: Request) -> Reply:
        model = request.params["model"]
        missing = self.unknown(model)
        if missing:
            return missing
        platform = self.models[model]
        inputs = [
            {"name": name, "datatype": "BYTES" if name == "text_input" else "INT32", "shape": [-1]}
            for name in LLM_INPUTS.get(platform, ())
        ] or [{"name": "data_0", "datatype": "FP32", "shape": [1, 3, 224, 224]}]
        outputs = (
            [{"name": "text_output", "datatype": "BYTES", "shape": [-1]}]
            if platform in LLM_INPUTS
            else [{"name": "fc6_1", "datatype": "FP32", "shape": [1000]}]
        )
        return Reply(
            200,
            {"name": model, "versions": ["1"], "platform": platform, "inputs": inputs,
             "outputs": outputs},
        )  # fmt: skip

    def model_ready(self, request: Request) -> Reply:
        model = request.params["model"]
        ready = model in self.models and model not in self.not_ready
        return Reply(200 if ready else 400, b"", content_type="text/plain")

    # --- the generate extension -----------------------------------------------------------------

    def _checked(self, request: Request) -> tuple[dict[str, Any], Reply | None]:
        """The request object, or the error Triton answers for it. Every top-level field but
        `id` and `parameters` is an input tensor of the model (the generate extension's rule)."""
        model = request.params["model"]
        missing = self.unknown(model)
        if missing:
            return {}, missing
        try:
            body = json.loads(request.body or b"null")
        except ValueError as exc:
            return {}, self.error(400, f"failed to parse the request JSON buffer: {exc}")
        if not isinstance(body, dict):
            return {}, self.error(400, "the request body must be a JSON object")
        platform = self.models[model]
        inputs = LLM_INPUTS.get(platform)
        if inputs is None:
            return body, self.error(
                400, f"unexpected inference input 'text_input' for model '{model}'"
            )
        given = [name for name in body if name not in ("id", "parameters")]
        for name in given:
            if name not in inputs:
                return body, self.error(
                    400, f"unexpected inference input '{name}' for model '{model}'"
                )
        absent = [name for name in REQUIRED[platform] if name not in given]
        if absent:
            return body, self.error(
                400,
                f"[request id: <id_unknown>] expected number of inputs between "
                f"{len(REQUIRED[platform])} and {len(inputs)} but got {len(given)} inputs for "
                f"model '{model}'. Got input(s) {given}, but missing required input(s) {absent}. "
                "Please provide all required input(s).",
            )
        if not isinstance(body["text_input"], str):
            return body, self.error(400, "input 'text_input' must be BYTES (a JSON string)")
        parameters = body.get("parameters", {})
        if not isinstance(parameters, dict):
            return body, self.error(400, "Converting keyword: 'parameters': expected an object")
        for name, value in parameters.items():
            if not isinstance(value, SCALARS):
                return body, self.error(
                    400, f"Converting keyword: 'parameters': parameter '{name}' has invalid "
                    "type. It should be either 'int', 'bool', 'double' or 'string'.",
                )  # fmt: skip
        limit = body.get("max_tokens", parameters.get("max_tokens", 16))
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return body, self.error(400, "input 'max_tokens' must be a positive INT32")
        return body, None

    def _words(self, body: dict[str, Any]) -> list[str]:
        answer = reply_to(body["text_input"].rsplit("User: ", 1)[-1].removesuffix("\nAssistant:"))
        limit = body.get("max_tokens", body.get("parameters", {}).get("max_tokens", 16))
        return answer.split(" ")[:limit]

    def generate(self, request: Request) -> Reply:
        body, refused = self._checked(request)
        if refused:
            return refused
        text = " ".join(self._words(body))
        if self.models[request.params["model"]] == "vllm":
            text = body["text_input"] + text
        return Reply(200, self._response(request, text))

    def generate_stream(self, request: Request) -> Reply:
        body, refused = self._checked(request)
        if refused:
            return refused
        pieces = [w if i == 0 else " " + w for i, w in enumerate(self._words(body))]
        return Reply(
            stream=self._events(request, pieces), content_type="text/event-stream; charset=utf-8"
        )

    def _events(self, request: Request, pieces: list[str]) -> Iterator[bytes]:
        for piece in pieces:
            yield f"data: {json.dumps(self._response(request, piece))}\n\n".encode()

    def _response(self, request: Request, text: str) -> dict[str, Any]:
        return {"model_name": request.params["model"], "model_version": "1", "text_output": text}


def no_key(credentials, method: str, url: str, body: bytes, headers: dict[str, str]):
    """Triton takes no key: a request goes as it is."""
    return headers


GENERATE = "/v2/models/{model}/generate"
# Triton's words: server/src/http_server.cc (generate: "unexpected inference input", the
# parameters' scalar types, quoted in server issue #6508), core's infer_request.cc (missing required
# inputs), model_repository_manager ("Request for unknown model", server issue #6497).
SPEC = FakeSpec(
    family="triton",
    client="tritonclient",
    serve=lambda credentials, models: TritonFake(models={m: "ensemble" for m in models.values()}),
    sign_in=no_key,
    refusals=(
        Refusal(
            "an unknown model",
            "/v2/models/no-such-model/generate",
            {"text_input": "hi", "max_tokens": 8},
            status=404,
            says="Request for unknown model: 'no-such-model' is not found",
        ),
        Refusal(
            "no text_input",
            GENERATE,
            {"max_tokens": 8},
            says="missing required input(s) ['text_input']",
        ),
        Refusal(
            "no max_tokens for a TensorRT-LLM ensemble",
            GENERATE,
            {"text_input": "hi"},
            says="missing required input(s) ['max_tokens']",
        ),
        Refusal(
            "a field that is no input of the model",
            GENERATE,
            {"text_input": "hi", "max_tokens": 8, "temperature": 0.5},
            says="unexpected inference input 'temperature'",
        ),
        Refusal(
            "a list among the parameters",
            GENERATE,
            {"text_input": "hi", "max_tokens": 8, "parameters": {"stop": ["x"]}},
            says="parameter 'stop' has invalid type",
        ),
        Refusal(
            "a string max_tokens",
            GENERATE,
            {"text_input": "hi", "max_tokens": "eight"},
            says="max_tokens",
        ),
        Refusal(
            "a body that is no JSON",
            "/v2/models/{model}/generate_stream",
            b"{not json",
            says="failed to parse the request JSON buffer",
        ),
    ),
)
