"""A fake of Azure OpenAI Service's data plane. Checked by the official `openai.AzureOpenAI` (and
`openai.OpenAI` on /openai/v1) client in tests/unit/runtime/test_azure_openai_fake.py.

Wire facts it keeps:
- `POST /openai/deployments/{deployment}/{chat/completions|embeddings|audio/transcriptions|
  audio/speech}?api-version=YYYY-MM-DD[-preview]`, authenticated by the `api-key` header (a
  Bearer there would be an Entra ID token, which this fake does not issue);
- the versionless `POST /openai/v1/...` API: the deployment is the body's `model`, `api-key` or
  `Authorization: Bearer <key>` both accepted, no api-version needed;
- a missing or malformed api-version is 404 "Resource not found" [U: exact body];
- an unknown deployment is 404 `DeploymentNotFound`; the wrong operation for a deployment (chat on
  an embedding model) is 400 `OperationNotSupported`;
- a bad key is 401 `{"error": {"code": "401", "message": "Access denied due to invalid
  subscription key or wrong API endpoint..."}}`;
- Microsoft Entra ID sign-in (`entra`: client ID -> secret, in `tenant`): the identity platform's
  `POST /{tenant}/oauth2/v2.0/token` (form: grant_type=client_credentials, client_id,
  client_secret, scope=https://cognitiveservices.azure.com/.default) answers `access_token` and
  `expires_in`; a wrong secret is 401 invalid_client AADSTS7000215, an unknown application 400
  unauthorized_client AADSTS700016, an unknown tenant 400 invalid_request AADSTS90002, another
  scope 400 invalid_scope AADSTS1002012. The data plane takes `Authorization: Bearer <token>`
  for tokens it issued only (`revoke_tokens()` forgets them); others are 401 "Unauthorized.
  Access token is missing, invalid, audience is incorrect...". (Microsoft identity platform docs:
  "OAuth 2.0 client credentials flow" and "AADSTS error codes"; the 401 text as quoted in
  public issue threads.)
- 429 carries Retry-After and retry-after-ms, and a message that mentions "quotaincrease";
- a prompt with "jailbreak" in it is 400 `content_filter` (innererror ResponsibleAIPolicyViolation);
- replies carry `prompt_filter_results` / `content_filter_results`; a stream starts with a chunk
  of empty choices holding only `prompt_filter_results`;
- `stream_options` is rejected by api-versions before 2024-09-01 ("Unrecognized request argument
  supplied: stream_options");
- reasoning base models (o1/o3/o4/gpt-5) reject `max_tokens` (`unsupported_parameter`), take
  `max_completion_tokens`, and spend 2 reasoning tokens first; but the gpt-5 -chat models, they
  also reject `stop` and sampling values other than the default (`unsupported_value`);
- fields outside OpenAI's and Azure's chat schema: "Unrecognized request argument supplied: x"
  (as quoted from Azure in Pythagora-io/gpt-pilot#1022).
Replies echo the request (reply_to, embed_text, wav_with_text), never canned text.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.base import (
    FakeServer,
    Reply,
    Request,
    embed_text,
    reply_to,
    sse,
    text_in_wav,
    wav_with_text,
    words,
)
from tests.fakes.openai_server import CHAT_FIELDS, FIXED_SAMPLING, last_user_text
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

UNAUTHORIZED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
NOT_DEPLOYED = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)
RATE_LIMITED = (
    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {version} "
    "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after "
    "{seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to "
    "further increase the default rate limit."
)
FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
BAD_TOKEN = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired."
)
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
# OpenAI's chat fields and Azure's own (On Your Data, Defender for Cloud's user context).
AZURE_CHAT_FIELDS = CHAT_FIELDS | {"data_sources", "user_security_context"}
VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
STREAM_USAGE_SINCE = "2024-09-01"
REASONING_TOKENS = 2
OPERATIONS = {  # route -> (Azure's operation name, the base-model kind it needs)
    "chat/completions": ("chatCompletion", "llm"),
    "embeddings": ("embeddings", "text-embedding"),
    "audio/transcriptions": ("transcription", "speech2text"),
    "audio/speech": ("speech", "tts"),
}
SAFE = {"filtered": False, "severity": "safe"}
CATEGORIES = ("hate", "self_harm", "sexual", "violence")


def base_model_kind(base_model: str) -> str:
    if "embedding" in base_model:
        return "text-embedding"
    if "whisper" in base_model or "transcribe" in base_model:
        return "speech2text"
    if base_model.startswith("tts") or base_model.endswith("-tts"):
        return "tts"
    return "llm"


def _filter_results() -> dict[str, Any]:
    return {name: dict(SAFE) for name in CATEGORIES}


class AzureOpenAIFake(FakeServer):
    """`deployments` maps deployment name -> base model (its kind follows from the name)."""

    def __init__(
        self,
        api_key: str | None = "fake-azure-key",
        deployments: dict[str, str] | None = None,
        *,
        entra: Mapping[str, str] | None = None,
        tenant: str = "fake-tenant",
        token_lifetime: int = 3599,
    ) -> None:
        super().__init__(api_key)
        self.entra = dict(entra or {})
        self.tenant = tenant
        self.token_lifetime = token_lifetime
        self.tokens: dict[str, float] = {}  # issued token -> when it expires
        self.route("POST", "/{tenant}/oauth2/v2.0/token", self.token)
        self.deployments = deployments or {
            "chat-prod": "gpt-4o-mini",
            "reasoner": "o3-mini",
            "embedder": "text-embedding-3-small",
            "whisper": "whisper-1",
            "voice": "tts-1",
        }
        for path, handler in (
            ("chat/completions", self.chat),
            ("embeddings", self.embeddings),
            ("audio/transcriptions", self.transcribe),
            ("audio/speech", self.speech),
        ):
            self.route(
                "POST", f"/openai/deployments/{{deployment}}/{path}", self._on(path, handler)
            )
            self.route("POST", f"/openai/v1/{path}", self._on(path, handler))

    # --- family hooks ---------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if self.api_key is None or request.path.endswith("/oauth2/v2.0/token"):
            return True  # the token endpoint reads its credentials from the body
        bearer = request.header("authorization").removeprefix("Bearer ")
        if self.tokens.get(bearer, 0) > time.time():
            return True
        if request.header("api-key") == self.api_key:
            return True
        # The v1 API also takes the key as a Bearer token (what a plain OpenAI client sends).
        return request.path.startswith("/openai/v1/") and (
            request.header("authorization") == f"Bearer {self.api_key}"
        )

    def unauthorized(self) -> Reply:
        return self.azure_error(401, "401", UNAUTHORIZED)

    def presented_key(self, request: Request) -> tuple[str, str]:
        if request.header("api-key"):
            return request.header("api-key"), request.header("api-key")
        return super().presented_key(request)

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        """Failure injection and unknown paths, in Azure's words."""
        if status == 404 and message.startswith("No route"):
            return self.azure_error(404, "404", "Resource not found")
        if status == 404:
            return self.azure_error(404, "DeploymentNotFound", NOT_DEPLOYED)
        if status == 429:
            return self.azure_error(
                429, "429", RATE_LIMITED.format(version="2024-10-21", seconds=1)
            )
        if status >= 500:
            return Reply(
                status,
                {
                    "error": {
                        "message": SERVER_ERROR,
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
            )
        return self.azure_error(status, str(extra.get("code") or status), message)

    def _reply(self, request: Request, failure: Any) -> Reply:
        reply = super()._reply(request, failure)
        if reply.status == 401 and request.header("authorization") and failure is None:
            return self.azure_error(401, "401", BAD_TOKEN)  # a Bearer token it did not issue
        if reply.status == 429 and "Retry-After" in reply.headers:
            seconds = float(reply.headers["Retry-After"])
            reply.headers["retry-after-ms"] = str(int(seconds * 1000))
        return reply

    @staticmethod
    def azure_error(http_status: int, code: str | None, message: str, **extra: Any) -> Reply:
        return Reply(http_status, {"error": {"code": code, "message": message, **extra}})

    def bad_request(self, message: str, param: str | None = None, code: str | None = None):
        return self.azure_error(
            400, code, message, param=param, type="invalid_request_error", status=400
        )

    # --- Microsoft Entra ID ---------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    @staticmethod
    def entra_error(status: int, error: str, code: int, description: str) -> Reply:
        trace = secrets.token_hex(8)
        return Reply(
            status,
            {
                "error": error,
                "error_description": f"AADSTS{code}: {description} Trace ID: {trace} "
                f"Correlation ID: {trace} Timestamp: {time.strftime('%Y-%m-%d %H:%M:%SZ')}",
                "error_codes": [code],
                "trace_id": trace,
                "correlation_id": trace,
                "error_uri": f"https://login.microsoftonline.com/error?code={code}",
            },
        )

    def token(self, request: Request) -> Reply:
        """The client-credentials grant of the Microsoft identity platform v2.0."""
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if request.params["tenant"] != self.tenant:
            return self.entra_error(
                400, "invalid_request", 90002, f"Tenant '{request.params['tenant']}' not found."
            )
        for name in ("grant_type", "client_id", "scope"):
            if not form.get(name):
                return self.entra_error(
                    400,
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{name}'.",
                )
        if form["grant_type"] != "client_credentials":
            return self.entra_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            )
        client = form["client_id"]
        if client not in self.entra:
            return self.entra_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client}' was not found in the directory "
                f"'{self.tenant}'.",
            )
        if form.get("client_secret") != self.entra[client]:
            return self.entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{client}'.",
            )
        if form["scope"] != ENTRA_SCOPE:
            return self.entra_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form['scope']} is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource "
                "identifier (application ID URI).",
            )
        token = f"eyJ0eXAiOiJKV1Qi.{client}.{secrets.token_urlsafe(24)}"
        self.tokens[token] = time.time() + self.token_lifetime
        return Reply(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            },
        )

    # --- routing --------------------------------------------------------------------------------

    def _on(self, path: str, handler):
        operation, kind = OPERATIONS[path]

        def serve(request: Request) -> Reply:
            versionless = "deployment" not in request.params
            version = (request.query.get("api-version") or [""])[0]
            if not versionless and not VERSION.match(version):
                return self.azure_error(404, "404", "Resource not found")
            if versionless:
                fields = request.form()[0] if path == "audio/transcriptions" else request.json()
                deployment = str((fields or {}).get("model") or "")
            else:
                deployment = request.params["deployment"]
            base_model = self.deployments.get(deployment)
            if base_model is None:
                return self.azure_error(404, "DeploymentNotFound", NOT_DEPLOYED)
            if base_model_kind(base_model) != kind:
                return self.azure_error(
                    400,
                    "OperationNotSupported",
                    f"The {operation} operation does not work with the specified model, "
                    f"{base_model}. Please choose different model and try again. You can learn "
                    "more about which models can be used with each operation here: "
                    "https://go.microsoft.com/fwlink/?linkid=2197993.",
                )
            return handler(request, base_model, version or "v1")

        return serve

    # --- operations -----------------------------------------------------------------------------

    def chat(self, request: Request, base_model: str, version: str) -> Reply:
        body = request.json()
        unknown = sorted(set(body) - AZURE_CHAT_FIELDS)
        if unknown:
            return self.bad_request(f"Unrecognized request argument supplied: {', '.join(unknown)}")
        messages = body.get("messages")
        if not messages:
            return self.bad_request("'messages' is a required property", "messages")
        reasoning = base_model.startswith(("o1", "o3", "o4", "gpt-5"))
        fixed_sampling = reasoning and "-chat" not in base_model
        for param in ("max_tokens", "stop") if reasoning else ():
            if body.get(param) is not None and (param == "max_tokens" or fixed_sampling):
                hint = " Use 'max_completion_tokens' instead." if param == "max_tokens" else ""
                return self.bad_request(
                    f"Unsupported parameter: '{param}' is not supported with this model.{hint}",
                    param,
                    "unsupported_parameter",
                )
        for param, default in FIXED_SAMPLING.items() if fixed_sampling else ():
            if body.get(param) is not None and body[param] != default:
                return self.bad_request(
                    f"Unsupported value: '{param}' does not support {body[param]} with this "
                    f"model. Only the default ({default}) value is supported.",
                    param,
                    "unsupported_value",
                )
        if body.get("stream_options") is not None and version[:10] < STREAM_USAGE_SINCE:
            return self.bad_request("Unrecognized request argument supplied: stream_options")
        prompt = last_user_text(messages)
        if "jailbreak" in prompt.lower():
            return self.azure_error(
                400,
                "content_filter",
                FILTERED,
                param="prompt",
                type=None,
                status=400,
                innererror={
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {
                        **_filter_results(),
                        "jailbreak": {"filtered": True, "detected": True},
                    },
                },
            )
        answer: str | None = reply_to(prompt)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        spent = REASONING_TOKENS if reasoning else 0
        finish = "stop"
        if limit is not None and words(answer) + spent > limit:
            answer, finish = " ".join(answer.split()[: max(0, limit - spent)]), "length"
        tool_calls = []
        if body.get("tools") and body.get("tool_choice") != "none" and finish != "length":
            tool = body["tools"][0]["function"]
            tool_calls = [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": tool["name"], "arguments": '{"query": "weather"}'},
                }
            ]
            finish, answer = "tool_calls", None
        prompt_tokens = sum(words(str(m.get("content", ""))) for m in messages)
        completion = words(answer or "") + len(tool_calls) + spent
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": spent}
        created = int(time.time())
        if body.get("stream"):
            include_usage = (body.get("stream_options") or {}).get("include_usage")
            return Reply(
                stream=self._stream(
                    base_model, created, answer, tool_calls, finish, usage, include_usage
                ),
                content_type="text/event-stream",
            )
        message: dict[str, Any] = {"role": "assistant", "content": answer, "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return Reply(
            200,
            {
                "id": "chatcmpl-azure-fake",
                "object": "chat.completion",
                "created": created,
                "model": base_model,
                "system_fingerprint": "fp_fake",
                "prompt_filter_results": [
                    {"prompt_index": 0, "content_filter_results": _filter_results()}
                ],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": finish,
                        "logprobs": None,
                        "content_filter_results": _filter_results(),
                    }
                ],
                "usage": usage,
            },
        )

    def _stream(self, base_model, created, answer, tool_calls, finish, usage, include_usage):
        base = {
            "id": "chatcmpl-azure-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": base_model,
            "system_fingerprint": "fp_fake",
        }

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "finish_reason": finish_reason,
                        "logprobs": None,
                        "content_filter_results": _filter_results() if delta else {},
                    }
                ],
            }

        # Azure's first chunk: no choices, only the prompt's filter results.
        events: list[dict[str, Any]] = [
            {
                "id": "",
                "object": "",
                "created": 0,
                "model": "",
                "choices": [],
                "prompt_filter_results": [
                    {"prompt_index": 0, "content_filter_results": _filter_results()}
                ],
            },
            choice({"role": "assistant", "content": "", "refusal": None}),
        ]
        for i, word in enumerate((answer or "").split(" ") if answer else ()):
            events.append(choice({"content": word if i == 0 else " " + word}))
        for i, call in enumerate(tool_calls):
            args = call["function"]["arguments"]
            head = {
                "index": i,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": args[:5]},
            }
            events.append(choice({"tool_calls": [head]}))
            events.append(
                choice({"tool_calls": [{"index": i, "function": {"arguments": args[5:]}}]})
            )
        events.append(choice({}, finish))
        if include_usage:
            events.append({**base, "choices": [], "usage": usage})
        return sse(events)

    def embeddings(self, request: Request, base_model: str, version: str) -> Reply:
        body = request.json()
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not texts:
            return self.bad_request("'input' must not be empty", "input")
        tokens = sum(words(t) for t in texts)
        dimensions = int(body.get("dimensions") or 8)
        return Reply(
            200,
            {
                "object": "list",
                "model": base_model,
                "data": [
                    {"object": "embedding", "index": i, "embedding": embed_text(t, dimensions)}
                    for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def transcribe(self, request: Request, base_model: str, version: str) -> Reply:
        fields, files = request.form()
        if "file" not in files:
            return self.bad_request("Missing file", "file")
        text = text_in_wav(files["file"][1]) or "(silence)"
        if fields.get("response_format") == "text":
            return Reply(200, text.encode(), content_type="text/plain")
        return Reply(200, {"text": text})

    def speech(self, request: Request, base_model: str, version: str) -> Reply:
        body = request.json()
        if not body.get("input"):
            return self.bad_request("'input' is required", "input")
        audio_format = body.get("response_format") or "mp3"
        content_type = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg"}.get(
            audio_format, f"audio/{audio_format}"
        )
        return Reply(
            200,
            wav_with_text(f"{body.get('voice', 'alloy')}: {body['input']}"),
            content_type=content_type,
        )


# The model each deployment runs, by the type the walk calls it as.
_BASE_MODELS = {
    "llm": "gpt-4o-mini",
    "text-embedding": "text-embedding-3-small",
    "speech2text": "whisper-1",
    "tts": "tts-1",
}


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> AzureOpenAIFake:
    """Each deployment runs the base model the credentials name (a reasoning model refuses what
    such models refuse); "reasoner" runs o3-mini, for the refusals."""
    deployments = {
        model: credentials.get("base_model") or _BASE_MODELS[kind] for kind, model in models.items()
    }
    return AzureOpenAIFake(
        api_key=credentials.get("api_key"), deployments={"reasoner": "o3-mini", **deployments}
    )


def _api_key(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """Azure's key header."""
    return {**headers, "api-key": credentials.get("api_key", "")}


_CHAT = "/openai/deployments/{model}/chat/completions?api-version=2024-10-21"
_HI = [{"role": "user", "content": "hi"}]

SPEC = FakeSpec(
    "azure_openai",
    client="openai",
    serve=_serve,
    aim=aim_base_url(),
    sign_in=_api_key,
    refusals=(
        Refusal(
            "a wrong key",
            _CHAT,
            {"messages": _HI},
            status=401,
            says="Access denied due to invalid subscription key",
            headers={"api-key": "0" * 32},
        ),
        Refusal("no key", _CHAT, {"messages": _HI}, status=401, headers={"api-key": None}),
        Refusal(
            "a Bearer token Entra ID did not issue",
            _CHAT,
            {"messages": _HI},
            status=401,
            says="Access token is missing, invalid",
            headers={"api-key": None, "Authorization": "Bearer eyJ0eXAiOiJKV1Qi.forged"},
        ),
        Refusal(
            "no api-version",
            "/openai/deployments/{model}/chat/completions",
            {"messages": _HI},
            status=404,
            says="Resource not found",
        ),
        Refusal(
            "an unknown deployment",
            "/openai/deployments/nowhere/chat/completions?api-version=2024-10-21",
            {"messages": _HI},
            status=404,
            says="DeploymentNotFound",
        ),
        Refusal("no messages", _CHAT, {}, says="'messages' is a required property"),
        Refusal(
            "an unknown top-level field",
            _CHAT,
            {"messages": _HI, "top_k": 3},
            says="Unrecognized request argument supplied: top_k",
        ),
        Refusal(
            "max_tokens to a reasoning deployment",
            "/openai/deployments/reasoner/chat/completions?api-version=2024-10-21",
            {"messages": _HI, "max_tokens": 5},
            says="Use 'max_completion_tokens' instead.",
        ),
        Refusal(
            "stream_options before api-version 2024-09-01",
            "/openai/deployments/{model}/chat/completions?api-version=2024-06-01",
            {"messages": _HI, "stream": True, "stream_options": {"include_usage": True}},
            says="Unrecognized request argument supplied: stream_options",
        ),
        Refusal(
            "chat on an embedding deployment",
            "/openai/deployments/{model}/chat/completions?api-version=2024-10-21",
            {"messages": _HI},
            says="OperationNotSupported",
            model_type="text-embedding",
        ),
    ),
)
