"""A fake of DashScope's native HTTP API under /api/v1: text generation, multimodal generation
(vision chat, and Qwen-TTS answering with a signed URL to a WAV file it serves under /oss/),
and text embeddings. Checked by the official `dashscope` client in
tests/unit/runtime/test_tongyi_fake.py.

Auth is `Authorization: Bearer <key>`; every error is `{"code", "message", "request_id"}` with
DashScope's codes: 401 InvalidApiKey, 400 InvalidParameter ("Model not exist." for an unknown
model), BadRequest.EmptyModel / EmptyInput, Arrearage (400), DataInspectionFailed (400),
429 Throttling.RateQuota / Throttling.AllocationQuota, 500 InternalError. A stream is SSE frames
`id:` / `event:result` / `:HTTP_STATUS/200` / `data:` when the request says
`X-DashScope-SSE: enable` or accepts text/event-stream; `incremental_output` decides whether a
frame carries the new text or all of it so far. Parameters are checked for type and range
(temperature in [0, 2), top_p in (0, 1], presence_penalty in [-2, 2]; integers where DashScope
wants them), and the out-of-range ones refused in DashScope's words.

Extra failure modes: "stream_error" (a stream that sends two frames, then an `event:error`
frame, HTTP_STATUS/400, DataInspectionFailed, all under HTTP 200), "echo_key_stream" (the same
with a message quoting the request's credential), and "arrearage" / "allocation_quota"
(DashScope's quota answers). The OSS download refuses a request that carries an Authorization
header besides its query signature, as OSS does."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from providers.runtime.base import Endpoint
from tests.fakes.base import (
    Failure,
    FakeServer,
    Reply,
    Request,
    embed_text,
    reply_to,
    wav_with_text,
    words,
)
from tests.fakes.spec import FakeSpec, Refusal

API = "/api/v1"
TEXT_MODELS = {"qwen3-max", "qwen-plus", "qwen-flash", "qwen-long", "qwen-turbo"}
MULTIMODAL_MODELS = {"qwen3.6-plus", "qwen3.6-flash", "qwen3-vl-plus"}
EMBEDDING_DIMENSIONS = {
    "text-embedding-v4": (2048, 1536, 1024, 768, 512, 256, 128, 64),
    "text-embedding-v3": (1024, 768, 512, 256, 128, 64),
}
TTS_MODELS = {"qwen3-tts-flash", "qwen-tts"}
VOICES = {"Cherry", "Serena", "Ethan", "Chelsie", "Momo", "Vivian", "Moon", "Maia", "Kai"}
LANGUAGE_TYPES = {"Auto", "Chinese", "English", "German", "Italian", "Portuguese", "Spanish"}
LANGUAGE_TYPES |= {"Japanese", "Korean", "French", "Russian"}
MAX_TEXTS = 10
MAX_TTS_CHARACTERS = 600
CODES = {
    400: "InvalidParameter",
    401: "InvalidApiKey",
    403: "AccessDenied",
    404: "ModelNotFound",
    429: "Throttling.RateQuota",
    500: "InternalError",
}
MESSAGES = {
    429: "Requests rate limit exceeded, please try again later.",
    500: "An internal error has occured, please try again later or contact service support.",
}


def vector(text: str, dimension: int) -> list[float]:
    """A stable vector of any length: `embed_text` of the text and a counter, joined."""
    values: list[float] = []
    block = 0
    while len(values) < dimension:
        values += embed_text(f"{block}:{text}", 32)
        block += 1
    return values[:dimension]


def _content(content: Any) -> tuple[str, int]:
    """(text, images) of a message's content: a string, or multimodal parts."""
    if isinstance(content, list):
        text = " ".join(p["text"] for p in content if isinstance(p, dict) and "text" in p)
        return text, sum(1 for p in content if isinstance(p, dict) and "image" in p)
    return str(content or ""), 0


def _integer(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _call_id(name: str, arguments: str) -> str:
    return f"call_{hashlib.sha256((name + arguments).encode()).hexdigest()[:16]}"


def frame(
    number: int, data: Mapping[str, Any], *, event: str = "result", status: int = 200
) -> bytes:
    return (
        f"id:{number}\nevent:{event}\n:HTTP_STATUS/{status}\n"
        f"data:{json.dumps(data, ensure_ascii=False)}\n\n"
    ).encode()


class TongyiFake(FakeServer):
    """`models` adds models (name -> type: llm, multimodal, text-embedding, tts) to those of the
    catalog it serves already."""

    def __init__(self, api_key: str | None = "fake-key", models: dict[str, str] | None = None):
        super().__init__(api_key)
        self.models: dict[str, str] = {
            **dict.fromkeys(TEXT_MODELS, "llm"),
            **dict.fromkeys(MULTIMODAL_MODELS, "multimodal"),
            **dict.fromkeys(EMBEDDING_DIMENSIONS, "text-embedding"),
            **dict.fromkeys(TTS_MODELS, "tts"),
            **(models or {}),
        }
        self.audio_host = ""  # where audio URLs point; the fake itself when empty
        self.audio: dict[str, bytes] = {}
        self._signing_key = hashlib.sha256(f"oss-{id(self)}".encode()).digest()
        self.route("POST", f"{API}/services/aigc/text-generation/generation", self.generation)
        self.route("POST", f"{API}/services/aigc/multimodal-generation/generation", self.multimodal)
        self.route(
            "POST", f"{API}/services/embeddings/text-embedding/text-embedding", self.embedding
        )
        self.route("GET", "/oss/{name}", self.download)

    # --- family hooks -------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if request.path.startswith("/oss/"):
            return True  # OSS checks its own query signature (`download`)
        return super().authorized(request)

    def unauthorized(self) -> Reply:
        return self._error(401, "InvalidApiKey", "Invalid API-key provided.")

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        """The base's failure modes, in DashScope's words for 429 and 500."""
        code = CODES.get(status, "InvalidParameter")
        return self._error(status, code, MESSAGES.get(status, message))

    def _error(self, status: int, code: str, message: str) -> Reply:
        return Reply(
            status, {"code": code, "message": message, "request_id": f"req-{len(self.received)}"}
        )

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        mode = failure.mode if failure is not None else ""
        if mode == "arrearage":
            return self._error(
                400,
                "Arrearage",
                "Access denied, please make sure your account is in good standing.",
            )
        if mode == "allocation_quota":
            return self._error(429, "Throttling.AllocationQuota", "Allocated quota exceeded.")
        if mode in ("stream_error", "echo_key_stream"):
            reply = super()._reply(request, None)
            if reply.stream is not None:
                message = (
                    self.echo_key(request)
                    if mode == "echo_key_stream"
                    else "Output data may contain inappropriate content."
                )
                reply.stream = self._break(reply.stream, message)
            return reply
        return super()._reply(request, failure)

    def _break(self, frames: Iterator[bytes], message: str) -> Iterator[bytes]:
        for number, chunk in enumerate(frames, start=1):
            if number > 2:
                error = {"code": "DataInspectionFailed", "message": message, "request_id": "r"}
                yield frame(number, error, event="error", status=400)
                return
            yield chunk

    # --- checks -------------------------------------------------------------------------------

    def _body(self, request: Request) -> tuple[dict[str, Any], Reply | None]:
        if "application/json" not in request.header("content-type"):
            return {}, self._error(400, "InvalidParameter", "Content-Type must be application/json")
        try:
            body = request.json()
        except ValueError:
            return {}, self._error(400, "InvalidParameter", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return {}, self._error(400, "InvalidParameter", "The request body must be an object.")
        if not body.get("model"):
            return body, self._error(
                400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'
            )
        if not isinstance(body.get("input"), dict):
            return body, self._error(
                400, "BadRequest.EmptyInput", "Required input parameter missing from request."
            )
        if not isinstance(body.get("parameters", {}), dict):
            return body, self._error(400, "InvalidParameter", "parameters must be an object")
        return body, None

    def _model(self, body: dict[str, Any], *kinds: str) -> Reply | None:
        kind = self.models.get(body["model"])
        if kind is None:
            return self._error(400, "InvalidParameter", "Model not exist.")
        if kind not in kinds:
            return self._error(400, "InvalidParameter", "url error, please check url!")
        return None

    def _check_messages(self, messages: Any, multimodal: bool) -> Reply | None:
        if not isinstance(messages, list) or not messages:
            return self._error(400, "InvalidParameter", "Input messages must not be empty.")
        called: set[str] = set()
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("system", "user", "assistant", "tool"):
                return self._error(
                    400,
                    "InvalidParameter",
                    f"Role must be in [user, assistant, system, tool] (messages[{i}])",
                )
            if role == "system" and i:
                return self._error(400, "InvalidParameter", "The system message must be the first.")
            content = message.get("content")
            if multimodal and not (
                isinstance(content, list)
                and all(isinstance(p, dict) and len(p) == 1 for p in content)
            ):
                return self._error(
                    400, "InvalidParameter", f"messages[{i}].content must be a list of parts"
                )
            if not multimodal and not isinstance(content, str):
                return self._error(
                    400, "InvalidParameter", f"messages[{i}].content must be a string"
                )
            calls = message.get("tool_calls") or []
            if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
                return self._error(
                    400, "InvalidParameter", f"messages[{i}].tool_calls must be a list of calls"
                )
            if role == "assistant":
                called.update(c.get("id", "") for c in calls)
            if role == "tool" and message.get("tool_call_id") not in called:
                return self._error(
                    400, "InvalidParameter", "A tool message must answer an assistant's tool call."
                )
        if messages[-1]["role"] not in ("user", "tool"):
            return self._error(
                400, "InvalidParameter", "The last message must be from user or tool."
            )
        return None

    def _check_parameters(self, parameters: dict[str, Any]) -> Reply | None:
        def number(name: str, low: float, high: float, *, closed_high: bool = True) -> bool:
            value = parameters.get(name, low)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            return low <= value <= high if closed_high else low <= value < high

        ranges = {  # DashScope's own words for its ranges (InternalError.Algo.InvalidParameter)
            "temperature": number("temperature", 0, 2, closed_high=False),
            "top_p": number("top_p", 0, 1) and parameters.get("top_p", 1) > 0,
            "presence_penalty": number("presence_penalty", -2, 2),
        }
        for name, ok in ranges.items():
            if not ok:
                bounds = {"temperature": "[0.0, 2.0)", "top_p": "(0.0, 1.0]"}
                return self._error(
                    400,
                    "InvalidParameter",
                    f"<400> InternalError.Algo.InvalidParameter: {name.capitalize()} should be "
                    f"in {bounds.get(name, '[-2.0, 2.0]')}",
                )
        problems = {
            "result_format": parameters.get("result_format", "text") in ("text", "message"),
            "max_tokens": _integer(parameters.get("max_tokens", 1), 1),
            "top_k": _integer(parameters.get("top_k", 0), 0),
            "seed": _integer(parameters.get("seed", 0), 0),
            "stop": isinstance(parameters.get("stop", []), (str, list)),
            "incremental_output": isinstance(parameters.get("incremental_output", False), bool),
            "tools": isinstance(parameters.get("tools") or [], list) and all(
                isinstance(t, dict) and t.get("type") == "function"
                and isinstance(t.get("function"), dict) and t["function"].get("name")
                for t in parameters.get("tools") or ()
            ),
        }  # fmt: skip
        choice = parameters.get("tool_choice", "auto")
        names = (
            {t["function"]["name"] for t in parameters.get("tools") or ()}
            if (problems["tools"])
            else set()
        )
        problems["tool_choice"] = choice in ("auto", "none") or (
            isinstance(choice, dict) and (choice.get("function") or {}).get("name") in names
        )
        for name, ok in problems.items():
            if not ok:
                return self._error(400, "InvalidParameter", f"Parameter {name} is invalid.")
        return None

    # --- generation ---------------------------------------------------------------------------

    def generation(self, request: Request) -> Reply:
        return self._chat(request, multimodal=False)

    def multimodal(self, request: Request) -> Reply:
        body, problem = self._body(request)
        if problem is None and self.models.get(body["model"]) == "tts":
            return self._speech(body, request)
        return self._chat(request, multimodal=True)

    def _chat(self, request: Request, *, multimodal: bool) -> Reply:
        body, problem = self._body(request)
        problem = problem or self._model(body, "multimodal" if multimodal else "llm")
        if problem:
            return problem
        messages = body["input"].get("messages")
        prompt = body["input"].get("prompt")
        if not messages and isinstance(prompt, str) and not multimodal:
            messages = [{"role": "user", "content": prompt}]  # the older prompt input
        parameters = body.get("parameters") or {}
        problem = self._check_messages(messages, multimodal) or self._check_parameters(parameters)
        if problem:
            return problem
        answer, calls, finish = self._think(messages, parameters)
        input_tokens = sum(words(_content(m.get("content"))[0]) for m in messages)
        output_tokens = words(answer) + sum(words(c["function"]["arguments"]) for c in calls)
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
        streamed = request.header("x-dashscope-sse") == "enable" or "text/event-stream" in (
            request.header("accept")
        )
        as_message = parameters.get("result_format") == "message" or multimodal
        if streamed:
            stream = self._stream(answer, calls, finish, usage, parameters, multimodal, as_message)
            return Reply(stream=stream, content_type="text/event-stream;charset=UTF-8")
        output = self._output(answer, calls, finish, multimodal, as_message)
        return Reply(
            200, {"output": output, "usage": usage, "request_id": f"req-{len(self.received)}"}
        )

    @staticmethod
    def _output(answer, calls, finish, multimodal, as_message) -> dict[str, Any]:
        if not as_message:
            return {"text": answer, "finish_reason": finish}
        message: dict[str, Any] = {
            "role": "assistant",
            "content": [{"text": answer}] if multimodal else answer,
        }
        if calls:
            message["tool_calls"] = calls
        return {"choices": [{"finish_reason": finish, "message": message}]}

    def _think(self, messages, parameters) -> tuple[str, list[dict[str, Any]], str]:
        last = messages[-1]
        if last["role"] == "tool":
            results = [_content(m.get("content"))[0] for m in messages if m["role"] == "tool"]
            answer = "Tool said: " + " | ".join(results)
        else:
            text, images = _content(last.get("content"))
            tools = parameters.get("tools") or []
            choice = parameters.get("tool_choice", "auto")
            if isinstance(choice, dict):
                wanted = choice["function"]["name"]
                tools = [t for t in tools if t["function"]["name"] == wanted]
            if tools and choice != "none":
                calls = []
                for i, tool in enumerate(tools):
                    name = tool["function"]["name"]
                    arguments = json.dumps({"query": text})
                    calls.append({
                        "index": i, "id": _call_id(name, arguments), "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    })  # fmt: skip
                return "", calls, "tool_calls"
            answer = reply_to(text + (f" [{images} image(s)]" if images else ""))
        stops = parameters.get("stop") or []
        for stop in [stops] if isinstance(stops, str) else stops:
            if stop in answer:
                return answer[: answer.index(stop)], [], "stop"
        limit = parameters.get("max_tokens")
        if limit and words(answer) > limit:
            return " ".join(answer.split(" ")[:limit]), [], "length"
        return answer, [], "stop"

    def _stream(self, answer, calls, finish, usage, parameters, multimodal, as_message):
        incremental = parameters.get("incremental_output") is True
        pieces = [
            w if i == 0 else " " + w for i, w in enumerate(answer.split(" ") if answer else ())
        ]
        frames: list[tuple[str, list[dict[str, Any]], str]] = []
        for piece in pieces:
            frames.append((piece, [], "null"))
        for call in calls:
            arguments = call["function"]["arguments"]
            opening = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            frames.append(("", [opening], "null"))
            for part in (arguments[:5], arguments[5:12], arguments[12:]):
                if part:
                    delta = {"index": call["index"], "id": "", "type": "function",
                             "function": {"arguments": part}}  # fmt: skip
                    frames.append(("", [delta], "null"))
        frames.append(("", [], finish))
        so_far = ""
        for number, (piece, deltas, reason) in enumerate(frames, start=1):
            so_far += piece
            text = piece if incremental else so_far
            output = self._output(text, deltas, reason, multimodal, as_message)
            yield frame(number, {"output": output, "usage": usage, "request_id": "req-stream"})

    # --- embeddings ---------------------------------------------------------------------------

    def embedding(self, request: Request) -> Reply:
        body, problem = self._body(request)
        problem = problem or self._model(body, "text-embedding")
        if problem:
            return problem
        texts = body["input"].get("texts")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts:
            return self._error(400, "InvalidParameter", "input.texts must not be empty")
        if len(texts) > MAX_TEXTS:
            return self._error(
                400,
                "InvalidParameter",
                f"Value error, batch size is invalid, it should not be larger than {MAX_TEXTS}.",
            )
        if not all(isinstance(t, str) and t.strip() for t in texts):
            return self._error(400, "InvalidParameter", "Each text must be a non-empty string.")
        parameters = body.get("parameters") or {}
        if parameters.get("text_type", "document") not in ("document", "query"):
            return self._error(400, "InvalidParameter", "text_type must be document or query")
        allowed = EMBEDDING_DIMENSIONS.get(body["model"], (1024,))
        dimension = parameters.get("dimension", 1024)
        if dimension not in allowed:
            return self._error(400, "InvalidParameter", f"dimension must be one of {allowed}")
        rows = [{"text_index": i, "embedding": vector(t, dimension)} for i, t in enumerate(texts)]
        return Reply(
            200,
            {
                "output": {"embeddings": rows[::-1]},  # the order is text_index's, not the list's
                "usage": {"total_tokens": sum(words(t) for t in texts)},
                "request_id": f"req-{len(self.received)}",
            },
        )

    # --- speech -------------------------------------------------------------------------------

    def _speech(self, body: dict[str, Any], request: Request) -> Reply:
        wanted = body["input"]
        text, voice = wanted.get("text"), wanted.get("voice")
        if request.header("x-dashscope-sse") == "enable":
            return self._error(
                400, "InvalidParameter", "The fake serves non-streaming speech only."
            )
        if not isinstance(text, str) or not text.strip():
            return self._error(400, "InvalidParameter", "input.text must not be empty")
        if len(text) > MAX_TTS_CHARACTERS:
            return self._error(
                400,
                "InvalidParameter",
                f"input.text is longer than {MAX_TTS_CHARACTERS} characters",
            )
        if voice not in VOICES:
            return self._error(400, "InvalidParameter", f"Voice {voice!r} is not supported.")
        if wanted.get("language_type", "Auto") not in LANGUAGE_TYPES:
            return self._error(400, "InvalidParameter", "language_type is not supported.")
        name = f"audio_{len(self.received)}.wav"
        self.audio[name] = wav_with_text(f"{voice}: {text}")
        expires = int(time.time()) + 86400
        host = self.audio_host or self.url
        url = f"{host}/oss/{name}?Expires={expires}&Signature={self._sign(name, expires)}"
        return Reply(
            200,
            {
                "output": {
                    "finish_reason": "stop",
                    "audio": {"url": url, "data": "", "id": name[:-4], "expires_at": expires},
                },
                "usage": {"characters": len(text)},
                "request_id": f"req-{len(self.received)}",
            },
        )

    def _sign(self, name: str, expires: int) -> str:
        return hmac.new(self._signing_key, f"{name}:{expires}".encode(), "sha256").hexdigest()

    def download(self, request: Request) -> Reply:
        """An OSS object behind a signed URL: one credential only, the query's."""
        name = request.params["name"]
        expires = int((request.query.get("Expires") or ["0"])[0])
        signature = (request.query.get("Signature") or [""])[0]
        if request.header("authorization"):
            return self._oss_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        if not hmac.compare_digest(signature, self._sign(name, expires)) or expires < time.time():
            return self._oss_error(403, "AccessDenied", "Request has expired or signature mismatch")
        if name not in self.audio:
            return self._oss_error(404, "NoSuchKey", "The specified key does not exist.")
        return Reply(200, self.audio[name], content_type="audio/wav")

    @staticmethod
    def _oss_error(status: int, code: str, message: str) -> Reply:
        xml = (
            "<?xml version='1.0' encoding='UTF-8'?>"
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        )
        return Reply(status, xml.encode(), content_type="application/xml")


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> TongyiFake:
    fake = TongyiFake(api_key=credentials.get("api_key"))
    for model_type, model in models.items():
        fake.models.setdefault(model, model_type)
    return fake


def _aim(endpoint: Endpoint, url: str) -> Endpoint:
    """Both the Beijing and the international base at the fake."""
    base = url + API
    return replace(
        endpoint, base_url=base, options={**endpoint.options, "international_base_url": base}
    )


GENERATION = f"{API}/services/aigc/text-generation/generation"
HI = {"messages": [{"role": "user", "content": "hi"}]}

# DashScope's status codes and words: https://help.aliyun.com/zh/dashscope/return-status-code-description
# and https://www.alibabacloud.com/help/en/model-studio/error-code; the temperature range as
# probed live (github.com/mnfst/modelparams.dev/pull/232: "Temperature should be in [0.0, 2.0)").
SPEC = FakeSpec(
    family="tongyi",
    client="dashscope",
    serve=_serve,
    aim=_aim,
    refusals=(
        Refusal(
            "a wrong key",
            GENERATION,
            {"model": "{model}", "input": HI},
            status=401,
            says="InvalidApiKey",
            headers={"Authorization": "Bearer sk-wrong"},
        ),
        Refusal(
            "no key",
            GENERATION,
            {"model": "{model}", "input": HI},
            status=401,
            says="InvalidApiKey",
            headers={"Authorization": None},
        ),
        Refusal("no model", GENERATION, {"input": HI}, says="BadRequest.EmptyModel"),
        Refusal("no input", GENERATION, {"model": "{model}"}, says="BadRequest.EmptyInput"),
        Refusal(
            "an unknown model",
            GENERATION,
            {"model": "qwen-no-such-model", "input": HI},
            says="Model not exist.",
        ),
        Refusal(
            "parameters as a string",
            GENERATION,
            {"model": "{model}", "input": HI, "parameters": "temperature=0.5"},
            says="InvalidParameter",
        ),
        Refusal(
            "a message content that is an object",
            GENERATION,
            {"model": "{model}", "input": {"messages": [{"role": "user", "content": {"t": 1}}]}},
            says="InvalidParameter",
        ),
        Refusal(
            "a temperature of 2",
            GENERATION,
            {"model": "{model}", "input": HI, "parameters": {"temperature": 2}},
            says="Temperature should be in [0.0, 2.0)",
        ),
        Refusal(
            "a temperature as a string",
            GENERATION,
            {"model": "{model}", "input": HI, "parameters": {"temperature": "0.5"}},
            says="InvalidParameter",
        ),
        Refusal(
            "a body that is not JSON",
            GENERATION,
            b"model=qwen",
            says="InvalidParameter",
        ),
        Refusal(
            "eleven texts to embed",
            f"{API}/services/embeddings/text-embedding/text-embedding",
            {"model": "{model}", "input": {"texts": [f"text {i}" for i in range(11)]}},
            says="batch size is invalid",
            model_type="text-embedding",
        ),
    ),
)
