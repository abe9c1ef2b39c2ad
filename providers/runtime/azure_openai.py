"""Azure OpenAI Service: OpenAI's bodies and replies, Azure's URLs, auth and error bodies.

The model name is the Azure *deployment* name. Two URL shapes:

    {base}/openai/deployments/{deployment}/chat/completions?api-version=<version>
        (also /embeddings, /audio/transcriptions, /audio/speech), header `api-key: <key>`;
    {base ending /openai/v1}/chat/completions
        the versionless v1 API: plain OpenAI paths, the deployment as `model` in the body, no
        api-version (same `api-key` header).

Credentials (generic names, see the manifest): `base_url`, `api_key`, `api_version`,
`auth_method` (api_key | entra_id_service_principal), `client_id`, `tenant_id`,
`client_secret`, `base_model` (which OpenAI model the deployment runs; recorded by validation and
used to shape requests for reasoning models).
Options: `default_api_version` (when the credentials give none), `versionless_suffix`
(`/openai/v1`), `enable_request_metadata` ("enabled" adds `store: true`), `max_chunks`, `voice`.

Entra ID (service principal) sign-in: a client-credentials token from
`{entra_authority}/{tenant_id}/oauth2/v2.0/token` (Microsoft identity platform v2.0; the authority
is login.microsoftonline.com unless the `entra_authority` option says otherwise) for the
`entra_scope`, sent as `Authorization: Bearer`; kept in `tokens.TOKENS` until shortly before it
expires, forgotten when the data plane refuses it (a kept one is then fetched afresh once).

Everything else (bodies, streaming, tool calls, usage, embeddings batching, audio) is
OpenAICompatAdapter's; this class only routes URLs, sets headers and query parameters, adapts
bodies for reasoning base models, and reads Azure's error bodies.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from config import errors
from providers.runtime.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    Endpoint,
    Speech,
    Transcription,
    Validation,
)
from providers.runtime.http import HttpClient, Pool, Response
from providers.runtime.openai_compat import OpenAICompatAdapter, error_code
from providers.runtime.tokens import TOKENS, TokenCache

DEFAULT_API_VERSION = "2024-02-15-preview"
VERSIONLESS_SUFFIX = "/openai/v1"
API_KEY, ENTRA_ID = "api_key", "entra_id_service_principal"
ENTRA_AUTHORITY = "https://login.microsoftonline.com"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
ENTRA_FIELDS = {"client_id": "azure_client_id", "tenant_id": "azure_tenant_id",
                "client_secret": "azure_client_secret"}  # fmt: skip
# Paths that live under /openai/deployments/{deployment}/ (as in the official client).
DEPLOYMENT_PATHS = frozenset(
    {
        "completions",
        "chat/completions",
        "embeddings",
        "audio/transcriptions",
        "audio/translations",
        "audio/speech",
        "images/generations",
    }
)
# `stream_options.include_usage` is rejected ("Unrecognized request argument supplied:
# stream_options") by API versions older than this one; for those, stream usage is counted.
STREAM_USAGE_SINCE = "2024-09-01"


class _StaleToken(errors.UpstreamAuth):
    """A kept Entra ID token the data plane refused: retried once with a fresh one."""

    retryable = True


def _entra_message(body: Any) -> str:
    """The identity platform's `{"error", "error_description"}` (its AADSTS code leads the
    description)."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        described = str(body.get("error_description") or "").split("\r\n")[0].split("\n")[0]
        return f"{body['error']}: {described}" if described else body["error"]
    return str(body)


def _entra_failure(response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
    """A wrong secret (401 invalid_client), an unknown application or tenant (400
    unauthorized_client, invalid_request) are refused credentials."""
    if response.status_code in (400, 401) and any(
        code in failure.message
        for code in ("invalid_client", "unauthorized_client", "invalid_request", "invalid_scope")
    ):
        return errors.UpstreamAuth(f"Microsoft Entra ID refused the sign-in: {failure.message}")
    return failure


class AzureOpenAIAdapter(OpenAICompatAdapter):
    family = "azure_openai"
    offers = frozenset({"chat", "stream", "embed", "transcribe", "speak"})

    def __init__(self, endpoint: Endpoint, pool: Pool) -> None:
        self._attempt = threading.local()  # the Entra ID token the current attempt sent
        super().__init__(endpoint, pool)
        authority = str(endpoint.options.get("entra_authority") or ENTRA_AUTHORITY)
        self.token_http = HttpClient(
            base_url=authority,
            headers={},
            pool=pool,
            timeouts=endpoint.timeouts,
            retry=endpoint.retry,
            secrets=self.secret_values(),
            error_message=_entra_message,
            classify=_entra_failure,
        )

    # --- where and how --------------------------------------------------------------------------

    @property
    def versionless(self) -> bool:
        suffix = self.endpoint.options.get("versionless_suffix") or VERSIONLESS_SUFFIX
        base = str(self.endpoint.credentials.get("base_url") or self.endpoint.base_url or "")
        return urlsplit(base.strip()).path.rstrip("/").endswith(suffix.rstrip("/"))

    @property
    def api_version(self) -> str:
        return str(
            self.endpoint.credentials.get("api_version")
            or self.endpoint.options.get("default_api_version")
            or DEFAULT_API_VERSION
        ).strip()

    @property
    def base_model(self) -> str:
        return str(self.endpoint.credentials.get("base_model") or "").strip()

    @property
    def auth_method(self) -> str:
        return str(self.endpoint.credentials.get("auth_method") or API_KEY)

    def base_url(self) -> str:
        """`https://<resource>.openai.azure.com` -> `.../openai` (the deployments API lives under
        it); a base already ending in /openai/v1 (or /openai) is kept as given."""
        base = str(self.endpoint.credentials.get("base_url") or self.endpoint.base_url or "")
        base = base.strip().rstrip("/")
        if not base or self.versionless or base.endswith("/openai"):
            return base
        return f"{base}/openai"

    def target(
        self, path: str, fields: Any, params: Mapping[str, Any] | None
    ) -> tuple[str, Mapping[str, Any] | None]:
        """The deployment goes into the path and api-version into the query, as
        `openai.AzureOpenAI` does (the deployment is the body's `model`); the versionless
        /openai/v1 API takes paths as they are."""
        if self.versionless or path.strip("/") not in DEPLOYMENT_PATHS:
            return path, params
        deployment = fields.get("model") if isinstance(fields, Mapping) else None
        if not deployment:
            raise errors.InvalidInput("Name the Azure deployment to call.", code="invalid")
        path = f"deployments/{quote(str(deployment), safe='')}/{path.strip('/')}"
        return path, {**(params or {}), "api-version": self.api_version}

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """Azure's rate-limit 429 says "...go here: https://aka.ms/oai/quotaincrease...", which the
        generic mapping would read as an exhausted quota: a 429 is a rate limit here unless its
        code says quota. `retry-after-ms` (Azure sends it beside Retry-After) wins when present."""
        if response.status_code != 429:
            return self._token_refused(response, failure)
        if error_code(response) == "insufficient_quota":
            return errors.UpstreamQuota(failure.message)
        retry_after = getattr(failure, "retry_after", None)
        with contextlib.suppress(KeyError, ValueError):
            retry_after = max(0.0, float(response.headers["retry-after-ms"]) / 1000)
        return errors.UpstreamRateLimited(failure.message, retry_after=retry_after)

    def _token_refused(
        self, response: Response, failure: errors.UpstreamError
    ) -> errors.UpstreamError:
        """A 401 on an Entra ID token: forget it; a kept one is fetched afresh once."""
        if response.status_code == 401 and getattr(self._attempt, "key", None):
            TOKENS.forget(self._attempt.key)
            if not self._attempt.fresh:
                return _StaleToken(failure.message)
        return failure

    def auth_headers(self) -> dict[str, str]:
        api_key = self.endpoint.credentials.get("api_key")
        if self.auth_method == API_KEY and api_key:
            return {"api-key": str(api_key)}
        return {}

    # --- Entra ID -------------------------------------------------------------------------------

    def _entra(self, name: str) -> str:
        return str(self.endpoint.credentials.get(name) or "").strip()

    def access_token(self) -> tuple[str, str, bool]:
        """(the Entra ID token, its cache key, whether it was fetched just now)."""
        scope = str(self.endpoint.options.get("entra_scope") or ENTRA_SCOPE)
        tenant, client = self._entra("tenant_id"), self._entra("client_id")
        key = TokenCache.key(
            self.family, self.token_http.base_url, tenant, client, self._entra("client_secret"),
            scope,
        )  # fmt: skip
        fetched: list[bool] = []

        def exchange() -> tuple[str, float]:
            fetched.append(True)
            data = self.token_http.json(
                "POST",
                f"{quote(tenant, safe='')}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client,
                    "client_secret": self._entra("client_secret"),
                    "scope": scope,
                },
            )
            token = data.get("access_token") if isinstance(data, dict) else None
            if not token:
                raise errors.UpstreamUnavailable(
                    "Microsoft Entra ID answered without an access token."
                )
            return str(token), float(data.get("expires_in") or 3600)

        return TOKENS.get(key, exchange), key, bool(fetched)

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        if self.auth_method != ENTRA_ID:
            return headers
        token, key, fresh = self.access_token()
        self._attempt.key, self._attempt.fresh = key, fresh
        return {**headers, "Authorization": f"Bearer {token}"}

    def _ready(self) -> None:
        """Fail early, with a clear message, for credentials we cannot call with."""
        if self.auth_method not in (API_KEY, ENTRA_ID):
            raise errors.InvalidInput(
                f"Unknown authentication method {self.auth_method!r}.", code="invalid"
            )
        if not self.http.base_url:
            raise errors.InvalidInput("The Azure OpenAI API base URL is required.", code="invalid")
        if self.auth_method == ENTRA_ID:
            missing = [field for name, field in ENTRA_FIELDS.items() if not self._entra(name)]
            if missing:
                raise errors.InvalidInput(
                    "Microsoft Entra ID sign-in needs the application (client) ID, the directory "
                    "(tenant) ID and a client secret value.",
                    fields={field: ["Required with Microsoft Entra ID."] for field in missing},
                )
            return
        if not self.endpoint.credentials.get("api_key"):
            raise errors.InvalidInput(
                "An API key is required with the API key authentication method.", code="invalid"
            )

    def error_message(self, body: Any) -> str:
        """Azure's `{"error": {"code", "message"}}`: the message, led by a descriptive code
        (DeploymentNotFound, content_filter, OperationNotSupported...); numeric codes dropped."""
        message = super().error_message(body)
        error = body.get("error") if isinstance(body, dict) else None
        code = str(error.get("code") or "") if isinstance(error, dict) else ""
        if code and not code.isdigit() and code not in message:
            return f"{code}: {message}"
        return message

    def model_name(self, model: str) -> str:
        return model  # the deployment name, on both URL shapes

    # --- requests -------------------------------------------------------------------------------

    def reasoning_name(self, model: str) -> str | None:
        """A deployment is told by the OpenAI model it runs (the `base_model` credential)."""
        return self.base_model

    def _stream_usage(self) -> bool:
        if self.versionless:
            return True
        date = _version_date(self.api_version)
        return not date or date >= STREAM_USAGE_SINCE

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().chat_body(model, request, stream=stream)
        if stream and not self._stream_usage():
            body.pop("stream_options", None)
        if self.endpoint.options.get("enable_request_metadata") == "enabled":
            body.setdefault("store", True)
        return body

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        self._ready()
        return super().chat(model, request)

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        self._ready()  # raised here, not at the first next()
        return super().stream(model, request)

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        self._ready()
        return super().embed(model, texts)

    def transcribe(
        self, model: str, audio: bytes, filename: str, language: str | None = None
    ) -> Transcription:
        self._ready()
        return super().transcribe(model, audio, filename, language)

    def speak(self, model: str, text: str, voice: str, audio_format: str = "mp3") -> Speech:
        self._ready()
        return super().speak(model, text, voice, audio_format)

    # --- validation -------------------------------------------------------------------------------

    def validate(self, model: str, model_type: str) -> Validation:
        """One cheap call on the deployment for its type; details record the deployment's base
        model (as configured) and what Azure reported."""
        self._ready()
        details: dict[str, Any] = {"deployment": model, "base_model": self.base_model or None}
        details["api_version"] = None if self.versionless else self.api_version
        details.update(super().validate(model, model_type).details)
        return Validation(details)


def _version_date(version: str) -> str:
    match = re.match(r"\d{4}-\d{2}-\d{2}", version)
    return match.group(0) if match else ""
