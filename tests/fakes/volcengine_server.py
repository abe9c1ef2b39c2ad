"""A fake of Volcengine Ark: the OpenAI-compatible data plane under /api/v3 (chat/completions, JSON
or SSE ending `data: [DONE]`; embeddings; embeddings/multimodal) and the Volcengine OpenAPI call
the Ark SDK makes for AK/SK, `POST /?Action=GetApiKey&Version=2024-01-01` (service `ark`), on
one server. Checked by the official `volcengine-python-sdk` (volcenginesdkarkruntime.Ark, with an
API key and with AK/SK) in tests/unit/runtime/test_volcengine_fake.py.

Ark, as documented (https://www.volcengine.com/docs/82379/1299023, common error codes): Bearer
auth, the model being an endpoint ID; errors `{"error": {"code", "message", "param", "type"}}`:
401 AuthenticationError, 404 InvalidEndpointOrModel.NotFound, 400 MissingParameter /
InvalidParameter, 403 AccountOverdueError, 429 RateLimitExceeded.EndpointRPMExceeded, 500
InternalServiceError; an ill-typed message content, sampling parameter or max_tokens, or one out
of its documented range, is InvalidParameter naming the `param`. A temporary key from GetApiKey
is good for the endpoints it was issued for until its ExpiredTime (refusing it on another of the
account's endpoints is this fake's reading of `ResourceIds`).

GetApiKey checks the V4 HMAC-SHA256 signature the way Volcengine's signer builds it
(volcenginesdkcore/signv4.py): `Authorization: HMAC-SHA256 Credential=<AK>/<date>/<region>/
<service>/request, SignedHeaders=..., Signature=...`, X-Date, the body's SHA-256. Its errors are
`{"ResponseMetadata": {..., "Error": {"Code", "Message"}}}` with the statuses of Volcengine's
public error codes (https://www.volcengine.com/docs/6396/70462): 401 MissingAuthenticationToken,
InvalidAccessKey, SignatureDoesNotMatch; 400 InvalidAuthorization; 403 InvalidTimestamp (a
request more than 15 minutes off: the window is this fake's choice).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import volcenginesdkark
import volcenginesdkcore

from providers.runtime.base import Endpoint
from tests.fakes.base import Reply, Request, embed_text, words
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.spec import FakeSpec, Refusal, bearer

ROLES = frozenset({"system", "user", "assistant", "tool"})
PART_TYPES = frozenset({"text", "image_url", "video_url"})
VISION_BASE_MODELS = frozenset({"Doubao-embedding-vision"})
CLOCK_SKEW = 15 * 60
# The documented ranges of the chat API (Ark API reference, https://www.volcengine.com/docs/82379).
RANGES = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "frequency_penalty": (-2, 2),
    "presence_penalty": (-2, 2),
}
# (code, type) by status, for errors that name no Ark code.
BY_STATUS = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    403: ("AccessDenied", "Forbidden"),
    404: ("InvalidEndpointOrModel.NotFound", "NotFound"),
    429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests"),
    500: ("InternalServiceError", "InternalServiceError"),
}
ARK_CODES = frozenset(
    {"MissingParameter", "InvalidParameter", "AccountOverdueError", "QuotaExceeded"}
)
AUTHORIZATION = re.compile(
    r"HMAC-SHA256 Credential=(?P<ak>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/request, SignedHeaders=(?P<names>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def _signature(secret: str, stamp: str, scope: str, canonical: str) -> str:
    key = secret.encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    text = "\n".join(["HMAC-SHA256", stamp, scope, digest])
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class ArkFake(OpenAIFake):
    """Endpoints it serves are `models` (endpoint ID -> type; `multimodal` ones embed through
    /embeddings/multimodal only). `api_key` is a long-lived Ark API key (None: none works);
    `access_keys` (AK -> SK) may call GetApiKey. `key_lifetime` (seconds) shortens the
    temporary keys it issues below the DurationSeconds asked for."""

    # Ark takes its own fields beside OpenAI's (`thinking`, sampling extras) [U: which ones].
    chat_fields = None
    prefix = "/api/v3"

    def __init__(
        self,
        api_key: str | None = "fake-key",
        *,
        access_keys: Mapping[str, str] | None = None,
        models: Mapping[str, str | set[str]] | None = None,
        multimodal: set[str] | None = None,
        key_lifetime: float | None = None,
    ) -> None:
        served = models or {
            "ep-20250101000000-chat01": "llm",
            "ep-20250101000000-embed1": "text-embedding",
            "ep-20250101000000-vision": "text-embedding",
        }
        self.kinds = {name: {kind} if isinstance(kind, str) else set(kind)
                      for name, kind in served.items()}  # fmt: skip
        super().__init__(api_key, {name: min(kinds) for name, kinds in self.kinds.items()})
        self.multimodal = multimodal if multimodal is not None else {"ep-20250101000000-vision"}
        self.access_keys = dict(access_keys or {})
        self.key_lifetime = key_lifetime
        self.issued: dict[str, tuple[frozenset[str], float]] = {}  # key -> (endpoints, expiry)
        self.exchanges = 0
        self._issue_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._routes = []  # only what Ark and its OpenAPI serve
        self.route("POST", "/", self.get_api_key)
        self.route("POST", "/api/v3/chat/completions", self.chat)
        self.route("POST", "/api/v3/embeddings", self.embeddings)
        self.route("POST", "/api/v3/embeddings/multimodal", self.multimodal_embeddings)

    def expire_keys(self) -> None:
        """Every temporary key issued so far expires now (revoked, or past its time)."""
        with self._issue_lock:
            self.issued = {key: (ids, 0.0) for key, (ids, _) in self.issued.items()}

    # --- Ark auth and errors ------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if request.path == "/":
            return True  # GetApiKey checks its own signature and answers in its own shape
        header = request.header("authorization")
        if self.api_key is not None and header == f"Bearer {self.api_key}":
            return True
        with self._issue_lock:
            endpoints, expiry = self.issued.get(header.removeprefix("Bearer "), ((), 0.0))
        model = body.get("model") if isinstance(body := _json(request), dict) else None
        # A live temporary key signs in; it is refused only on an endpoint it was not issued
        # for (a body without a model, or naming none that exists, is the handler's to refuse).
        return time.time() < expiry and (model in endpoints or model not in self.models)

    def unauthorized(self) -> Reply:
        return self.error(
            401, "The API key or AK/SK in the request is missing or invalid.",
            code="AuthenticationError",
        )  # fmt: skip

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        code, kind = BY_STATUS.get(status, ("InternalServiceError", "InternalServiceError"))
        if extra.get("code") in ARK_CODES:
            code = extra["code"]
        request_id = f"0217{next(self._ids):016d}"
        return Reply(
            status,
            {
                "error": {
                    "code": code,
                    "message": f"{message} Request id: {request_id}",
                    "param": extra.get("param", ""),
                    "type": kind,
                }
            },
        )

    def presented_key(self, request: Request) -> tuple[str, str]:
        value = request.header("authorization")
        match = AUTHORIZATION.match(value)
        if match:
            return match["ak"], value
        return super().presented_key(request)

    def unknown_model(self, model: str) -> Reply | None:
        if not model:
            return self.error(
                400,
                "The request failed because it is missing one or multiple required parameters.",
                code="MissingParameter",
                param="model",
            )
        if model not in self.models:
            return self.error(
                404,
                f"The model or endpoint {model} does not exist or you do not have access to it.",
            )
        return None

    def _serving(self, body: Any, api: str) -> Reply | None:
        """Why the endpoint a body names cannot serve `api` (chat, embeddings, multimodal)."""
        if not isinstance(body, dict):
            return self.error(400, "The request body is not a JSON object.")
        model = str(body.get("model") or "")
        missing = self.unknown_model(model)
        if missing:
            return missing
        kinds, multimodal = self.kinds[model], model in self.multimodal
        serves = {
            "chat": "llm" in kinds,
            "embeddings": "text-embedding" in kinds and not multimodal,
            "multimodal": multimodal,
        }
        if not serves[api]:
            return self.error(
                400, f"The endpoint {model} does not support this API.", param="model"
            )
        return None

    # --- the data plane -----------------------------------------------------------------------

    def chat(self, request: Request) -> Reply:
        body = _json(request)
        problem = self._serving(body, "chat")
        if problem:
            return problem
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error(
                400,
                "The request failed because it is missing one or multiple required parameters.",
                code="MissingParameter",
                param="messages",
            )
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                return self.error(
                    400, "One or more parameters specified in the request are not valid.",
                    param=f"messages.{i}.role",
                )  # fmt: skip
            content = message.get("content")
            if not (
                content is None
                or isinstance(content, str)
                or (
                    isinstance(content, list)
                    and all(isinstance(p, dict) and p.get("type") in PART_TYPES for p in content)
                )
            ):
                return self._invalid(f"messages.{i}.content")
        for name, (low, high) in RANGES.items():
            value = body.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return self._invalid(name)
            if not low <= value <= high:
                return self._invalid(name)
        for name in ("max_tokens", "max_completion_tokens"):
            value = body.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                return self._invalid(name)
        return super().chat(request)

    def _invalid(self, param: str) -> Reply:
        return self.error(
            400, f"A parameter specified in the request is not valid: {param}.", param=param
        )

    def embeddings(self, request: Request) -> Reply:
        body = _json(request)
        problem = self._serving(body, "embeddings")
        if problem:
            return problem
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t for t in texts)
        ):
            return self.error(
                400, "One or more parameters specified in the request are not valid.",
                param="input",
            )  # fmt: skip
        return super().embeddings(request)

    def multimodal_embeddings(self, request: Request) -> Reply:
        body = _json(request)
        problem = self._serving(body, "multimodal")
        if problem:
            return problem
        parts = body.get("input")
        if (
            not isinstance(parts, list)
            or not parts
            or not all(
                isinstance(p, dict)
                and p.get("type") in PART_TYPES
                and (p["type"] != "text" or p.get("text"))
                for p in parts
            )
        ):
            return self.error(
                400, "One or more parameters specified in the request are not valid.",
                param="input",
            )  # fmt: skip
        text = " ".join(p["text"] for p in parts if p["type"] == "text")
        images = sum(1 for p in parts if p["type"] != "text")
        tokens = words(text) + 100 * images
        return Reply(
            200,
            {
                "id": f"mm-{len(self.received)}",
                "created": int(time.time()),
                "model": body["model"],
                "object": "list",
                "data": {"embedding": embed_text(text), "object": "embedding"},
                "usage": {
                    "prompt_tokens": tokens,
                    "total_tokens": tokens,
                    "prompt_tokens_details": {
                        "text_tokens": words(text),
                        "image_tokens": 100 * images,
                    },
                },
            },
        )

    # --- the OpenAPI: GetApiKey ---------------------------------------------------------------

    def openapi_error(self, status: int, code: str, message: str, region: str = "") -> Reply:
        return Reply(
            status,
            {
                "ResponseMetadata": {
                    "RequestId": f"2025{next(self._ids):016d}",
                    "Action": "GetApiKey",
                    "Version": "2024-01-01",
                    "Service": "ark",
                    "Region": region,
                    "Error": {"Code": code, "Message": message},
                }
            },
        )

    def signature_problem(self, request: Request) -> Reply | None:
        """What Volcengine's gateway answers for a request not signed by a known AK/SK."""
        header = request.header("authorization")
        if not header:
            return self.openapi_error(
                401, "MissingAuthenticationToken", "Request is missing Authentication Token."
            )
        match = AUTHORIZATION.fullmatch(header)
        names = match["names"].split(";") if match else []
        if not match or "x-date" not in names:
            return self.openapi_error(
                400,
                "InvalidAuthorization",
                "Invalid 'Authorization' header, Pls check authorization header.",
            )
        secret = self.access_keys.get(match["ak"])
        if secret is None:
            return self.openapi_error(
                401,
                "InvalidAccessKey",
                f"The accesskey [{match['ak']}] included in the request is invalid.",
                match["region"],
            )
        stamp = request.header("x-date")
        try:
            sent_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            sent_at = None
        if sent_at is None or abs(time.time() - sent_at.timestamp()) > CLOCK_SKEW:
            return self.openapi_error(
                403, "InvalidTimestamp", "The Signature of the request is expired.",
                match["region"],
            )  # fmt: skip
        payload_hash = hashlib.sha256(request.body).hexdigest()
        query = "&".join(
            f"{name}={value}"
            for name, value in sorted(
                (quote(name, safe="-_.~"), quote(value, safe="-_.~"))
                for name, values in request.query.items()
                for value in values
            )
        )
        lines = "".join(f"{name}:{request.header(name)}\n" for name in names)
        canonical = "\n".join(
            [request.method, request.path, query, lines, ";".join(names), payload_hash]
        )
        scope = f"{match['date']}/{match['region']}/{match['service']}/request"
        expected = _signature(secret, stamp, scope, canonical)
        if (
            match["date"] != stamp[:8]
            or match["service"] != "ark"
            or request.header("x-content-sha256") not in ("", payload_hash)
            or not hmac.compare_digest(expected, match["signature"])
        ):
            return self.openapi_error(
                401,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your Secret Access Key and signing method. Consult the "
                "service documentation for details.",
                match["region"],
            )
        return None

    def get_api_key(self, request: Request) -> Reply:
        action = (request.query.get("Action") or [""])[0]
        version = (request.query.get("Version") or [""])[0]
        if (action, version) != ("GetApiKey", "2024-01-01"):
            return self.openapi_error(
                404, "InvalidActionOrVersion",
                f"Could not find operation {action} for version {version}",
            )  # fmt: skip
        problem = self.signature_problem(request)
        if problem:
            return problem
        region = AUTHORIZATION.fullmatch(request.header("authorization"))["region"]
        body = _json(request)
        if not isinstance(body, dict):
            return self.openapi_error(400, "InvalidParameter", "The body is not JSON.", region)
        duration, kind, ids = (
            body.get("DurationSeconds"), body.get("ResourceType"), body.get("ResourceIds")
        )  # fmt: skip
        for name, value in (("DurationSeconds", duration), ("ResourceType", kind),
                            ("ResourceIds", ids)):  # fmt: skip
            if value in (None, "", []):
                return self.openapi_error(
                    400, "MissingParameter", f"The request is missing {name} parameter.", region
                )
        if (
            not isinstance(duration, int) or duration <= 0
            or kind not in ("endpoint", "presetendpoint", "bot")
            or not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids)
        ):  # fmt: skip
            return self.openapi_error(
                400, "InvalidParameter", "The specified parameter is invalid.", region
            )
        expires = int(time.time() + min(duration, self.key_lifetime or duration))
        with self._issue_lock:
            self.exchanges += 1
            seed = f"{request.header('authorization')}|{ids}|{self.exchanges}"
            api_key = "ark-" + hashlib.sha256(seed.encode()).hexdigest()[:40]
            self.issued[api_key] = (frozenset(ids), float(expires))
        return Reply(
            200,
            {
                "ResponseMetadata": {
                    "RequestId": f"2025{next(self._ids):016d}",
                    "Action": "GetApiKey",
                    "Version": "2024-01-01",
                    "Service": "ark",
                    "Region": region,
                },
                "Result": {"ApiKey": api_key, "ExpiredTime": expires},
            },
        )


def _json(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        return None


# --- how the catalog walk reaches it ----------------------------------------------------------


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> ArkFake:
    endpoint_id = credentials.get("endpoint_model_name")
    served: dict[str, set[str]] = {}
    for kind, model in models.items():
        served.setdefault(endpoint_id or model, set()).add(kind)
    vision = credentials.get("base_model") in VISION_BASE_MODELS
    aksk = credentials.get("auth_method", "aksk") == "aksk"
    access_key, secret_key = credentials.get("access_key_id"), credentials.get("secret_access_key")
    return ArkFake(
        api_key=None if aksk else credentials.get("api_key"),
        access_keys={access_key: secret_key} if aksk and access_key and secret_key else {},
        models=served,
        multimodal={name for name, kinds in served.items() if vision and "text-embedding" in kinds},
    )


def _aim(endpoint: Endpoint, url: str) -> Endpoint:
    """Ark under /api/v3 and the OpenAPI at the root, both on the fake."""
    return replace(
        endpoint,
        base_url=f"{url}/api/v3",
        credentials={**endpoint.credentials, "base_url": f"{url}/api/v3"},
        options={**endpoint.options, "openapi_base_url": url},
    )


def _sign_in(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """Ark takes `Authorization: Bearer <API key>`. With AK/SK the key is a temporary one, got
    from GetApiKey (on the fake's root) by the official SDK, for the endpoint the body names."""
    if credentials.get("auth_method", "aksk") != "aksk":
        return bearer(credentials, method, url, body, headers)
    configuration = volcenginesdkcore.Configuration()
    configuration.ak = credentials["access_key_id"]
    configuration.sk = credentials["secret_access_key"]
    configuration.region = credentials.get("region") or "cn-beijing"
    configuration.host = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    sent = json.loads(body) if body.startswith(b"{") else {}
    answer = volcenginesdkark.ARKApi(volcenginesdkcore.ApiClient(configuration)).get_api_key(
        volcenginesdkark.GetApiKeyRequest(
            duration_seconds=3600,
            resource_type="endpoint",
            resource_ids=[sent.get("model") or "ep-none"],
        )
    )
    return {**headers, "Authorization": f"Bearer {answer.api_key}"}


CHAT = "/api/v3/chat/completions"
ENDPOINT = "ep-20250101000000-walk01"  # the walk's endpoint ID, which Ark takes as the model
HI = [{"role": "user", "content": "hi"}]

# Codes, types and words: https://www.volcengine.com/docs/82379/1299023 (Ark's error codes);
# the ranges: RANGES.
SPEC = FakeSpec(
    family="volcengine",
    client="volcengine-ark-runtime",
    serve=_serve,
    aim=_aim,
    samples=lambda: {"endpoint_id": ENDPOINT},
    sign_in=_sign_in,
    refusals=(
        Refusal(
            "a wrong key",
            CHAT,
            {"model": ENDPOINT, "messages": HI},
            status=401,
            says="AuthenticationError",
            headers={"Authorization": "Bearer ark-wrong"},
        ),
        Refusal(
            "no key",
            CHAT,
            {"model": ENDPOINT, "messages": HI},
            status=401,
            says="The API key or AK/SK in the request is missing or invalid.",
            headers={"Authorization": None},
        ),
        Refusal("no model", CHAT, {"messages": HI}, says="MissingParameter"),
        Refusal(
            "an unknown endpoint",
            CHAT,
            {"model": "ep-20250101000000-nosuch", "messages": HI},
            status=404,
            says="InvalidEndpointOrModel.NotFound",
        ),
        Refusal("no messages", CHAT, {"model": ENDPOINT}, says="MissingParameter"),
        Refusal(
            "a role the API lacks",
            CHAT,
            {"model": ENDPOINT, "messages": [{"role": "robot", "content": "hi"}]},
            says='"param": "messages.0.role"',
        ),
        Refusal(
            "a content that is an object",
            CHAT,
            {"model": ENDPOINT, "messages": [{"role": "user", "content": {"text": "hi"}}]},
            says='"param": "messages.0.content"',
        ),
        Refusal(
            "a temperature of 3",
            CHAT,
            {"model": ENDPOINT, "messages": HI, "temperature": 3},
            says='"param": "temperature"',
        ),
        Refusal(
            "a max_tokens as a string",
            CHAT,
            {"model": ENDPOINT, "messages": HI, "max_tokens": "16"},
            says='"param": "max_tokens"',
        ),
        Refusal(
            "an empty text to embed",
            "/api/v3/embeddings",
            {"model": ENDPOINT, "input": [""]},
            says='"param": "input"',
            model_type="text-embedding",
        ),
    ),
)
