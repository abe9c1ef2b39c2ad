"""iFlytek Spark: chat over Spark's WebSocket API (https://www.xfyun.cn/doc/spark/Web.html).

One connection per call, to `wss://<host><route path>` signed in its query: `authorization` is
base64 of `api_key="…", algorithm="hmac-sha256", headers="host date request-line",
signature="…"`, the signature an HMAC-SHA256 (key: api_secret) of `host: …\\ndate: …\\nGET <path>
HTTP/1.1`; `date` (RFC 1123, checked within 300 s) and `host` go beside it. A bad signature or date
is refused in the handshake (401/403, `{"message"}`). One request frame goes out; reply frames
carry `header{code,message,status}` and `payload{choices{status,text[{content}]}, usage{text}}`,
the last with status 2. A code other than 0 is an error (`CODE_ERRORS`), sent once, then the
server closes. Function calls are HTTP-only at iFlytek (the WebSocket doc says so): refused here.

The socket is ours: resolved and judged by the address guard (`netguard.connect`), wrapped in TLS
with the CA bundle, then handed to websocket-client for the handshake and framing. Connect and
read timeouts, the call's total deadline and the retry policy apply as in `http.py`: a call is
retried until its first reply frame, never after.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Iterator, Mapping
from email.utils import formatdate
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import websocket

from config import errors
from providers.runtime import failures, netguard
from providers.runtime.base import Adapter, ChatChunk, ChatRequest, ChatResult, Endpoint, Usage
from providers.runtime.http import USER_AGENT, Pool

# header.code -> error class, after the WebSocket doc's error code table (as langchain4j's
# SparkResponseErrorCode copies it; 10313, app_id not the key's, is from iFlytek's general table).
# Unlisted codes (10003-10005 malformed, 10013/10014/10019 moderation, 10907 too long...): bad
# request.
CODE_ERRORS: dict[int, type[errors.UpstreamError]] = {
    **dict.fromkeys((10015, 10016, 10313, 11200, 11500), errors.UpstreamAuth),
    11201: errors.UpstreamQuota,  # the day's allowance is spent
    **dict.fromkeys((10006, 10007, 11202, 11203), errors.UpstreamRateLimited),
    **dict.fromkeys(
        (10000, 10001, 10002, 10008, 10009, 10010, 10011, 10012, 10110, 10222),
        errors.UpstreamUnavailable,
    ),
}
LAST_FRAME = 2  # header.status of the final reply frame
CLOSE_WAIT = 1.0  # seconds to wait for the server's close frame when we hang up
PARAMETERS = ("temperature", "max_tokens", "top_k", "show_ref_label")
ROLES = ("system", "user", "assistant")


def signature_query(url: str, api_key: str, api_secret: str, date: str) -> dict[str, str]:
    """The query that signs a connection to `url`: iFlytek's HMAC-SHA256 authorization, the
    date and the host."""
    parts = urlsplit(url)
    origin = f"host: {parts.netloc}\ndate: {date}\nGET {parts.path} HTTP/1.1"
    signature = base64.b64encode(
        hmac.new(api_secret.encode(), origin.encode(), hashlib.sha256).digest()
    ).decode()
    authorization = (
        f'api_key="{api_key}", algorithm="hmac-sha256", headers="host date request-line", '
        f'signature="{signature}"'
    )
    return {
        "authorization": base64.b64encode(authorization.encode()).decode(),
        "date": date,
        "host": parts.netloc,
    }


def _status_error(status: int, message: str) -> errors.UpstreamError:
    """A refused handshake, mapped as http.py maps statuses."""
    text = f"{status}: {message}"
    if status in (401, 403):
        return errors.UpstreamAuth(text)
    if status == 429:
        return errors.UpstreamRateLimited(text)
    if status == 404:
        return errors.UpstreamNotFound(text)
    if status >= 500:
        return errors.UpstreamUnavailable(text)
    return errors.UpstreamBadRequest(text)


class SparkAdapter(Adapter):
    family = "spark"
    offers = frozenset({"chat", "stream"})
    error_field = "message"

    def __init__(self, endpoint: Endpoint, pool: Pool) -> None:
        # The signed query values lately sent: masked in errors like a signed header.
        self._authorizations: collections.deque[str] = collections.deque(maxlen=8)
        self.policy = pool.policy
        super().__init__(endpoint, pool)

    def secret_values(self) -> tuple[str, ...]:
        values = {*super().secret_values(), *self._authorizations}
        return tuple(sorted(values, key=len, reverse=True))

    # --- the request ------------------------------------------------------------------------

    def _route(self, model: str) -> Mapping[str, str]:
        route = self.endpoint.options.get("routes", {}).get(model)
        if not route:
            raise errors.UpstreamNotFound(f"Spark has no model {model!r}.")
        return route

    def _frame(self, domain: str, request: ChatRequest) -> dict[str, Any]:
        if request.tools:
            raise self._unsupported("function calls over its WebSocket API")
        text = []
        for message in request.messages:
            if message.role not in ROLES or message.tool_calls:
                raise self._unsupported("tool calls or tool results")
            if message.images():
                raise self._unsupported("images in chat")
            text.append({"role": message.role, "content": message.text()})
        chat = {"domain": domain}
        chat.update({k: request.parameters[k] for k in PARAMETERS if k in request.parameters})
        return {
            "header": {"app_id": self.endpoint.credentials["app_id"], "uid": USER_AGENT[:32]},
            "parameter": {"chat": chat},
            "payload": {"message": {"text": text}},
        }

    # --- the connection ---------------------------------------------------------------------

    def _url(self, path: str) -> str:
        base = self.endpoint.base_url.rstrip("/")
        scheme, rest = base.split("://", 1)
        return {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme) + "://" + rest + path

    def _connect(self, path: str, deadline: float) -> websocket.WebSocket:
        url = self._url(path)
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        host, port = parts.hostname or "", parts.port or (443 if secure else 80)
        timeout = min(self.endpoint.timeouts.connect, max(deadline - time.monotonic(), 0.001))
        date = formatdate(usegmt=True)
        credentials = self.endpoint.credentials
        query = signature_query(url, credentials["api_key"], credentials["api_secret"], date)
        self._authorizations.append(query["authorization"])
        try:
            sock = netguard.connect((host, port), timeout, policy=self.policy)
        except netguard.ForbiddenAddress as exc:
            raise errors.UpstreamForbiddenAddress(self.http.bounded(str(exc))) from exc
        except TimeoutError as exc:
            raise errors.UpstreamConnectTimeout(
                failures.connect_timeout_message(host=host, port=port, seconds=timeout)
            ) from exc
        except OSError as exc:
            raise errors.UpstreamConnection(
                self.http.bounded(failures.connection_message(exc, host=host, port=port))
            ) from exc
        try:
            if secure:
                context = ssl.create_default_context(cafile=certifi.where())
                sock = context.wrap_socket(sock, server_hostname=host)
            return websocket.create_connection(
                f"{url}?{urlencode(query)}",
                timeout=timeout,
                socket=sock,
                header={"User-Agent": USER_AGENT},
            )
        except websocket.WebSocketBadStatusException as exc:
            sock.close()
            refused = (exc.status_code, exc.resp_body)
        except (websocket.WebSocketTimeoutException, TimeoutError) as exc:
            sock.close()
            raise errors.UpstreamConnectTimeout(
                "Spark did not open the connection in time."
            ) from exc
        except (websocket.WebSocketException, OSError) as exc:
            sock.close()
            raise errors.UpstreamConnection(
                f"Could not open the connection to Spark: {self.http.bounded(str(exc))}"
            ) from exc
        # Raised outside the handler: websocket-client's exception quotes the whole refusal.
        raise _status_error(refused[0], self._body_message(refused[1]))

    def _body_message(self, body: bytes | None) -> str:
        text = (body or b"").decode("utf-8", "replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return self.http.bounded(self.error_message(parsed)) or "refused"

    def _receive(self, ws: websocket.WebSocket, deadline: float) -> dict[str, Any]:
        """The next reply frame; an error frame raises its mapped error."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._past_deadline()
        ws.settimeout(min(self.endpoint.timeouts.read, left))
        try:
            raw = ws.recv()
        except (websocket.WebSocketTimeoutException, TimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise self._past_deadline() from exc
            raise errors.UpstreamTimeout("Spark's answer stalled past the read timeout.") from exc
        except (websocket.WebSocketException, OSError) as exc:
            raise errors.UpstreamConnection(
                f"The connection dropped while Spark answered: {self.http.bounded(str(exc))}"
            ) from exc
        if not raw:
            raise errors.UpstreamConnection("Spark closed the connection before its last frame.")
        frame = json.loads(raw)
        code = int(frame["header"]["code"])
        if code != 0:
            message = self.http.bounded(str(frame["header"].get("message", "")))
            raise CODE_ERRORS.get(code, errors.UpstreamBadRequest)(f"Spark error {code}: {message}")
        return frame

    def _past_deadline(self) -> errors.UpstreamTimeout:
        return errors.UpstreamTimeout(
            f"Spark took longer than {self.endpoint.timeouts.total:g} s in all; the call was cut "
            "off."
        )

    def _open(
        self, path: str, frame: str, deadline: float
    ) -> tuple[websocket.WebSocket, dict[str, Any]]:
        """A connection that took the request frame, and the first reply frame."""
        ws = self._connect(path, deadline)
        try:
            ws.send(frame)
            return ws, self._receive(ws, deadline)
        except (websocket.WebSocketException, OSError) as exc:  # the send
            ws.close(timeout=CLOSE_WAIT)
            raise errors.UpstreamConnection(
                f"The connection dropped before Spark answered: {self.http.bounded(str(exc))}"
            ) from exc
        except BaseException:
            ws.close(timeout=CLOSE_WAIT)
            raise

    def _frames(self, model: str, request: ChatRequest) -> Iterator[dict[str, Any]]:
        """The reply frames of one call, the connection opened (again, as the retry policy
        allows) until the first frame arrives."""
        route = self._route(model)
        frame = json.dumps(self._frame(route["domain"], request))
        retry, deadline = self.endpoint.retry, time.monotonic() + self.endpoint.timeouts.total
        attempt = 0
        while True:
            attempt += 1
            try:
                ws, reply = self._open(route["path"], frame, deadline)
                break
            except errors.UpstreamError as failure:
                pause = retry.delay(attempt, None)
                unanswered = isinstance(failure, errors.UpstreamTimeout) and not isinstance(
                    failure, errors.UpstreamConnectTimeout
                )
                if (
                    not failure.retryable
                    or unanswered
                    or attempt >= retry.attempts
                    or time.monotonic() + pause > deadline
                ):
                    raise
                self.http.sleep(pause)
        try:
            yield reply
            while reply["header"]["status"] != LAST_FRAME:
                reply = self._receive(ws, deadline)
                yield reply
        finally:
            ws.close(timeout=CLOSE_WAIT)

    # --- chat -------------------------------------------------------------------------------

    @staticmethod
    def _usage(frame: Mapping[str, Any]) -> Usage | None:
        text = frame.get("payload", {}).get("usage", {}).get("text")
        if not text:
            return None
        return Usage(text.get("prompt_tokens", 0), text.get("completion_tokens", 0))

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        parts, usage = [], None
        for frame in self._frames(model, request):
            parts.extend(t.get("content", "") for t in frame["payload"]["choices"]["text"])
            usage = self._usage(frame) or usage
        return ChatResult(text="".join(parts), usage=usage or Usage(), model=model)

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        for frame in self._frames(model, request):
            last = frame["header"]["status"] == LAST_FRAME
            yield ChatChunk(
                text="".join(t.get("content", "") for t in frame["payload"]["choices"]["text"]),
                finish_reason="stop" if last else None,
                usage=self._usage(frame) if last else None,
            )
