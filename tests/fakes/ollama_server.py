"""A fake of Ollama's native API: /api/chat, /api/generate (JSON or NDJSON streams), /api/embed,
/api/tags, /api/show. Checked by the official `ollama` client in
tests/unit/runtime/test_ollama_fake.py.

Like a real server (server/routes.go) it binds each body as Go's encoding/json does (an
ill-typed field is a 400 "json: cannot unmarshal ..."; unknown fields are ignored), knows model
names with or without `:latest`, refuses a missing model (400 "model is required") and models that
are not pulled with 404 `{"error": "model 'x' not found"}`, rejects bad base64 images, a
top_logprobs outside 0..20, and tools or chat on models lacking that capability. Auth is
optional Bearer (an authenticating proxy in front of Ollama): pass `api_key=None` for an open
server. Extra failure mode: `fail("stream_error")` makes the next
stream send an `{"error": ...}` line after its first words.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from tests.fakes.base import (
    Failure,
    FakeServer,
    Reply,
    Request,
    embed_text,
    reply_to,
    words,
)
from tests.fakes.spec import FakeSpec, Refusal

MODELS: dict[str, dict[str, Any]] = {
    "llama3.2:latest": {
        "family": "llama",
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
        "capabilities": ["completion", "tools"],
        "context_length": 131072,
        "dimensions": 8,
    },
    "llava:7b": {
        "family": "llama",
        "families": ["llama", "clip"],
        "parameter_size": "7B",
        "quantization_level": "Q4_0",
        "capabilities": ["completion", "vision"],
        "context_length": 32768,
        "dimensions": 8,
    },
    "nomic-embed-text:latest": {
        "family": "nomic-bert",
        "parameter_size": "137M",
        "quantization_level": "F16",
        "capabilities": ["embedding"],
        "context_length": 2048,
        "dimensions": 12,
    },
    "bge-m3:567m": {
        "family": "bert",
        "parameter_size": "566.70M",
        "quantization_level": "F16",
        "capabilities": ["embedding"],
        "context_length": 8192,
        "dimensions": 16,
    },
}


# The fields each handler binds (ollama/api/types.go), with the JSON type Go accepts for each and
# the Go type its error names; a field of another JSON type is refused as encoding/json does.
JSON_TYPES = {bool: "bool", int: "number", float: "number", str: "string", list: "array",
              dict: "object"}  # fmt: skip
BOUND = {
    "ChatRequest": {
        "model": (str, "string"),
        "messages": (list, "[]api.Message"),
        "stream": (bool, "bool"),
        "tools": (list, "api.Tools"),
        "options": (dict, "map[string]interface {}"),
        "top_logprobs": (int, "int"),
    },
    "GenerateRequest": {
        "model": (str, "string"),
        "prompt": (str, "string"),
        "system": (str, "string"),
        "stream": (bool, "bool"),
        "raw": (bool, "bool"),
        "images": (list, "[]api.ImageData"),
        "options": (dict, "map[string]interface {}"),
        "top_logprobs": (int, "int"),
    },
    "EmbedRequest": {
        "model": (str, "string"),
        "truncate": (bool, "bool"),
        "options": (dict, "map[string]interface {}"),
        "dimensions": (int, "int"),
    },
}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _full_name(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class OllamaFake(FakeServer):
    """Models it serves are `models` (name -> description); pass your own to change them."""

    def __init__(
        self, api_key: str | None = "fake-key", models: dict[str, dict[str, Any]] | None = None
    ) -> None:
        super().__init__(api_key)
        self.models = models or {name: dict(info) for name, info in MODELS.items()}
        self._stream_errors = 0
        self._stream_lock = threading.Lock()
        self.route("POST", "/api/chat", self.chat)
        self.route("POST", "/api/generate", self.generate)
        self.route("POST", "/api/embed", self.embed)
        self.route("GET", "/api/tags", self.tags)
        self.route("POST", "/api/show", self.show)
        self.route("GET", "/api/version", lambda _: Reply(200, {"version": "0.12.0"}))

    # --- family hooks -------------------------------------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        return Reply(status, {"error": message})  # Ollama's errors carry nothing else

    def unauthorized(self) -> Reply:
        return self.error(401, "unauthorized")

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        if failure is not None and failure.mode == "stream_error":
            with self._stream_lock:
                self._stream_errors += 1
            failure = None
        return super()._reply(request, failure)

    def _take_stream_error(self) -> bool:
        with self._stream_lock:
            if self._stream_errors:
                self._stream_errors -= 1
                return True
            return False

    # --- helpers ------------------------------------------------------------------------------

    def find(self, name: str) -> tuple[str, dict[str, Any]] | None:
        full = _full_name(name or "")
        return (full, self.models[full]) if full in self.models else None

    def not_pulled(self, name: str) -> Reply:
        return self.error(404, f"model '{name}' not found")

    def bind(self, request: Request, struct: str) -> tuple[dict[str, Any], Reply | None]:
        """The handler's `c.ShouldBindJSON(&req)` and the checks before the model lookup."""
        if not request.body:
            return {}, self.error(400, "missing request body")
        try:
            body = request.json()
        except ValueError:
            first = request.body.lstrip()[:1].decode(errors="replace")
            return {}, self.error(
                400, f"invalid character '{first}' looking for beginning of value"
            )
        if not isinstance(body, dict):
            kind = JSON_TYPES.get(type(body), "value")
            return {}, self.error(
                400, f"json: cannot unmarshal {kind} into Go value of type api.{struct}"
            )
        for field, (wanted, go_type) in BOUND[struct].items():
            value = body.get(field)
            ok = isinstance(value, wanted) and not (wanted is int and isinstance(value, bool))
            if value is not None and not ok:
                return body, self.error(
                    400,
                    f"json: cannot unmarshal {JSON_TYPES.get(type(value), 'value')} into Go "
                    f"struct field {struct}.{field} of type {go_type}",
                )
        if not 0 <= body.get("top_logprobs", 0) <= 20:
            return body, self.error(400, "top_logprobs must be between 0 and 20")
        if struct == "ChatRequest" and not body.get("model"):
            return body, self.error(400, "model is required")
        return body, None

    def bad_images(self, images: Any) -> Reply | None:
        for image in images or ():
            if not isinstance(image, str):
                return self.error(400, "json: cannot unmarshal image into Go value")
            try:
                base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                at = next((i for i, ch in enumerate(image) if ch in ":;,"), 0)
                return self.error(400, f"illegal base64 data at input byte {at}")
        return None

    def _limit(self, answer: str, options: dict[str, Any]) -> tuple[str, str]:
        done_reason = "stop"
        for stop in options.get("stop") or ():
            if stop and stop in answer:
                answer = answer[: answer.index(stop)]
        limit = options.get("num_predict")
        if isinstance(limit, int) and limit >= 0 and words(answer) > limit:
            answer, done_reason = " ".join(answer.split()[:limit]), "length"
        return answer, done_reason

    def _final(self, model: str, prompt_count: int, eval_count: int, reason: str) -> dict:
        return {
            "model": model,
            "created_at": _now(),
            "done": True,
            "done_reason": reason,
            "total_duration": 123_456_789,
            "load_duration": 1_234_567,
            "prompt_eval_count": prompt_count,
            "prompt_eval_duration": 2_345_678,
            "eval_count": eval_count,
            "eval_duration": 98_765_432,
        }

    def _ndjson(self, lines: list[dict[str, Any]], error_after: int | None) -> Iterator[bytes]:
        for i, line in enumerate(lines):
            if error_after is not None and i == error_after:
                yield (
                    json.dumps(
                        {
                            "error": "an error was encountered while running the model: "
                            "unexpected EOF"
                        }
                    ).encode()
                    + b"\n"
                )
                return
            yield json.dumps(line).encode() + b"\n"

    # --- routes -------------------------------------------------------------------------------

    def chat(self, request: Request) -> Reply:
        body, problem = self.bind(request, "ChatRequest")
        if problem:
            return problem
        name = body.get("model", "")
        found = self.find(name)
        if found is None:
            return self.not_pulled(name)
        full, info = found
        if "completion" not in info["capabilities"]:
            return self.error(400, f'"{name}" does not support chat')
        messages = body.get("messages") or []
        if not messages:  # Ollama loads the model and says so
            return Reply(
                200,
                {
                    "model": name,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": ""},
                    "done_reason": "load",
                    "done": True,
                },
            )
        for message in messages:
            bad = self.bad_images(message.get("images"))
            if bad:
                return bad
        tools = body.get("tools") or []
        if tools and "tools" not in info["capabilities"]:
            return self.error(400, f"registry.ollama.ai/library/{full} does not support tools")
        last = messages[-1]
        tool_calls: list[dict[str, Any]] = []
        if last.get("role") == "tool":
            answer = reply_to(f"{last.get('tool_name') or 'tool'} returned {last['content']}")
        else:
            user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
            images = user.get("images") or []
            answer = reply_to(str(user.get("content", ""))) + (
                f" [{len(images)} image(s)]" if images else ""
            )
            if tools:
                function = tools[0].get("function") or {}
                tool_calls = [
                    {
                        "id": f"call_{function.get('name', 'tool')}_0",
                        "function": {
                            "index": 0,
                            "name": function.get("name", ""),
                            "arguments": {"query": str(user.get("content", ""))},
                        },
                    }
                ]
                answer = ""
        answer, reason = self._limit(answer, body.get("options") or {})
        prompt_count = sum(words(str(m.get("content", ""))) for m in messages)
        eval_count = words(answer) + len(tool_calls)
        final = self._final(name, prompt_count, eval_count, reason)
        if body.get("stream", True):
            lines = [
                {
                    "model": name,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
                for piece in _pieces(answer)
            ]
            if tool_calls:
                lines.append(
                    {
                        "model": name,
                        "created_at": _now(),
                        "message": {"role": "assistant", "content": "", "tool_calls": tool_calls},
                        "done": False,
                    }
                )
            lines.append({**final, "message": {"role": "assistant", "content": ""}})
            error_after = 1 if self._take_stream_error() else None
            return Reply(
                stream=self._ndjson(lines, error_after), content_type="application/x-ndjson"
            )
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return Reply(200, {**final, "message": message})

    def generate(self, request: Request) -> Reply:
        body, problem = self.bind(request, "GenerateRequest")
        if problem:
            return problem
        name = body.get("model", "")
        found = self.find(name)
        if found is None:
            return self.not_pulled(name)
        _, info = found
        if "completion" not in info["capabilities"]:
            return self.error(400, f'"{name}" does not support generate')
        bad = self.bad_images(body.get("images"))
        if bad:
            return bad
        prompt = str(body.get("prompt") or "")
        images = body.get("images") or []
        answer = reply_to(prompt) + (f" [{len(images)} image(s)]" if images else "")
        answer, reason = self._limit(answer, body.get("options") or {})
        final = self._final(
            name, words(prompt) + words(str(body.get("system") or "")), words(answer), reason
        )
        if body.get("stream", True):
            lines = [
                {"model": name, "created_at": _now(), "response": piece, "done": False}
                for piece in _pieces(answer)
            ]
            lines.append({**final, "response": "", "context": [1, 2, 3]})
            error_after = 1 if self._take_stream_error() else None
            return Reply(
                stream=self._ndjson(lines, error_after), content_type="application/x-ndjson"
            )
        return Reply(200, {**final, "response": answer, "context": [1, 2, 3]})

    def embed(self, request: Request) -> Reply:
        body, problem = self.bind(request, "EmbedRequest")
        if problem:
            return problem
        name = body.get("model", "")
        found = self.find(name)
        if found is None:
            return self.not_pulled(name)
        _, info = found
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts] if texts else []
        if texts is None:
            texts = []
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return self.error(400, "invalid input type")
        if not texts:
            return Reply(200, {"model": name, "embeddings": []})
        dims = int(body.get("dimensions") or info["dimensions"])
        return Reply(
            200,
            {
                "model": name,
                "embeddings": [embed_text(t, dims) for t in texts],
                "total_duration": 14_143_917,
                "load_duration": 1_019_500,
                "prompt_eval_count": sum(words(t) for t in texts),
            },
        )

    def tags(self, request: Request) -> Reply:
        return Reply(
            200,
            {
                "models": [
                    {
                        "name": full,
                        "model": full,
                        "modified_at": "2025-05-01T10:00:00.000000+02:00",
                        "size": 1_000_000 * (i + 1),
                        "digest": f"{i:064x}",
                        "details": _details(info),
                    }
                    for i, (full, info) in enumerate(self.models.items())
                ]
            },
        )

    def show(self, request: Request) -> Reply:
        body = request.json() or {}
        name = body.get("model") or body.get("name") or ""
        if not name:
            return self.error(400, "model is required")
        found = self.find(name)
        if found is None:
            return self.error(404, f"model '{name}' not found")
        full, info = found
        arch = info["family"]
        return Reply(
            200,
            {
                "license": "fake license",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {full}\n',
                "parameters": 'stop "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": _details(info),
                "model_info": {
                    "general.architecture": arch,
                    "general.parameter_count": 3212749888,
                    f"{arch}.context_length": info["context_length"],
                    f"{arch}.embedding_length": info["dimensions"],
                },
                "capabilities": list(info["capabilities"]),
                "modified_at": "2025-05-01T10:00:00.000000+02:00",
            },
        )


def _details(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": info["family"],
        "families": info.get("families") or [info["family"]],
        "parameter_size": info["parameter_size"],
        "quantization_level": info["quantization_level"],
    }


def _pieces(answer: str) -> list[str]:
    return (
        [word if i == 0 else " " + word for i, word in enumerate(answer.split(" "))]
        if answer
        else []
    )


_KINDS = {"llm": "llama3.2:latest", "text-embedding": "nomic-embed-text:latest"}


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> OllamaFake:
    return OllamaFake(
        api_key=credentials.get("api_key") or None,
        models={
            model if ":" in model else f"{model}:latest": dict(MODELS[_KINDS[kind]])
            for kind, model in models.items()
        },
    )


HI = {"model": "{model}", "messages": [{"role": "user", "content": "hi"}], "stream": False}
# Sources: ollama server/routes.go (ChatHandler, GenerateHandler, EmbedHandler) and api/types.go.
# Ollama itself has no keys; the 401 is the authenticating proxy's (the fake's `api_key`).
REFUSALS = (
    Refusal(
        "a wrong key",
        "/api/chat",
        HI,
        status=401,
        says="unauthorized",
        headers={"Authorization": "Bearer wrong"},
    ),
    Refusal("no body", "/api/chat", b"", says="missing request body"),
    Refusal(
        "no model",
        "/api/chat",
        {"messages": [{"role": "user", "content": "hi"}]},
        says="model is required",
    ),
    Refusal(
        "an unknown model",
        "/api/chat",
        {**HI, "model": "no-such-model"},
        status=404,
        says="model 'no-such-model' not found",
    ),
    Refusal(
        "messages as a string",
        "/api/chat",
        {**HI, "messages": "hi"},
        says="cannot unmarshal string into Go struct field ChatRequest.messages",
    ),
    Refusal(
        "options as a string",
        "/api/chat",
        {**HI, "options": "temperature=0"},
        says="cannot unmarshal string into Go struct field ChatRequest.options",
    ),
    Refusal(
        "top_logprobs out of range",
        "/api/chat",
        {**HI, "top_logprobs": 21},
        says="top_logprobs must be between 0 and 20",
    ),
    Refusal(
        "numbers to embed",
        "/api/embed",
        {"model": "{model}", "input": [1, 2]},
        says="invalid input type",
        model_type="text-embedding",
    ),
    Refusal(
        "an unknown embedding model",
        "/api/embed",
        {"model": "no-such-model", "input": "hi"},
        status=404,
        says="model 'no-such-model' not found",
        model_type="text-embedding",
    ),
)

SPEC = FakeSpec("ollama", client="ollama", serve=_serve, refusals=REFUSALS)
