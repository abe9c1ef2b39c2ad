"""Amazon SageMaker Runtime: your own inference endpoints, called as Dify's SageMaker plugin
calls them. POST /endpoints/{endpoint}/invocations (InvokeEndpoint, the body passed through to
the container) and /invocations-response-stream (InvokeEndpointWithResponseStream: a binary event
stream whose PayloadPart events carry the container's bytes), signed with SigV4 for service
`sagemaker`.

Payloads (the containers Dify's plugin deploys):
- llm: OpenAI chat `{model, messages, stream, max_tokens, temperature, top_p, stop}` (+ `tools` or
  `functions` when the form's `function_calling_type` says the container takes them), answered
  by a chat.completion, or streamed as `data: {chunk}` lines inside the PayloadParts;
- text-embedding: `{inputs, parameters: {}, is_query, instruction: ""}` -> `{embeddings}`;
- rerank: `{inputs: [query per document], docs}` -> `{scores}`.

Credentials: `access_key_id`, `secret_access_key`, `region`, `deployment` (the endpoint name),
`endpoint_model_name` (the container's MODEL_ID, sent as `model`), `assume_role_arn` (cross-account
access: the keys call STS AssumeRole and the role's temporary credentials, kept in process memory
until shortly before they expire, sign the calls). Without keys Dify falls back to the server's
own AWS identity; this service refuses (aws.py). Option `sts_base_url` (default
https://sts.{region}.amazonaws.com) is where AssumeRole goes.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from config import errors
from providers.runtime.aws import AwsAdapter, regional_url
from providers.runtime.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    RerankHit,
    RerankResult,
    ToolCall,
    Usage,
    count_tokens,
    counted_usage,
)
from providers.runtime.http import HttpClient, Response
from providers.runtime.openai_compat import function_tools, message_json, tool_call_deltas
from providers.runtime.tokens import TOKENS, TokenCache

STS_BASE_URL = "https://sts.{region}.amazonaws.com"
STS_FIELDS = ("AccessKeyId", "SecretAccessKey", "SessionToken")
ROLE_SESSION_NAME = "model-provider-settings"
ROLE_SECONDS = 3600  # STS's default session length
EMBED_BATCH = 20  # what Dify's plugin sends a call
DEFAULT_MAX_TOKENS = 2048
CHAT_PARAMETERS = ("max_tokens", "temperature", "top_p")


def _xml_value(text: str, name: str) -> str:
    """A leaf element's text out of an STS reply (a fixed, flat shape: no XML parser needed)."""
    found = re.search(rf"<{name}>([^<]*)</{name}>", text)
    return html.unescape(found.group(1)).strip() if found else ""


def _sts_error(body: Any) -> str:
    """STS's `<Error><Code/><Message/></Error>` as "Code: Message"."""
    text = str(body)
    code, message = _xml_value(text, "Code"), _xml_value(text, "Message")
    return f"{code}: {message}" if code or message else text


def _usage(data: Any, request: ChatRequest, text: str) -> Usage:
    if isinstance(data, dict) and ("prompt_tokens" in data or "completion_tokens" in data):
        return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0))
    return counted_usage(request, text)


class SageMakerAdapter(AwsAdapter):
    family = "sagemaker"
    service = "sagemaker"

    # --- cross-account access: STS AssumeRole ------------------------------------------------

    @property
    def role_arn(self) -> str:
        return str(self.endpoint.credentials.get("assume_role_arn") or "").strip()

    def _role_key(self, keys: Credentials) -> str:
        return TokenCache.key("sts", keys.access_key, keys.secret_key, self.role_arn, self.region)

    def signing_keys(self) -> Credentials:
        """The form's keys, or with a role ARN the role's temporary credentials."""
        keys = super().signing_keys()
        if not self.role_arn:
            return keys
        packed = TOKENS.get(self._role_key(keys), lambda: self._assume_role(keys))
        access_key, secret_key, session_token = json.loads(packed)
        return Credentials(access_key, secret_key, session_token)

    def _assume_role(self, keys: Credentials) -> tuple[str, float]:
        """STS AssumeRole (a Query API answering XML), signed with the form's keys for `sts`:
        the temporary credentials packed as JSON, and how long they last."""

        def sign_for_sts(
            method: str, url: str, body: bytes | None, headers: dict[str, str]
        ) -> dict[str, str]:
            request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
            SigV4Auth(keys, "sts", self.region).add_auth(request)
            return dict(request.headers.items())

        base = str(self.endpoint.options.get("sts_base_url") or STS_BASE_URL)
        sts = HttpClient(
            base_url=regional_url(base, self.region),
            headers=self.http.headers,
            pool=self.http.pool,
            timeouts=self.http.timeouts,
            retry=self.http.retry,
            secrets=self.http.secrets,
            error_message=_sts_error,
            sign=sign_for_sts,
        )
        form = {
            "Action": "AssumeRole",
            "Version": "2011-06-15",
            "RoleArn": self.role_arn,
            "RoleSessionName": ROLE_SESSION_NAME,
            "DurationSeconds": str(ROLE_SECONDS),
        }
        reply = sts.request("POST", "", data=form).text
        found = {name: _xml_value(reply, name) for name in STS_FIELDS}
        if not all(found.values()):
            raise errors.UpstreamUnavailable("STS answered AssumeRole without credentials.")
        packed = json.dumps([found[name] for name in STS_FIELDS])
        return packed, ROLE_SECONDS

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """A ModelError whose container answered 4xx is the request's fault, not an outage; a
        refused role session is dropped, so the next call assumes the role again."""
        typed = super().classify(response, failure)
        if self.role_arn and isinstance(typed, errors.UpstreamAuth):
            with contextlib.suppress(errors.ServiceError):
                TOKENS.forget(self._role_key(super().signing_keys()))
        try:
            original = int((response.json() or {}).get("OriginalStatusCode") or 0)
        except (ValueError, AttributeError, TypeError):
            return typed
        if 400 <= original < 500 and isinstance(typed, errors.UpstreamUnavailable):
            return errors.UpstreamBadRequest(typed.message)
        return typed

    def error_message(self, body: Any) -> str:
        """SageMaker's `{"Message"}`; a ModelError also quotes what the container said."""
        if isinstance(body, dict):
            message = str(body.get("Message") or body.get("message") or body)
            original = body.get("OriginalMessage")
            return f"{message} {original}" if original and original not in message else message
        return str(body)

    def path(self, model: str, action: str = "invocations") -> str:
        name = str(self.endpoint.credentials.get("deployment") or model).strip()
        return f"endpoints/{quote(name, safe='')}/{action}"

    def _invoke(self, model: str, body: dict[str, Any]) -> Any:
        return self.http.json(
            "POST", self.path(model), json_body=body, headers={"Accept": "application/json"}
        )

    # --- chat ---------------------------------------------------------------------------------

    def chat_body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        parameters = request.parameters
        body: dict[str, Any] = {
            "model": str(self.endpoint.credentials.get("endpoint_model_name") or model),
            "messages": [message_json(m) for m in request.messages],
            "stream": stream,
            "max_tokens": parameters.get("max_tokens") or DEFAULT_MAX_TOKENS,
        }
        for name in CHAT_PARAMETERS[1:]:
            if parameters.get(name) is not None:
                body[name] = parameters[name]
        stop = list(request.stop) or parameters.get("stop")
        if stop:
            body["stop"] = [stop] if isinstance(stop, str) else list(stop)
        calling = self.endpoint.options.get("function_calling_type") or "no_call"
        if request.tools and calling == "tool_call":
            body["tools"] = function_tools(request.tools)
        elif request.tools and calling == "function_call":
            body["functions"] = [tool["function"] for tool in function_tools(request.tools)]
        return body

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        data = self._invoke(model, self.chat_body(model, request, stream=False))
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise errors.UpstreamUnavailable(
                "The endpoint's reply is no chat completion: "
                f"{self.http.bounded(json.dumps(data), 200)}"
            )
        message = choices[0].get("message") or {}
        text = message.get("content") or ""
        calls = [
            ToolCall(
                id=c.get("id", ""),
                name=(c.get("function") or {}).get("name", ""),
                arguments=(c.get("function") or {}).get("arguments", "") or "",
            )
            for c in message.get("tool_calls") or ()
        ]
        if message.get("function_call"):
            function = message["function_call"]
            calls.append(
                ToolCall("call_0", function.get("name", ""), function.get("arguments", ""))
            )
        return ChatResult(
            text=text,
            tool_calls=tuple(calls),
            finish_reason=choices[0].get("finish_reason") or "stop",
            usage=_usage(data.get("usage"), request, text),
            model=model,
        )

    def _payload_lines(self, model: str, body: dict[str, Any]) -> Iterator[str]:
        """The container's streamed text, line by line, out of the PayloadPart events (a line
        may be split across parts)."""
        response = self.http.request(
            "POST",
            self.path(model, "invocations-response-stream"),
            json_body=body,
            headers={"X-Amzn-SageMaker-Accept": "application/json"},
            stream=True,
        )
        pending = b""
        for kind, name, payload in self.events(response):
            if kind != "event":
                raise self.stream_error(kind, name, payload)
            if name != "PayloadPart":
                continue
            pending += payload
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", errors="replace").strip()
        if pending.strip():
            yield pending.decode("utf-8", errors="replace").strip()

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        produced: list[str] = []
        usage: Usage | None = None
        finished = False
        for line in self._payload_lines(model, self.chat_body(model, request, stream=True)):
            payload = line.removeprefix("data:").strip()
            if not payload or line.startswith(":"):
                continue
            if payload == "[DONE]":
                break
            data = self.http.parse(payload)
            if not isinstance(data, dict):
                continue
            if data.get("error"):
                raise errors.UpstreamUnavailable(self.http.bounded(str(data["error"])))
            if data.get("usage"):
                usage = _usage(data["usage"], request, "")
            for choice in data.get("choices") or ():
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
                produced.append(text)
                calls = tool_call_deltas(delta.get("tool_calls"))
                finish = choice.get("finish_reason")
                finished = finished or bool(finish)
                if text or calls or finish:
                    yield ChatChunk(text=text, tool_calls=calls, finish_reason=finish)
        if not finished:
            raise errors.UpstreamConnection("The endpoint's stream ended before a finish_reason.")
        yield ChatChunk(usage=usage or _usage(None, request, "".join(produced)))

    # --- embeddings and rerank ----------------------------------------------------------------

    def embed(
        self, model: str, texts: Sequence[str], *, input_type: str | None = None
    ) -> EmbeddingResult:
        query = str(input_type or "").lower() in ("query", "search_query")
        vectors: list[tuple[float, ...]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            chunk = list(texts[start : start + EMBED_BATCH])
            body = {"inputs": chunk, "parameters": {}, "is_query": query, "instruction": ""}
            rows = self._invoke(model, body)["embeddings"]
            if not isinstance(rows, list) or len(rows) != len(chunk):
                got = len(rows) if isinstance(rows, list) else 0
                raise errors.UpstreamUnavailable(
                    f"Asked the endpoint for {len(chunk)} embeddings, got {got}."
                )
            vectors.extend(tuple(float(x) for x in row) for row in rows)
        # The containers report no usage: counted.
        usage = Usage(sum(count_tokens(t) for t in texts), counted=True)
        return EmbeddingResult(tuple(vectors), usage)

    def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        if not documents:
            return RerankResult(())
        body = {"inputs": [query] * len(documents), "docs": list(documents)}
        scores = self._invoke(model, body)["scores"]
        scores = scores if isinstance(scores, list) else [scores]  # one document: one number
        if len(scores) != len(documents):
            raise errors.UpstreamUnavailable(
                f"Asked the endpoint to score {len(documents)} documents, got {len(scores)} scores."
            )
        hits = sorted(
            (RerankHit(i, float(score), documents[i]) for i, score in enumerate(scores)),
            key=lambda hit: -hit.score,
        )
        usage = Usage(count_tokens(query) + sum(map(count_tokens, documents)), counted=True)
        return RerankResult(tuple(hits[: top_n or None]), usage)
