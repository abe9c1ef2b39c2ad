"""Volcengine Ark (火山方舟): OpenAI's bodies and replies at the form's API base URL
(https://ark.cn-beijing.volces.com/api/v3 by default): /chat/completions, /embeddings and
/embeddings/multimodal, the model being an Ark endpoint ID (`ep-...`).

Credentials: `auth_method` (api_key | aksk), `api_key`, `access_key_id`, `secret_access_key`,
`region` (cn-beijing), `base_url`, `endpoint_model_name` (the endpoint ID sent as `model`),
`base_model` (Doubao-embedding-vision embeds through /embeddings/multimodal).
Options: `openapi_base_url` (where GetApiKey is called, https://open.volcengineapi.com),
`validate_prompt`, `validate_max_tokens`, `max_chunks` (embedding batch, 32 as in Dify).

An API key is sent as Bearer. AK/SK sign in as the official Ark SDK does
(volcenginesdkarkruntime `StsTokenManager`): the Volcengine OpenAPI call GetApiKey (service
`ark`, Version 2024-01-01), signed with Volcengine's V4 HMAC-SHA256, returns a temporary API key
for the endpoint (`{Result: {ApiKey, ExpiredTime}}`), which is then sent as Bearer. The key is
kept in `TOKENS` until shortly before it expires, and forgotten when Ark refuses it (401).

Dify treats the old MaaS v2 host as the v3 default (done here too); its v2 MaaS wire, used for a
changed host with AK/SK, is not spoken: every call goes to the v3 API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from config import errors
from providers.runtime import probe
from providers.runtime.base import (
    ChatRequest,
    EmbeddingResult,
    Endpoint,
    Message,
    TokenTally,
    Validation,
)
from providers.runtime.http import Pool, Response
from providers.runtime.openai_compat import OpenAICompatAdapter
from providers.runtime.tokens import TOKENS, TokenCache

DEFAULT_BASE_URL = "https://ark.cn-beijing.volces.com/api/v3"
LEGACY_HOST = "maas-api.ml-platform-cn-beijing.volces.com"  # Dify's v2 MaaS default
OPENAPI_BASE_URL = "https://open.volcengineapi.com"
OPENAPI_SERVICE = "ark"
GET_API_KEY = {"Action": "GetApiKey", "Version": "2024-01-01"}
API_KEY_LIFETIME = 7 * 24 * 3600  # what the Ark SDK asks for (_DEFAULT_STS_TIMEOUT)
DEFAULT_REGION = "cn-beijing"
DEFAULT_EMBED_BATCH = 32
VISION_EMBEDDERS = frozenset({"Doubao-embedding-vision"})
# OpenAPI error codes that mean the AK/SK (or their signature) is refused.
AUTH_CODES = frozenset(
    {
        "InvalidAccessKey",
        "SignatureDoesNotMatch",
        "MissingAuthenticationToken",
        "MissingSignature",
        "InvalidSecretToken",
        "InvalidTimestamp",
        "AccessDenied",
    }
)
QUOTA_CODES = frozenset({"AccountOverdueError", "QuotaExceeded"})
UNSIGNED = "-_.~"  # what V4 leaves unescaped in the canonical query


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_query(query: str) -> str:
    """The query as V4 signs it: each name and value escaped, the pairs sorted."""
    pairs = sorted(
        (quote(name, safe=UNSIGNED), quote(value, safe=UNSIGNED))
        for name, value in parse_qsl(query, keep_blank_values=True)
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def v4_signature(secret_key: str, stamp: str, scope: str, canonical_request: str) -> str:
    """Volcengine V4: HMAC-SHA256 of the string to sign, with a key derived from the secret
    through the scope's date, region, service and `request`."""
    key = secret_key.encode()
    for part in scope.split("/"):
        key = _hmac(key, part)
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return hmac.new(
        key, f"HMAC-SHA256\n{stamp}\n{scope}\n{digest}".encode(), hashlib.sha256
    ).hexdigest()


def canonical_request(
    method: str, path: str, query: str, headers: dict[str, str], payload_hash: str
) -> tuple[str, str]:
    """(the canonical request, its signed header names) over `headers` (lower-case names)."""
    names = sorted(headers)
    lines = "".join(f"{name}:{headers[name]}\n" for name in names)
    signed = ";".join(names)
    text = "\n".join([method, path or "/", canonical_query(query), lines, signed, payload_hash])
    return text, signed


def _error_code(response: Response) -> str:
    """The error code of an Ark (`error.code`) or OpenAPI (`ResponseMetadata.Error.Code`) body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    meta = body.get("ResponseMetadata")
    error = body.get("error") or (meta.get("Error") if isinstance(meta, dict) else None)
    return str(error.get("Code") or error.get("code") or "") if isinstance(error, dict) else ""


class VolcengineAdapter(OpenAICompatAdapter):
    family = "volcengine"
    offers = frozenset({"chat", "stream", "embed"})

    def __init__(self, endpoint: Endpoint, pool: Pool) -> None:
        if "max_chunks" not in endpoint.options:
            endpoint = replace(
                endpoint, options={**endpoint.options, "max_chunks": DEFAULT_EMBED_BATCH}
            )
        self._token_keys: set[str] = set()  # the exchanged keys this adapter may have cached
        super().__init__(endpoint, pool)

    # --- where and how --------------------------------------------------------------------------

    @property
    def uses_aksk(self) -> bool:
        credentials = self.endpoint.credentials
        method = str(credentials.get("auth_method") or "").strip()
        return method == "aksk" if method else not credentials.get("api_key")

    def base_url(self) -> str:
        base = str(self.endpoint.credentials.get("base_url") or "").strip().rstrip("/")
        host = urlsplit(base if "//" in base else f"//{base}").hostname
        if not base or host == LEGACY_HOST:
            return (self.endpoint.base_url or DEFAULT_BASE_URL).rstrip("/")
        return base

    def openapi_url(self) -> str:
        return (
            str(self.endpoint.options.get("openapi_base_url") or OPENAPI_BASE_URL).rstrip("/") + "/"
        )

    def auth_headers(self) -> dict[str, str]:
        api_key = self.endpoint.credentials.get("api_key")
        if self.uses_aksk or not api_key:
            return {}
        return {"Authorization": f"Bearer {api_key}"}

    def completion_mode(self, model: str) -> bool:
        """Ark has no /completions: a model set up in completion mode is still chatted with."""
        return False

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        """AK/SK: the GetApiKey call is V4-signed; every Ark call carries the temporary API key
        exchanged for its endpoint."""
        if not self.uses_aksk:
            return headers
        if url.partition("?")[0] == self.openapi_url():
            return self._v4_signed(method, url, body, headers)
        return {**headers, "Authorization": f"Bearer {self._api_key_for(self._endpoint_of(body))}"}

    def _access_keys(self) -> tuple[str, str]:
        credentials = self.endpoint.credentials
        access_key = str(credentials.get("access_key_id") or "").strip()
        secret_key = str(credentials.get("secret_access_key") or "").strip()
        if not access_key or not secret_key:
            raise errors.InvalidInput(
                "AK/SK authentication needs both the Access Key and the Secret Access Key.",
                code="invalid",
            )
        return access_key, secret_key

    @property
    def region(self) -> str:
        return str(self.endpoint.credentials.get("region") or DEFAULT_REGION).strip()

    def _v4_signed(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        access_key, secret_key = self._access_keys()
        parts = urlsplit(url)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        payload_hash = hashlib.sha256(body or b"").hexdigest()
        port = parts.port if parts.port not in (None, 80, 443) else None
        signed = {
            **headers,
            "Host": f"{parts.hostname}:{port}" if port else str(parts.hostname),
            "X-Date": stamp,
            "X-Content-Sha256": payload_hash,
        }
        covered = {
            name.lower(): value
            for name, value in signed.items()
            if name.lower() in ("host", "content-type", "x-date", "x-content-sha256")
        }
        request, signed_names = canonical_request(
            method, parts.path, parts.query, covered, payload_hash
        )
        scope = f"{stamp[:8]}/{self.region}/{OPENAPI_SERVICE}/request"
        signature = v4_signature(secret_key, stamp, scope, request)
        signed["Authorization"] = (
            f"HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_names}, "
            f"Signature={signature}"
        )
        return signed

    def _endpoint_of(self, body: bytes | None) -> str:
        """The endpoint a call is for: the `model` its body names."""
        try:
            model = json.loads(body or b"{}").get("model")
        except (ValueError, AttributeError):
            model = None
        return str(model or self.endpoint.credentials.get("endpoint_model_name") or "")

    def _api_key_for(self, endpoint_id: str) -> str:
        # The SDK asks keys for "ep-" endpoints as `endpoint`; preset endpoints and model IDs
        # need a project name the form does not have.
        if not endpoint_id.startswith("ep-") or endpoint_id.startswith("ep-m-"):
            raise errors.InvalidInput(
                f"AK/SK authentication needs an Ark endpoint ID (ep-...), not {endpoint_id!r}; "
                "use an API key to call a model by its ID.",
                code="invalid",
            )
        access_key, secret_key = self._access_keys()
        key = TokenCache.key(
            self.family, access_key, secret_key, self.region, self.openapi_url(), endpoint_id
        )
        self._token_keys.add(key)
        return TOKENS.get(key, lambda: self._exchange(endpoint_id))

    def _exchange(self, endpoint_id: str) -> tuple[str, float]:
        """A temporary API key for `endpoint_id` and its lifetime in seconds (GetApiKey)."""
        data = self.http.json(
            "POST",
            self.openapi_url(),
            params=GET_API_KEY,
            json_body={
                "DurationSeconds": API_KEY_LIFETIME,
                "ResourceType": "endpoint",
                "ResourceIds": [endpoint_id],
            },
        )
        error = (data.get("ResponseMetadata") or {}).get("Error")
        if error:  # the SDK reads an Error in a 200 reply as a failure too
            raise self._openapi_failure(error)
        result = data.get("Result") or {}
        api_key, expires = result.get("ApiKey"), result.get("ExpiredTime")
        if not api_key or not isinstance(expires, int | float):
            raise errors.UpstreamUnavailable(
                "GetApiKey answered without an ApiKey and its ExpiredTime.", code="bad_response"
            )
        return str(api_key), float(expires) - time.time()

    def _openapi_failure(self, error: Any) -> errors.UpstreamError:
        message = self.http.bounded(f"GetApiKey failed: {self.error_message({'Error': error})}")
        code = str(error.get("Code") or "") if isinstance(error, dict) else ""
        if code in AUTH_CODES:
            return errors.UpstreamAuth(message)
        return errors.UpstreamBadRequest(message)

    # --- errors ---------------------------------------------------------------------------------

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict):
            meta = body.get("ResponseMetadata")
            error = meta.get("Error") if isinstance(meta, dict) else body.get("Error")
            if isinstance(error, dict):
                return f"{error.get('Message', '')} ({error.get('Code', '')})"
            error = body.get("error")
            if isinstance(error, dict) and error.get("message"):
                code = error.get("code")
                return f"{error['message']} ({code})" if code else str(error["message"])
        return super().error_message(body)

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        if response.status_code == 401:
            for key in tuple(self._token_keys):  # a revoked or expired key: exchange again
                TOKENS.forget(key)
        if _error_code(response) in QUOTA_CODES:
            return errors.UpstreamQuota(failure.message)
        return failure

    # --- calls ----------------------------------------------------------------------------------

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        if str(self.endpoint.credentials.get("base_model") or "") not in VISION_EMBEDDERS:
            return super().embed(model, texts)
        # The multimodal API embeds one input (its parts fused) a call: one text each.
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for text in texts:
            data = self.http.json(
                "POST",
                "embeddings/multimodal",
                json_body={
                    "model": self.model_name(model),
                    "input": [{"type": "text", "text": text}],
                },
            )
            vectors.append(tuple(float(x) for x in data["data"]["embedding"]))
            usage = data.get("usage") or {}
            tally.add(usage.get("prompt_tokens", usage.get("total_tokens")), [text])
        return EmbeddingResult(tuple(vectors), tally.usage)

    def validate(self, model: str, model_type: str) -> Validation:
        """Dify's check for an LLM: a chat of its prompt ("ping\\nAnswer: "), 16 tokens."""
        if model_type != "llm":
            return super().validate(model, model_type)
        options = self.endpoint.options
        ping = ChatRequest(
            messages=(Message("user", str(options.get("validate_prompt") or probe.PING)),),
            parameters={"max_tokens": int(options.get("validate_max_tokens") or 16)},
        )
        return Validation({"model": self.chat(model, ping).model or model})
