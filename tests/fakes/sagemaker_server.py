"""A fake of Amazon SageMaker Runtime with the containers Dify's SageMaker plugin talks to behind
its endpoints: InvokeEndpoint (/endpoints/{name}/invocations) and
InvokeEndpointWithResponseStream (/invocations-response-stream, PayloadPart events). Checked by
boto3's "sagemaker-runtime" client in tests/unit/runtime/test_sagemaker_fake.py.

Auth: SigV4 for service `sagemaker` (aws_server.py), and with `serve_sts(roles)` STS AssumeRole
at POST / for cross-account access (temporary credentials with a session token). An unknown
endpoint is SageMaker's 400 ValidationError ("Endpoint ... not found."); what the container
refuses (a body of the wrong shape) is a 424 ModelError quoting the container's own 400, as
SageMaker wraps it. Errors carry `{"Message"}` (SageMaker's casing) and `x-amzn-ErrorType`.

Containers by endpoint type: llm, an OpenAI-style chat server (tools answered with tool_calls,
a stream of `data:` lines ending `data: [DONE]`); text-embedding, `{inputs, is_query}` ->
`{embeddings}`; rerank, `{inputs, docs}` -> `{scores}` (a lone number for one document, as the
plugin's containers answer).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from providers.runtime.base import Endpoint
from tests.fakes.aws_server import AwsFake, aws_error, constraint, event, sigv4_sign_in
from tests.fakes.base import Reply, Request, embed_text, overlap_score, reply_to, words
from tests.fakes.spec import FakeSpec, Refusal

ACCOUNT = "123456789012"
# InvokeEndpoint's EndpointName: at most 63 characters of this pattern (API_runtime_InvokeEndpoint).
ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ENDPOINTS = {
    "chat-endpoint": "llm",
    "embed-endpoint": "text-embedding",
    "rerank-endpoint": "rerank",
}


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


class SageMakerFake(AwsFake):
    """`endpoints`: endpoint name -> the type of model its container serves."""

    error_field = "Message"

    def __init__(
        self,
        keys: Mapping[str, str] | None = None,
        *,
        region: str = "us-east-1",
        endpoints: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(keys or {"AKIDEXAMPLE": "fake-secret"}, region=region, service="sagemaker")
        self.endpoints = dict(endpoints or ENDPOINTS)
        self.signed_route("POST", "/endpoints/{name}/invocations", self.invoke)
        self.signed_route(
            "POST", "/endpoints/{name}/invocations-response-stream", self.invoke_stream
        )

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        names = {400: "ValidationError", 424: "ModelError", 429: "ThrottlingException",
                 500: "InternalFailure", 503: "ServiceUnavailable"}  # fmt: skip
        if status in names:
            return aws_error(status, names[status], message, field="Message")
        return super().error(status, message)

    @staticmethod
    def model_error(problem: str) -> Reply:
        """What the container refused, as SageMaker relays it."""
        reply = aws_error(
            424,
            "ModelError",
            f'Received client error (400) from primary with message "{problem}". See '
            f"https://us-east-1.console.aws.amazon.com/cloudwatch/home for more information.",
            field="Message",
        )
        reply.body |= {"ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": 400,
                       "OriginalMessage": problem}  # fmt: skip
        return reply

    def _answer(self, request: Request) -> tuple[Reply | None, str, Any]:
        name = unquote(request.params["name"])
        if not ENDPOINT_NAME.match(name):
            must = "satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
            return constraint(name, "endpointName", must, "ValidationError", "Message"), "", None
        if not request.body:
            reply = constraint(None, "body", "not be null", "ValidationError", "Message")
            return reply, "", None
        kind = self.endpoints.get(name)
        if kind is None:
            reply = aws_error(
                400, "ValidationError", f"Endpoint {name} of account {ACCOUNT} not found.",
                field="Message",
            )  # fmt: skip
            return reply, "", None
        try:
            body = request.json()
        except ValueError:
            return self.model_error("the body is not JSON"), kind, None
        if not isinstance(body, dict):
            return self.model_error("the body must be a JSON object"), kind, None
        return None, kind, body

    def invoke(self, request: Request) -> Reply:
        problem, kind, body = self._answer(request)
        if problem is not None:
            return problem
        headers = {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        if kind == "text-embedding":
            inputs = body.get("inputs")
            if not isinstance(inputs, list) or not inputs:
                return self.model_error("inputs must be a non-empty list of texts")
            return Reply(200, {"embeddings": [embed_text(t) for t in inputs]}, headers=headers)
        if kind == "rerank":
            inputs, docs = body.get("inputs"), body.get("docs")
            if (
                not isinstance(docs, list)
                or not isinstance(inputs, list)
                or len(inputs) != len(docs)
            ):
                return self.model_error("inputs and docs must be lists of one length")
            scores = [overlap_score(q, d) for q, d in zip(inputs, docs, strict=True)]
            return Reply(
                200, {"scores": scores[0] if len(scores) == 1 else scores}, headers=headers
            )
        checked = self._chat(body)
        if isinstance(checked, Reply):
            return checked
        message: dict[str, Any] = {"role": "assistant", "content": checked["text"]}
        if checked["calls"]:
            message["tool_calls"] = checked["calls"]
        return Reply(
            200,
            {
                "id": f"chatcmpl-{len(self.received)}",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": checked["finish"]}],
                "usage": checked["usage"],
            },
            headers=headers,
        )

    def _chat(self, body: dict[str, Any]) -> dict[str, Any] | Reply:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.model_error("messages must be a non-empty list")
        if not body.get("model"):
            return self.model_error("model is required")
        last = messages[-1]
        calls: list[dict[str, Any]] = []
        if last.get("role") == "tool":
            text, finish = "Tool said: " + _text(last.get("content")), "stop"
        elif body.get("tools"):
            query = _text(last.get("content"))
            for tool in body["tools"]:
                name = tool["function"]["name"]
                digest = hashlib.sha256(f"{name}{query}".encode()).hexdigest()[:10]
                function = {"name": name, "arguments": json.dumps({"query": query})}
                calls.append({"id": f"call_{digest}", "type": "function", "function": function})
            text, finish = "", "tool_calls"
        else:
            text, finish = reply_to(_text(last.get("content"))), "stop"
            limit = body.get("max_tokens")
            if isinstance(limit, int) and words(text) > limit:
                text, finish = " ".join(text.split()[:limit]), "length"
        prompt = sum(words(_text(m.get("content"))) for m in messages)
        usage = {"prompt_tokens": prompt, "completion_tokens": words(text) + len(calls),
                 "total_tokens": prompt + words(text) + len(calls)}  # fmt: skip
        return {"text": text, "calls": calls, "finish": finish, "usage": usage}

    def invoke_stream(self, request: Request) -> Reply:
        problem, kind, body = self._answer(request)
        if problem is not None:
            return problem
        if kind != "llm":
            return self.model_error("this container does not stream")
        checked = self._chat(body)
        if isinstance(checked, Reply):
            return checked
        return Reply(
            stream=self._parts(body["model"], checked),
            content_type="application/vnd.amazon.eventstream",
            headers={"x-Amzn-Invoked-Production-Variant": "AllTraffic"},
        )

    @staticmethod
    def _parts(model: str, answer: dict[str, Any]) -> Iterator[bytes]:
        """The container's SSE text cut into PayloadParts at arbitrary places, as SageMaker
        forwards the bytes it gets."""
        chunks: list[dict[str, Any]] = []
        for i, word in enumerate(answer["text"].split(" ") if answer["text"] else ()):
            chunks.append({"content": word if i == 0 else " " + word})
        for i, call in enumerate(answer["calls"]):
            chunks.append({"tool_calls": [{"index": i, **call}]})
        lines = [
            {"id": "chatcmpl", "object": "chat.completion.chunk", "model": model,
             "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            for delta in chunks
        ]  # fmt: skip
        lines.append(
            {"id": "chatcmpl", "object": "chat.completion.chunk", "model": model,
             "choices": [{"index": 0, "delta": {}, "finish_reason": answer["finish"]}],
             "usage": answer["usage"]}
        )  # fmt: skip
        text = "".join(f"data: {json.dumps(line)}\n\n" for line in lines) + "data: [DONE]\n\n"
        raw = text.encode()
        for start in range(0, len(raw), 37):  # parts that split lines
            yield event("PayloadPart", raw[start : start + 37], "application/octet-stream")


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> SageMakerFake:
    """Each model its own endpoint; the form's endpoint name serves the one model asked for."""
    keys = {credentials.get("access_key_id", ""): credentials.get("secret_access_key", "")}
    endpoints = {model: kind for kind, model in models.items()}
    if credentials.get("deployment") and len(models) == 1:
        endpoints[credentials["deployment"]] = next(iter(models))
    fake = SageMakerFake(keys, region=credentials.get("region") or "us-east-1", endpoints=endpoints)
    if credentials.get("assume_role_arn"):
        fake.serve_sts([credentials["assume_role_arn"]])
    return fake


def _aim(endpoint: Endpoint, url: str) -> Endpoint:
    """The fake's URL instead of the regional one (SageMaker's form has no endpoint URL field),
    for STS too."""
    options = {k: v for k, v in endpoint.options.items() if k != "regional_base_url"}
    return replace(endpoint, base_url=url, options={**options, "sts_base_url": url})


INVOKE = "/endpoints/{model}/invocations"
CHAT = {"model": "{model}", "messages": [{"role": "user", "content": "hi"}]}
UNKNOWN_KEY = (
    "AWS4-HMAC-SHA256 Credential=AKIDUNKNOWN000000000/20260101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)

# Sources: docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
# (EndpointName's pattern, Body required; errors: ValidationError 400, ModelError 424 with
# OriginalStatusCode and OriginalMessage) and the SigV4 troubleshooting guide (403
# InvalidSignatureException, UnrecognizedClientException, MissingAuthenticationTokenException).
SPEC = FakeSpec(
    family="sagemaker",
    client="boto3",
    serve=_serve,
    aim=_aim,
    samples=lambda: {
        "aws_access_key_id": "AKIDSAMPLE0000000001",
        "aws_secret_access_key": "sample/secret+key0000000000000000000001",
        "assume_role_arn": "",
    },
    sign_in=sigv4_sign_in("sagemaker"),
    refusals=(
        Refusal("an unknown endpoint", "/endpoints/no-such-endpoint/invocations", CHAT,
                says="Endpoint no-such-endpoint of account 123456789012 not found."),
        Refusal("an endpoint name out of pattern", "/endpoints/bad_name/invocations", CHAT,
                says="Value 'bad_name' at 'endpointName' failed to satisfy constraint"),
        Refusal("no body", INVOKE, None,
                says="Value null at 'body' failed to satisfy constraint: Member must not be null"),
        Refusal("what the container refuses", INVOKE, {"model": "{model}"}, status=424,
                says="CLIENT_ERROR_FROM_MODEL"),
        Refusal("a bad signature", INVOKE, CHAT, status=403,
                says="The request signature we calculated does not match",
                headers={"Host": "runtime.sagemaker.us-east-1.amazonaws.com"}),
        Refusal("an unknown key", INVOKE, CHAT, status=403,
                says="The security token included in the request is invalid.",
                headers={"Authorization": UNKNOWN_KEY}),
        Refusal("no signature", INVOKE, CHAT, status=403, says="Missing Authentication Token",
                headers={"Authorization": None}),
    ),
)  # fmt: skip
