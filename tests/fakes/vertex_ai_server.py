"""A fake of Vertex AI and of Google's OAuth token endpoint, on one server.

- POST /token: the jwt-bearer grant. The assertion must be an RS256 JWT signed by a registered
  service account's key, for Google's token endpoint (`aud`, whatever URL it is posted to),
  asking for the cloud-platform scope, and not expired; else a 400 {"error": "invalid_grant" |
  "invalid_scope", "error_description"} as Google answers. Tokens live `token_lifetime` seconds.
- /v1 and /v1beta1 .../projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent,
  :streamGenerateContent?alt=sse (the Gemini engine of google_gemini_server.py), :predict
  (text embeddings); .../publishers/anthropic/models/{m}:rawPredict and :streamRawPredict
  (Claude: the Anthropic fake's engine, with `anthropic_version` in the body instead of a header).
  A token this server did not issue, or one expired, is a 401 UNAUTHENTICATED; another project is
  a 403 PERMISSION_DENIED.

Checked by the official `google-genai` client (with google-auth doing the token exchange) and
`anthropic`'s AnthropicVertex in tests/unit/runtime/test_vertex_ai_fake.py.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google.auth.transport.requests
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account as google_service_account

from providers.runtime.base import Endpoint
from tests.fakes import anthropic_server
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.base import Failure, Reply, Request, embed_text, words
from tests.fakes.google_gemini_server import BadRequest, GenerativeFake, unknown_field
from tests.fakes.spec import FakeSpec, Refusal

TOKEN_PATH = "/token"
TOKEN_PREFIX = "ya29.fake-"  # issued tokens look like Google's
# The audience Google wants in the assertion, whatever the URL it is posted to (google-auth's
# service_account.py sends this constant too).
AUDIENCE = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ANTHROPIC_VERSION = "vertex-2023-10-16"  # Google's Claude docs and Dify's plugin send this
# The official `anthropic` client (2.12's AnthropicVertex) sends its dated API version instead.
_DATED_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)
DEFAULT_MODELS = {
    "gemini-2.5-flash": "llm",
    "gemini-3.5-flash": "llm",
    "text-embedding-005": "text-embedding",
    "multimodalembedding@001": "text-embedding",
    "claude-sonnet-4-5@20250929": "llm",
}


@functools.cache
def _private_key(seed: int) -> rsa.RSAPrivateKey:
    """An RSA key per seed, made once per test run (making one takes a while)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account(
    project: str = "fake-project",
    token_uri: str = AUDIENCE,
    seed: int = 0,
) -> dict[str, str]:
    """A service account JSON key as the console downloads it, with a generated RSA key."""
    pem = _private_key(seed).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": f"fakekeyid{seed:04d}",
        "private_key": pem.decode(),
        "client_email": f"dify-{seed}@{project}.iam.gserviceaccount.com",
        "client_id": f"10000000000000000{seed:04d}",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }


def encoded(account: Mapping[str, str]) -> str:
    """The key as Dify's form asks for it: base64 of the JSON."""
    return base64.b64encode(json.dumps(account).encode()).decode()


class VertexFake(GenerativeFake):
    proto = "google.cloud.aiplatform.v1"

    def __init__(
        self,
        accounts: tuple[Mapping[str, str], ...] = (),
        project: str = "fake-project",
        models: Mapping[str, str] | None = None,
        token_lifetime: int = 3599,
        token_prefix: str = TOKEN_PREFIX,
    ) -> None:
        super().__init__(None, models or DEFAULT_MODELS)
        self.project = project
        self.token_lifetime = token_lifetime
        self.token_prefix = token_prefix
        self.public_keys: dict[str, Any] = {}
        for account in accounts or (service_account(project),):
            self.register(account)
        self.tokens: dict[str, float] = {}  # issued token -> when it expires
        self.token_requests: list[Request] = []
        self.claude = AnthropicFake(
            api_key=None, models={m: m for m in self.models if "claude" in m}
        )
        for version in ("v1", "v1beta1"):  # the official client speaks v1beta1
            base = f"/{version}/projects/{{project}}/locations/{{location}}/publishers"
            self.route("POST", f"{base}/google/models/{{action}}", self.google_model)
            self.route("POST", f"{base}/anthropic/models/{{action}}", self.anthropic_model)

    def register(self, account: Mapping[str, str]) -> None:
        key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
        self.public_keys[account["client_email"]] = key.public_key()

    @property
    def token_url(self) -> str:
        return f"{self.url}{TOKEN_PATH}"

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as when they reach their expiry)."""
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    # --- auth ---------------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        token = request.header("authorization").removeprefix("Bearer ")
        return self.tokens.get(token, 0.0) > time.time()

    def unauthorized(self, reason: str = "ACCESS_TOKEN_EXPIRED") -> Reply:
        """Google's 401 for a token it does not take: `reason` ACCESS_TOKEN_EXPIRED (one it
        issued, now expired), ACCESS_TOKEN_TYPE_UNSUPPORTED (one it never issued) or, with no
        token at all, CREDENTIALS_MISSING."""
        problem = (
            "is missing required authentication credential"
            if reason == "CREDENTIALS_MISSING"
            else "had invalid authentication credentials"
        )
        return self.error(
            401,
            f"Request {problem}. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reason,
                    "domain": "googleapis.com",
                    "metadata": {"service": "aiplatform.googleapis.com"},
                }
            ],
        )

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        """A model call without a valid token is refused for the reason it lacks one."""
        token = request.header("authorization").removeprefix("Bearer ")
        if failure is None and "/publishers/" in request.path and not self.authorized(request):
            if not token:
                return self.unauthorized("CREDENTIALS_MISSING")
            if token not in self.tokens:
                return self.unauthorized("ACCESS_TOKEN_TYPE_UNSUPPORTED")
        return super()._reply(request, failure)

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        """The token endpoint answers apart from the Vertex routes: failures injected with
        `fail()` are for the model calls."""
        parts = urlsplit(http.path)
        if parts.path != TOKEN_PATH:
            super()._handle(http)
            return
        length = int(http.headers.get("Content-Length") or 0)
        request = Request(
            method=http.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in http.headers.items()},
            body=http.rfile.read(length) if length else b"",
        )
        self.token_requests.append(request)
        self._send(http, self.issue_token(request), drop_midway=False)

    @staticmethod
    def oauth_error(error: str, description: str) -> Reply:
        return Reply(400, {"error": error, "error_description": description})

    def issue_token(self, request: Request) -> Reply:
        if request.method != "POST":
            return Reply(405, {"error": "invalid_request", "error_description": "POST only"})
        if not request.header("content-type").startswith("application/x-www-form-urlencoded"):
            return self.oauth_error("invalid_request", "Invalid Content-Type")
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != JWT_BEARER:
            return self.oauth_error(
                "unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', '')}"
            )
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claimed = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return self.oauth_error("invalid_grant", "Invalid JWT: malformed assertion.")
        public_key = self.public_keys.get(claimed.get("iss", ""))
        if public_key is None:
            return self.oauth_error("invalid_grant", "Invalid grant: account not found")
        if header.get("alg") != "RS256":
            return self.oauth_error("invalid_grant", "Invalid JWT: signing algorithm must be RS256")
        try:
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256"],
                audience=AUDIENCE,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.InvalidSignatureError:
            return self.oauth_error("invalid_grant", "Invalid JWT Signature.")
        except jwt.ExpiredSignatureError:
            return self.oauth_error("invalid_grant", SHORT_LIVED)
        except jwt.InvalidAudienceError:
            return self.oauth_error(
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The right audience is {AUDIENCE}",
            )
        except jwt.PyJWTError as exc:
            return self.oauth_error("invalid_grant", f"Invalid JWT: {exc}")
        if claims["exp"] - claims["iat"] > 3600 or claims["iat"] > time.time() + 300:
            return self.oauth_error("invalid_grant", SHORT_LIVED)
        if SCOPE not in str(claims.get("scope", "")).split():
            return self.oauth_error(
                "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        token = f"{self.token_prefix}{secrets.token_urlsafe(24)}"
        self.tokens[token] = time.time() + self.token_lifetime
        return Reply(
            200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    # --- model calls --------------------------------------------------------------------------

    def _resource(self, request: Request, publisher: str) -> tuple[str, str, Reply | None]:
        """(model, method, a refusal): another project is refused, and a Gemini 3 model anywhere
        but the global endpoint is not found (Google serves those there only; cloud.google.com/
        vertex-ai/generative-ai/docs/models/gemini/3-pro)."""
        model, _, method = request.params["action"].partition(":")
        if request.params["project"] != self.project:
            resource = (
                f"projects/{request.params['project']}/locations/{request.params['location']}"
                f"/publishers/{publisher}/models/{model}"
            )
            return (
                model,
                method,
                self.error(
                    403,
                    f"Permission 'aiplatform.endpoints.predict' denied on resource "
                    f"'//aiplatform.googleapis.com/{resource}' (or it may not exist).",
                ),
            )
        location = request.params["location"]
        if publisher == "google" and model.startswith("gemini-3") and location != "global":
            return (
                model,
                method,
                self.error(
                    404,
                    f"Publisher Model `projects/{self.project}/locations/{location}/publishers/"
                    f"google/models/{model}` was not found or your project does not have access "
                    "to it.",
                ),
            )
        return model, method, None

    def not_found(self, model: str, method: str) -> Reply:
        return self.error(
            404,
            f"Publisher Model `projects/{self.project}/locations/us-central1/publishers/google/"
            f"models/{model}` was not found or your project does not have access to it.",
        )

    def google_model(self, request: Request) -> Reply:
        model, method, refused = self._resource(request, "google")
        if refused:
            return refused
        if method in ("generateContent", "streamGenerateContent"):
            return self.answer(model, method, request)
        if method == "predict":
            return self.predict(model, request)
        return self.error(400, f"Unknown method: {method}")

    def predict(self, model: str, request: Request) -> Reply:
        if self.models.get(model) != "text-embedding":
            return self.not_found(model, "predict")
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return self.bad_request(BadRequest("Invalid JSON payload received. Unexpected token."))
        for name in body if isinstance(body, dict) else ():
            if name not in ("instances", "parameters"):  # a PredictRequest's body
                return self.bad_request(unknown_field(name, ""))
        instances = body.get("instances") if isinstance(body, dict) else None
        if not instances:
            return self.error(400, "Invalid JSON payload: instances is required.")
        multimodal = model.startswith("multimodalembedding")
        if multimodal and len(instances) != 1:
            return self.error(400, "Multimodal embedding takes exactly one instance.")
        if len(instances) > 250:
            return self.error(400, "The number of instances must not exceed 250.")
        predictions = []
        for instance in instances:
            text = instance.get("text" if multimodal else "content")
            if not isinstance(text, str) or not text:
                return self.error(400, "Each instance needs a non-empty content.")
            vector = embed_text(text, 8)
            if multimodal:
                predictions.append({"textEmbedding": vector})
            else:
                statistics = {"token_count": words(text), "truncated": False}
                predictions.append({"embeddings": {"values": vector, "statistics": statistics}})
        return Reply(200, {"predictions": predictions, "deployedModelId": "", "metadata": {}})

    def anthropic_model(self, request: Request) -> Reply:
        model, method, refused = self._resource(request, "anthropic")
        if refused:
            return refused
        if method not in ("rawPredict", "streamRawPredict"):
            return self.error(400, f"Unknown method: {method}")
        if model not in self.claude.models:
            return self.not_found(model, method)
        try:
            body = request.json()
        except ValueError:
            return self.claude.error(400, "Invalid JSON")
        version = str(body.get("anthropic_version", "")) if isinstance(body, dict) else ""
        if version != ANTHROPIC_VERSION and not _DATED_VERSION.match(version):
            return self.claude.error(
                400, f"anthropic_version: Input should be '{ANTHROPIC_VERSION}'"
            )
        messages_body = {k: v for k, v in body.items() if k != "anthropic_version"}
        messages_body["model"] = model
        try:
            self.claude.check(messages_body)
        except anthropic_server.BadRequest as exc:
            return self.claude.error(400, str(exc))
        message = self.claude.answer(messages_body)
        if method == "streamRawPredict" or body.get("stream"):
            return Reply(stream=self.claude._stream(message), content_type="text/event-stream")
        return Reply(200, message)


# --- the catalog walk -------------------------------------------------------------------------


def _account_of(credentials: Mapping[str, str]) -> dict[str, str]:
    value = credentials["service_account_key"]
    text = value if value.strip().startswith("{") else base64.b64decode(value).decode()
    return json.loads(text)


def serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> VertexFake:
    return VertexFake(
        accounts=(_account_of(credentials),),
        project=credentials.get("project_id", "fake-project"),
        models={**DEFAULT_MODELS, **{model: kind for kind, model in models.items()}},
    )


def aim(endpoint: Endpoint, url: str) -> Endpoint:
    """Every Vertex host, and the key's token endpoint, at the fake."""
    account = {**_account_of(endpoint.credentials), "token_uri": f"{url}{TOKEN_PATH}"}
    return replace(
        endpoint,
        base_url=f"{url}/v1",
        credentials={**endpoint.credentials, "service_account_key": encoded(account)},
        options={**endpoint.options, "regional_base_url": f"{url}/v1"},
    )


def sign_in(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """A token from the fake's own token endpoint, which google-auth (the official client)
    gets by exchanging a JWT signed with the credentials' service account key."""
    parts = urlsplit(url)
    info = {**_account_of(credentials), "token_uri": f"{parts.scheme}://{parts.netloc}{TOKEN_PATH}"}
    account = google_service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    account.refresh(google.auth.transport.requests.Request())
    return {**headers, "Authorization": f"Bearer {account.token}"}


MODELS = "/v1/projects/fake-project/locations/us-central1/publishers"
GENERATE = MODELS + "/google/models/{model}:generateContent"
HELLO = [{"role": "user", "parts": [{"text": "hi"}]}]

# Sources: cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference (the
# request's fields), cloud.google.com/vertex-ai/docs/general/troubleshooting (401
# UNAUTHENTICATED, 403 PERMISSION_DENIED on 'aiplatform.endpoints.predict', 404 for a publisher
# model); the JSON parser's words as for the Gemini API (google_gemini_server.py);
# docs.anthropic.com/en/api/claude-on-vertex-ai (anthropic_version in the body).
SPEC = FakeSpec(
    family="vertex_ai",
    client="google-genai",
    serve=serve,
    aim=aim,
    samples=lambda: {
        "vertex_project_id": "fake-project",
        "vertex_location": "us-central1",
        "vertex_service_account_key": encoded(service_account("fake-project")),
    },
    sign_in=sign_in,
    refusals=(
        Refusal("no token", GENERATE, {"contents": HELLO}, status=401,
                says="CREDENTIALS_MISSING", headers={"Authorization": None}),
        Refusal("a token Google never issued", GENERATE, {"contents": HELLO}, status=401,
                says="ACCESS_TOKEN_TYPE_UNSUPPORTED",
                headers={"Authorization": "Bearer ya29.not-issued"}),
        Refusal("another project", GENERATE.replace("fake-project", "other-project"),
                {"contents": HELLO}, status=403, says="aiplatform.endpoints.predict"),
        Refusal("an unknown model", MODELS + "/google/models/no-such-model:generateContent",
                {"contents": HELLO}, status=404,
                says="was not found or your project does not have access to it"),
        Refusal("a Gemini 3 model off the global endpoint",
                MODELS + "/google/models/gemini-3.5-flash:generateContent", {"contents": HELLO},
                status=404, says="locations/us-central1/publishers/google/models/gemini-3.5-flash"),
        Refusal("no contents", GENERATE, {}, says="INVALID_ARGUMENT"),
        Refusal("an unknown field", GENERATE, {"contents": HELLO, "stream": True},
                says='Unknown name \\"stream\\": Cannot find field.'),
        Refusal("an unknown generationConfig field", GENERATE,
                {"contents": HELLO, "generationConfig": {"max_tokens": 5}},
                says="at 'generation_config': Cannot find field."),
        Refusal("a string temperature", GENERATE,
                {"contents": HELLO, "generationConfig": {"temperature": "hot"}},
                says="Invalid value at 'generation_config.temperature' (TYPE_FLOAT)"),
        Refusal("a string for a Content", GENERATE, {"contents": ["hi"]},
                says="(type.googleapis.com/google.cloud.aiplatform.v1.Content)"),
        Refusal("an unknown field of a prediction",
                MODELS + "/google/models/text-embedding-005:predict",
                {"instances": [{"content": "hi"}], "texts": ["hi"]},
                says='Unknown name \\"texts\\": Cannot find field.'),
        Refusal("Claude without anthropic_version",
                MODELS + "/anthropic/models/claude-sonnet-4-5@20250929:rawPredict",
                {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
                says="anthropic_version"),
    ),
)  # fmt: skip
