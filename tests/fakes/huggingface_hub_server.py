"""A fake of Hugging Face's inference surfaces, all on one server, as huggingface_hub 2.x calls
them (inference/_providers/hf_inference.py, inference/_client.py, hf_api.py):

- the Hub API: `GET /api/models/{repo}` -> {id, pipeline_tag, tags, ...}; unknown repo 404
  `{"error": "Repository not found"}`;
- the router's hf-inference provider: `POST /hf-inference/models/{repo}/v1/chat/completions`
  (OpenAI's shape, for text-generation and image-text-to-text models),
  `POST /hf-inference/models/{repo}/pipeline/feature-extraction {inputs}` -> [[float]] (a bare
  string -> [float]; an endpoint answers it [[float]], as TEI does),
  `POST /hf-inference/models/{repo} {inputs, parameters}` -> [{generated_text}] for generation
  models;
- the Inference Endpoints API: `GET /v2/endpoint/{namespace}` -> {items[{name, model{repository,
  task}, status{state, url}}]};
- Inference Endpoints at `/endpoints/{name}`: TGI (`/v1/chat/completions`, `/generate`,
  `/generate_stream`, and `POST /` taking {inputs, parameters, stream}: SSE
  `data: {token, generated_text, details}` when streaming) or feature extraction (`POST /`).
Auth is `Authorization: Bearer <hf_ token>` everywhere; a bad token is 401 `{"error": "Invalid
credentials in Authorization header"}`. Errors are `{"error": "..."}` (TGI adds `error_type`);
`fail("loading")` answers 503 "currently loading" with `estimated_time`. Checked by
huggingface_hub's InferenceClient and HfApi in tests/unit/runtime/test_huggingface_hub_fake.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from providers.runtime.base import Endpoint
from tests.fakes.base import Failure, FakeServer, Reply, Request, embed_text, reply_to, sse
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.spec import FakeSpec, Refusal

CHAT_TAGS = ("text-generation", "image-text-to-text")
GENERATION_TAGS = ("text-generation", "text2text-generation")
EMBEDDING_TAGS = ("feature-extraction", "sentence-similarity")
REPO = "{owner}/{name}"


def deserialize_error(problem: str) -> Reply:
    """TGI's 422 for a body its types cannot hold: axum's plain-text rejection."""
    text = f"Failed to deserialize the JSON body into the target type: {problem}"
    return Reply(422, text.encode(), content_type="text/plain; charset=utf-8")


def check_parameters(parameters: Mapping[str, Any], *, chat: bool = False) -> Reply | None:
    """TGI's refusal of generation parameters: one not a number is a deserialization error, one
    out of range 422 "Input validation error" in the words of its router/src/validation.rs.
    Chat's max_tokens is its max_new_tokens, and chat takes a temperature of 0 as greedy; a
    top_p of 1.0 is refused, as TGI's maintainers chose (text-generation-inference#2222)."""
    limit_name = "max_tokens" if chat else "max_new_tokens"
    names = (limit_name, "temperature", "top_p", "top_k", "repetition_penalty")
    for name in names:
        value = parameters.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            where = name if chat else f"parameters.{name}"
            return deserialize_error(
                f"{where}: invalid type: {json.dumps(value)}, expected a number"
            )
    limit, temperature = parameters.get(limit_name), parameters.get("temperature")
    top_p, top_k = parameters.get("top_p"), parameters.get("top_k")
    penalty = parameters.get("repetition_penalty")
    problem = ""
    if limit is not None and limit < 1:
        problem = "`max_new_tokens` must be strictly positive"
    elif temperature is not None and (temperature < 0 if chat else temperature <= 0):
        problem = "`temperature` must be strictly positive"
    elif top_p is not None and not 0 < top_p < 1:  # 1.0 too (tgi#2222, #2231)
        problem = "`top_p` must be > 0.0 and < 1.0"
    elif top_k is not None and top_k < 1:
        problem = "`top_k` must be strictly positive"
    elif penalty is not None and penalty <= 0:
        problem = "`repetition_penalty` must be strictly positive"
    if not problem:
        return None
    body = {"error": f"Input validation error: {problem}", "error_type": "validation"}
    return Reply(422, body)


@dataclass(frozen=True)
class InferenceEndpoint:
    name: str
    repository: str
    task: str  # text-generation | text2text-generation | feature-extraction


class HuggingFaceHubFake(OpenAIFake):
    def __init__(
        self,
        api_key: str | None = "hf_fake",
        *,
        repos: dict[str, str] | None = None,
        namespace: str = "acme",
        endpoints: tuple[InferenceEndpoint, ...] = (),
    ) -> None:
        super().__init__(api_key, models={})
        self._routes = []
        self.tags = repos or {
            "HuggingFaceH4/zephyr-7b-beta": "text-generation",
            "google/flan-t5-base": "text2text-generation",
            "BAAI/bge-small-en-v1.5": "feature-extraction",
        }
        self.namespace = namespace
        self.endpoints = {e.name: e for e in endpoints} or {
            "tgi": InferenceEndpoint("tgi", "HuggingFaceH4/zephyr-7b-beta", "text-generation"),
            "t5": InferenceEndpoint("t5", "google/flan-t5-base", "text2text-generation"),
            "bge": InferenceEndpoint("bge", "BAAI/bge-small-en-v1.5", "feature-extraction"),
        }
        self.models = {repo: "llm" for repo in self.tags}
        self.route("GET", f"/api/models/{REPO}", self.model_info)
        self.route("POST", f"/hf-inference/models/{REPO}/v1/chat/completions", self.hosted_chat)
        self.route("POST", f"/hf-inference/models/{REPO}/pipeline/{{task}}", self.hosted_pipeline)
        self.route("POST", f"/hf-inference/models/{REPO}", self.hosted_task)
        self.route("GET", "/v2/endpoint/{namespace}", self.list_endpoints)
        self.route("POST", "/endpoints/{endpoint}/v1/chat/completions", self.endpoint_chat)
        self.route("POST", "/endpoints/{endpoint}/generate", self.endpoint_generate)
        self.route("POST", "/endpoints/{endpoint}/generate_stream", self.endpoint_generate)
        self.route("POST", "/endpoints/{endpoint}", self.endpoint_root)

    def endpoint_url(self, name: str) -> str:
        return f"{self.url}/endpoints/{name}"

    # --- family hooks -------------------------------------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        body: dict[str, Any] = {"error": message}
        if "error_type" in extra or "estimated_time" in extra:
            body.update({k: extra[k] for k in ("error_type", "estimated_time") if k in extra})
        return Reply(status, body)

    def authorized(self, request: Request) -> bool:
        """Public models' info needs no token (a wrong one is still refused)."""
        if request.path.startswith("/api/models/") and not request.header("authorization"):
            return True
        return super().authorized(request)

    def unauthorized(self) -> Reply:
        return self.error(401, "Invalid credentials in Authorization header")

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        if failure is not None and failure.mode == "loading":
            repo = request.path.split("/models/")[-1].split("/pipeline")[0]
            return self.error(503, f"Model {repo} is currently loading", estimated_time=0.0)
        return super()._reply(request, failure)

    # --- the Hub and the Endpoints API --------------------------------------------------------

    def repo(self, request: Request) -> str:
        return f"{request.params['owner']}/{request.params['name']}"

    def model_info(self, request: Request) -> Reply:
        repo = self.repo(request)
        if repo not in self.tags:
            missing = self.error(404, "Repository not found")
            missing.headers["X-Error-Code"] = "RepoNotFound"
            return missing
        tag = self.tags[repo]
        return Reply(
            200,
            {"_id": f"id-{abs(hash(repo))}", "id": repo, "modelId": repo, "private": False,
             "pipeline_tag": tag, "tags": [tag, "transformers"], "downloads": 0, "likes": 0},
        )  # fmt: skip

    def list_endpoints(self, request: Request) -> Reply:
        if request.params["namespace"] != self.namespace:
            return self.error(403, "You don't have access to this namespace")
        items = [
            {"name": e.name, "type": "protected", "healthRoute": "/health",
             "model": {"repository": e.repository, "task": e.task, "framework": "pytorch",
                       "revision": "main"},
             "status": {"state": "running", "url": self.endpoint_url(e.name),
                        "createdAt": "2026-01-01T00:00:00.000Z",
                        "updatedAt": "2026-01-01T00:00:00.000Z"}}
            for e in self.endpoints.values()
        ]  # fmt: skip
        return Reply(200, {"items": items})

    # --- hosted inference (router.huggingface.co/hf-inference) --------------------------------

    def _hosted(self, request: Request, allowed: tuple[str, ...], task: str) -> str | Reply:
        repo = self.repo(request)
        if repo not in self.tags:
            return self.error(404, f"Model {repo} does not exist")
        if self.tags[repo] not in allowed:
            return self.error(400, f"Model {repo} does not support task {task}")
        return repo

    def hosted_chat(self, request: Request) -> Reply:
        repo = self._hosted(request, CHAT_TAGS, "conversational")
        return repo if isinstance(repo, Reply) else self._chat(request, repo)

    def hosted_pipeline(self, request: Request) -> Reply:
        task = request.params["task"]
        repo = self._hosted(request, EMBEDDING_TAGS, task)
        if isinstance(repo, Reply):
            return repo
        if task not in EMBEDDING_TAGS:
            return self.error(400, f"Unknown pipeline {task}")
        return self._features(request)

    def hosted_task(self, request: Request) -> Reply:
        repo = self._hosted(request, GENERATION_TAGS + EMBEDDING_TAGS, "the model's")
        if isinstance(repo, Reply):
            return repo
        if self.tags[repo] in EMBEDDING_TAGS:
            return self._features(request)
        return self._generate(request, root=True)

    # --- Inference Endpoints ------------------------------------------------------------------

    def _endpoint(self, request: Request) -> InferenceEndpoint | Reply:
        found = self.endpoints.get(request.params["endpoint"])
        return found if found is not None else self.error(404, "Endpoint not found")

    def endpoint_chat(self, request: Request) -> Reply:
        endpoint = self._endpoint(request)
        if isinstance(endpoint, Reply):
            return endpoint
        if endpoint.task != "text-generation":
            return self.error(404, "Not Found")
        return self._chat(request, endpoint.repository)

    def endpoint_generate(self, request: Request) -> Reply:
        endpoint = self._endpoint(request)
        if isinstance(endpoint, Reply):
            return endpoint
        if endpoint.task not in GENERATION_TAGS:
            return self.error(404, "Not Found")
        streamed = request.path.endswith("_stream")
        return self._generate(request, root=False, stream=streamed or None)

    def endpoint_root(self, request: Request) -> Reply:
        endpoint = self._endpoint(request)
        if isinstance(endpoint, Reply):
            return endpoint
        if endpoint.task == "feature-extraction":
            return self._features(request, batch=True)
        return self._generate(request, root=True)

    # --- what the "models" do -----------------------------------------------------------------

    def _chat(self, request: Request, repo: str) -> Reply:
        """OpenAI's chat through OpenAIFake, the body's model taken as the served one (TGI
        ignores it; the router's hf-inference route fixes it by its path)."""
        try:
            body = request.json()
        except ValueError:
            return deserialize_error("expected value at line 1 column 1")
        if not isinstance(body, dict):
            return deserialize_error("invalid type: expected struct ChatRequest")
        messages = body.get("messages")
        if messages is None:
            return deserialize_error("missing field `messages`")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return deserialize_error(f"messages: invalid type: {json.dumps(messages)}, expected "
                                     "a sequence of messages")  # fmt: skip
        refused = check_parameters(body, chat=True)
        if refused is not None:
            return refused
        body["model"] = repo
        return self.chat(replace(request, body=json.dumps(body).encode()))

    def _features(self, request: Request, *, batch: bool = False) -> Reply:
        """[[float]] for a list of texts; a bare string gets [float] from the hosted pipeline,
        [[float]] from an endpoint (TEI) when `batch`."""
        body = request.json()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if isinstance(inputs, str) and batch:
            inputs = [inputs]
        if isinstance(inputs, str):
            return Reply(200, embed_text(inputs))
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(t, str) for t in inputs)
        ):
            return self.error(422, "inputs must be a string or a non-empty list of strings",
                              error_type="validation")  # fmt: skip
        return Reply(200, [embed_text(t) for t in inputs])

    def _generate(self, request: Request, *, root: bool, stream: bool | None = None) -> Reply:
        try:
            body = request.json()
        except ValueError:
            return deserialize_error("expected value at line 1 column 1")
        if not isinstance(body, dict) or "inputs" not in body:
            return deserialize_error("missing field `inputs`")
        if not isinstance(body["inputs"], str):
            return deserialize_error(f"inputs: invalid type: {json.dumps(body['inputs'])}, "
                                     "expected a string")  # fmt: skip
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            return deserialize_error(f"parameters: invalid type: {json.dumps(parameters)}, "
                                     "expected struct GenerateParameters")  # fmt: skip
        refused = check_parameters(parameters)
        if refused is not None:
            return refused
        answer = reply_to(body["inputs"])
        pieces = answer.split(" ")
        limit = parameters.get("max_new_tokens")
        finish = "eos_token"
        if limit and len(pieces) > int(limit):
            pieces, finish = pieces[: int(limit)], "length"
        text = " ".join(pieces)
        if parameters.get("return_full_text"):
            text = body["inputs"] + text
        details = {"finish_reason": finish, "generated_tokens": len(pieces), "seed": None}
        if stream if stream is not None else body.get("stream"):
            return Reply(stream=self._token_stream(pieces, text, details),
                         content_type="text/event-stream")  # fmt: skip
        output: dict[str, Any] = {"generated_text": text}
        if parameters.get("details"):
            output["details"] = {**details, "prefill": [], "tokens": []}
        return Reply(200, [output] if root else output)

    @staticmethod
    def _token_stream(pieces: list[str], text: str, details: dict[str, Any]):
        events = []
        for i, word in enumerate(pieces):
            last = i == len(pieces) - 1
            events.append({
                "index": i + 1,
                "token": {"id": i, "text": word if i == 0 else " " + word, "logprob": -0.1,
                          "special": False},
                "generated_text": text if last else None,
                "details": details if last else None,
                "top_tokens": None,
            })  # fmt: skip
        return sse(events, done=False)


def serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> FakeServer:
    tags = {"llm": "text-generation", "text-embedding": "feature-extraction"}
    repos = {model: tags[kind] for kind, model in models.items() if kind in tags}
    endpoints = tuple(
        InferenceEndpoint(f"ep{i}", model, tags[kind])
        for i, (kind, model) in enumerate(models.items())
        if kind in tags
    )
    return HuggingFaceHubFake(
        credentials.get("api_key") or "hf_fake",
        repos=repos,
        namespace=credentials.get("namespace") or "acme",
        endpoints=endpoints,
    )


def aim(endpoint: Endpoint, url: str) -> Endpoint:
    """The router, the Hub API and the Endpoints API all at the fake; an endpoint URL (the form's
    `huggingfacehub_endpoint_url`) becomes the fake's endpoint of the same index."""
    credentials = dict(endpoint.credentials)
    if credentials.get("base_url"):
        credentials["base_url"] = f"{url}/endpoints/ep0"
    return replace(
        endpoint,
        base_url=f"{url}/hf-inference",
        credentials=credentials,
        options={**endpoint.options, "hub_api_url": f"{url}/api/models",
                 "endpoints_api_url": f"{url}/v2/endpoint"},
    )  # fmt: skip


CHAT = "/hf-inference/models/{model}/v1/chat/completions"
HELLO = [{"role": "user", "content": "hi"}]

# Sources: huggingface.co/docs/inference-providers (Bearer hf_ tokens; the router's
# hf-inference routes) and text-generation-inference's router (router/src/validation.rs: 422
# "Input validation error" with error_type "validation"; axum's plain-text 422 for a body its
# types cannot hold); the 401's words as huggingface_hub#3368 and transformers#38289 quote them.
SPEC = FakeSpec(
    family="huggingface_hub",
    client="huggingface_hub",
    serve=serve,
    aim=aim,
    custom_model="walk/{model_type}-model",  # a repository id
    refusals=(
        Refusal("a wrong token", CHAT, {"messages": HELLO}, status=401,
                says="Invalid credentials in Authorization header",
                headers={"Authorization": "Bearer hf_wrong"}),
        Refusal("an unknown repository", "/hf-inference/models/walk/nothing/v1/chat/completions",
                {"messages": HELLO}, status=404, says="Model walk/nothing does not exist"),
        Refusal("an unknown repository's info", "/api/models/walk/nothing", method="GET",
                status=404, says="Repository not found"),
        Refusal("no messages", CHAT, {"max_tokens": 5}, status=422,
                says="missing field `messages`"),
        Refusal("a string for messages", CHAT, {"messages": "hi"}, status=422,
                says="messages: invalid type"),
        Refusal("no tokens to write", CHAT, {"messages": HELLO, "max_tokens": 0}, status=422,
                says="`max_new_tokens` must be strictly positive"),
        Refusal("a top_p of 1.0", CHAT, {"messages": HELLO, "top_p": 1.0}, status=422,
                says="`top_p` must be > 0.0 and < 1.0"),
        Refusal("a string temperature", CHAT, {"messages": HELLO, "temperature": "hot"},
                status=422, says="temperature: invalid type"),
    ),
)  # fmt: skip
