"""A fake iFlytek Spark: its WebSocket chat API (https://www.xfyun.cn/doc/spark/Web.html), on the
`websockets` server.

The handshake is checked as iFlytek's gateway does: an unknown path is 404, a missing or malformed
`authorization`, an unknown api_key or a signature that does not match is 401, a date more than
300 s off is 403, each with `{"message"}`. Then one request frame: `header.app_id` must belong to
the key, `parameter.chat.domain` must be the route's, the messages and parameters well formed;
a failure is an error frame (`header.code`, `message`) and the connection closes. The reply
echoes the last user message, a word a frame, the last (status 2) with the usage.

Failure modes: "401", "404" and "echo_key" refuse the handshake; "429" and "500" answer the
frame with Spark's rate-limit (11202) and engine (10012) codes; "echo_key_stream" sends an error
frame quoting the key after the first words; "drop", "drop_stream", "slow", "trickle" and
"broken_json" as in `base.py`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import websocket
from websockets.datastructures import Headers
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from websockets.sync.server import Server, ServerConnection, serve

from providers.runtime.base import Endpoint
from tests.fakes.base import FakeServer, Request, reply_to
from tests.fakes.spec import FakeSpec, Refusal

# path -> (domain, the largest max_tokens), as the doc lists them.
ROUTES: dict[str, tuple[str, int]] = {
    "/v4.0/chat": ("4.0Ultra", 8192),
    "/chat/max-32k": ("max-32k", 8192),
    "/v3.5/chat": ("generalv3.5", 8192),
    "/chat/pro-128k": ("pro-128k", 4096),
    "/v3.1/chat": ("generalv3", 8192),
    "/v1.1/chat": ("lite", 4096),
}
CLOCK_SKEW = 300  # seconds a signed date may be off
BAD_SIGNATURE = "HMAC signature does not match"
UNVERIFIABLE = "HMAC signature cannot be verified"
BAD_DATE = (
    "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC "
    "Authentication"
)
_FIELD = re.compile(r'(\w+)="([^"]*)"')


class SparkFake(FakeServer):
    def __init__(
        self, app_id: str, api_key: str, api_secret: str, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(api_key)
        self.app_id = app_id
        self.api_secret = api_secret
        self.tls = tls  # serve wss:// (the URL then names localhost, as a certificate does)
        self._ws: Server | None = None

    # --- serving ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The fake's address as http(s):// like the catalog's base URL; the adapter and the SDK
        connect to ws(s)://."""
        assert self._ws is not None
        port = self._ws.socket.getsockname()[1]
        return f"https://localhost:{port}" if self.tls else f"http://127.0.0.1:{port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def start(self) -> SparkFake:
        self._ws = serve(
            self._session,
            "127.0.0.1",
            0,
            ssl=self.tls,
            process_request=self._handshake,
            compression=None,
        )
        threading.Thread(target=self._ws.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._ws is not None:
            self._ws.shutdown()

    # --- the handshake ------------------------------------------------------------------------

    @staticmethod
    def _refuse(status: int, message: str) -> WsResponse:
        body = json.dumps({"message": message}).encode()
        headers = Headers(
            [("Content-Type", "application/json; charset=utf-8"), ("Connection", "close"),
             ("Content-Length", str(len(body)))]
        )  # fmt: skip
        return WsResponse(status, "", headers, body)

    def _handshake(self, connection: ServerConnection, ws_request: WsRequest) -> WsResponse | None:
        parts = urlsplit(ws_request.path)
        request = Request(
            method="GET",
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in ws_request.headers.raw_items()},
            body=b"",
        )
        self.received.append(request)
        failure = self._next_failure()
        connection.spark = (request, failure)  # type: ignore[attr-defined]
        if failure is not None and failure.mode == "echo_key":
            return self._refuse(int(failure.status), self.echo_key(request))
        if failure is not None and failure.mode == "401":
            return self._refuse(401, BAD_SIGNATURE)
        if parts.path not in ROUTES or (failure is not None and failure.mode == "404"):
            return self._refuse(404, "no Route matched with those values")
        refusal = self._auth_refusal(request)
        return self._refuse(*refusal) if refusal else None

    def _auth_refusal(self, request: Request) -> tuple[int, str] | None:
        query = {name: values[0] for name, values in request.query.items()}
        if not {"authorization", "date", "host"} <= query.keys():
            return 401, "Unauthorized"
        try:
            fields = dict(_FIELD.findall(base64.b64decode(query["authorization"]).decode()))
        except ValueError:
            return 401, UNVERIFIABLE
        if (
            fields.get("api_key") != self.api_key
            or fields.get("algorithm") != "hmac-sha256"
            or fields.get("headers") != "host date request-line"
        ):
            return 401, UNVERIFIABLE
        try:
            signed_at = parsedate_to_datetime(query["date"]).timestamp()
        except (TypeError, ValueError):
            return 403, BAD_DATE
        if abs(time.time() - signed_at) > CLOCK_SKEW:
            return 403, BAD_DATE
        origin = f"host: {query['host']}\ndate: {query['date']}\nGET {request.path} HTTP/1.1"
        expected = base64.b64encode(
            hmac.new(self.api_secret.encode(), origin.encode(), hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(fields.get("signature", ""), expected):
            return 401, BAD_SIGNATURE
        return None

    def presented_key(self, request: Request) -> tuple[str, str]:
        authorization = (request.query.get("authorization") or [""])[0]
        try:
            decoded = base64.b64decode(authorization).decode()
        except ValueError:
            return "", authorization
        return dict(_FIELD.findall(decoded)).get("api_key", ""), authorization

    # --- the conversation ---------------------------------------------------------------------

    def _session(self, connection: ServerConnection) -> None:
        request, failure = connection.spark  # type: ignore[attr-defined]
        mode = failure.mode if failure is not None else ""
        raw = connection.recv()
        request.body = raw.encode() if isinstance(raw, str) else raw
        sid = f"cht000{uuid.uuid4().hex[:12]}@dx"
        if mode == "drop":
            connection.socket.shutdown(socket.SHUT_RDWR)
            return
        if mode == "slow":
            time.sleep(failure.seconds)
        if mode == "broken_json":
            connection.send('{"header": {"code": 0, "sid": "x", "status": 2}, "payload": {')
            return
        errors = {"429": (11202, "licc limit: qps exceeded"), "500": (10012, "EngineInternalError")}
        if mode in errors:
            connection.send(_error_frame(sid, *errors[mode]))
            return
        code, message, route_frames = self._answer(request, sid)
        if code:
            connection.send(_error_frame(sid, code, message))
            return
        for index, frame in enumerate(route_frames):
            if mode == "drop_stream" and index == 2:
                connection.socket.shutdown(socket.SHUT_RDWR)
                return
            if mode == "echo_key_stream" and index == 1:
                connection.send(_error_frame(sid, 11200, self.echo_key(request)))
                return
            if mode == "trickle" and index:
                time.sleep(failure.seconds)
            connection.send(json.dumps(frame))

    def _answer(self, request: Request, sid: str) -> tuple[int, str, list[dict[str, Any]]]:
        """(error code, message, reply frames) for one request frame."""
        try:
            frame = json.loads(request.body)
            header, chat = frame["header"], frame["parameter"]["chat"]
            text = frame["payload"]["message"]["text"]
        except (ValueError, KeyError, TypeError):
            return 10003, "the message is not a Spark request frame", []
        if header.get("app_id") != self.app_id:
            return 10313, "appid cannot match apikey", []
        domain, most_tokens = ROUTES[request.path]
        if chat.get("domain") != domain:
            return 10005, f"domain {chat.get('domain')!r} is not served at {request.path}", []
        if (
            not isinstance(text, list)
            or not text
            or any(
                not isinstance(m, dict)
                or m.get("role") not in ("system", "user", "assistant")
                or not isinstance(m.get("content"), str)
                for m in text
            )
        ):
            return 10004, "payload.message.text must list {role, content}", []
        problem = _parameter_problem(chat, most_tokens)
        if problem:
            return 10163, problem, []
        asked = next((m["content"] for m in reversed(text) if m["role"] == "user"), "")
        words = reply_to(asked).split()[: chat.get("max_tokens", 4096)]
        prompt_tokens = sum(len(m["content"].split()) for m in text)
        frames = []
        for index, word in enumerate(words):
            status = 2 if index == len(words) - 1 else (0 if index == 0 else 1)
            content = word if index == 0 else " " + word
            frames.append(
                {
                    "header": {"code": 0, "message": "Success", "sid": sid, "status": status},
                    "payload": {
                        "choices": {
                            "status": status,
                            "seq": index,
                            "text": [{"content": content, "role": "assistant", "index": 0}],
                        }
                    },
                }
            )
        frames[-1]["payload"]["usage"] = {
            "text": {
                "question_tokens": len(asked.split()),
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
            }
        }
        return 0, "", frames


def _parameter_problem(chat: Mapping[str, Any], most_tokens: int) -> str:
    temperature, max_tokens, top_k = (chat.get(k) for k in ("temperature", "max_tokens", "top_k"))
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 < temperature <= 1
    ):
        return "temperature must be in (0, 1]"
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or not 1 <= max_tokens <= most_tokens
    ):
        return f"max_tokens must be in [1, {most_tokens}]"
    if top_k is not None and (not isinstance(top_k, int) or not 1 <= top_k <= 6):
        return "top_k must be in [1, 6]"
    return ""


def _error_frame(sid: str, code: int, message: str) -> str:
    return json.dumps({"header": {"code": code, "message": message, "sid": sid, "status": 2}})


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> SparkFake:
    return SparkFake(
        app_id=credentials["app_id"],
        api_key=credentials["api_key"],
        api_secret=credentials["api_secret"],
    )


def _aim(endpoint: Endpoint, url: str) -> Endpoint:
    return replace(endpoint, base_url=url)


def _refuse(
    fake: FakeServer, credentials: Mapping[str, str], model: str, refusal: Refusal
) -> tuple[int, str]:
    """A refusal over Spark's WebSocket: `refusal.headers` alter the signed URL (`date`, or the
    `api_secret` it is signed with), `{app_id}` in the body is the form's. A refused handshake
    gives its HTTP status, an answered frame its `header.code`."""
    date = refusal.headers.get("date") or formatdate(usegmt=True)
    secret = refusal.headers.get("api_secret") or credentials["api_secret"]
    host = urlsplit(fake.url).netloc
    origin = f"host: {host}\ndate: {date}\nGET {refusal.path} HTTP/1.1"
    signature = base64.b64encode(
        hmac.new(secret.encode(), origin.encode(), hashlib.sha256).digest()
    ).decode()
    authorization = base64.b64encode(
        f'api_key="{credentials["api_key"]}", algorithm="hmac-sha256", '
        f'headers="host date request-line", signature="{signature}"'.encode()
    ).decode()
    query = urlencode({"authorization": authorization, "date": date, "host": host})
    url = f"{fake.ws_url}{refusal.path}?{query}"  # type: ignore[attr-defined]
    try:
        connection = websocket.create_connection(url, timeout=5)
    except websocket.WebSocketBadStatusException as refused:
        return refused.status_code, (refused.resp_body or b"").decode()
    try:
        body = json.dumps(refusal.body).replace("{model}", model)
        connection.send(body.replace("{app_id}", credentials["app_id"]))
        reply = connection.recv()
    finally:
        connection.close()
    return json.loads(reply)["header"]["code"], reply


def _frame(**chat: Any) -> dict[str, Any]:
    return {
        "header": {"app_id": "{app_id}", "uid": "strict"},
        "parameter": {"chat": {"domain": "lite", **chat}},
        "payload": {"message": {"text": [{"role": "user", "content": "hi"}]}},
    }


LITE = "/v1.1/chat"
SPEC = FakeSpec(
    family="spark",
    client="spark-ai-python",
    serve=_serve,
    aim=_aim,
    # https://www.xfyun.cn/doc/spark/Web.html and its URL-signing page (300 s of clock skew);
    # the codes as iFlytek's table lists them.
    refusals=(
        Refusal("a wrong secret", LITE, status=401, says="signature", headers={"api_secret": "x"}),
        Refusal(
            "a date an hour off",
            LITE,
            status=403,
            says="date",
            headers={"date": formatdate(time.time() - 3600, usegmt=True)},
        ),
        Refusal("an unknown route", "/v9.9/chat", status=404, says="no Route"),
        Refusal("not a request frame", LITE, {"hello": "there"}, status=10003),
        Refusal(
            "an app_id of another key",
            LITE,
            {**_frame(), "header": {"app_id": "other", "uid": "strict"}},
            status=10313,
        ),
        Refusal("a domain of another route", LITE, _frame(domain="generalv3"), status=10005),
        Refusal("a temperature above 1", LITE, _frame(temperature=5), status=10163),
        Refusal("max_tokens past the route's", LITE, _frame(max_tokens=100000), status=10163),
    ),
    refuse=_refuse,
)
