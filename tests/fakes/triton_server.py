"""A fake NVIDIA Triton Inference Server: the KServe v2 HTTP protocol's health, server and model
metadata and readiness routes (what the official `tritonclient[http]` calls; checked in
tests/unit/runtime/test_triton_fake.py) and Triton's generate extension, /generate and
/generate_stream (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_generate.md).

Models are name -> platform: "ensemble" (TensorRT-LLM: returns only the new text), "vllm" (the vLLM
backend: without streaming it returns the prompt followed by the new text) or any other platform (an
image model with no `text_input`, which the generate extension cannot feed). Errors are
`{"error": "..."}`; an unknown model is 404 "Request for unknown model: 'x' is not found", a model
`not_ready` answers 400 with no body on /ready. No auth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.fakes.base import FakeServer, Reply, Request, reply_to
from tests.fakes.spec import FakeSpec

VERSION = "2.57.0"
EXTENSIONS = ["classification", "sequence", "model_repository", "schedule_policy",
              "model_configuration", "system_shared_memory", "cuda_shared_memory",
              "binary_tensor_data", "parameters", "statistics", "trace", "logging",
              "generate"]  # fmt: skip
LLM_INPUTS = {
    "ensemble": ["text_input", "max_tokens", "bad_words", "stop_words", "stream"],
    "vllm": ["text_input", "stream", "sampling_parameters", "exclude_input_in_output"],
}
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
        """The request object, or the error Triton answers for it."""
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
        inputs = LLM_INPUTS.get(self.models[model])
        if inputs is None:
            return body, self.error(
                400, f"unexpected inference input 'text_input' for model '{model}'"
            )
        if not isinstance(body.get("text_input"), str):
            return body, self.error(
                400, f"expected 1 inputs but got 0 inputs for model '{model}': text_input missing"
            )
        parameters = body.get("parameters", {})
        if not isinstance(parameters, dict):
            return body, self.error(400, "parameters must be a JSON object")
        for name, value in parameters.items():
            if not isinstance(value, SCALARS):
                return body, self.error(
                    400, f"parameter '{name}' has invalid type. It should be either "
                    "'int', 'bool', 'double' or 'string'.",
                )  # fmt: skip
        limit = body.get("max_tokens", 16)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return body, self.error(400, "input 'max_tokens' must be a positive INT32")
        return body, None

    def _words(self, body: dict[str, Any]) -> list[str]:
        answer = reply_to(body["text_input"].rsplit("User: ", 1)[-1].removesuffix("\nAssistant:"))
        return answer.split(" ")[: body.get("max_tokens", 16)]

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


SPEC = FakeSpec(
    family="triton",
    client="tritonclient",
    serve=lambda credentials, models: TritonFake(models={m: "ensemble" for m in models.values()}),
)
