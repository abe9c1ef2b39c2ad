"""Vertex AI: Gemini through generateContent (the wire `google_gemini.py` speaks), text embeddings
through :predict, and Claude through Anthropic's Messages body at :rawPredict/:streamRawPredict,
all under https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
publishers/{google|anthropic}/models/{model} (host aiplatform.googleapis.com for `global`).

Credentials: `project_id`, `location`, `service_account_key` (the service account's JSON key, as
Dify's form asks for it base64-encoded; raw JSON is taken too), `anthropic_location` (Claude's
region: else `location`, else the `anthropic_default_location` option, as Dify's plugin picks),
`global_models` (comma-separated models that only the global endpoint serves; else the
`global_only_models` option).

Signing in: an RS256 JWT assertion signed with the account's private key goes to its `token_uri`
(grant type jwt-bearer, scope cloud-platform); the access token that comes back is kept in
`tokens.TOKENS` until shortly before it expires and sent as Bearer. A 401 on a kept token drops it
and the call is retried once with a fresh one. Application Default Credentials (Dify's fallback
when the key is blank) do not exist in this service: a blank key is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import jwt

from config import errors
from providers.runtime.anthropic import AnthropicAdapter
from providers.runtime.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    Endpoint,
    TokenTally,
)
from providers.runtime.google_gemini import GenerativeAdapter
from providers.runtime.http import HttpClient, Pool, Response
from providers.runtime.tokens import TOKENS, TokenCache

TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (an address, not a secret)
# The assertion's audience is this URL wherever the key's token_uri points (as google-auth's
# google/oauth2/service_account.py sets it).
AUDIENCE = TOKEN_URL
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # the most Google accepts
ANTHROPIC_VERSION = "vertex-2023-10-16"
ANTHROPIC_LOCATION = "us-east5"
REGIONAL_BASE_URL = "https://{location}-aiplatform.googleapis.com/v1"
MAX_EMBED_BATCH = 250  # text-embedding-005's limit per :predict
# Models whose :predict takes one text per request.
SINGLE_TEXT_MODELS = ("gemini-embedding", "multimodalembedding")
# What may stand in a URL path segment: Google's project ids and region names.
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9.:-]{0,127}$")
_LOCATION = re.compile(r"^[a-z0-9-]{1,63}$")
# OAuth errors that mean the account or its key is refused.
_REFUSED_GRANTS = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"}


class _StaleToken(errors.UpstreamAuth):
    """A kept token the backend refused: retried once with a fresh one."""

    retryable = True


def _oauth_message(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        described = body.get("error_description")
        return f"{body['error']}: {described}" if described else body["error"]
    return str(body)


def _oauth_failure(response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
    """Google's token endpoint refuses a bad key, signature or account with a 400."""
    if any(grant in failure.message for grant in _REFUSED_GRANTS):
        return errors.UpstreamAuth(f"The service account was refused: {failure.message}")
    return failure


def _invalid_key(problem: str) -> errors.InvalidInput:
    return errors.InvalidInput(
        f"The service account key is not usable: {problem}.",
        fields={"service_account_key": [problem]},
    )


def parse_service_account(value: str) -> dict[str, Any]:
    """The service account JSON from the form's value: base64 of the JSON (Dify's form), or the
    JSON itself."""
    text = value.strip()
    if not text.startswith("{"):
        try:
            text = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode()
        except (binascii.Error, ValueError):  # ValueError: characters base64 has not
            raise _invalid_key("it is neither JSON nor base64 of JSON") from None
    try:
        info = json.loads(text)
    except ValueError:
        raise _invalid_key("it is not JSON") from None
    if not isinstance(info, dict) or info.get("type", "service_account") != "service_account":
        raise _invalid_key('it is not a key of type "service_account"')
    missing = [k for k in ("client_email", "private_key") if not info.get(k)]
    if missing:
        raise _invalid_key(f"it has no {' or '.join(missing)}")
    token_uri = info.get("token_uri")
    if token_uri is not None and not str(token_uri)[:8].lower().startswith(("https://", "http://")):
        raise _invalid_key("its token_uri is not an http(s) URL")
    return info


class VertexAIAdapter(GenerativeAdapter):
    family = "vertex_ai"

    def __init__(self, endpoint: Endpoint, pool: Pool) -> None:
        self.pool = pool
        self._attempt = threading.local()  # the token the current attempt sent
        super().__init__(endpoint, pool)
        self.token_http = HttpClient(
            base_url=TOKEN_URL,
            headers={},
            pool=pool,
            timeouts=endpoint.timeouts,
            retry=endpoint.retry,
            secrets=self.secret_values(),
            error_message=_oauth_message,
            classify=_oauth_failure,
        )

    # --- where --------------------------------------------------------------------------------

    def _setting(self, name: str) -> str:
        return str(self.endpoint.credentials.get(name) or "").strip()

    def _project(self) -> str:
        project = self._setting("project_id")
        if not _PROJECT.match(project):
            raise errors.InvalidInput(
                "The Vertex AI project id is not valid.", fields={"project_id": ["not valid"]}
            )
        return project

    def _location_of(self, model: str) -> str:
        if self._is_claude(model):
            location = (
                self._setting("anthropic_location")
                or self._setting("location")
                or str(self.endpoint.options.get("anthropic_default_location") or "")
                or ANTHROPIC_LOCATION
            )
        elif model in self._global_models():
            location = "global"
        else:
            location = self._setting("location") or "global"
        if not _LOCATION.match(location):
            raise errors.InvalidInput(
                f"The Vertex AI location {location[:64]!r} is not valid.",
                fields={"location": ["not valid"]},
            )
        return location

    def _global_models(self) -> set[str]:
        given = self._setting("global_models")
        if given:
            return {m.strip() for m in given.split(",") if m.strip()}
        return {str(m) for m in self.endpoint.options.get("global_only_models") or ()}

    @staticmethod
    def _is_claude(model: str) -> bool:
        return "claude" in model

    def _host(self, location: str) -> str:
        if location == "global":
            return self.endpoint.base_url.rstrip("/")
        template = str(self.endpoint.options.get("regional_base_url") or REGIONAL_BASE_URL)
        return template.format(location=location).rstrip("/")

    def publisher_url(self, model: str, publisher: str) -> str:
        location = self._location_of(model)
        return (
            f"{self._host(location)}/projects/{self._project()}/locations/{location}"
            f"/publishers/{publisher}/models/{quote(model, safe='@.-_')}"
        )

    def base_url(self) -> str:
        return self.endpoint.base_url

    def model_url(self, model: str, method: str) -> str:
        return f"{self.publisher_url(model, 'google')}:{method}"

    # --- signing in ---------------------------------------------------------------------------

    def service_account(self) -> dict[str, Any]:
        value = self._setting("service_account_key")
        if not value:
            raise errors.UpstreamAuth(
                "Enter a service account key: Application Default Credentials are not available "
                "to this service."
            )
        return parse_service_account(value)

    def _token_key(self, account: Mapping[str, Any], token_url: str) -> str:
        return TokenCache.key(
            self.family, account["client_email"], account["private_key"], token_url
        )

    def access_token(self) -> tuple[str, str, bool]:
        """(the token, its cache key, whether it was fetched just now)."""
        account = self.service_account()
        token_url = str(
            account.get("token_uri") or self.endpoint.options.get("token_url") or TOKEN_URL
        )
        fetched: list[bool] = []

        def exchange() -> tuple[str, float]:
            fetched.append(True)
            return self._exchange(account, token_url)

        key = self._token_key(account, token_url)
        return TOKENS.get(key, exchange), key, bool(fetched)

    def _exchange(self, account: Mapping[str, Any], token_url: str) -> tuple[str, float]:
        now = int(time.time())
        claims = {
            "iss": account["client_email"],
            "scope": SCOPE,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        headers = {"kid": account["private_key_id"]} if account.get("private_key_id") else None
        try:
            assertion = jwt.encode(claims, account["private_key"], "RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError):
            raise _invalid_key("its private_key is not an RSA private key in PEM") from None
        data = self.token_http.json(
            "POST", token_url, data={"grant_type": JWT_BEARER, "assertion": assertion}
        )
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise errors.UpstreamUnavailable("Google's token endpoint answered without a token.")
        return str(token), float(data.get("expires_in") or 3600)

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        token, key, fresh = self.access_token()
        self._attempt.key, self._attempt.fresh = key, fresh
        return {**headers, "Authorization": f"Bearer {token}"}

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        if response.status_code == 401 and getattr(self._attempt, "key", None):
            TOKENS.forget(self._attempt.key)
            if not self._attempt.fresh:
                return _StaleToken(failure.message)
        return super().classify(response, failure)

    # --- chat: Gemini here, Claude through Anthropic's body -----------------------------------

    def claude(self, model: str) -> VertexClaude:
        return VertexClaude(self, self.publisher_url(model, "anthropic"))

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        if self._is_claude(model):
            return self.claude(model).chat(model, request)
        return super().chat(model, request)

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        if self._is_claude(model):
            return self.claude(model).stream(model, request)
        return super().stream(model, request)

    # --- embeddings ---------------------------------------------------------------------------

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        single = model.startswith(SINGLE_TEXT_MODELS)
        batch = 1 if single else MAX_EMBED_BATCH
        multimodal = model.startswith("multimodalembedding")
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), batch):
            chunk = list(texts[start : start + batch])
            instances = [
                {"text": t} if multimodal else {"content": t, "task_type": "RETRIEVAL_DOCUMENT"}
                for t in chunk
            ]
            data = self.http.json(
                "POST", self.model_url(model, "predict"), json_body={"instances": instances}
            )
            predictions = data.get("predictions") if isinstance(data, dict) else None
            if not isinstance(predictions, list) or len(predictions) != len(chunk):
                got = len(predictions) if isinstance(predictions, list) else 0
                raise errors.UpstreamUnavailable(
                    f"Asked Vertex AI for {len(chunk)} embeddings, got {got}."
                )
            counts = []
            for row in predictions:
                if multimodal:
                    vectors.append(tuple(float(x) for x in row["textEmbedding"]))
                    continue
                embedding = row["embeddings"]
                vectors.append(tuple(float(x) for x in embedding["values"]))
                counts.append((embedding.get("statistics") or {}).get("token_count"))
            known = [int(c) for c in counts if c is not None]
            tally.add(sum(known) if known and len(known) == len(chunk) else None, chunk)
        return EmbeddingResult(tuple(vectors), tally.usage)


class VertexClaude(AnthropicAdapter):
    """Claude on Vertex AI: Anthropic's Messages body without `model` (the URL names it) and
    with `anthropic_version`, signed in as the Vertex adapter is."""

    family = "vertex_ai"

    def __init__(self, vertex: VertexAIAdapter, model_url: str) -> None:
        self.vertex = vertex
        self.model_url = model_url
        super().__init__(vertex.endpoint, vertex.pool)

    def base_url(self) -> str:
        return self.model_url

    def auth_headers(self) -> dict[str, str]:
        return {}

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        return self.vertex.sign(method, url, body, headers)

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        return super().classify(response, self.vertex.classify(response, failure))

    def target(
        self, path: str, fields: Any, params: Mapping[str, Any] | None
    ) -> tuple[str, Mapping[str, Any] | None]:
        streamed = isinstance(fields, Mapping) and fields.get("stream")
        return f"{self.model_url}:{'streamRawPredict' if streamed else 'rawPredict'}", params

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().chat_body(model, request, stream=stream)
        body.pop("model", None)
        body["anthropic_version"] = str(
            self.endpoint.options.get("anthropic_version") or ANTHROPIC_VERSION
        )
        return body
