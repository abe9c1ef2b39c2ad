"""A fake of the Gemini API (generativelanguage.googleapis.com/v1beta): models/{m}:generateContent,
:streamGenerateContent?alt=sse, :embedContent, :batchEmbedContents, GET models. The API key comes
as `x-goog-api-key` or `?key=`; a wrong one is a 400 INVALID_ARGUMENT with reason
API_KEY_INVALID, a missing one a 403 PERMISSION_DENIED, as Google answers. Errors are
{"error": {code, message, status, details}}. Checked by the official `google-genai` client in
tests/unit/runtime/test_google_gemini_fake.py. /v1 serves the same as /v1beta.

`GenerativeFake` is the generateContent engine the Vertex AI fake (vertex_ai_server.py) shares.
Extra failure modes: "stream_error" (a streamed reply that sends an error object mid-stream;
"echo_key_stream" the same, quoting the key),
"blocked" (a 200 answer with no candidates, the prompt blocked for safety), "daily_quota" (a 429
naming a per-day quota).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
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
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
    "labels",
}
CONFIG_FIELDS = {
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "responseModalities",
}
DATA_FIELDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse")
PART_FIELDS = {*DATA_FIELDS, "thought", "thoughtSignature"}
DECLARATION_FIELDS = {"name", "description", "parameters", "parametersJsonSchema", "response"}
# Typed generationConfig fields: a value of another JSON type is "Invalid value at ... (TYPE_...)".
FLOAT_FIELDS = {"temperature", "topP", "presencePenalty", "frequencyPenalty"}
INT_FIELDS = {"maxOutputTokens", "topK", "candidateCount", "seed"}
THINKING_LEVELS = {"MINIMAL", "LOW", "MEDIUM", "HIGH"}
SIGNATURE = "c2lnbmF0dXJlLW9mLWEtdGhvdWdodA=="


class BadRequest(Exception):
    """A 400 INVALID_ARGUMENT; `field` is named in a google.rpc.BadRequest field violation."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _fields(value: Any) -> Any:
    """A message's field names in lowerCamelCase: Google's JSON parser takes a proto field by
    either name (the official client sends some as snake_case)."""
    return {_camel(k): v for k, v in value.items()} if isinstance(value, dict) else value


def normalize(body: Any) -> Any:
    """The request with every message field name camelCased, leaving free-form values (function
    arguments and responses, schemas) as they were."""
    if not isinstance(body, dict):
        return body
    body = _fields(body)
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        system["parts"] = [_fields(p) for p in system.get("parts") or ()]
    body["contents"] = [_fields(c) for c in body.get("contents") or ()]
    for content in body["contents"]:
        content["parts"] = [
            {
                k: _fields(v) if k in ("functionCall", "functionResponse") else v
                for k, v in p.items()
            }
            for p in (_fields(p) for p in content.get("parts") or ())
        ]
    if "generationConfig" in body:
        config = body["generationConfig"] = _fields(body["generationConfig"])
        if "thinkingConfig" in config:
            config["thinkingConfig"] = _fields(config["thinkingConfig"])
    tools = [_fields(t) for t in body.get("tools") or ()]
    for tool in tools:
        tool["functionDeclarations"] = [_fields(d) for d in tool.get("functionDeclarations") or ()]
    if tools:
        body["tools"] = tools
    if "toolConfig" in body:
        body["toolConfig"] = _fields(body["toolConfig"])
        calling = body["toolConfig"].get("functionCallingConfig")
        if calling is not None:
            body["toolConfig"]["functionCallingConfig"] = _fields(calling)
    return body


def unknown_field(name: str, where: str) -> BadRequest:
    """Google's words for a field its proto does not have, at the top level without `at`
    (gemini-cli#13972, sourcegraph/cody#4566 quote both)."""
    at = f" at '{where}'" if where else ""
    return BadRequest(
        f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.', where
    )


def _invalid_value(where: str, kind: str, value: Any) -> BadRequest:
    """A value of the wrong JSON type, as the JSON-to-proto parser words it (e.g. "Invalid value
    at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), 19660.8", quoted in
    egoist/chatwise-releases#536)."""
    return BadRequest(f"Invalid value at '{where}' ({kind}), {json.dumps(value)}", where)


def parse(raw: bytes, proto: str) -> Any:
    """The body as the API's JSON parser takes it: well-formed JSON, known field names (as sent,
    camelCase or snake_case) at the top and in generationConfig, each message where a message
    is due and typed numbers; then camelCased (`normalize`)."""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise BadRequest("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(body, dict):
        raise BadRequest("Invalid JSON payload received. Expected an object.")
    for name in body:
        if _camel(name) not in REQUEST_FIELDS:
            raise unknown_field(name, "")
    contents = body.get("contents")
    if contents is not None and not isinstance(contents, list):
        raise _invalid_value("contents", f"type.googleapis.com/{proto}.Content", contents)
    for i, content in enumerate(contents or ()):
        if not isinstance(content, dict):
            raise _invalid_value(f"contents[{i}]", f"type.googleapis.com/{proto}.Content", content)
        for j, part in enumerate(content.get("parts") or ()):
            if not isinstance(part, dict):
                where = f"contents[{i}].parts[{j}]"
                raise _invalid_value(where, f"type.googleapis.com/{proto}.Part", part)
    config = body.get("generationConfig", body.get("generation_config"))
    if config is not None and not isinstance(config, dict):
        kind = f"type.googleapis.com/{proto}.GenerationConfig"
        raise _invalid_value("generation_config", kind, config)
    for name, value in (config or {}).items():
        field = _camel(name)
        if field not in CONFIG_FIELDS:
            raise unknown_field(name, "generation_config")
        where = "generation_config." + "".join(c if c.islower() else "_" + c.lower() for c in field)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if field in FLOAT_FIELDS and not number:
            raise _invalid_value(where, "TYPE_FLOAT", value)
        if field in INT_FIELDS and not (number and float(value).is_integer()):
            raise _invalid_value(where, "TYPE_INT32", value)
    return normalize(body)


def _part_text(part: Mapping[str, Any]) -> str:
    if "text" in part:
        return str(part["text"])
    if "functionResponse" in part:
        return json.dumps(part["functionResponse"].get("response"))
    if "inlineData" in part or "fileData" in part:
        return "[1 file]"
    return ""


class GenerativeFake(FakeServer):
    """generateContent as Google validates and answers it; subclasses add auth and routes.
    Models named `gemini-3*` send thought signatures with their calls and require them back."""

    proto = "google.ai.generativelanguage.v1beta"  # whose message types errors name

    def __init__(self, api_key: str | None, models: Mapping[str, str] | None = None) -> None:
        super().__init__(api_key)
        self.models = dict(models or {})

    # --- errors -------------------------------------------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": extra.get("status") or STATUS.get(status, "UNKNOWN"),
        }
        if extra.get("details"):
            error["details"] = extra["details"]
        return Reply(status, {"error": error})

    def bad_request(self, problem: BadRequest) -> Reply:
        """A 400 INVALID_ARGUMENT with its google.rpc.BadRequest field violation."""
        violation = {"description": str(problem)}
        if problem.field:
            violation = {"field": problem.field, **violation}
        details = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [violation]}]  # fmt: skip
        return self.error(400, str(problem), details=details)

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        mode = failure.mode if failure is not None else ""
        if mode == "429":
            reply = self.error(
                429,
                "Resource has been exhausted (e.g. check quota).",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{failure.retry_after:g}s",
                    }
                ],
            )
            reply.headers["Retry-After"] = str(failure.retry_after)
            return reply
        if mode == "daily_quota":
            return self.error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}
                        ],
                    }
                ],
            )
        if mode == "500":
            return self.error(500, "An internal error has occurred. Please retry.")
        if mode == "blocked":
            return Reply(
                200,
                {
                    "promptFeedback": {"blockReason": "SAFETY"},
                    "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
                },
            )
        midway = {"stream_error": "The model is overloaded.", "echo_key_stream": ""}
        reply = super()._reply(request, None if mode in midway else failure)
        if mode in midway and reply.stream is not None:
            reply.stream = self._fail_midway(reply.stream, midway[mode] or self.echo_key(request))
        return reply

    @staticmethod
    def _fail_midway(frames: Iterator[bytes], message: str) -> Iterator[bytes]:
        yield next(frames)
        error = {"error": {"code": 503, "message": message, "status": "UNAVAILABLE"}}
        yield f"data: {json.dumps(error)}\r\n\r\n".encode()

    def not_found(self, model: str, method: str) -> Reply:
        return self.error(
            404,
            f"models/{model} is not found for API version v1beta, or is not "
            f"supported for {method}. Call ListModels to see the list of available models and "
            "their supported methods.",
        )

    # --- generateContent ----------------------------------------------------------------------

    def check(self, model: str, body: Any) -> None:
        """The API's own validation, as far as our code could get it wrong."""
        contents = body.get("contents")
        if not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        signatures = model.startswith("gemini-3")
        previous_calls = 0
        for i, content in enumerate(contents):
            role = content.get("role", "user")
            if role not in ("user", "model"):
                raise BadRequest("Please use a valid role: user, model.")
            parts = content.get("parts")
            if not parts:
                raise BadRequest(
                    f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be "
                    "empty."
                )
            calls = responses = 0
            for j, part in enumerate(parts):
                where = f"contents[{i}].parts[{j}]"
                for name in part:
                    if name not in PART_FIELDS:
                        raise unknown_field(name, where)
                data = [name for name in DATA_FIELDS if name in part]
                if len(data) != 1:
                    raise BadRequest(
                        f"* GenerateContentRequest.{where}.data: required oneof field 'data' "
                        "must have one initialized field"
                    )
                if "functionCall" in part:
                    if role != "model" or not part["functionCall"].get("name"):
                        raise BadRequest(f"* {where}.function_call: a named call in a model turn")
                    if not isinstance(part["functionCall"].get("args", {}), dict):
                        raise BadRequest(f"* {where}.function_call.args: must be an object")
                    if signatures and j == 0 and not part.get("thoughtSignature"):
                        raise BadRequest(
                            f"Function call is missing a thought_signature in functionCall parts. "
                            f"This is required for tools to work correctly. Position: {where}."
                        )
                    calls += 1
                if "functionResponse" in part:
                    if not isinstance(part["functionResponse"].get("response"), dict):
                        raise BadRequest(f"* {where}.function_response.response: must be a Struct")
                    responses += 1
            if responses and responses != previous_calls:
                raise BadRequest(
                    "Please ensure that the number of function response parts is equal to the "
                    "number of function call parts of the function call turn."
                )
            previous_calls = calls
        system = body.get("systemInstruction")
        if system is not None and not all("text" in p for p in system.get("parts") or [{}]):
            raise BadRequest("* GenerateContentRequest.system_instruction: text parts only")
        config = body.get("generationConfig") or {}
        limit = config.get("maxOutputTokens")
        if limit is not None and limit < 1:
            raise BadRequest("* GenerateContentRequest.generation_config.max_output_tokens: > 0")
        temperature = config.get("temperature")
        if temperature is not None and not 0 <= temperature <= 2:
            raise BadRequest("* GenerateContentRequest.generation_config.temperature: 0 to 2")
        if len(config.get("stopSequences") or ()) > 5:
            raise BadRequest("* GenerateContentRequest.generation_config.stop_sequences: at most 5")
        if "responseSchema" in config and "responseJsonSchema" in config:
            raise BadRequest("responseSchema and responseJsonSchema cannot both be set")
        if ("responseSchema" in config or "responseJsonSchema" in config) and config.get(
            "responseMimeType"
        ) != "application/json":
            raise BadRequest("* response_mime_type: must be application/json with a schema")
        level = (config.get("thinkingConfig") or {}).get("thinkingLevel")
        if level is not None and level not in THINKING_LEVELS:
            raise BadRequest(f"Invalid value at 'generation_config.thinking_config.thinking_level'"
                             f' (type.googleapis.com/google.ai.generativelanguage.v1beta.'
                             f'ThinkingConfig.ThinkingLevel), "{level}"')  # fmt: skip
        for tool in body.get("tools") or ():
            for declaration in tool.get("functionDeclarations") or ():
                for name in declaration:
                    if name not in DECLARATION_FIELDS:
                        raise unknown_field(name, "tools[0].function_declarations[0]")
                if not declaration.get("name"):
                    raise BadRequest("* function_declarations[0].name: Name cannot be empty.")
                if "parameters" in declaration and "parametersJsonSchema" in declaration:
                    raise BadRequest("parameters and parametersJsonSchema cannot both be set")

    def generate(self, model: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The reply, computed from the request: a call of the first offered tool (or the one
        allowed) with the user's words, unless the last turn answers one; else an echo."""
        last = body["contents"][-1]
        heard = " ".join(_part_text(p) for p in last["parts"])
        answered = any("functionResponse" in p for p in last["parts"])
        declarations = [
            d for t in body.get("tools") or () for d in t.get("functionDeclarations") or ()
        ]
        calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        config = body.get("generationConfig") or {}
        parts: list[dict[str, Any]] = []
        finish = "STOP"
        if declarations and calling.get("mode") != "NONE" and not answered:
            allowed = calling.get("allowedFunctionNames") or ()
            chosen = next((d for d in declarations if d["name"] in allowed), declarations[0])
            part: dict[str, Any] = {
                "functionCall": {"name": chosen["name"], "args": {"query": heard}}
            }
            if model.startswith("gemini-3"):
                part["thoughtSignature"] = SIGNATURE
            parts.append(part)
        else:
            answer = reply_to(heard)
            if config.get("responseMimeType") == "application/json":
                answer = json.dumps({"reply": heard})
            for stop in config.get("stopSequences") or ():
                if stop in answer:
                    answer = answer.split(stop)[0]
            limit = config.get("maxOutputTokens")
            if limit and words(answer) > limit:
                answer, finish = " ".join(answer.split()[:limit]), "MAX_TOKENS"
            parts.append({"text": answer})
        system = " ".join(
            p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts") or ()
        )
        prompt = words(system) + sum(
            words(_part_text(p)) for c in body["contents"] for p in c["parts"]
        )
        output = sum(words(_part_text(p)) or len(json.dumps(p)) // 20 for p in parts)
        return {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": prompt,
                "candidatesTokenCount": output,
                "totalTokenCount": prompt + output,
            },
            "modelVersion": model,
            "responseId": f"fake-{len(self.received)}",
        }

    def answer(self, model: str, method: str, request: Request) -> Reply:
        """generateContent / streamGenerateContent for `model`."""
        if self.models.get(model) != "llm":
            return self.not_found(model, method)
        try:
            body = parse(request.body, self.proto)
            self.check(model, body)
        except BadRequest as exc:
            return self.bad_request(exc)
        reply = self.generate(model, body)
        if method == "generateContent":
            return Reply(200, reply)
        if (request.query.get("alt") or [""])[0] != "sse":
            return Reply(200, [reply])  # without alt=sse: one JSON array, sent at the end
        return Reply(stream=self._stream(reply), content_type="text/event-stream")

    @staticmethod
    def _stream(reply: dict[str, Any]) -> Iterator[bytes]:
        """The reply in pieces, as Google streams it: text a word at a time, a call whole, the
        finishReason and the full usage on the last chunk; `\\r\\n\\r\\n` between events."""
        candidate = reply["candidates"][0]
        pieces: list[dict[str, Any]] = []
        for part in candidate["content"]["parts"]:
            if "text" in part:
                tokens = part["text"].split(" ")
                pieces += [{"text": t if i == 0 else " " + t} for i, t in enumerate(tokens)]
            else:
                pieces.append(part)
        usage = reply["usageMetadata"]
        for i, piece in enumerate(pieces):
            chunk: dict[str, Any] = {
                "candidates": [{"content": {"role": "model", "parts": [piece]}, "index": 0}],
                "usageMetadata": {"promptTokenCount": usage["promptTokenCount"]},
                "modelVersion": reply["modelVersion"],
                "responseId": reply["responseId"],
            }
            if i == len(pieces) - 1:
                chunk["candidates"][0]["finishReason"] = candidate["finishReason"]
                chunk["usageMetadata"] = usage
            yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()


class GeminiFake(GenerativeFake):
    """The Gemini API; `models` maps a model id to its type (llm or text-embedding)."""

    def __init__(self, api_key: str | None = "fake-key", models: Mapping[str, str] | None = None):
        super().__init__(
            api_key,
            models
            or {
                "gemini-2.5-flash": "llm",
                "gemini-3.5-flash": "llm",
                "gemini-flash-lite-latest": "llm",
                "gemini-embedding-001": "text-embedding",
            },
        )
        for version in ("v1", "v1beta"):  # both are served; the official client uses v1
            self.route("POST", f"/{version}/models/{{action}}", self.model_action)
            self.route("GET", f"/{version}/models", self.list_models)

    def presented(self, request: Request) -> str:
        return request.header("x-goog-api-key") or (request.query.get("key") or [""])[0]

    def authorized(self, request: Request) -> bool:
        return self.api_key is None or self.presented(request) == self.api_key

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        if failure is None and self.api_key is not None and not self.presented(request):
            return self.error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        return super()._reply(request, failure)

    def unauthorized(self) -> Reply:
        return self.error(
            400,
            "API key not valid. Please pass a valid API key.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        )

    def presented_key(self, request: Request) -> tuple[str, str]:
        key = self.presented(request)
        return key, key

    def model_action(self, request: Request) -> Reply:
        model, _, method = request.params["action"].partition(":")
        if method in ("generateContent", "streamGenerateContent"):
            return self.answer(model, method, request)
        if method in ("embedContent", "batchEmbedContents"):
            return self.embed(model, method, request)
        return self.error(404, f"Method not found: {method}")

    def embed(self, model: str, method: str, request: Request) -> Reply:
        if self.models.get(model) != "text-embedding":
            return self.not_found(model, method)
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return self.bad_request(BadRequest("Invalid JSON payload received. Unexpected token."))
        if not isinstance(body, dict):
            return self.bad_request(
                BadRequest("Invalid JSON payload received. Expected an object.")
            )
        asks = body.get("requests") if method == "batchEmbedContents" else [body]
        if not asks:
            return self.error(
                400, "* BatchEmbedContentsRequest.requests: contents is not specified"
            )
        vectors = []
        for ask in asks:
            if not isinstance(ask, dict):
                kind = f"type.googleapis.com/{self.proto}.EmbedContentRequest"
                return self.bad_request(_invalid_value("requests[0]", kind, ask))
            if method == "batchEmbedContents" and ask.get("model") != f"models/{model}":
                return self.error(400, f"Model names should match: {ask.get('model')}")
            content = ask.get("content") or {}
            parts = content.get("parts") or () if isinstance(content, dict) else ()
            text = " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
            if not text:
                return self.error(400, "* EmbedContentRequest.content: contents is not specified")
            vectors.append({"values": embed_text(text, int(ask.get("outputDimensionality") or 8))})
        if method == "embedContent":
            return Reply(200, {"embedding": vectors[0]})
        return Reply(200, {"embeddings": vectors})

    def list_models(self, request: Request) -> Reply:
        methods = {
            "llm": ["generateContent", "countTokens", "streamGenerateContent"],
            "text-embedding": ["embedContent", "batchEmbedContents"],
        }
        size = int((request.query.get("pageSize") or ["50"])[0])
        start = int((request.query.get("pageToken") or ["0"])[0] or 0)
        rows = [
            {
                "name": f"models/{name}",
                "displayName": name,
                "inputTokenLimit": 1048576,
                "supportedGenerationMethods": methods[kind],
            }
            for name, kind in self.models.items()
        ]
        data: dict[str, Any] = {"models": rows[start : start + size]}
        if start + size < len(rows):
            data["nextPageToken"] = str(start + size)
        return Reply(200, data)


def serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> GeminiFake:
    return GeminiFake(
        api_key=credentials.get("api_key"),
        models={model: model_type for model_type, model in models.items()},
    )


def sign_in(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """The key in `x-goog-api-key`, as google-genai sends it."""
    return {**headers, "x-goog-api-key": credentials.get("api_key", "")}


GENERATE = "/v1beta/models/{model}:generateContent"
HELLO = [{"role": "user", "parts": [{"text": "hi"}]}]

# Sources: ai.google.dev/api/generate-content (fields, the 0-2 temperature range) and
# ai.google.dev/gemini-api/docs/troubleshooting (400 INVALID_ARGUMENT, 403 PERMISSION_DENIED,
# 404 NOT_FOUND); the error bodies as users quote them: an unknown field (sourcegraph/cody#4566,
# gemini-cli#13972), an ill-typed value (egoist/chatwise-releases#536), a bad key
# (google-genai's tests: 400 with reason API_KEY_INVALID).
SPEC = FakeSpec(
    family="google_gemini",
    client="google-genai",
    serve=serve,
    aim=aim_base_url("/v1beta"),
    sign_in=sign_in,
    refusals=(
        Refusal("a wrong key", GENERATE, {"contents": HELLO}, says="API_KEY_INVALID",
                headers={"x-goog-api-key": "AIzaWrongKey"}),
        Refusal("no key", GENERATE, {"contents": HELLO}, status=403, says="PERMISSION_DENIED",
                headers={"x-goog-api-key": None}),
        Refusal("no contents", GENERATE, {}, says="contents is not specified"),
        Refusal("an unknown field", GENERATE, {"contents": HELLO, "stream": True},
                says='Unknown name \\"stream\\": Cannot find field.'),
        Refusal("an unknown generationConfig field", GENERATE,
                {"contents": HELLO, "generationConfig": {"max_tokens": 5}},
                says="Unknown name \\\"max_tokens\\\" at 'generation_config': Cannot find field."),
        Refusal("a string temperature", GENERATE,
                {"contents": HELLO, "generationConfig": {"temperature": "hot"}},
                says="Invalid value at 'generation_config.temperature' (TYPE_FLOAT)"),
        Refusal("a fractional maxOutputTokens", GENERATE,
                {"contents": HELLO, "generationConfig": {"maxOutputTokens": 1.5}},
                says="(TYPE_INT32), 1.5"),
        Refusal("a temperature over 2", GENERATE,
                {"contents": HELLO, "generationConfig": {"temperature": 2.5}},
                says="INVALID_ARGUMENT"),
        Refusal("a string for a Content", GENERATE, {"contents": ["hi"]},
                says="Invalid value at 'contents[0]' (type.googleapis.com/"
                     "google.ai.generativelanguage.v1beta.Content)"),
        Refusal("an unknown role", GENERATE,
                {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]},
                says="Please use a valid role: user, model."),
        Refusal("an unknown model", "/v1beta/models/no-such-model:generateContent",
                {"contents": HELLO}, status=404, says="NOT_FOUND"),
    ),
)  # fmt: skip
