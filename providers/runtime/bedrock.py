"""Amazon Bedrock Runtime: Converse (/model/{id}/converse), ConverseStream (/converse-stream, a
binary event stream) and InvokeModel (/model/{id}/invoke) for Titan and Cohere embeddings.

Credentials (Dify's form): `auth_method` Access_Secret_Key (SigV4, service `bedrock`, with
`access_key_id` + `secret_access_key`), API_Key (`api_key` sent as `Authorization: Bearer`, what
boto3 sends for AWS_BEARER_TOKEN_BEDROCK) or IAM_Role (refused with a clear error: the role would
be this server's own, see aws.py); `region`; `base_url` (Bedrock Endpoint URL, else
https://bedrock-runtime.{region}.amazonaws.com); `deployment` (an inference profile ID or ARN,
sent as the model ID, which Converse accepts for profiles); `validate_model` (the model a
provider credential is checked with). `proxy_url` is refused: calls go through the service's
own outbound guard, not a proxy.

Parameters: max_tokens, temperature, top_p, stop -> inferenceConfig; top_k -> the model's own
additionalModelRequestFields (Claude `top_k`, Nova `inferenceConfig.topK`); cross_region
(global | geographic | disabled) -> the system inference profile prefix on the model ID
(`global.`, or `us.`/`eu.`/`apac.` by region, as Dify's plugin does).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from config import errors
from providers.runtime.aws import AwsAdapter
from providers.runtime.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    Message,
    TokenTally,
    ToolCall,
    ToolCallDelta,
    Usage,
    Validation,
    arguments_object,
    counted_usage,
)

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
# Prefixes of system-defined (cross-region) inference profile IDs.
PROFILE_PREFIXES = ("global", "us", "eu", "apac", "us-gov", "jp", "au", "ca")
REGION_AREAS = {"us": "us", "eu": "eu", "ap": "apac"}
COHERE_MAX_TEXTS = 96  # InvokeModel refuses more texts for Cohere Embed
EMBEDDING_PREFIXES = ("amazon.titan-embed", "cohere.embed")
AUTH_METHODS = ("Access_Secret_Key", "API_Key", "IAM_Role")


# --- request building -------------------------------------------------------------------------


def _media_block(url: str, index: int) -> dict[str, Any]:
    """An image (or PDF) part as a Converse block: a data: URL's bytes (base64 on the JSON wire)
    or an s3:// location; Bedrock fetches no http(s) URL."""
    if url.startswith("s3://"):
        return {"image": {"format": "png", "source": {"s3Location": {"uri": url}}}}
    if not url.startswith("data:"):
        raise errors.InvalidInput(
            "Bedrock takes images as data: URLs (base64) or s3:// locations, not web addresses.",
            code="invalid",
        )
    header, _, data = url[5:].partition(",")
    media_type = header.split(";")[0].lower()
    if media_type == "application/pdf":
        return {
            "document": {"format": "pdf", "name": f"document-{index}", "source": {"bytes": data}}
        }
    return {"image": {"format": IMAGE_FORMATS.get(media_type, "png"), "source": {"bytes": data}}}


def content_blocks(message: Message) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"text": message.content}] if message.content.strip() else []
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(message.content):
        if part.type == "image" and part.image_url:
            blocks.append(_media_block(part.image_url, index))
        elif part.text.strip():  # Converse refuses blank text blocks
            blocks.append({"text": part.text})
    return blocks


def messages_json(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Our messages as Converse turns: system apart, tool results in user turns, and turns of one
    role merged (Converse wants user and assistant to alternate)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            role = "user"
            blocks = [
                {
                    "toolResult": {
                        "toolUseId": message.tool_call_id,
                        "content": [{"text": message.text() or "(empty)"}],
                    }
                }
            ]
        elif message.role == "assistant":
            role = "assistant"
            blocks = content_blocks(message) + [
                {
                    "toolUse": {
                        "toolUseId": c.id,
                        "name": c.name,
                        "input": arguments_object(c.arguments),
                    }
                }
                for c in message.tool_calls
            ]
        else:
            role = "user"
            blocks = content_blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _usage(data: Any) -> Usage:
    data = data if isinstance(data, dict) else {}
    prompt = sum(
        int(data.get(key) or 0)
        for key in ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
    )
    return Usage(prompt, int(data.get("outputTokens") or 0))


def _finish(reason: Any) -> str:
    reason = str(reason or "end_turn")
    return FINISH_REASONS.get(reason, reason)


def _base_model(model_id: str) -> str:
    """A model ID without its inference profile prefix (us.amazon.nova-pro-v1:0 -> amazon...)."""
    prefix, _, rest = model_id.partition(".")
    return rest if prefix in PROFILE_PREFIXES and rest else model_id


class BedrockAdapter(AwsAdapter):
    family = "bedrock"
    service = "bedrock"

    @property
    def auth_method(self) -> str:
        given = str(self.endpoint.credentials.get("auth_method") or "").strip()
        if given:
            return given
        if self.endpoint.credentials.get("api_key"):
            return "API_Key"
        return "Access_Secret_Key"

    def auth_headers(self) -> dict[str, str]:
        api_key = self.endpoint.credentials.get("api_key")
        if self.auth_method == "API_Key" and api_key:
            return {"Authorization": f"Bearer {api_key}"}
        return {}

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        method_name = self.auth_method
        if self.endpoint.credentials.get("proxy_url"):
            raise errors.InvalidInput(
                "A Bedrock proxy URL is not supported here; leave it empty, or give the proxy's "
                "address as the Bedrock Endpoint URL.",
                code="unsupported",
            )
        if method_name == "API_Key":
            if not self.endpoint.credentials.get("api_key"):
                raise errors.InvalidInput("Enter a Bedrock API key.", code="invalid")
            return headers
        if method_name == "IAM_Role":
            # An IAM role means botocore's default chain: this server's environment variables or
            # its instance's metadata service, i.e. the operator's AWS identity, never a
            # workspace's (and the address guard refuses 169.254.169.254 anyway).
            raise errors.InvalidInput(
                "IAM role credentials are not available in this service: choose Access-Secret "
                "Key or Bedrock API Key.",
                code="unsupported",
            )
        if method_name not in AUTH_METHODS:
            raise errors.InvalidInput(f"Unknown authentication method {method_name!r}.")
        return super().sign(method, url, body, headers)

    # --- model IDs ----------------------------------------------------------------------------

    def model_id(self, model: str, parameters: Any = None) -> str:
        """What goes into the path: the inference profile when one is configured, else the model
        with the cross-region prefix its `cross_region` parameter asks for."""
        deployment = str(self.endpoint.credentials.get("deployment") or "").strip()
        if deployment:
            return deployment
        scope = (parameters or {}).get("cross_region")
        if (
            scope in (None, "", "disabled")
            or model.startswith("arn:")
            or _base_model(model) != model
        ):
            return model
        if scope == "global":
            return f"global.{model}"
        area = REGION_AREAS.get(self.region.split("-")[0].lower())
        return f"{area}.{model}" if area else model

    @staticmethod
    def path(model_id: str, action: str) -> str:
        return f"model/{quote(model_id, safe='')}/{action}"

    # --- chat ---------------------------------------------------------------------------------

    def converse_body(self, model_id: str, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": messages_json(request.messages)}
        system = [
            {"text": m.text()} for m in request.messages if m.role == "system" and m.text().strip()
        ]
        if system:
            body["system"] = system
        parameters = request.parameters
        inference: dict[str, Any] = {}
        for ours, theirs in (("max_tokens", "maxTokens"), ("temperature", "temperature")):
            if parameters.get(ours) is not None:
                inference[theirs] = parameters[ours]
        if parameters.get("top_p") is not None:
            inference["topP"] = parameters["top_p"]
        stop = list(request.stop) or parameters.get("stop")
        if stop:
            inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
        if inference:
            body["inferenceConfig"] = inference
        top_k = parameters.get("top_k")
        base = _base_model(model_id)
        if top_k:
            if base.startswith("anthropic."):
                body["additionalModelRequestFields"] = {"top_k": top_k}
            elif base.startswith("amazon.nova"):
                body["additionalModelRequestFields"] = {"inferenceConfig": {"topK": top_k}}
        tools_config = self._tool_config(request, body["messages"])
        if tools_config:
            body["toolConfig"] = tools_config
        return body

    @staticmethod
    def _tool_config(request: ChatRequest, turns: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Converse's toolConfig. It has no "none": the tools are left out then, unless the
        conversation already holds tool blocks (Converse then requires the toolConfig)."""
        if not request.tools:
            return None
        choice = (request.tool_choice or "auto").strip()
        used = any(
            "toolUse" in block or "toolResult" in block
            for turn in turns
            for block in turn["content"]
        )
        if choice.lower() == "none" and not used:
            return None
        config: dict[str, Any] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": tool.name,
                        "description": tool.description or tool.name,
                        "inputSchema": {
                            "json": dict(tool.parameters) or {"type": "object", "properties": {}}
                        },
                    }
                }
                for tool in request.tools
            ]
        }
        if choice.lower() == "required":
            config["toolChoice"] = {"any": {}}
        elif choice.lower() not in ("auto", "none"):
            config["toolChoice"] = {"tool": {"name": choice}}
        return config

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        model_id = self.model_id(model, request.parameters)
        data = self.http.json(
            "POST", self.path(model_id, "converse"), json_body=self.converse_body(model_id, request)
        )
        message = (data.get("output") or {}).get("message")
        if not isinstance(message, dict):
            raise errors.UpstreamUnavailable(
                f"Bedrock's reply has no message: {self.http.bounded(json.dumps(data), 200)}"
            )
        texts, calls = [], []
        for block in message.get("content") or ():
            if "text" in block:
                texts.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(
                    ToolCall(
                        id=use.get("toolUseId", ""),
                        name=use.get("name", ""),
                        arguments=json.dumps(use.get("input") or {}),
                    )
                )
        text = "".join(texts)
        usage = _usage(data["usage"]) if data.get("usage") else counted_usage(request, text)
        return ChatResult(
            text=text,
            tool_calls=tuple(calls),
            finish_reason=_finish(data.get("stopReason")),
            usage=usage,
            model=model,
        )

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        model_id = self.model_id(model, request.parameters)
        response = self.http.request(
            "POST",
            self.path(model_id, "converse-stream"),
            json_body=self.converse_body(model_id, request),
            headers={"Accept": "application/vnd.amazon.eventstream"},
            stream=True,
        )
        produced: list[str] = []
        tools: dict[int, int] = {}  # content block index -> tool call index
        finish: str | None = None
        usage: Usage | None = None
        for kind, name, payload in self.events(response):
            if kind != "event":
                raise self.stream_error(kind, name, payload)
            data = self.http.parse(payload.decode("utf-8", errors="replace"))
            if name == "contentBlockStart":
                use = (data.get("start") or {}).get("toolUse")
                if use:
                    index = tools.setdefault(int(data.get("contentBlockIndex") or 0), len(tools))
                    delta = ToolCallDelta(index, id=use.get("toolUseId", ""), name=use["name"])
                    yield ChatChunk(tool_calls=(delta,))
            elif name == "contentBlockDelta":
                delta = data.get("delta") or {}
                if delta.get("text"):
                    produced.append(delta["text"])
                    yield ChatChunk(text=delta["text"])
                elif "toolUse" in delta:
                    block = int(data.get("contentBlockIndex") or 0)
                    index = tools.setdefault(block, len(tools))
                    fragment = (delta["toolUse"] or {}).get("input") or ""
                    yield ChatChunk(tool_calls=(ToolCallDelta(index, arguments=fragment),))
            elif name == "messageStop":
                finish = _finish(data.get("stopReason"))
            elif name == "metadata":
                usage = _usage(data.get("usage"))
        if finish is None:
            raise errors.UpstreamConnection("Bedrock's stream ended before its messageStop event.")
        yield ChatChunk(
            finish_reason=finish, usage=usage or counted_usage(request, "".join(produced))
        )

    # --- embeddings ---------------------------------------------------------------------------

    def embed(
        self, model: str, texts: Sequence[str], *, input_type: str | None = None
    ) -> EmbeddingResult:
        if not texts:
            return EmbeddingResult(())
        model_id = self.model_id(model)
        base = _base_model(model)
        if base.startswith(EMBEDDING_PREFIXES[0]):
            return self._embed_titan(model_id, texts)
        if base.startswith(EMBEDDING_PREFIXES[1]):
            query = str(input_type or "").lower() in ("query", "search_query")
            return self._embed_cohere(model_id, texts, query=query)
        raise errors.InvalidInput(
            f"{model} is no embedding model this service knows how to call on Bedrock "
            "(amazon.titan-embed-* or cohere.embed-*).",
            code="unsupported",
        )

    def _invoke(self, model_id: str, body: dict[str, Any]) -> tuple[Any, int | None]:
        """InvokeModel: the model's own JSON reply, and the input tokens Bedrock counted (its
        X-Amzn-Bedrock-Input-Token-Count header)."""
        response = self.http.request(
            "POST",
            self.path(model_id, "invoke"),
            json_body=body,
            headers={"Accept": "application/json"},
        )
        try:
            data = response.json()
        except ValueError as exc:
            raise errors.UpstreamUnavailable(
                f"Bedrock answered with a body that is not JSON: "
                f"{self.http.bounded(response.text, 200)}"
            ) from exc
        counted = response.headers.get("X-Amzn-Bedrock-Input-Token-Count")
        return data, int(counted) if counted and counted.isdigit() else None

    def _embed_titan(self, model_id: str, texts: Sequence[str]) -> EmbeddingResult:
        """Titan embeds one text a call."""
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for text in texts:
            data, counted = self._invoke(model_id, {"inputText": text})
            vectors.append(tuple(float(x) for x in data["embedding"]))
            reported = data.get("inputTextTokenCount", counted)
            tally.add(reported, [text])
        return EmbeddingResult(tuple(vectors), tally.usage)

    def _embed_cohere(self, model_id: str, texts: Sequence[str], *, query: bool) -> EmbeddingResult:
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), COHERE_MAX_TEXTS):
            chunk = list(texts[start : start + COHERE_MAX_TEXTS])
            body = {
                "texts": chunk,
                "input_type": "search_query" if query else "search_document",
                "embedding_types": ["float"],
            }
            data, counted = self._invoke(model_id, body)
            rows = data.get("embeddings")
            if isinstance(rows, dict):  # embeddings by type, as embedding_types asks
                rows = rows.get("float")
            if not isinstance(rows, list) or len(rows) != len(chunk):
                got = len(rows) if isinstance(rows, list) else 0
                raise errors.UpstreamUnavailable(
                    f"Asked Bedrock for {len(chunk)} Cohere embeddings, got {got}."
                )
            vectors.extend(tuple(float(x) for x in row) for row in rows)
            tally.add(counted, chunk)
        return EmbeddingResult(tuple(vectors), tally.usage)

    # --- validation ---------------------------------------------------------------------------

    def validate(self, model: str, model_type: str) -> Validation:
        """A real call, not Dify's "the fields are filled in": a 1-token Converse (or one short
        embedding) on the form's validation model when it names one, proving the keys, the
        region and the model access together."""
        chosen = str(self.endpoint.credentials.get("validate_model") or "").strip()
        if not chosen:
            return super().validate(model, model_type)
        embeds = _base_model(chosen).startswith(EMBEDDING_PREFIXES)
        return super().validate(chosen, "text-embedding" if embeds else "llm")
