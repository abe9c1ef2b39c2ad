"""A fake of the OpenAI wire protocol (and everything that speaks it: OpenAI-compatible servers,
GPUStack, LocalAI, Xinference's inference endpoints). Checked by the official `openai` client in
tests/unit/runtime/test_openai_fake.py.

Chat requests are checked as OpenAI checks them (`refuse_chat`, `refuse_for_model`: fields,
tools, tool messages, stream_options, ranges, what reasoning models refuse), each refusal in
OpenAI's words; `SPEC.refusals` lists them for tests/unit/test_fake_strictness.py.

Speech answers the media type of the `response_format` asked for (the bytes are always a WAV that
carries the text). Extra failure mode: `fail("html_speech")` makes the next speech reply a
`text/html` page with a script in it, as a hostile or broken backend might send."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
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
    text_in_wav,
    wav_with_text,
    words,
)
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
# The request fields of POST /v1/chat/completions (OpenAI's API reference); any other is refused.
CHAT_FIELDS = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions",
        "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
        "n", "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
        "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier",
        "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
        "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    }
)  # fmt: skip
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
# Reasoning models: o1, o3, o4-mini..., the gpt-5 family; all refuse `max_tokens`, all but the
# gpt-5 -chat models `stop` and sampling values other than the default [U: the -chat models].
REASONING = re.compile(r"^(o\d|gpt-5)")
FIXED_SAMPLING_MODEL = re.compile(r"^(o\d|gpt-5(?!.*-chat))")
# Sampling parameters a reasoning model takes at their default only.
REASONING_SAMPLES = {"o3-mini": "llm", "gpt-5": "llm"}
FIXED_SAMPLING = {"temperature": 1, "top_p": 1, "presence_penalty": 0, "frequency_penalty": 0}
# What `fail("html_speech")` answers: it reads the viewer's workspace if it runs on our origin.
HTML_SPEECH = (
    b"<!doctype html><html><body><h1>audio</h1><script>"
    b"fetch('/api/v1/tenants/current').then(r => r.text()).then(t => document.title = t)"
    b"</script></body></html>"
)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                texts = [p.get("text", "") for p in content if p.get("type") == "text"]
                images = [p for p in content if p.get("type") == "image_url"]
                return " ".join(texts) + (f" [{len(images)} image(s)]" if images else "")
            return str(content)
    return ""


class OpenAIFake(FakeServer):
    """Models it serves are `models` (name -> type); an unknown model is a 404 model_not_found."""

    prefix = "/v1"
    # The chat request fields the provider knows (others refused); None: it takes any.
    chat_fields: frozenset[str] | None = CHAT_FIELDS

    def __init__(self, api_key: str | None = "fake-key", models: dict[str, str] | None = None):
        super().__init__(api_key)
        self.models = models or {
            "gpt-4o-mini": "llm",
            "text-embedding-3-small": "text-embedding",
            "whisper-1": "speech2text",
            "tts-1": "tts",
            "rerank-1": "rerank",
        }
        p = self.prefix
        self.route("POST", f"{p}/chat/completions", self.chat)
        self.route("POST", f"{p}/completions", self.complete)
        self.route("POST", f"{p}/embeddings", self.embeddings)
        self.route("POST", f"{p}/rerank", self.rerank)
        self.route("POST", "/rerank", self.rerank)
        self.route("POST", f"{p}/audio/transcriptions", self.transcribe)
        self.route("POST", f"{p}/audio/speech", self.speech)
        self.route("GET", f"{p}/models", self.list_models)

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        if failure is None or failure.mode != "html_speech":
            return super()._reply(request, failure)
        reply = super()._reply(request, None)
        if reply.status == 200 and reply.content_type.startswith("audio/"):
            return Reply(200, HTML_SPEECH, content_type="text/html; charset=utf-8")
        return reply

    def unknown_model(self, model: str) -> Reply | None:
        if model in self.models:
            return None
        return self.error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            type="invalid_request_error",
            code="model_not_found",
        )

    def invalid(self, message: str, param: str | None = None, code: str | None = None) -> Reply:
        """OpenAI's 400: `{"error": {"message", "type", "param", "code"}}`."""
        return self.error(400, message, type="invalid_request_error", param=param, code=code)

    def json_body(self, request: Request) -> tuple[Any, Reply | None]:
        """The request's JSON object, or OpenAI's refusal of a body that is none: a body of
        another media type is not read (so its `model` is missing) [U: OpenAI's words for a
        text/plain body], broken JSON is refused."""
        if request.header("content-type").split(";")[0].strip().lower() != "application/json":
            return None, self.invalid("you must provide a model parameter")
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return None, self.invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
                "but what was sent was not valid JSON.)"
            )
        return body, None

    def refuse_chat(self, body: dict[str, Any]) -> Reply | None:
        """What OpenAI refuses in a chat request, in its words (quoted from error bodies in
        public issue threads: mcp-use#90 and brekkylab/ailoy#109 (tool name pattern),
        RightNow-AI/openfang#481 (parameters' type), langchain#22600 (tool_call_id),
        Open-WebUI-Functions#98 (temperature on gpt-5), tazztone's top_k in
        sd-webui-decadetw-auto-prompt-llm#29 (unknown fields), bolna#144 (missing fields))."""
        unknown = sorted(set(body) - self.chat_fields) if self.chat_fields is not None else ()
        if unknown:
            return self.invalid(f"Unrecognized request argument supplied: {', '.join(unknown)}")
        if not body.get("model"):
            return self.invalid("you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.invalid(
                "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
            )
        for i, message in enumerate(messages):
            tool_reply = isinstance(message, dict) and message.get("role") == "tool"
            if tool_reply and not message.get("tool_call_id"):
                return self.invalid(
                    "Missing parameter 'tool_call_id': messages with role 'tool' must have a "
                    "'tool_call_id'.",
                    f"messages.[{i}].tool_call_id",
                )
        for i, tool in enumerate(body.get("tools") or ()):
            function = tool.get("function") if isinstance(tool, dict) else None
            where = f"tools[{i}].function"
            if not isinstance(function, dict):
                return self.invalid(
                    f"Missing required parameter: '{where}'.", where, "missing_required_parameter"
                )
            name = function.get("name")
            if not name:
                return self.invalid(
                    f"Missing required parameter: '{where}.name'.",
                    f"{where}.name",
                    "missing_required_parameter",
                )
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                return self.invalid(
                    f"Invalid '{where}.name': string does not match pattern. Expected a string "
                    "that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                    f"{where}.name",
                    "invalid_value",
                )
            if len(name) > 64:
                return self.invalid(
                    f"Invalid '{where}.name': string too long. Expected a string with maximum "
                    f"length 64, but got a string with length {len(name)} instead.",
                    f"{where}.name",
                    "string_above_max_length",
                )
            if "parameters" in function and not isinstance(function["parameters"], dict):
                got = type(function["parameters"]).__name__.replace("str", "string")
                return self.invalid(
                    f"Invalid type for '{where}.parameters': expected an object, but got a "
                    f"{got} instead.",
                    f"{where}.parameters",
                    "invalid_type",
                )
        if body.get("stream_options") is not None and not body.get("stream"):
            return self.invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
            )
        temperature = body.get("temperature")
        if isinstance(temperature, int | float) and temperature > 2:
            return self.invalid(
                "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but "
                f"got {temperature} instead.",
                "temperature",
                "decimal_above_max_value",
            )
        if isinstance(temperature, int | float) and temperature < 0:
            return self.invalid(
                "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but "
                f"got {temperature} instead.",
                "temperature",
                "decimal_below_min_value",
            )
        return None

    def refuse_for_model(self, model: str, body: dict[str, Any]) -> Reply | None:
        """Reasoning models take `max_completion_tokens`, no `stop` (o3, o4-mini, gpt-5) and
        their sampling parameters at the default only."""
        if not REASONING.match(model):
            return None
        if body.get("max_tokens") is not None:
            return self.invalid(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        if not FIXED_SAMPLING_MODEL.match(model):
            return None
        if body.get("stop") is not None:
            return self.invalid(
                "Unsupported parameter: 'stop' is not supported with this model.",
                "stop",
                "unsupported_parameter",
            )
        for param, default in FIXED_SAMPLING.items():
            if body.get(param) is not None and body[param] != default:
                return self.invalid(
                    f"Unsupported value: '{param}' does not support {body[param]} with this "
                    f"model. Only the default ({default}) value is supported.",
                    param,
                    "unsupported_value",
                )
        return None

    def chat(self, request: Request) -> Reply:
        body, refused = self.json_body(request)
        refused = refused or self.refuse_chat(body)
        if refused:
            return refused
        model = body["model"]
        refused = self.unknown_model(model) or self.refuse_for_model(model, body)
        if refused:
            return refused
        answer = reply_to(last_user_text(body["messages"]))
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if limit and words(answer) > limit:
            answer, finish = " ".join(answer.split()[:limit]), "length"
        tool_calls = []
        if body.get("tools") and body.get("tool_choice") != "none":
            tool = body["tools"][0]["function"]
            tool_calls = [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": tool["name"], "arguments": '{"query": "weather"}'},
                }
            ]
            finish, answer = "tool_calls", None
        prompt_tokens = sum(words(str(m.get("content", ""))) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": words(answer or "") + len(tool_calls),
            "total_tokens": 0,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        created = int(time.time())
        if body.get("stream"):
            return Reply(
                stream=self._stream(
                    model,
                    created,
                    answer,
                    tool_calls,
                    finish,
                    usage,
                    (body.get("stream_options") or {}).get("include_usage"),
                ),
                content_type="text/event-stream",
            )
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return Reply(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            },
        )

    def complete(self, request: Request) -> Reply:
        """The legacy text completions API: a prompt in, its continuation out."""
        body = request.json()
        model = body.get("model", "")
        missing = self.unknown_model(model)
        if missing:
            return missing
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            return self.error(400, "'prompt' must be a string", type="invalid_request_error")
        if body.get("stream_options") and not body.get("stream"):
            return self.error(
                400, "stream_options is only allowed when stream is true", param="stream_options"
            )
        answer = reply_to(prompt)
        usage = {"prompt_tokens": words(prompt), "completion_tokens": words(answer)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        head = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                "model": model}  # fmt: skip
        if body.get("stream"):
            events = [
                {**head, "choices": [{"text": piece, "index": 0, "logprobs": None,
                                      "finish_reason": None}]}
                for piece in (w if i == 0 else " " + w for i, w in enumerate(answer.split(" ")))
            ]  # fmt: skip
            events.append(
                {**head, "choices": [{"text": "", "index": 0, "logprobs": None,
                                      "finish_reason": "stop"}]}
            )  # fmt: skip
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append({**head, "choices": [], "usage": usage})
            return Reply(stream=sse(events), content_type="text/event-stream")
        return Reply(
            200,
            {**head, "choices": [{"text": answer, "index": 0, "logprobs": None,
                                  "finish_reason": "stop"}], "usage": usage},
        )  # fmt: skip

    def _stream(self, model, created, answer, tool_calls, finish, usage, include_usage):
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        events = [
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
        ]
        for i, word in enumerate((answer or "").split(" ")):
            piece = word if i == 0 else " " + word
            events.append(
                {
                    **base,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
            )
        for i, call in enumerate(tool_calls):
            args = call["function"]["arguments"]
            events.append(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": i,
                                        "id": call["id"],
                                        "type": "function",
                                        "function": {
                                            "name": call["function"]["name"],
                                            "arguments": args[:5],
                                        },
                                    }
                                ]
                            },
                            "finish_reason": None,
                        }
                    ],
                }
            )
            events.append(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [{"index": i, "function": {"arguments": args[5:]}}]
                            },
                            "finish_reason": None,
                        }
                    ],
                }
            )
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if include_usage:
            events.append({**base, "choices": [], "usage": usage})
        return sse(events)

    def embeddings(self, request: Request) -> Reply:
        body = request.json()
        missing = self.unknown_model(body.get("model", ""))
        if missing:
            return missing
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not texts:
            return self.error(400, "'input' must not be empty", type="invalid_request_error")
        tokens = sum(words(t) for t in texts)
        return Reply(
            200,
            {
                "object": "list",
                "model": body["model"],
                "data": [
                    {"object": "embedding", "index": i, "embedding": embed_text(t)}
                    for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def rerank(self, request: Request) -> Reply:
        body = request.json()
        missing = self.unknown_model(body.get("model", ""))
        if missing:
            return missing
        documents = body.get("documents") or []
        ranked = sorted(
            (
                {
                    "index": i,
                    "relevance_score": overlap_score(body.get("query", ""), d),
                    **({"document": {"text": d}} if body.get("return_documents") else {}),
                }
                for i, d in enumerate(documents)
            ),
            key=lambda hit: -hit["relevance_score"],
        )
        if body.get("top_n"):
            ranked = ranked[: body["top_n"]]
        return Reply(
            200,
            {
                "id": "rerank-fake",
                "results": ranked,
                "meta": {
                    "tokens": {
                        "input_tokens": words(body.get("query", ""))
                        + sum(words(d) for d in documents)
                    }
                },
            },
        )

    def transcribe(self, request: Request) -> Reply:
        fields, files = request.form()
        missing = self.unknown_model(fields.get("model", ""))
        if missing:
            return missing
        if "file" not in files:
            return self.error(400, "Missing file", type="invalid_request_error")
        text = text_in_wav(files["file"][1]) or "(silence)"
        return Reply(200, {"text": text})

    def speech(self, request: Request) -> Reply:
        body = request.json()
        missing = self.unknown_model(body.get("model", ""))
        if missing:
            return missing
        if not body.get("input"):
            return self.error(400, "'input' is required", type="invalid_request_error")
        audio_format = str(body.get("response_format") or "mp3").lower()
        if audio_format not in MEDIA_TYPES:
            return self.error(
                400,
                f"Invalid value: '{audio_format}'. Supported values are: "
                + ", ".join(f"'{f}'" for f in MEDIA_TYPES),
                type="invalid_request_error",
            )
        return Reply(
            200,
            wav_with_text(f"{body.get('voice', 'alloy')}: {body['input']}"),
            content_type=MEDIA_TYPES[audio_format],
        )

    def list_models(self, request: Request) -> Reply:
        return Reply(
            200,
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "fake"}
                    for name in self.models
                ],
            },
        )


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> OpenAIFake:
    """Also serves a reasoning model of each kind, for the refusals."""
    served = {model: kind for kind, model in models.items()}
    return OpenAIFake(api_key=credentials.get("api_key"), models={**REASONING_SAMPLES, **served})


_HI = [{"role": "user", "content": "hi"}]


def _tool(**function: Any) -> dict[str, Any]:
    """A function tool for a refusal; `name=None` leaves the name out."""
    fields = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    fields.update(function)
    return {"type": "function", "function": {k: v for k, v in fields.items() if v is not None}}


SPEC = FakeSpec(
    "openai_compat",
    client="openai",
    serve=_serve,
    aim=aim_base_url("/v1"),
    refusals=(
        Refusal(
            "a wrong key",
            "/v1/chat/completions",
            {"model": "{model}", "messages": [{"role": "user", "content": "hi"}]},
            status=401,
            says="invalid_api_key",
            headers={"Authorization": "Bearer sk-wrong"},
        ),
        Refusal("no messages", "/v1/chat/completions", {"model": "{model}"}, says="messages"),
        Refusal(
            "an unknown model",
            "/v1/chat/completions",
            {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
            status=404,
            says="model_not_found",
        ),
        Refusal(
            "max_tokens to a reasoning model",
            "/v1/chat/completions",
            {"model": "o3-mini", "messages": _HI, "max_tokens": 5},
            says="Use 'max_completion_tokens' instead.",
        ),
        Refusal(
            "a temperature a reasoning model does not take",
            "/v1/chat/completions",
            {"model": "gpt-5", "messages": _HI, "temperature": 0.2},
            says="Only the default (1) value is supported.",
        ),
        Refusal(
            "a tool name with a space",
            "/v1/chat/completions",
            {"model": "{model}", "messages": _HI, "tools": [_tool(name="get weather")]},
            says="string does not match pattern",
        ),
        Refusal(
            "a tool without a name",
            "/v1/chat/completions",
            {"model": "{model}", "messages": _HI, "tools": [_tool(name=None)]},
            says="Missing required parameter: 'tools[0].function.name'.",
        ),
        Refusal(
            "string parameters",
            "/v1/chat/completions",
            {"model": "{model}", "messages": _HI, "tools": [_tool(parameters='{"type":"object"}')]},
            says="expected an object, but got a string instead.",
        ),
        Refusal(
            "a tool message without tool_call_id",
            "/v1/chat/completions",
            {"model": "{model}", "messages": [*_HI, {"role": "tool", "content": "42"}]},
            says="must have a 'tool_call_id'",
        ),
        Refusal(
            "stream_options without stream",
            "/v1/chat/completions",
            {"model": "{model}", "messages": _HI, "stream_options": {"include_usage": True}},
            says="The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ),
        Refusal(
            "an unknown top-level field",
            "/v1/chat/completions",
            {"model": "{model}", "messages": _HI, "top_k": 5},
            says="Unrecognized request argument supplied: top_k",
        ),
        Refusal(
            "a temperature out of range",
            "/v1/chat/completions",
            {"model": "{model}", "messages": _HI, "temperature": 3},
            says="decimal_above_max_value",
        ),
        Refusal(
            "a text/plain body",
            "/v1/chat/completions",
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}',
            says="you must provide a model parameter",
            headers={"Content-Type": "text/plain"},
        ),
        Refusal(
            "no key",
            "/v1/chat/completions",
            {"model": "{model}", "messages": _HI},
            status=401,
            headers={"Authorization": None},
        ),
    ),
)
