"""A fake of Tencent Hunyuan's Cloud API 3.0 endpoint: POST / with `X-TC-Action: ChatCompletions`
(JSON, or SSE `data: {...}` frames without a terminator when `Stream` is true). Checked by the
official `tencentcloud-sdk-python-hunyuan` client in tests/unit/runtime/test_hunyuan_fake.py.

Auth is TC3-HMAC-SHA256, verified the way Tencent documents it: the fake recomputes the signature
over the request's signed headers and body with the secret key it knows (with the official
`tencentcloud-sdk-python-common` signer, `Sign.sign_tc3`, not our adapter's). An unknown SecretId is
AuthFailure.SecretIdNotFound, a timestamp more than five minutes off AuthFailure.SignatureExpire,
any other mismatch AuthFailure.SignatureFailure. Every error, as Tencent sends it, is HTTP 200 with
`{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.

Extra failure mode: "echo_key_stream", a streamed reply whose words are followed by an `ErrorMsg`
event quoting the request's credential."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from tencentcloud.common.sign import Sign

from tests.fakes.base import Failure, FakeServer, Reply, Request, reply_to, words
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "hunyuan"
VERSION = "2023-09-01"
SECRET_ID = "AKIDfake-secret-id"
SECRET_KEY = "fake-secret-key"
MAX_MESSAGES = 40
SIGNATURE_WINDOW = 300  # seconds a timestamp may be off
NOTE = "以上内容为AI生成\uff0c不代表开发者立场\uff0c请勿删除或修改本标记"
# ChatCompletionsRequest's fields (tencentcloud-sdk-python-hunyuan, v20230901/models.py).
REQUEST_FIELDS = {
    "Model", "Messages", "Stream", "StreamModeration", "TopP", "Temperature",
    "EnableEnhancement", "Tools", "ToolChoice", "CustomTool", "SearchInfo", "Citation",
    "EnableSpeedSearch", "EnableMultimedia", "EnableDeepSearch", "Seed",
    "ForceSearchEnhancement", "Stop", "EnableRecommendedQuestions", "EnableDeepRead",
    "WebSearchOptions", "TopicChoice", "EnableThinking",
}  # fmt: skip
STATUS_CODES = {
    400: "InvalidParameter",
    401: "AuthFailure.SignatureFailure",
    404: "ResourceNotFound",
    429: "RequestLimitExceeded",
    500: "InternalError",
}
AUTH_MESSAGES = {
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. Please "
    "check your signature is correct.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your SecretId "
    "is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. Timestamp and server time cannot differ by "
    "more than five minutes.",
    "AuthFailure.InvalidAuthorization": "Authorization in the request header is invalid.",
}
_AUTHORIZATION = re.compile(
    rf"^{ALGORITHM} Credential=(?P<id>[^/]+)/(?P<date>\d{{4}}-\d\d-\d\d)/(?P<service>[^/]+)/"
    r"tc3_request, ?SignedHeaders=(?P<headers>[a-z0-9;-]+), ?Signature=(?P<signature>[0-9a-f]{64})$"
)


def _signature_of(request: Request, match: re.Match[str], secret_key: str) -> str:
    names = match["headers"].split(";")
    canonical_headers = "".join(f"{n}:{request.header(n).strip().lower()}\n" for n in names)
    canonical = "\n".join(
        (
            "POST",
            "/",
            "",
            canonical_headers,
            match["headers"],
            hashlib.sha256(request.body).hexdigest(),
        )
    )
    scope = f"{match['date']}/{match['service']}/tc3_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"{ALGORITHM}\n{request.header('x-tc-timestamp')}\n{scope}\n{digest}"
    return Sign.sign_tc3(secret_key, match["date"], match["service"], to_sign)


def _call_id(name: str, arguments: str) -> str:
    return f"call_{hashlib.sha256((name + arguments).encode()).hexdigest()[:16]}"


def _text_of(message: Mapping[str, Any]) -> tuple[str, int]:
    """(text, images) of a message: `Content`, or the parts of `Contents`."""
    parts = message.get("Contents")
    if isinstance(parts, list):
        text = " ".join(p.get("Text", "") for p in parts if p.get("Type") == "text")
        return text, sum(1 for p in parts if p.get("Type") == "image_url")
    return str(message.get("Content") or ""), 0


class HunyuanFake(FakeServer):
    """Serves `models` (the vision ones may take images); any other model is
    InvalidParameterValue.Model."""

    def __init__(
        self,
        secret_id: str = SECRET_ID,
        secret_key: str = SECRET_KEY,
        models: set[str] | None = None,
        vision: set[str] | None = None,
    ) -> None:
        super().__init__(api_key=secret_id)
        self.secret_key = secret_key
        self.models = models or {
            "hunyuan-turbos-latest",
            "hunyuan-t1-latest",
            "hunyuan-standard",
            "hunyuan-lite",
            "hunyuan-vision",
        }
        self.vision = vision if vision is not None else {"hunyuan-vision"}
        self._refusal = threading.local()
        self.route("POST", "/", self.dispatch)

    # --- auth and errors ------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        self._refusal.code = self._auth_problem(request)
        return self._refusal.code is None

    def _auth_problem(self, request: Request) -> str | None:
        match = _AUTHORIZATION.match(request.header("authorization"))
        if match is None or not request.header("x-tc-timestamp").isdigit():
            return "AuthFailure.InvalidAuthorization"
        if not {"content-type", "host"} <= set(match["headers"].split(";")):
            return "AuthFailure.InvalidAuthorization"
        if match["id"] != self.api_key:
            return "AuthFailure.SecretIdNotFound"
        timestamp = int(request.header("x-tc-timestamp"))
        if abs(time.time() - timestamp) > SIGNATURE_WINDOW:
            return "AuthFailure.SignatureExpire"
        stamped_date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
        if match["date"] != stamped_date or match["service"] != "hunyuan":
            return "AuthFailure.SignatureFailure"
        if _signature_of(request, match, self.secret_key) != match["signature"]:
            return "AuthFailure.SignatureFailure"
        return None

    def unauthorized(self) -> Reply:
        code = getattr(self._refusal, "code", None) or "AuthFailure.SignatureFailure"
        self._refusal.code = None
        return self.fault(code, AUTH_MESSAGES.get(code, code))

    def fault(self, code: str, message: str) -> Reply:
        """A Tencent error: HTTP 200, the code and message under Response.Error."""
        request_id = str(uuid.uuid4())
        return Reply(
            200,
            {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}},
            headers={"X-TC-RequestId": request_id},
        )

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        return self.fault(STATUS_CODES.get(status, "InternalError"), message)

    def presented_key(self, request: Request) -> tuple[str, str]:
        header = request.header("authorization")
        match = re.search(r"Credential=([^/,]+)", header)
        return (match[1] if match else ""), header

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        if failure is None or failure.mode != "echo_key_stream":
            return super()._reply(request, failure)
        reply = super()._reply(request, None)
        if reply.stream is not None:
            reply.stream = self._echo_in_stream(reply.stream, self.echo_key(request))
        return reply

    @staticmethod
    def _echo_in_stream(frames: Iterator[bytes], echoed: str) -> Iterator[bytes]:
        for i, frame in enumerate(frames):
            if i == 2:
                failure = {"ErrorMsg": {"Code": 4000, "Msg": echoed}, "Choices": []}
                yield f"data: {json.dumps(failure)}\n\n".encode()
                return
            yield frame

    # --- the API ------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Reply:
        action = request.header("x-tc-action")
        if request.header("x-tc-version") != VERSION:
            return self.fault(
                "NoSuchVersion", f"The API version `{request.header('x-tc-version')}` is invalid."
            )
        if action != "ChatCompletions":
            return self.fault("InvalidAction", f"The action `{action}` is not supported.")
        if not request.header("content-type").startswith("application/json"):
            return self.fault("InvalidParameter", "The Content-Type must be application/json.")
        try:
            body = request.json()
        except ValueError:
            return self.fault("InvalidParameter", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self.fault("InvalidParameter", "The request body must be a JSON object.")
        return self._check(body) or self.chat(body)

    def _check(self, body: dict[str, Any]) -> Reply | None:
        unknown = sorted(set(body) - REQUEST_FIELDS)
        if unknown:
            return self.fault(
                "UnknownParameter", f"The parameter `{unknown[0]}` is not recognized."
            )
        if not body.get("Model"):
            return self.fault(
                "MissingParameter", "The request is missing a required parameter `Model`."
            )
        mistyped = self._mistyped(body)
        if mistyped:
            return self.fault(
                "InvalidParameter", f"The value type of parameter `{mistyped}` is invalid."
            )
        if body["Model"] not in self.models:
            return self.fault("InvalidParameterValue.Model", f"模型不存在: {body['Model']}")
        for name, low, high in (("Temperature", 0.0, 2.0), ("TopP", 0.0, 1.0)):
            value = body.get(name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not low <= value <= high
            ):
                return self.fault(
                    "InvalidParameterValue.ParameterValueError",
                    f"{name} must be a number in [{low}, {high}].",
                )
        for name in ("Stream", "EnableEnhancement"):
            if name in body and not isinstance(body[name], bool):
                return self.fault("InvalidParameter", f"{name} must be a boolean.")
        return self._check_messages(body) or self._check_tools(body)

    @staticmethod
    def _mistyped(body: dict[str, Any]) -> str | None:
        """The first field whose JSON type is not ChatCompletionsRequest's, as the API gateway
        checks before the model sees the request."""
        strings = {"Model", "ToolChoice", "TopicChoice"}
        objects = {"CustomTool", "WebSearchOptions"}
        lists = {"Messages", "Tools", "Stop"}
        for name, value in body.items():
            if value is None or name in ("Temperature", "TopP"):
                continue
            if (
                (name in strings and not isinstance(value, str))
                or (name in objects and not isinstance(value, dict))
                or (name in lists and not isinstance(value, list))
                or (name == "Seed" and (isinstance(value, bool) or not isinstance(value, int)))
            ):
                return name
        for i, message in enumerate(body.get("Messages") or ()):
            if not isinstance(message, dict):
                return f"Messages.{i}"
            for name in ("Role", "Content", "ToolCallId"):
                if name in message and not isinstance(message[name], str):
                    return f"Messages.{i}.{name}"
            for name in ("Contents", "ToolCalls"):
                if name in message and not isinstance(message[name], list):
                    return f"Messages.{i}.{name}"
        for i, tool in enumerate(body.get("Tools") or ()):
            if not isinstance(tool, dict) or not isinstance(tool.get("Function", {}), dict):
                return f"Tools.{i}"
        if not all(isinstance(stop, str) for stop in body.get("Stop") or ()):
            return "Stop"
        return None

    def _check_messages(self, body: dict[str, Any]) -> Reply | None:
        messages = body.get("Messages")
        if not messages:
            return self.fault(
                "MissingParameter", "The request is missing a required parameter `Messages`."
            )
        if len(messages) > MAX_MESSAGES:
            return self.fault("InvalidParameter", f"Messages 长度最多为 {MAX_MESSAGES}")
        turns = [m.get("Role") for m in messages if isinstance(m, dict)]
        if len(turns) != len(messages) or any(
            r not in ("system", "user", "assistant", "tool") for r in turns
        ):
            return self.fault(
                "InvalidParameter", "Message.Role 可选值: system、user、assistant、tool"
            )
        if "system" in turns[1:]:
            return self.fault("InvalidParameter", "system 角色如存在则必须位于列表的最开始")
        # user (or a run of tool results) and assistant alternate, from a user turn to a user/tool.
        pattern = "".join(
            {"user": "u", "tool": "t", "assistant": "a"}[r] for r in turns if r != "system"
        )
        if not re.fullmatch(r"u(a(u|t+))*", pattern):
            return self.fault(
                "InvalidParameter",
                "user(tool) 和 assistant 需交替出现, 以 user 提问开始, user(tool) 提问结束",
            )
        called: set[str] = set()
        for message in messages:
            text, images = _text_of(message)
            if not text.strip() and not images and not message.get("ToolCalls"):
                return self.fault("InvalidParameter", "Message.Content 不能为空")
            if images and body["Model"] not in self.vision:
                return self.fault("InvalidParameter", f"模型 {body['Model']} 不支持图片输入")
            called.update(c.get("Id", "") for c in message.get("ToolCalls") or ())
            if message["Role"] == "tool" and message.get("ToolCallId") not in called:
                return self.fault(
                    "InvalidParameter", f"ToolCallId {message.get('ToolCallId')} 不存在"
                )
        return None

    def _check_tools(self, body: dict[str, Any]) -> Reply | None:
        for tool in [
            *(body.get("Tools") or ()),
            *([body["CustomTool"]] if body.get("CustomTool") else []),
        ]:
            function = tool.get("Function") or {}
            if tool.get("Type") != "function" or not function.get("Name"):
                return self.fault(
                    "InvalidParameter", "Tool.Type 只支持 function, 且 Function.Name 必填"
                )
            try:
                json.loads(function.get("Parameters") or "{}")
            except (TypeError, ValueError):
                return self.fault("InvalidParameter", "Function.Parameters 必须是 JSON 字符串")
        choice = body.get("ToolChoice", "auto")
        if choice not in ("none", "auto", "custom"):
            return self.fault("InvalidParameterValue", "ToolChoice 可选值: none、auto、custom")
        if choice == "custom" and not body.get("CustomTool"):
            return self.fault("InvalidParameter", "ToolChoice 为 custom 时 CustomTool 必填")
        return None

    def _think(self, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str]:
        """(answer, tool calls, FinishReason) for a checked body."""
        messages = body["Messages"]
        if messages[-1]["Role"] == "tool":
            results = []
            for message in reversed(messages):
                if message["Role"] != "tool":
                    break
                results.insert(0, _text_of(message)[0])
            return self._stop("Tool said: " + " | ".join(results), body)
        text, images = _text_of(messages[-1])
        choice = body.get("ToolChoice", "auto")
        tools = [body["CustomTool"]] if choice == "custom" else body.get("Tools") or []
        if tools and choice != "none":
            arguments = json.dumps({"query": text}, ensure_ascii=False)
            calls = [
                {
                    "Id": _call_id(tool["Function"]["Name"], arguments),
                    "Type": "function",
                    "Index": index,
                    "Function": {"Name": tool["Function"]["Name"], "Arguments": arguments},
                }
                for index, tool in enumerate(tools)
            ]
            return "", calls, "tool_calls"
        return self._stop(reply_to(text + (f" [{images} image(s)]" if images else "")), body)

    @staticmethod
    def _stop(answer: str, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str]:
        """Hunyuan stops after (not before) a stop string it meets."""
        for stop in body.get("Stop") or ():
            if stop and stop in answer:
                answer = answer[: answer.index(stop) + len(stop)]
        return answer, [], "stop"

    def chat(self, body: dict[str, Any]) -> Reply:
        answer, calls, finish = self._think(body)
        prompt = sum(words(_text_of(m)[0]) for m in body["Messages"])
        completion = words(answer) + sum(words(c["Function"]["Arguments"]) for c in calls)
        usage = {
            "PromptTokens": prompt,
            "CompletionTokens": completion,
            "TotalTokens": prompt + completion,
        }
        request_id = str(uuid.uuid4())
        envelope = {"Note": NOTE, "Created": int(time.time()), "Id": request_id}
        if body.get("Stream"):
            return Reply(
                stream=self._frames(envelope, answer, calls, finish, usage),
                content_type="text/event-stream",
                headers={"X-TC-RequestId": request_id},
            )
        message: dict[str, Any] = {"Role": "assistant", "Content": answer}
        if calls:
            message["ToolCalls"] = calls
        choice = {"Index": 0, "Message": message, "FinishReason": finish}
        return Reply(
            200,
            {
                "Response": {
                    **envelope,
                    "Choices": [choice],
                    "Usage": usage,
                    "RequestId": request_id,
                }
            },
        )

    @staticmethod
    def _frames(envelope, answer, calls, finish, usage) -> Iterator[bytes]:
        """One `data:` frame per word (or per tool call), usage counted so far in each, the
        FinishReason on the last; no [DONE]."""
        deltas = [{"Role": "assistant", "Content": "", "ToolCalls": [call]} for call in calls]
        pieces = answer.split(" ") if answer else []
        deltas += [
            {"Role": "assistant", "Content": w if i == 0 else " " + w} for i, w in enumerate(pieces)
        ]
        deltas.append({"Role": "assistant", "Content": ""})
        for i, delta in enumerate(deltas):
            last = i == len(deltas) - 1
            done = min(i + 1, len(deltas) - 1)
            so_far = {
                **usage,
                "CompletionTokens": usage["CompletionTokens"] if last else done,
                "TotalTokens": usage["PromptTokens"]
                + (usage["CompletionTokens"] if last else done),
            }
            choice = {"Index": 0, "Delta": delta, "FinishReason": finish if last else ""}
            frame = {**envelope, "Choices": [choice], "Usage": so_far}
            yield f"data: {json.dumps(frame, ensure_ascii=False)}\n\n".encode()


def serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> HunyuanFake:
    return HunyuanFake(
        secret_id=credentials["secret_id"],
        secret_key=credentials["secret_key"],
        models={"hunyuan-standard", *models.values()},
    )


def tc3_sign_in(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """Signed in as Tencent Cloud API 3.0 wants (cloud.tencent.com/document/api/1729/101843):
    TC3-HMAC-SHA256 over content-type and host, by the official SDK's `Sign.sign_tc3`."""
    content_type = headers.get("Content-Type", "application/json")
    host = urlsplit(url).netloc
    timestamp = int(time.time())
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical = "\n".join(
        (
            method,
            "/",
            "",
            f"content-type:{content_type.lower()}\nhost:{host.lower()}\n",
            "content-type;host",
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{date}/{SERVICE}/tc3_request"
    to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = Sign.sign_tc3(credentials["secret_key"], date, SERVICE, to_sign)
    return {
        **headers,
        "Content-Type": content_type,
        "X-TC-Action": "ChatCompletions",
        "X-TC-Version": VERSION,
        "X-TC-Timestamp": str(timestamp),
        "Authorization": f"{ALGORITHM} Credential={credentials['secret_id']}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={signature}",
    }


ASK = {"Model": "{model}", "Messages": [{"Role": "user", "Content": "hi"}]}
# Tencent Cloud API 3.0's common error codes (cloud.tencent.com/document/api/1729/101843 and each
# product's "公共错误码": AuthFailure.*, MissingParameter, UnknownParameter, InvalidParameter,
# NoSuchVersion, InvalidAction) and Hunyuan's own (InvalidParameterValue.Model); every error is
# HTTP 200 with Response.Error (tencentcloud-sdk-python-common's abstract_client reads it so).
SPEC = FakeSpec(
    family="hunyuan",
    client="tencentcloud-sdk-python-hunyuan",
    serve=serve,
    aim=aim_base_url(),
    sign_in=tc3_sign_in,
    refusals=(
        Refusal(
            "an unknown SecretId",
            "/",
            ASK,
            status=200,
            says="AuthFailure.SecretIdNotFound",
            headers={
                "Authorization": f"{ALGORITHM} Credential=AKIDnobody/2024-01-01/hunyuan/"
                f"tc3_request, SignedHeaders=content-type;host, Signature={'0' * 64}"
            },
        ),
        Refusal(
            "a signature over other headers than those sent",
            "/",
            ASK,
            status=200,
            says="AuthFailure.SignatureFailure",
            headers={"Content-Type": "application/json; charset=utf-8"},
        ),
        Refusal(
            "no Authorization",
            "/",
            ASK,
            status=200,
            says="AuthFailure.InvalidAuthorization",
            headers={"Authorization": None},
        ),
        Refusal(
            "a timestamp long past",
            "/",
            ASK,
            status=200,
            says="AuthFailure.SignatureExpire",
            headers={"X-TC-Timestamp": "1500000000"},
        ),
        Refusal(
            "another API version",
            "/",
            ASK,
            status=200,
            says="NoSuchVersion",
            headers={"X-TC-Version": "2017-03-12"},
        ),
        Refusal(
            "an unknown action",
            "/",
            ASK,
            status=200,
            says="InvalidAction",
            headers={"X-TC-Action": "Chat"},
        ),
        Refusal(
            "no Model",
            "/",
            {"Messages": ASK["Messages"]},
            status=200,
            says="MissingParameter",
        ),
        Refusal(
            "an unknown model",
            "/",
            {**ASK, "Model": "hunyuan-nonesuch"},
            status=200,
            says="InvalidParameterValue.Model",
        ),
        Refusal(
            "an unknown field",
            "/",
            {**ASK, "MaxTokens": 10},
            status=200,
            says="UnknownParameter",
        ),
        Refusal(
            "Messages as a string",
            "/",
            {**ASK, "Messages": "hi"},
            status=200,
            says="InvalidParameter",
        ),
        Refusal(
            "a Model that is a list",
            "/",
            {**ASK, "Model": ["hunyuan-standard"]},
            status=200,
            says="InvalidParameter",
        ),
        Refusal(
            "Stream as a string",
            "/",
            {**ASK, "Stream": "yes"},
            status=200,
            says="InvalidParameter",
        ),
        Refusal(
            "Temperature above 2",
            "/",
            {**ASK, "Temperature": 3},
            status=200,
            says="InvalidParameterValue",
        ),
    ),
)
