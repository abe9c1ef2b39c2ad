"""A local fake provider server: a real HTTP server on 127.0.0.1 in a thread.

Subclasses add routes that speak one family's wire protocol. Every fake:
- checks auth the way its provider does (`authorized`, `unauthorized`);
- records what it received (`received`), so tests can check what our code sent;
- fails on demand: `fail("429", times=2, retry_after=1)`, `fail("slow", seconds=3)`,
  `fail("trickle", seconds=0.5)` (a streamed answer's chunks that far apart), and
  "401", "404", "500", "broken_json", "drop" (close without answering), "drop_stream" (send part
  of a stream, then close), "echo_key" (an error in the family's shape, 400 unless
  `status=...`, that quotes the credential the request carried, as a careless backend does).
Replies are computed from the request (echoes, hashes, word overlap), never canned, so a test can
tell our code passed the right things through.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def form(self) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
        """A multipart/form-data body: (fields, files as name -> (filename, bytes))."""
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.header("content-type").encode() + b"\r\n\r\n" + self.body
        )
        fields, files = {}, {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if filename:
                files[name] = (filename, payload)
            else:
                fields[name] = payload.decode()
        return fields, files


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[bytes] | None = None  # sent chunked, as it is produced
    content_type: str = "application/json"


Handler = Callable[[Request], Reply]


@dataclass
class Failure:
    mode: str
    times: int
    retry_after: float = 1
    seconds: float = 2.0
    status: float = 400  # for "echo_key"


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 resets connections when many clients start at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up between requests is no error of the fake's; print the rest."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeServer:
    """Override `authorized`, `unauthorized`, `error` and add routes with `route()`."""

    def __init__(self, api_key: str | None = "fake-key") -> None:
        self.api_key = api_key
        self.received: list[Request] = []
        self.answered: list[tuple[int, dict[str, str]]] = []  # (status, headers) of each reply
        self.streams_cut = 0  # streams whose client hung up before the end
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._failures: deque[Failure] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- set-up -------------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self._routes.append((method, regex, handler))

    def reset(self) -> None:
        """Forget pending failures (a test that injected more than it used must not leak them)."""
        with self._lock:
            self._failures.clear()

    def fail(self, mode: str, times: int = 1, **kwargs: float) -> None:
        with self._lock:
            self._failures.append(Failure(mode, times, **kwargs))

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, on a reused connection
            # Nagle's algorithm holds the body until the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        # A short poll: `stop()` waits for it, and tests start hundreds of fakes.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- family hooks -------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if self.api_key is None:
            return True
        return request.header("authorization") == f"Bearer {self.api_key}"

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        return Reply(status, {"error": {"message": message, **extra}})

    def unauthorized(self) -> Reply:
        return self.error(401, "Incorrect API key provided.", code="invalid_api_key")

    def presented_key(self, request: Request) -> tuple[str, str]:
        """(the credential, the whole header value) the request carried, where the family
        carries it; `fail("echo_key")` quotes both."""
        value = request.header("authorization")
        return value.removeprefix("Bearer ").strip(), value

    def echo_key(self, request: Request) -> str:
        """An error text quoting the request's credential bare, as no secret pattern spots it."""
        key, header = self.presented_key(request)
        return f"The account of {key} may not use this; you sent <{header}>."

    # --- serving ------------------------------------------------------------------------------

    def _next_failure(self) -> Failure | None:
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self._failures.popleft()
            return failure

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        request = Request(
            method=http.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in http.headers.items()},
            body=http.rfile.read(length) if length else b"",
        )
        self.received.append(request)
        failure = self._next_failure()
        if failure is not None and failure.mode == "drop":
            http.close_connection = True
            http.connection.shutdown(socket.SHUT_RDWR)
            return
        if failure is not None and failure.mode == "slow":
            time.sleep(failure.seconds)
        reply = self._reply(request, failure)
        self._send(
            http,
            reply,
            drop_midway=failure is not None and failure.mode == "drop_stream",
            trickle=failure.seconds if failure is not None and failure.mode == "trickle" else 0,
        )

    def _reply(self, request: Request, failure: Failure | None) -> Reply:
        if failure is not None:
            if failure.mode == "401":
                return self.unauthorized()
            if failure.mode == "404":
                return self.error(404, "The model does not exist.", code="model_not_found")
            if failure.mode == "429":
                reply = self.error(
                    429, "Rate limit reached, slow down.", code="rate_limit_exceeded"
                )
                if reply.status == 429:  # not on a family's 200 with an error body
                    reply.headers["Retry-After"] = str(failure.retry_after)
                return reply
            if failure.mode == "500":
                return self.error(500, "The server had an error while processing your request.")
            if failure.mode == "broken_json":
                return Reply(200, b'{"id": "x", "choices": [', content_type="application/json")
            if failure.mode == "echo_key":
                return self.error(int(failure.status), self.echo_key(request))
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if match and method == request.method:
                if not self.authorized(request):
                    return self.unauthorized()
                request.params = match.groupdict()
                return handler(request)
        return self.error(404, f"No route {request.method} {request.path}")

    def _send(
        self, http: BaseHTTPRequestHandler, reply: Reply, *, drop_midway: bool, trickle: float = 0
    ) -> None:
        self.answered.append((reply.status, dict(reply.headers)))
        http.send_response(reply.status)
        http.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            http.send_header(name, value)
        if reply.stream is not None:
            http.send_header("Transfer-Encoding", "chunked")
            http.end_headers()
            for i, chunk in enumerate(reply.stream):
                if drop_midway and i == 2:
                    http.close_connection = True
                    http.connection.shutdown(socket.SHUT_RDWR)
                    return
                if trickle and i:
                    time.sleep(trickle)
                try:
                    http.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
                    http.wfile.flush()
                except ConnectionError:
                    self.streams_cut += 1  # the client hung up mid-stream
                    http.close_connection = True
                    return
            http.wfile.write(b"0\r\n\r\n")
            return
        body = reply.body
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        http.wfile.write(body)


# --- Deterministic "model" behaviour shared by the fakes ---------------------------------------


def embed_text(text: str, dimensions: int = 8) -> list[float]:
    """A stable vector for a text, so tests can check order and identity."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 6) for b in digest[:dimensions]]


def overlap_score(query: str, document: str) -> float:
    """Share of the query's words found in the document (a stand-in for relevance)."""
    words = set(re.findall(r"\w+", query.lower()))
    found = set(re.findall(r"\w+", document.lower()))
    return round(len(words & found) / len(words), 4) if words else 0.0


def reply_to(text: str) -> str:
    """What the fake "model" answers: it echoes the last user message."""
    return f"You said: {text}"


def words(text: str) -> int:
    return len(text.split())


def wav_with_text(text: str, seconds: float = 0.2, rate: int = 8000) -> bytes:
    """A valid mono 16-bit WAV carrying `text` in a LIST/INFO chunk: a fake transcriber reads it
    back, a fake synthesiser writes one."""
    frames = b"\x00\x00" * int(seconds * rate)
    info_text = text.encode() + b"\x00"
    if len(info_text) % 2:
        info_text += b"\x00"
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(info_text)) + info_text
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    chunks = (
        b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"LIST"
        + struct.pack("<I", len(info))
        + info
        + b"data"
        + struct.pack("<I", len(frames))
        + frames
    )
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def text_in_wav(audio: bytes) -> str:
    match = re.search(rb"ICMT(.{4})", audio, re.S)
    if not match:
        return ""
    size = struct.unpack("<I", match.group(1))[0]
    start = match.end()
    return audio[start : start + size].rstrip(b"\x00").decode()


def sse(events: Iterable[Any], *, named: bool = False, done: bool = True) -> Iterator[bytes]:
    """Encode SSE frames: `data: {...}` (or `event: x` + `data:` when `named`), then [DONE]."""
    for event in events:
        if named:
            name, payload = event
            yield f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()
        else:
            yield f"data: {json.dumps(event)}\n\n".encode()
    if done:
        yield b"data: [DONE]\n\n"
