"""A fake of Amazon Bedrock Runtime: Converse, ConverseStream (binary event stream) and
InvokeModel for Titan and Cohere embeddings. Checked by boto3's "bedrock-runtime" client in
tests/unit/runtime/test_bedrock_fake.py.

Auth: SigV4 for service `bedrock` (aws_server.py), or `Authorization: Bearer <Bedrock API key>`
(403 AccessDeniedException for a key it does not know). Bodies are checked as Bedrock checks them
(400 ValidationException): messages present, roles alternating from a user turn, no blank text,
tool blocks only with a toolConfig, tool results answering a toolUse, inferenceConfig in range,
no unknown fields; an unknown model ID is a ValidationException too ("The provided model
identifier is invalid."), as Bedrock answers. Replies are computed from the request.
Extra failure modes on ConverseStream: "throttle_stream" and "echo_key_stream" (`_reply`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from tests.fakes.aws_server import (
    AwsFake,
    aws_error,
    constraint,
    event,
    exception,
    serialization,
    sigv4_sign_in,
)
from tests.fakes.base import Failure, Reply, Request, embed_text, reply_to, words
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

MODELS = {
    "anthropic.claude-sonnet-4-5-20250929-v1:0": "llm",
    "amazon.nova-pro-v1:0": "llm",
    "amazon.titan-embed-text-v2:0": "text-embedding",
    "cohere.embed-multilingual-v3": "text-embedding",
    "cohere.embed-v4:0": "text-embedding",
}
PROFILE_PREFIXES = ("global", "us", "eu", "apac")
CONVERSE_FIELDS = {
    "messages", "system", "inferenceConfig", "toolConfig", "additionalModelRequestFields",
    "guardrailConfig", "promptVariables", "additionalModelResponseFieldPaths", "requestMetadata",
    "performanceConfig",
}  # fmt: skip
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
COHERE_MAX_TEXTS = 96


def _invalid(message: str) -> Reply:
    return aws_error(400, "ValidationException", message)


def _block_text(block: dict[str, Any]) -> str:
    if "text" in block:
        return str(block["text"])
    if "toolResult" in block:
        return " ".join(
            str(c.get("text", c.get("json", ""))) for c in block["toolResult"]["content"]
        )
    return ""


class BedrockFake(AwsFake):
    """`models`: model ID -> type; `api_keys`: the Bedrock API keys it accepts (Bearer)."""

    def __init__(
        self,
        keys: Mapping[str, str] | None = None,
        *,
        api_keys: tuple[str, ...] = (),
        region: str = "us-east-1",
        models: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(keys or {"AKIDEXAMPLE": "fake-secret"}, region=region, service="bedrock")
        self.api_keys = set(api_keys)
        self.models = dict(models or MODELS)
        self.signed_route("POST", "/model/{model}/converse", self.converse)
        self.signed_route("POST", "/model/{model}/converse-stream", self.converse_stream)
        self.signed_route("POST", "/model/{model}/invoke", self.invoke)

    def check_auth(self, request: Request) -> Reply | None:
        header = request.header("authorization")
        if header.startswith("Bearer "):
            if header.removeprefix("Bearer ") in self.api_keys:
                return None
            return aws_error(
                403,
                "AccessDeniedException",
                "Authentication failed: Please make sure your API Key is valid.",
            )
        return super().check_auth(request)

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        """Two failure modes of a stream that began well: "throttle_stream" (a
        throttlingException frame after messageStart) and "echo_key_stream" (a
        modelStreamErrorException frame quoting the request's credential)."""
        mode = failure.mode if failure is not None else ""
        if mode not in ("throttle_stream", "echo_key_stream"):
            return super()._reply(request, failure)
        reply = super()._reply(request, None)
        if reply.stream is not None:
            if mode == "throttle_stream":
                name, data = "throttlingException", {"message": "Too many tokens, please wait."}
            else:
                name, data = "modelStreamErrorException", {"message": self.echo_key(request)}
            reply.stream = iter([next(iter(reply.stream)), exception(name, data)])
        return reply

    def model_type(self, request: Request) -> tuple[str, str | None]:
        """(model ID, its type), a cross-region profile ID standing for its model."""
        model = unquote(request.params["model"])
        prefix, _, rest = model.partition(".")
        base = rest if prefix in PROFILE_PREFIXES and rest in self.models else model
        return model, self.models.get(base)

    # --- Converse -----------------------------------------------------------------------------

    def _check_converse(self, body: Any) -> Reply | None:
        if not isinstance(body, dict):
            return _invalid("Malformed input request, please reformat your input and try again.")
        unknown = sorted(set(body) - CONVERSE_FIELDS)
        if unknown:
            return _invalid(f'Unknown parameter in input: "{unknown[0]}"')
        messages = body.get("messages")
        if messages is None:
            return constraint(None, "messages", "not be null")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return serialization("Start of structure or map found where not expected.")
        if not messages:
            return _invalid("A conversation must start with a user message. Try again.")
        tool_ids: set[str] = set()
        for i, message in enumerate(messages):
            role = message.get("role")
            if role not in ("user", "assistant"):
                where = f"messages.{i + 1}.member.role"
                return constraint(role, where, "satisfy enum value set: [user, assistant]")
            if i == 0 and role != "user":
                return _invalid("A conversation must start with a user message. Try again.")
            if i and messages[i - 1].get("role") == role:
                return _invalid(
                    "A conversation must alternate between user and assistant roles. Make sure "
                    "the conversation alternates between user and assistant roles and try again."
                )
            content = message.get("content")
            if content is not None and not (
                isinstance(content, list) and all(isinstance(b, dict) for b in content)
            ):
                return serialization("Start of structure or map found where not expected.")
            if not content:
                return _invalid(
                    f"The content field in the Message object at messages.{i} is empty."
                )
            for j, block in enumerate(content):
                if "text" in block and not str(block["text"]).strip():
                    return _invalid(
                        f"The text field in the ContentBlock object at messages.{i}.content.{j} is "
                        "blank. Add text to the text field, and try again."
                    )
                if ("toolUse" in block or "toolResult" in block) and not body.get("toolConfig"):
                    return _invalid(
                        "The toolConfig field must be defined when using toolUse and toolResult "
                        "content blocks."
                    )
                if "toolUse" in block:
                    tool_ids.add(block["toolUse"]["toolUseId"])
                if "toolResult" in block and block["toolResult"].get("toolUseId") not in tool_ids:
                    return _invalid(
                        f"The toolResult blocks at messages.{i}.content contain an unknown "
                        "toolUseId."
                    )
        config = body.get("inferenceConfig") or {}
        if not isinstance(config, dict):
            return serialization("Start of structure or map found where not expected.")
        return self._check_inference(config) or self._check_tools(body)

    @staticmethod
    def _check_inference(config: dict[str, Any]) -> Reply | None:
        """inferenceConfig's members: typed, and in their ranges (maxTokens >= 1, temperature
        and topP in [0, 1], at most 4 stopSequences), as the Converse API reference gives them."""
        for name, kind in (("maxTokens", int), ("temperature", float), ("topP", float)):
            value = config.get(name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not (number and (kind is float or float(value).is_integer())):
                shown = "STRING_VALUE" if isinstance(value, str) else type(value).__name__.upper()
                target = "an Integer" if kind is int else "a Float"
                return serialization(f"{shown} can not be converted to {target}")
        if config.get("maxTokens") is not None and config["maxTokens"] < 1:
            where = "inferenceConfig.maxTokens"
            return constraint(config["maxTokens"], where, "have value greater than or equal to 1")
        for name in ("temperature", "topP"):
            value = config.get(name)
            if value is not None and not 0 <= value <= 1:
                where = f"inferenceConfig.{name}"
                if value < 0:
                    return constraint(value, where, "have value greater than or equal to 0")
                return constraint(value, where, "have value less than or equal to 1")
        stops = config.get("stopSequences")
        if stops is not None and len(stops) > 4:
            where = "inferenceConfig.stopSequences"
            return constraint(stops, where, "have length less than or equal to 4")
        return None

    @staticmethod
    def _check_tools(body: dict[str, Any]) -> Reply | None:
        """Each toolSpec named, with a JSON object for its schema (the words for a schema that
        is not one are quoted in aws/aws-sdk-net#3377)."""
        for i, tool in enumerate((body.get("toolConfig") or {}).get("tools") or ()):
            spec = tool.get("toolSpec") or {}
            name, where = spec.get("name"), f"toolConfig.tools.{i + 1}.member.toolSpec.name"
            if name is None:
                return constraint(name, where, "not be null")
            if not name:
                return constraint(name, where, "have length greater than or equal to 1")
            if not isinstance((spec.get("inputSchema") or {}).get("json"), dict):
                return _invalid(
                    f"The format of the value at toolConfig.tools.{i}.toolSpec.inputSchema.json "
                    "is invalid. Provide a json object for the field and try again."
                )
        return None

    def _think(self, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str]:
        """(text, tool uses, stop reason) for a checked Converse body."""
        last = body["messages"][-1]
        results = [b for b in last["content"] if "toolResult" in b]
        if results:
            return self._limit("Tool said: " + " | ".join(map(_block_text, results)), body)
        text = " ".join(_block_text(b) for b in last["content"] if "text" in b)
        images = sum(1 for b in last["content"] if "image" in b or "document" in b)
        tools = (body.get("toolConfig") or {}).get("tools") or []
        choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
        if "tool" in choice:
            tools = [t for t in tools if t["toolSpec"]["name"] == choice["tool"]["name"]]
        if tools:
            uses = []
            for tool in tools:
                name = tool["toolSpec"]["name"]
                arguments = {"query": text}
                digest = hashlib.sha256(f"{name}{text}".encode()).hexdigest()[:12]
                uses.append({"toolUseId": f"tooluse_{digest}", "name": name, "input": arguments})
            names = ", ".join(u["name"] for u in uses)
            return f"I will use {names}.", uses, "tool_use"
        answer, _, reason = self._limit(
            reply_to(text + (f" [{images} file(s)]" if images else "")), body
        )
        return answer, [], reason

    @staticmethod
    def _limit(answer: str, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str]:
        config = body.get("inferenceConfig") or {}
        for stop in config.get("stopSequences") or ():
            if stop in answer:
                return answer[: answer.index(stop)], [], "stop_sequence"
        limit = config.get("maxTokens")
        if limit is not None and words(answer) > limit:
            return " ".join(answer.split()[:limit]), [], "max_tokens"
        return answer, [], "end_turn"

    def _answer(self, request: Request) -> tuple[Reply | None, dict[str, Any]]:
        _, kind = self.model_type(request)
        if kind is None:
            return _invalid("The provided model identifier is invalid."), {}
        if kind != "llm":
            return _invalid(
                "This action doesn't support the model that you provided. Try again with a "
                "supported text or chat model."
            ), {}
        try:
            body = request.json()
        except ValueError:
            return _invalid(
                "Malformed input request, please reformat your input and try again."
            ), {}
        problem = self._check_converse(body)
        if problem is not None:
            return problem, {}
        text, uses, reason = self._think(body)
        prompt = sum(words(_block_text(b)) for m in body["messages"] for b in m["content"])
        prompt += sum(words(s.get("text", "")) for s in body.get("system") or ())
        output = words(text) + sum(len(json.dumps(u["input"]).split()) for u in uses)
        usage = {"inputTokens": prompt, "outputTokens": output, "totalTokens": prompt + output}
        return None, {"text": text, "uses": uses, "stopReason": reason, "usage": usage}

    def converse(self, request: Request) -> Reply:
        problem, answer = self._answer(request)
        if problem is not None:
            return problem
        content: list[dict[str, Any]] = [{"text": answer["text"]}] if answer["text"] else []
        content += [{"toolUse": use} for use in answer["uses"]]
        return Reply(
            200,
            {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": answer["stopReason"],
                "usage": answer["usage"],
                "metrics": {"latencyMs": 1},
            },
        )

    def converse_stream(self, request: Request) -> Reply:
        problem, answer = self._answer(request)
        if problem is not None:
            return problem
        return Reply(stream=self._frames(answer), content_type="application/vnd.amazon.eventstream")

    @staticmethod
    def _frames(answer: dict[str, Any]) -> Iterator[bytes]:
        yield event("messageStart", {"role": "assistant"})
        block = 0
        if answer["text"]:
            for i, word in enumerate(answer["text"].split(" ")):
                piece = word if i == 0 else " " + word
                yield event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
            yield event("contentBlockStop", {"contentBlockIndex": 0})
            block = 1
        for use in answer["uses"]:
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            yield event("contentBlockStart", {"contentBlockIndex": block, "start": start})
            arguments = json.dumps(use["input"])
            for piece in (arguments[:6], arguments[6:14], arguments[14:]):
                if piece:
                    delta = {"toolUse": {"input": piece}}
                    yield event("contentBlockDelta", {"contentBlockIndex": block, "delta": delta})
            yield event("contentBlockStop", {"contentBlockIndex": block})
            block += 1
        yield event("messageStop", {"stopReason": answer["stopReason"]})
        yield event("metadata", {"usage": answer["usage"], "metrics": {"latencyMs": 1}})

    # --- InvokeModel (embeddings) -------------------------------------------------------------

    def invoke(self, request: Request) -> Reply:
        model, kind = self.model_type(request)
        if kind is None:
            return _invalid("The provided model identifier is invalid.")
        try:
            body = request.json()
        except ValueError:
            return _invalid("Malformed input request, please reformat your input and try again.")
        if not isinstance(body, dict):
            return _invalid("Malformed input request: expected type: JSONObject, found: JSONArray")
        base = model.partition(".")[2] if model.split(".")[0] in PROFILE_PREFIXES else model
        if base.startswith("amazon.titan-embed"):
            return self._titan(body)
        if base.startswith("cohere.embed"):
            return self._cohere(body)
        return _invalid("Malformed input request, please reformat your input and try again.")

    @staticmethod
    def _counted(data: dict[str, Any], tokens: int) -> Reply:
        return Reply(200, data, headers={"X-Amzn-Bedrock-Input-Token-Count": str(tokens)})

    def _titan(self, body: dict[str, Any]) -> Reply:
        text = body.get("inputText")
        unknown = sorted(set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"})
        if unknown:
            return _invalid(
                f"Malformed input request: extraneous key [{unknown[0]}] is not permitted"
            )
        if not isinstance(text, str) or not text:
            return _invalid(
                "Malformed input request: #: required key [inputText] not found, please reformat "
                "your input and try again."
            )
        size = int(body.get("dimensions") or 8)
        vector = embed_text(text, size)
        return self._counted(
            {
                "embedding": vector,
                "inputTextTokenCount": words(text),
                "embeddingsByType": {"float": vector},
            },
            words(text),
        )

    def _cohere(self, body: dict[str, Any]) -> Reply:
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _invalid("Malformed input request: #/texts: expected minimum item count: 1")
        if len(texts) > COHERE_MAX_TEXTS:
            return _invalid(
                f"Malformed input request: #/texts: expected maximum item count: {COHERE_MAX_TEXTS}"
            )
        if body.get("input_type") not in INPUT_TYPES:
            return _invalid("Malformed input request: #/input_type: is not a valid enum value")
        vectors = [embed_text(t) for t in texts]
        data: dict[str, Any] = {"id": f"embed-{len(self.received)}", "texts": texts}
        if body.get("embedding_types"):
            data |= {"embeddings": {"float": vectors}, "response_type": "embeddings_by_type"}
        else:
            data |= {"embeddings": vectors, "response_type": "embeddings_floats"}
        return self._counted(data, sum(words(t) for t in texts))


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> BedrockFake:
    keys = {}
    if credentials.get("access_key_id"):
        keys[credentials["access_key_id"]] = credentials.get("secret_access_key", "")
    api_keys = (credentials["api_key"],) if credentials.get("api_key") else ()
    served = {model: kind for kind, model in models.items()}
    return BedrockFake(
        keys, api_keys=api_keys, region=credentials.get("region") or "us-east-1", models=served
    )


CONVERSE = "/model/{model}/converse"
HELLO = [{"role": "user", "content": [{"text": "hi"}]}]
# Signed for a key AWS does not know (the date is checked only after the key).
UNKNOWN_KEY = (
    "AWS4-HMAC-SHA256 Credential=AKIDUNKNOWN000000000/20260101/us-east-1/bedrock/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)

# Sources: docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html (members,
# ranges: maxTokens >= 1, temperature and topP 0-1, at most 4 stopSequences; errors: 400
# ValidationException, 403 AccessDeniedException) and docs.aws.amazon.com/general/latest/gr/
# signature-v4-troubleshooting.html (403 InvalidSignatureException, UnrecognizedClientException,
# MissingAuthenticationTokenException); the words as users quote them: an unknown model
# (aws-samples/amazon-bedrock-workshop#315), a constraint (continuedev/continue#2296).
SPEC = FakeSpec(
    family="bedrock",
    client="boto3",
    serve=_serve,
    aim=aim_base_url(),  # the Bedrock Endpoint URL field
    samples=lambda: {
        "auth_method": "Access_Secret_Key",
        "aws_access_key_id": "AKIDSAMPLE0000000001",
        "aws_secret_access_key": "sample/secret+key0000000000000000000001",
    },
    sign_in=sigv4_sign_in("bedrock"),
    refusals=(
        Refusal("no messages", CONVERSE, {}, says="Value null at 'messages' failed to satisfy "
                "constraint: Member must not be null"),
        Refusal("a string for a message", CONVERSE, {"messages": ["hi"]},
                says="Start of structure or map found where not expected."),
        Refusal("an unknown role", CONVERSE,
                {"messages": [{"role": "system", "content": [{"text": "hi"}]}]},
                says="Value 'system' at 'messages.1.member.role' failed to satisfy constraint"),
        Refusal("an assistant turn first", CONVERSE,
                {"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]},
                says="A conversation must start with a user message."),
        Refusal("a temperature over 1", CONVERSE,
                {"messages": HELLO, "inferenceConfig": {"temperature": 1.5}},
                says="at 'inferenceConfig.temperature' failed to satisfy constraint: Member must "
                     "have value less than or equal to 1"),
        Refusal("no tokens to write", CONVERSE,
                {"messages": HELLO, "inferenceConfig": {"maxTokens": 0}},
                says="Member must have value greater than or equal to 1"),
        Refusal("five stop sequences", CONVERSE,
                {"messages": HELLO, "inferenceConfig": {"stopSequences": list("abcde")}},
                says="Member must have length less than or equal to 4"),
        Refusal("a string maxTokens", CONVERSE,
                {"messages": HELLO, "inferenceConfig": {"maxTokens": "ten"}},
                says="STRING_VALUE can not be converted to an Integer"),
        Refusal("an unknown model", "/model/acme.no-such-model/converse", {"messages": HELLO},
                says="The provided model identifier is invalid."),
        Refusal("a bad signature", CONVERSE, {"messages": HELLO}, status=403,
                says="The request signature we calculated does not match",
                headers={"Host": "bedrock-runtime.us-east-1.amazonaws.com"}),
        Refusal("an unknown key", CONVERSE, {"messages": HELLO}, status=403,
                says="The security token included in the request is invalid.",
                headers={"Authorization": UNKNOWN_KEY}),
        Refusal("no signature", CONVERSE, {"messages": HELLO}, status=403,
                says="Missing Authentication Token", headers={"Authorization": None}),
    ),
)  # fmt: skip
