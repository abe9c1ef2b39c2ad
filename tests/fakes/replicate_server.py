"""A fake of Replicate's HTTP API (replicate.com/docs/reference/http), checked by the official
`replicate` client in tests/unit/runtime/test_replicate_fake.py.

- `Authorization: Bearer <token>`; a wrong one is 401 `{"title": "Unauthenticated", "detail":
  "You did not pass a valid authentication token", "status": 401}`; errors are RFC 7807
  problems `{title, detail, status}` (422 adds `invalid_fields`);
- `GET /v1/models/{owner}/{name}` (with `latest_version`: id and OpenAPI schema) and
  `/versions/{id}`; unknown ones 404;
- `POST /v1/predictions {version, input, stream?}` and, for official models,
  `POST /v1/models/{owner}/{name}/predictions {input}`; the input is checked against the
  version's schema (required fields, types: 422 "Input validation failed");
- `Prefer: wait` answers a finished prediction; without it a prediction is `starting`, then
  `processing` with part of its output at the first poll (`GET /v1/predictions/{id}`), then
  `succeeded`; `slow_predictions` makes even a waited one come back `starting`;
- `urls.stream` serves SSE `event: output` per token (with `id:`), then `event: done`
  (`data: {}`); `fail("stream_error")` sends `event: error` instead;
- `fail("model_error")`: the next prediction ends `failed` with the model's error;
- a language model's output is a token list, with metrics input/output_token_count; an
  embedding model takes `texts` (a JSON list: output [[float]]) or `text` (output
  [{"embedding"}]).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections.abc import Mapping
from typing import Any

from tests.fakes.base import Failure, FakeServer, Reply, Request, embed_text, reply_to
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

LLM_INPUTS = {
    "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
    "system_prompt": {"type": "string", "title": "System Prompt", "x-order": 1},
    "max_tokens": {"type": "integer", "title": "Max Tokens", "default": 512, "x-order": 2},
    "temperature": {
        "type": "number",
        "title": "Temperature",
        "default": 0.6,
        "minimum": 0,
        "maximum": 5,
        "x-order": 3,
    },
    "top_p": {
        "type": "number",
        "title": "Top P",
        "default": 0.9,
        "minimum": 0,
        "maximum": 1,
        "x-order": 4,
    },
    "top_k": {"type": "integer", "title": "Top K", "default": 50, "x-order": 5},
    "stop_sequences": {"type": "string", "title": "Stop Sequences", "x-order": 6},
}
SCHEMAS: dict[str, tuple[dict[str, Any], list[str]]] = {  # kind -> (inputs, required)
    "llm": (LLM_INPUTS, ["prompt"]),
    "llm-bare": ({"prompt": LLM_INPUTS["prompt"], "max_new_tokens": LLM_INPUTS["max_tokens"]},
                 ["prompt"]),
    "texts": ({"texts": {"type": "string", "title": "Texts", "x-order": 0},
               "batch_size": {"type": "integer", "default": 32, "x-order": 1}}, ["texts"]),
    "text": ({"text": {"type": "string", "title": "Text", "x-order": 0}}, ["text"]),
    "image": ({"prompt": LLM_INPUTS["prompt"], "width": {"type": "integer", "x-order": 1}},
              ["prompt"]),
}  # fmt: skip
TOKENS = {"type": "array", "items": {"type": "string"}, "x-cog-array-type": "iterator",
          "x-cog-array-display": "concatenate"}  # fmt: skip
OUTPUTS = {
    "llm": TOKENS,
    "texts": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
    "text": {"type": "array", "items": {"type": "object"}},
    "image": {"type": "array", "items": {"type": "string", "format": "uri"}},
}
JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}
# What a prediction's body may hold, by route (replicate.com/docs/reference/http).
BODY_FIELDS = {"version", "input", "stream", "webhook", "webhook_events_filter"}
OFFICIAL_BODY_FIELDS = BODY_FIELDS - {"version"}


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
             dict: "object", type(None): "null"}  # fmt: skip
    return names.get(type(value), "object")


def problem(kind: str, field: str, description: str) -> dict[str, str]:
    """One of a 422's invalid_fields, as Replicate lists them."""
    return {"type": kind, "field": field, "description": description}


def version_id(model: str, kind: str) -> str:
    return hashlib.sha256(f"{model}:{kind}".encode()).hexdigest()


class ReplicateFake(FakeServer):
    """`models`: owner/name -> kind (see SCHEMAS); `official`: those run by name only."""

    def __init__(
        self,
        api_key: str | None = "r8_fake",
        models: dict[str, str] | None = None,
        official: frozenset[str] = frozenset({"meta/meta-llama-3-8b-instruct"}),
    ) -> None:
        super().__init__(api_key)
        self.models = models or {
            "meta/meta-llama-3-8b-instruct": "llm",
            "acme/tiny-llm": "llm-bare",
            "nateraw/bge-large-en-v1.5": "texts",
            "replicate/all-mpnet-base-v2": "text",
            "stability-ai/sdxl": "image",
        }
        self.official = official
        self.slow_predictions = False
        self._failing = ""  # "model_error" | "stream_error": how the next prediction ends
        self.predictions: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.canceled: list[str] = []
        self._ids = itertools.count(1)
        self._predictions_lock = threading.Lock()
        self.route("GET", "/v1/models/{owner}/{name}", self.get_model)
        self.route("GET", "/v1/models/{owner}/{name}/versions/{version}", self.get_version)
        self.route("POST", "/v1/predictions", self.create)
        self.route("POST", "/v1/models/{owner}/{name}/predictions", self.create_official)
        self.route("GET", "/v1/predictions/{id}", self.get_prediction)
        self.route("POST", "/v1/predictions/{id}/cancel", self.cancel)
        self.route("GET", "/v1/stream/{id}", self.stream)

    # --- family hooks -------------------------------------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        titles = {401: "Unauthenticated", 404: "Not found", 429: "Request was throttled.",
                  422: "Input validation failed", 500: "Internal server error"}  # fmt: skip
        title = extra.pop("title", None) or titles.get(status, "Bad request")
        return Reply(status, {"title": title, "detail": message, "status": status, **extra})

    def unauthorized(self) -> Reply:
        return self.error(401, "You did not pass a valid authentication token")

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        if failure is None and self.api_key is not None and not request.header("authorization"):
            return self.error(401, "You did not pass an authentication token")
        if failure is not None and failure.mode in ("model_error", "stream_error"):
            self._failing = failure.mode
            failure = None
        return super()._reply(request, failure)

    # --- models -------------------------------------------------------------------------------

    def version_json(self, model: str) -> dict[str, Any]:
        inputs, required = SCHEMAS[self.models[model]]
        return {
            "id": version_id(model, self.models[model]),
            "created_at": "2026-01-01T00:00:00.000000Z",
            "cog_version": "0.9.4",
            "openapi_schema": {
                "openapi": "3.0.2",
                "components": {"schemas": {
                    "Input": {"type": "object", "title": "Input", "required": required,
                              "properties": inputs},
                    "Output": OUTPUTS[self.models[model].partition("-")[0]],
                }},
            },
        }  # fmt: skip

    def model_json(self, model: str) -> dict[str, Any]:
        owner, name = model.split("/")
        kind = self.models[model]
        described = {"llm": "A 8 billion parameter language model from Meta.",
                     "llm-bare": "A tiny language model.", "image": "Text to image."}  # fmt: skip
        return {
            "url": f"https://replicate.com/{model}", "owner": owner, "name": name,
            "description": described.get(kind, "Sentence embeddings."), "visibility": "public",
            "github_url": None, "paper_url": None, "license_url": None, "run_count": 1,
            "cover_image_url": None, "default_example": None,
            "latest_version": None if model in self.official else self.version_json(model),
        }  # fmt: skip

    def _model(self, request: Request) -> str | Reply:
        model = f"{request.params['owner']}/{request.params['name']}"
        if model not in self.models:
            return self.error(404, "The requested resource could not be found.")
        return model

    def get_model(self, request: Request) -> Reply:
        model = self._model(request)
        return model if isinstance(model, Reply) else Reply(200, self.model_json(model))

    def get_version(self, request: Request) -> Reply:
        model = self._model(request)
        if isinstance(model, Reply):
            return model
        if request.params["version"] != version_id(model, self.models[model]):
            return self.error(404, "The requested resource could not be found.")
        return Reply(200, self.version_json(model))

    # --- predictions --------------------------------------------------------------------------

    def invalid(self, problems: list[dict[str, str]]) -> Reply:
        """422 "Input validation failed": each problem a `- field: description` line of the
        detail (as users quote Replicate's: "- input: prompt is required\n- input.steps: Must be
        less than or equal to 4\n") and one of `invalid_fields`."""
        detail = "".join(
            f"- {p['field']}: {p['description']}\n" if p["field"] else f"- {p['description']}\n"
            for p in problems
        )
        return self.error(422, detail, invalid_fields=problems)

    def _body(self, request: Request, fields: set[str]) -> dict[str, Any] | Reply:
        """The prediction's body: a JSON object of the route's fields, `version` (where it has
        one) a string, `input` present."""
        try:
            body = request.json()
        except ValueError:
            return self.error(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self.invalid([problem("invalid_type", "", "Invalid type. Expected: object, "
                                         f"given: {_json_type(body)}")])  # fmt: skip
        problems = [
            problem("required", "", f"{name} is required")
            for name in ("version", "input")
            if name in fields and name not in body
        ]
        problems += [
            problem("additional_property_not_allowed", "", f"Additional property {name} is not "
                    "allowed")
            for name in body
            if name not in fields
        ]  # fmt: skip
        if "version" in body and not isinstance(body["version"], str):
            problems.append(problem("invalid_type", "version", "Invalid type. Expected: string, "
                                    f"given: {_json_type(body['version'])}"))  # fmt: skip
        return self.invalid(problems) if problems else body

    def create(self, request: Request) -> Reply:
        body = self._body(request, BODY_FIELDS)
        if isinstance(body, Reply):
            return body
        runnable = {version_id(m, k): m for m, k in self.models.items() if m not in self.official}
        found = runnable.get(body["version"])
        if found is None:
            return self.error(422, "The specified version does not exist (or perhaps you don't "
                              "have permission to use it?)",
                              title="Invalid version or not permitted")  # fmt: skip
        return self._start(request, found, body)

    def create_official(self, request: Request) -> Reply:
        model = self._model(request)
        if isinstance(model, Reply):
            return model
        if model not in self.official:
            return self.error(404, "The requested resource could not be found.")
        body = self._body(request, OFFICIAL_BODY_FIELDS)
        return body if isinstance(body, Reply) else self._start(request, model, body)

    def _start(self, request: Request, model: str, body: dict[str, Any]) -> Reply:
        inputs = body.get("input")
        problems = self._check_input(model, inputs)
        if problems:
            return self.invalid(problems)
        tokens, metrics = self._run(model, inputs)
        ident = f"p{next(self._ids)}"
        base = self.url + "/v1"
        prediction = {
            "id": ident, "model": model, "version": version_id(model, self.models[model]),
            "input": inputs, "logs": "", "output": None, "error": None, "status": "starting",
            "data_removed": False, "created_at": "2026-01-01T00:00:00.000Z",
            "urls": {"get": f"{base}/predictions/{ident}",
                     "cancel": f"{base}/predictions/{ident}/cancel",
                     "web": f"https://replicate.com/p/{ident}"},
        }  # fmt: skip
        if body.get("stream") or self.models[model].startswith("llm"):
            prediction["urls"]["stream"] = f"{base}/stream/{ident}"
        failing, self._failing = self._failing, ""
        with self._predictions_lock:
            self.predictions[ident] = {"public": prediction, "tokens": tokens,
                                       "metrics": metrics, "failing": failing}  # fmt: skip
            self.polls[ident] = 0
        if request.header("prefer").startswith("wait") and not self.slow_predictions:
            self._finish(ident)
        return Reply(201, self._public(ident))

    def _check_input(self, model: str, inputs: Any) -> list[dict[str, str]]:
        """The input against the version's schema, in the words of Replicate's JSON Schema
        validation: required properties, types, minimum and maximum."""
        if not isinstance(inputs, dict):
            return [problem("invalid_type", "input", "Invalid type. Expected: object, given: "
                            f"{_json_type(inputs)}")]  # fmt: skip
        properties, required = SCHEMAS[self.models[model]]
        problems = [
            problem("required", "input", f"{name} is required")
            for name in required
            if name not in inputs
        ]
        for name, value in inputs.items():
            spec = properties.get(name)
            if spec is None:
                continue
            field = f"input.{name}"
            expected = JSON_TYPES[spec["type"]]
            wrong = isinstance(value, bool) and expected is not bool  # JSON's true is no number
            if spec["type"] == "integer" and isinstance(value, float):
                wrong = not value.is_integer()  # JSON Schema takes 16.0 as an integer
            elif not isinstance(value, expected):
                wrong = True
            if wrong:
                problems.append(problem("invalid_type", field, f"Invalid type. Expected: "
                                        f"{spec['type']}, given: {_json_type(value)}"))  # fmt: skip
            elif "maximum" in spec and value > spec["maximum"]:
                problems.append(
                    problem("number_lte", field, f"Must be less than or equal to {spec['maximum']}")
                )
            elif "minimum" in spec and value < spec["minimum"]:
                problems.append(
                    problem(
                        "number_gte", field, f"Must be greater than or equal to {spec['minimum']}"
                    )
                )
        return problems

    def _run(self, model: str, inputs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """(the output, the metrics) the model computes from its input."""
        kind = self.models[model]
        if kind == "texts":
            texts = json.loads(inputs["texts"])
            return [embed_text(t) for t in texts], {"predict_time": 0.1}
        if kind == "text":
            return [{"embedding": embed_text(inputs["text"])}], {"predict_time": 0.1}
        if kind == "image":
            return ["https://replicate.delivery/fake/out-0.png"], {"predict_time": 1.0}
        prompt = inputs["prompt"]
        words = reply_to(prompt).split(" ")
        limit = inputs.get("max_tokens", inputs.get("max_new_tokens"))
        if limit is not None:
            words = words[: int(limit)]
        tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
        text = "".join(tokens)
        for stop in filter(None, str(inputs.get("stop_sequences") or "").split(",")):
            if stop in text:
                text = text[: text.index(stop)]
                tokens = [text] if text else []
        prompt_words = len(prompt.split()) + len(str(inputs.get("system_prompt", "")).split())
        metrics = {"predict_time": 0.2, "input_token_count": prompt_words,
                   "output_token_count": len(tokens)}  # fmt: skip
        return tokens, metrics

    def _finish(self, ident: str) -> None:
        state = self.predictions[ident]
        public = state["public"]
        public["completed_at"] = "2026-01-01T00:00:01.000Z"
        if state["failing"]:
            public.update(status="failed", error="CUDA out of memory (model crashed)")
            return
        public.update(status="succeeded", output=state["tokens"], metrics=state["metrics"])

    def _public(self, ident: str) -> dict[str, Any]:
        return dict(self.predictions[ident]["public"])

    def get_prediction(self, request: Request) -> Reply:
        ident = request.params["id"]
        if ident not in self.predictions:
            return self.error(404, "The requested resource could not be found.")
        with self._predictions_lock:
            self.polls[ident] += 1
            public = self.predictions[ident]["public"]
            if public["status"] == "starting":
                tokens = self.predictions[ident]["tokens"]
                public.update(status="processing", output=tokens[: len(tokens) // 2],
                              started_at="2026-01-01T00:00:00.500Z")  # fmt: skip
            elif public["status"] == "processing":
                self._finish(ident)
        return Reply(200, self._public(ident))

    def cancel(self, request: Request) -> Reply:
        ident = request.params["id"]
        if ident not in self.predictions:
            return self.error(404, "The requested resource could not be found.")
        self.canceled.append(ident)
        public = self.predictions[ident]["public"]
        if public["status"] not in ("succeeded", "failed"):
            public["status"] = "canceled"
        return Reply(200, self._public(ident))

    def stream(self, request: Request) -> Reply:
        ident = request.params["id"]
        if ident not in self.predictions:
            return self.error(404, "The requested resource could not be found.")
        state = self.predictions[ident]
        if request.header("accept") != "text/event-stream":
            return self.error(406, "Accept: text/event-stream is required")

        def events():
            for i, token in enumerate(state["tokens"]):
                data = "\n".join(f"data: {line}" for line in str(token).split("\n"))
                yield f"event: output\nid: {ident}:{i}\n{data}\n\n".encode()
            if state["failing"] == "stream_error":
                detail = json.dumps({"detail": "Prediction failed: the model crashed"})
                yield f"event: error\nid: {ident}:e\ndata: {detail}\n\n".encode()
                return
            self._finish(ident)
            yield f"event: done\nid: {ident}:d\ndata: {{}}\n\n".encode()

        return Reply(stream=events(), content_type="text/event-stream")


def serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> FakeServer:
    kinds = {"llm": "llm", "text-embedding": "texts"}
    named = {model.split(":")[0]: kinds[kind] for kind, model in models.items() if kind in kinds}
    return ReplicateFake(credentials.get("api_key") or "r8_fake", models=named,
                         official=frozenset())  # fmt: skip


PREDICTIONS = "/v1/predictions"
VERSION = version_id("walk/llm-model", "llm")  # the version the walk's model is served as

# Sources: replicate.com/docs/reference/http (the prediction's body, its version and input;
# 401 Unauthenticated, 404, 422 problems with invalid_fields) and 422 bodies as users quote
# them ("- input: prompt is required\n", "- version is required\n- Additional property model is
# not allowed\n", "Must be less than or equal to 4"; replicate-python's tests for the 401).
SPEC = FakeSpec(
    family="replicate",
    client="replicate",
    serve=serve,
    aim=aim_base_url("/v1"),
    samples=lambda: {"model_version": ""},  # the latest version: a sample id names none
    custom_model="walk/{model_type}-model",
    refusals=(
        Refusal("a wrong token", PREDICTIONS, {"version": VERSION, "input": {"prompt": "hi"}},
                status=401, says="Unauthenticated", headers={"Authorization": "Bearer r8_wrong"}),
        Refusal("no token", PREDICTIONS, {"version": VERSION, "input": {"prompt": "hi"}},
                status=401, says="You did not pass an authentication token",
                headers={"Authorization": None}),
        Refusal("no version", PREDICTIONS, {"input": {"prompt": "hi"}}, status=422,
                says="- version is required\\n"),
        Refusal("an unknown field", PREDICTIONS,
                {"version": VERSION, "model": "walk/llm-model", "input": {"prompt": "hi"}},
                status=422, says="Additional property model is not allowed"),
        Refusal("an unknown version", PREDICTIONS, {"version": "0" * 64, "input": {}},
                status=422, says="The specified version does not exist"),
        Refusal("no prompt", PREDICTIONS, {"version": VERSION, "input": {}}, status=422,
                says="- input: prompt is required"),
        Refusal("a string max_tokens", PREDICTIONS,
                {"version": VERSION, "input": {"prompt": "hi", "max_tokens": "ten"}}, status=422,
                says="- input.max_tokens: Invalid type. Expected: integer, given: string"),
        Refusal("a fractional max_tokens", PREDICTIONS,
                {"version": VERSION, "input": {"prompt": "hi", "max_tokens": 1.5}}, status=422,
                says="- input.max_tokens: Invalid type. Expected: integer, given: number"),
        Refusal("a temperature over 5", PREDICTIONS,
                {"version": VERSION, "input": {"prompt": "hi", "temperature": 9}}, status=422,
                says="- input.temperature: Must be less than or equal to 5"),
        Refusal("an unknown model", "/v1/models/walk/no-such-model", method="GET", status=404,
                says="Not found"),
    ),
)  # fmt: skip
