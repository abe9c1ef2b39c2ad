"""A fake of Cohere's API: v2 chat (JSON, and typed SSE when streaming), v2 embed and rerank,
GET /v1/models, and the legacy v1 chat (NDJSON stream), embed and rerank. Checked by the official
`cohere` client (ClientV2 and the v1 Client) in tests/unit/runtime/test_cohere_fake.py.

Auth is `Authorization: Bearer <key>`; every error is `{"message": "..."}` with the status codes
and wording Cohere documents (401 "invalid api token" / "no api key supplied", 404 for an unknown
model, 400 "invalid request: ...", 429, 500). The v2 endpoints decode strictly: a field the
reference (docs.cohere.com/reference/chat, /embed, /rerank) does not list, at any depth, is a
422 "unknown field: parameter 'x' is not a valid field" (quoted from the API in
OpenRouterTeam/openrouter-examples#71), so v1-shaped tools (`name`, `parameter_definitions`) on
/v2/chat are refused; a v2 tool without a function name is a 400.

Extra failure modes, each quoting the request's credential as `fail("echo_key")` does: on
/v2/chat, "echo_key_stream" (a streamed reply whose words are followed by a bare error object,
`data: {"message": ...}`) and "echo_key_finish" (a `finish_reason: ERROR` with an `error` field,
in the JSON reply or the stream's message-end event)."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tests.fakes.base import (
    Failure,
    FakeServer,
    Reply,
    Request,
    embed_text,
    overlap_score,
    reply_to,
    sse,
    words,
)
from tests.fakes.spec import FakeSpec, Refusal

MAX_TEXTS = 96
# The fields each v2 endpoint decodes (the API reference); any other is a 422.
V2_FIELDS = {
    "/v2/chat": {
        "model", "messages", "stream", "tools", "strict_tools", "documents", "citation_options",
        "response_format", "safety_mode", "max_tokens", "stop_sequences", "temperature", "seed",
        "frequency_penalty", "presence_penalty", "k", "p", "logprobs", "tool_choice", "thinking",
        "priority",
    },
    "/v2/embed": {
        "model", "texts", "images", "inputs", "input_type", "embedding_types",
        "output_dimension", "max_tokens", "truncate", "priority",
    },
    "/v2/rerank": {"model", "query", "documents", "top_n", "max_tokens_per_doc", "priority"},
}  # fmt: skip
V2_TOOL_FIELDS = {"type", "function"}
V2_FUNCTION_FIELDS = {"name", "description", "parameters"}
ENDPOINTS = {
    "llm": ["generate", "chat", "summarize"],
    "text-embedding": ["embed", "classify"],
    "rerank": ["rerank"],
    "classify": ["classify"],
}


def _parts_text(content: Any) -> tuple[str, int]:
    """(text, number of images) of a v2 message content: a string or a list of parts."""
    if isinstance(content, list):
        text = " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
        images = sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
        return text, images
    return str(content or ""), 0


def _call_id(name: str, arguments: str) -> str:
    return f"{name}_{hashlib.sha256(arguments.encode()).hexdigest()[:10]}"


class CohereFake(FakeServer):
    """Models it serves are `models` (name -> type); `vision` may take images. An unknown model
    is a 404; a model of the wrong type a 400."""

    def __init__(
        self,
        api_key: str | None = "fake-key",
        models: dict[str, str] | None = None,
        vision: set[str] | None = None,
    ) -> None:
        super().__init__(api_key)
        self.models = models or {
            "command-a-03-2025": "llm",
            "command-r-plus-08-2024": "llm",
            "command-r7b-12-2024": "llm",
            "command-a-vision-07-2025": "llm",
            "embed-english-v3.0": "text-embedding",
            "embed-multilingual-v3.0": "text-embedding",
            "rerank-v3.5": "rerank",
            "rerank-multilingual-v3.0": "rerank",
        }
        self.vision = vision if vision is not None else {"command-a-vision-07-2025"}
        self.max_page_size = 1000
        self._auth = threading.local()
        self.route("POST", "/v2/chat", self.chat_v2)
        self.route("POST", "/v2/embed", self.embed_v2)
        self.route("POST", "/v2/rerank", self.rerank_v2)
        self.route("GET", "/v1/models", self.list_models)
        self.route("POST", "/v1/chat", self.chat_v1)
        self.route("POST", "/v1/embed", self.embed_v1)
        self.route("POST", "/v1/rerank", self.rerank_v1)

    # --- family hooks -------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        header = request.header("authorization")
        ok = self.api_key is None or header == f"Bearer {self.api_key}"
        self._auth.missing = not ok and not header
        return ok

    def unauthorized(self) -> Reply:
        missing, self._auth.missing = getattr(self._auth, "missing", False), False
        return self.error(401, "no api key supplied" if missing else "invalid api token")

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        return Reply(status, {"message": message})

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        mode = failure.mode if failure is not None else ""
        if mode not in ("echo_key_stream", "echo_key_finish"):
            return super()._reply(request, failure)
        reply = super()._reply(request, None)
        echoed = self.echo_key(request)
        if reply.stream is not None:
            reply.stream = self._echo_in_stream(
                reply.stream, echoed, finish=mode == "echo_key_finish"
            )
        elif isinstance(reply.body, dict) and "finish_reason" in reply.body:
            reply.body = {**reply.body, "finish_reason": "ERROR", "error": echoed}
        return reply

    @staticmethod
    def _echo_in_stream(frames: Iterable[bytes], echoed: str, *, finish: bool) -> Iterator[bytes]:
        for i, frame in enumerate(frames):
            if frame.startswith(b"event: message-end"):
                if finish:
                    end = {
                        "type": "message-end",
                        "delta": {"finish_reason": "ERROR", "error": echoed},
                    }
                    yield f"event: message-end\ndata: {json.dumps(end)}\n\n".encode()
                return
            if not finish and i == 3:
                yield f"data: {json.dumps({'message': echoed})}\n\n".encode()
                return
            yield frame

    def bad_request(self, message: str) -> Reply:
        return self.error(400, f"invalid request: {message}")

    def unknown_field(self, name: str) -> Reply:
        return self.error(
            422,
            f"unknown field: parameter '{name}' is not a valid field. For proper usage, please "
            "refer to https://docs.cohere.com/reference/chat",
        )

    def decode_v2(self, request: Request) -> tuple[dict[str, Any], Reply | None]:
        """The body of a v2 call, or the API's refusal of a body it cannot decode."""
        try:
            body = request.json()
        except ValueError:
            return {}, self.bad_request("invalid json body")
        if not isinstance(body, dict):
            return {}, self.bad_request("the body must be a JSON object")
        for key in body:
            if key not in V2_FIELDS[request.path]:
                return body, self.unknown_field(key)
        if request.path != "/v2/chat":
            return body, None
        if not isinstance(body.get("messages", []), list):
            return body, self.bad_request("messages must be a list of messages")
        tools = body.get("tools") or []
        if not isinstance(tools, list):
            return body, self.bad_request("tools must be a list of tools")
        for i, tool in enumerate(tools):
            extra = [k for k in tool if k not in V2_TOOL_FIELDS] if isinstance(tool, dict) else []
            function = tool.get("function") if isinstance(tool, dict) else None
            extra += [k for k in function or {} if k not in V2_FUNCTION_FIELDS]
            if extra:
                return body, self.unknown_field(extra[0])
            if not isinstance(function, dict) or not function.get("name"):
                return body, self.bad_request(f"tools[{i}].function.name must be specified")
        return body, None

    def check_model(self, model: Any, model_type: str, endpoint: str) -> Reply | None:
        if not model:
            return self.bad_request("model must be specified")
        if model not in self.models:
            return self.error(
                404,
                f"model '{model}' not found, make sure the correct model ID was used and that "
                "you have access to the model.",
            )
        if self.models[model] != model_type:
            return self.bad_request(f"model '{model}' is not supported by the {endpoint} API")
        return None

    # --- the "model" ----------------------------------------------------------------------------

    @staticmethod
    def _limit(answer: str, body: dict[str, Any]) -> tuple[str, str]:
        finish = "COMPLETE"
        for stop in body.get("stop_sequences") or ():
            if stop and stop in answer:
                answer, finish = answer[: answer.index(stop)], "STOP_SEQUENCE"
        limit = body.get("max_tokens")
        if limit and words(answer) > limit:
            answer, finish = " ".join(answer.split()[:limit]), "MAX_TOKENS"
        return answer, finish

    def _think_v2(self, body: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]], str]:
        """(answer, tool_plan, tool_calls, finish) for a v2 chat body already checked."""
        messages = body["messages"]
        if messages[-1].get("role") == "tool":
            results = []
            for message in reversed(messages):
                if message.get("role") != "tool":
                    break
                results.insert(0, _parts_text(message.get("content"))[0])
            answer, finish = self._limit("Tool said: " + " | ".join(results), body)
            return answer, "", [], finish
        last_user, images = "", 0
        for message in reversed(messages):
            if message.get("role") == "user":
                last_user, images = _parts_text(message.get("content"))
                break
        if body.get("tools") and body.get("tool_choice") != "NONE":
            calls = []
            for tool in body["tools"]:
                name = (tool.get("function") or {}).get("name", "")
                arguments = json.dumps({"query": last_user})
                calls.append(
                    {
                        "id": _call_id(name, arguments),
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                )
            names = ", ".join(c["function"]["name"] for c in calls)
            return "", f"I will use {names} to answer this.", calls, "TOOL_CALL"
        text = last_user + (f" [{images} image(s)]" if images else "")
        answer, finish = self._limit(reply_to(text), body)
        return answer, "", [], finish

    def _check_messages_v2(self, body: dict[str, Any]) -> Reply | None:
        messages = body.get("messages")
        if not messages:
            return self.bad_request("messages must not be empty")
        called: set[str] = set()
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                return self.bad_request(f"messages at index {i} must be an object")
            role = message.get("role")
            if role not in ("system", "user", "assistant", "tool"):
                return self.bad_request(f"invalid role '{role}' in messages at index {i}")
            if role == "system" and any(m.get("role") != "system" for m in messages[:i]):
                return self.bad_request("system turn must be the first in the list")
            if role == "assistant":
                called.update(c.get("id", "") for c in message.get("tool_calls") or ())
            if role == "tool" and message.get("tool_call_id") not in called:
                return self.bad_request(
                    f"tool_call_id '{message.get('tool_call_id')}' does not match a tool call"
                )
            images = _parts_text(message.get("content"))[1] if role == "user" else 0
            if images and body.get("model") not in self.vision:
                return self.bad_request("this model does not support image inputs")
        return None

    # --- v2 -------------------------------------------------------------------------------------

    def chat_v2(self, request: Request) -> Reply:
        body, problem = self.decode_v2(request)
        problem = (
            problem
            or self.check_model(body.get("model"), "llm", "chat")
            or self._check_messages_v2(body)
        )
        if problem:
            return problem
        answer, plan, calls, finish = self._think_v2(body)
        input_tokens = sum(words(_parts_text(m.get("content"))[0]) for m in body["messages"])
        output_tokens = words(answer) + sum(words(c["function"]["arguments"]) for c in calls)
        usage = {
            "billed_units": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            "tokens": {"input_tokens": input_tokens + 10, "output_tokens": output_tokens + 2},
        }
        reply_id = f"msg-{len(self.received)}"
        if body.get("stream"):
            return Reply(
                stream=self._stream_v2(reply_id, answer, plan, calls, finish, usage),
                content_type="text/event-stream",
            )
        message: dict[str, Any] = {"role": "assistant"}
        if calls:
            message["tool_plan"] = plan
            message["tool_calls"] = calls
        else:
            message["content"] = [{"type": "text", "text": answer}]
        return Reply(
            200, {"id": reply_id, "finish_reason": finish, "message": message, "usage": usage}
        )

    def _stream_v2(self, reply_id, answer, plan, calls, finish, usage):
        start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}
        events: list[tuple[str, dict[str, Any]]] = [
            ("message-start", {"id": reply_id, "delta": {"message": start}})
        ]
        if calls:
            for i, word in enumerate(plan.split(" ")):
                piece = word if i == 0 else " " + word
                events.append(("tool-plan-delta", {"delta": {"message": {"tool_plan": piece}}}))
            for i, call in enumerate(calls):
                args = call["function"]["arguments"]
                opening = {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                events.append(
                    ("tool-call-start", {"index": i, "delta": {"message": {"tool_calls": opening}}})
                )
                for piece in (args[:5], args[5:12], args[12:]):
                    if piece:
                        fragment = {"tool_calls": {"function": {"arguments": piece}}}
                        events.append(
                            ("tool-call-delta", {"index": i, "delta": {"message": fragment}})
                        )
                events.append(("tool-call-end", {"index": i}))
        else:
            events.append(
                (
                    "content-start",
                    {"index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
                )
            )
            for i, word in enumerate(answer.split(" ")):
                piece = word if i == 0 else " " + word
                events.append(
                    (
                        "content-delta",
                        {"index": 0, "delta": {"message": {"content": {"text": piece}}}},
                    )
                )
            events.append(("content-end", {"index": 0}))
        events.append(
            ("message-end", {"id": reply_id, "delta": {"finish_reason": finish, "usage": usage}})
        )
        return sse(
            ((name, {"type": name, **data}) for name, data in events), named=True, done=False
        )

    def _embed(self, body: dict[str, Any]) -> tuple[Reply | None, list[list[float]]]:
        problem = self.check_model(body.get("model"), "text-embedding", "embed")
        if problem:
            return problem, []
        texts = body.get("texts")
        if not texts:
            return self.bad_request("texts must not be empty"), []
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return self.bad_request("texts must be a list of strings"), []
        if len(texts) > MAX_TEXTS:
            return self.bad_request(
                f"total number of texts must be at most {MAX_TEXTS} - received {len(texts)}"
            ), []
        if body.get("input_type") not in (
            "search_document",
            "search_query",
            "classification",
            "clustering",
        ):
            return self.bad_request("valid input_type must be provided with the provided model"), []
        size = int(body.get("output_dimension") or 8)
        return None, [embed_text(t, size) for t in texts]

    @staticmethod
    def _meta(version: str, **billed: int) -> dict[str, Any]:
        return {"api_version": {"version": version}, "billed_units": billed}

    def embed_v2(self, request: Request) -> Reply:
        body, problem = self.decode_v2(request)
        if problem:
            return problem
        problem, vectors = self._embed(body)
        if problem:
            return problem
        kinds = body.get("embedding_types") or ["float"]
        embeddings: dict[str, Any] = {}
        for kind in kinds:
            if kind == "float":
                embeddings["float"] = vectors
            elif kind == "int8":
                embeddings["int8"] = [[round(x * 254) - 127 for x in v] for v in vectors]
            else:
                return self.bad_request(f"embedding type '{kind}' is not supported")
        return Reply(
            200,
            {
                "id": f"embed-{len(self.received)}",
                "response_type": "embeddings_by_type",
                "embeddings": embeddings,
                "texts": body["texts"],
                "meta": self._meta("2", input_tokens=sum(words(t) for t in body["texts"])),
            },
        )

    def _rank(self, body: dict[str, Any]) -> tuple[Reply | None, list[dict[str, Any]], list[str]]:
        problem = self.check_model(body.get("model"), "rerank", "rerank")
        if problem:
            return problem, [], []
        query = body.get("query") or ""
        if not query.strip():
            return self.bad_request("query must not be empty or be only whitespace"), [], []
        documents = [
            d.get("text", "") if isinstance(d, dict) else str(d)
            for d in body.get("documents") or ()
        ]
        if not documents:
            return self.bad_request("list of documents must not be empty"), [], []
        ranked = sorted(
            (
                {"index": i, "relevance_score": overlap_score(query, d)}
                for i, d in enumerate(documents)
            ),
            key=lambda hit: -hit["relevance_score"],
        )
        if body.get("top_n"):
            ranked = ranked[: body["top_n"]]
        return None, ranked, documents

    def rerank_v2(self, request: Request) -> Reply:
        body, problem = self.decode_v2(request)
        if problem:
            return problem
        problem, ranked, documents = self._rank(body)
        if problem:
            return problem
        return Reply(
            200,
            {
                "id": f"rerank-{len(self.received)}",
                "results": ranked,
                "meta": self._meta("2", search_units=math.ceil(len(documents) / 100)),
            },
        )

    def list_models(self, request: Request) -> Reply:
        size = int((request.query.get("page_size") or ["20"])[0])
        size = max(1, min(size, self.max_page_size))
        offset = int((request.query.get("page_token") or ["0"])[0] or 0)
        wanted = (request.query.get("endpoint") or [None])[0]
        rows = [
            {
                "name": name,
                "endpoints": ENDPOINTS[kind],
                "finetuned": False,
                "context_length": 128000 if kind == "llm" else 512,
                "default_endpoints": [],
                "is_deprecated": False,
                "features": ["vision"] if name in self.vision else [],
            }
            for name, kind in self.models.items()
            if wanted is None or wanted in ENDPOINTS[kind]
        ]
        page = rows[offset : offset + size]
        data: dict[str, Any] = {"models": page}
        if offset + size < len(rows):
            data["next_page_token"] = str(offset + size)
        return Reply(200, data)

    # --- v1 (what Dify's plugin calls) ----------------------------------------------------------

    def chat_v1(self, request: Request) -> Reply:
        body = request.json()
        model = body.get("model") or "command-r-plus-08-2024"
        problem = self.check_model(model, "llm", "chat")
        if problem:
            return problem
        message = body.get("message") or ""
        if not message.strip() and not body.get("tool_results"):
            return self.bad_request(
                "message must be at least 1 token long or tool results must be specified."
            )
        calls: list[dict[str, Any]] = []
        if body.get("tool_results"):
            outputs = [json.dumps(o) for r in body["tool_results"] for o in r.get("outputs") or ()]
            answer, finish = self._limit("Tool said: " + " | ".join(outputs), body)
        elif body.get("tools"):
            calls = [{"name": t["name"], "parameters": {"query": message}} for t in body["tools"]]
            answer, finish = "", "COMPLETE"
        else:
            answer, finish = self._limit(reply_to(message), body)
        history = [h.get("message", "") for h in body.get("chat_history") or ()]
        input_tokens = words(message) + words(body.get("preamble") or "") + sum(map(words, history))
        output_tokens = words(answer) + len(calls)
        response: dict[str, Any] = {
            "response_id": f"resp-{len(self.received)}",
            "text": answer,
            "generation_id": f"gen-{len(self.received)}",
            "finish_reason": finish,
            "chat_history": [
                *(body.get("chat_history") or ()),
                {"role": "USER", "message": message},
                {"role": "CHATBOT", "message": answer, **({"tool_calls": calls} if calls else {})},
            ],
            "meta": {
                **self._meta("1", input_tokens=input_tokens, output_tokens=output_tokens),
                "tokens": {"input_tokens": input_tokens + 10, "output_tokens": output_tokens},
            },
        }
        if calls:
            response["tool_calls"] = calls
        if not body.get("stream"):
            return Reply(200, response)
        lines: list[dict[str, Any]] = [
            {"is_finished": False, "event_type": "stream-start", "generation_id": "gen"}
        ]
        for i, word in enumerate(answer.split(" ") if answer else ()):
            piece = word if i == 0 else " " + word
            lines.append({"is_finished": False, "event_type": "text-generation", "text": piece})
        if calls:
            lines.append(
                {"is_finished": False, "event_type": "tool-calls-generation", "tool_calls": calls}
            )
        lines.append(
            {
                "is_finished": True,
                "event_type": "stream-end",
                "finish_reason": response["finish_reason"],
                "response": response,
            }
        )
        return Reply(
            stream=(json.dumps(line).encode() + b"\n" for line in lines),
            content_type="application/stream+json",
        )

    def embed_v1(self, request: Request) -> Reply:
        body = request.json()
        problem, vectors = self._embed(body)
        if problem:
            return problem
        base = {
            "id": f"embed-{len(self.received)}",
            "texts": body["texts"],
            "meta": self._meta("1", input_tokens=sum(words(t) for t in body["texts"])),
        }
        if body.get("embedding_types"):
            return Reply(
                200,
                {**base, "response_type": "embeddings_by_type", "embeddings": {"float": vectors}},
            )
        return Reply(200, {**base, "response_type": "embeddings_floats", "embeddings": vectors})

    def rerank_v1(self, request: Request) -> Reply:
        body = request.json()
        problem, ranked, documents = self._rank(body)
        if problem:
            return problem
        if body.get("return_documents"):
            ranked = [{**hit, "document": {"text": documents[hit["index"]]}} for hit in ranked]
        return Reply(
            200,
            {
                "id": f"rerank-{len(self.received)}",
                "results": ranked,
                "meta": self._meta("1", search_units=math.ceil(len(documents) / 100)),
            },
        )


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> CohereFake:
    return CohereFake(
        api_key=credentials["api_key"], models={model: kind for kind, model in models.items()}
    )


HI = {"model": "{model}", "messages": [{"role": "user", "content": "hi"}]}
# Sources: docs.cohere.com/reference/errors (statuses), /reference/chat|embed|rerank (fields), and
# the bodies quoted in this module's docstring. The 400 words for a nameless tool and ill-typed
# fields are ours: no public thread quotes them.
REFUSALS = (
    Refusal(
        "a wrong key",
        "/v2/chat",
        HI,
        status=401,
        says="invalid api token",
        headers={"Authorization": "Bearer wrong"},
    ),
    Refusal(
        "no key",
        "/v2/chat",
        HI,
        status=401,
        says="no api key supplied",
        headers={"Authorization": None},
    ),
    Refusal(
        "no model",
        "/v2/chat",
        {"messages": [{"role": "user", "content": "hi"}]},
        says="model must be specified",
    ),
    Refusal("an unknown model", "/v2/chat", {**HI, "model": "command-nope"}, status=404),
    Refusal("messages as a string", "/v2/chat", {**HI, "messages": "hi"}, says="invalid request"),
    Refusal(
        "a v1 field on v2",
        "/v2/chat",
        {**HI, "preamble": "be brief"},
        status=422,
        says="parameter 'preamble' is not a valid field",
    ),
    Refusal(
        "v1-shaped tools on v2",
        "/v2/chat",
        {**HI, "tools": [{"name": "search", "parameter_definitions": {}}]},
        status=422,
        says="parameter 'name' is not a valid field",
    ),
    Refusal(
        "an OpenAI-only tool field",
        "/v2/chat",
        {**HI, "tools": [{"type": "function", "function": {"name": "f", "strict": True}}]},
        status=422,
        says="parameter 'strict' is not a valid field",
    ),
    Refusal(
        "a nameless tool",
        "/v2/chat",
        {**HI, "tools": [{"type": "function", "function": {"parameters": {}}}]},
        says="function.name must be specified",
    ),
    Refusal(
        "an embedding without input_type",
        "/v2/embed",
        {"model": "{model}", "texts": ["hi"], "embedding_types": ["float"]},
        says="valid input_type must be provided",
        model_type="text-embedding",
    ),
    Refusal(
        "texts as a string",
        "/v2/embed",
        {"model": "{model}", "texts": "hi", "input_type": "search_query"},
        says="texts must be a list of strings",
        model_type="text-embedding",
    ),
)

SPEC = FakeSpec("cohere", client="cohere", serve=_serve, refusals=REFUSALS)
