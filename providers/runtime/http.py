"""HTTP for adapters: pooled connections, explicit timeouts, bounded retries, one error mapping.

    status / failure              error (config.errors)      retried
    401, 403                      UpstreamAuth               no
    402, quota-ish 429 bodies     UpstreamQuota              no
    429                           UpstreamRateLimited        yes, after Retry-After (capped)
    404                           UpstreamNotFound           no
    400, 413, 422, other 4xx      UpstreamBadRequest         no
    5xx                           UpstreamUnavailable        yes, with backoff
    refused / reset / DNS         UpstreamConnection         yes, with backoff
    address refused by the guard  UpstreamForbiddenAddress   no (never connected: netguard.py)
    connect or read timeout       UpstreamTimeout            yes, with backoff (a read timeout:
                                                             never on the same backend)
    unparseable reply             UpstreamUnavailable        no

A family refines the mapping with its adapter's `classify` hook, which the client consults for
every failed answer. A streamed request is retried only until its response starts. Messages keep
the backend's words, bounded in length, with every credential value and known secret shape
masked.

urllib3 directly, not requests: on the gateway's path requests' own request preparation cost a
sixth of the web process's CPU per call (py-spy), and a pool manager is thread-safe, so one per
process serves every thread.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import json
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import certifi
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)

from config import errors
from config.redact import scrub_values
from providers.runtime import failures, netguard

MAX_MESSAGE = 300
MAX_RETRY_AFTER = 30.0
MAX_REDIRECTS = 10
CHUNK = 512  # bytes read at a time from a stream: lines are handed on as soon as they are whole
USER_AGENT = "model-provider-settings"
# Headers that carry a credential, possibly one the adapter derived (a Basic token, a signature):
# masked in messages, and dropped when a redirect leads to another host.
CREDENTIAL_HEADER = re.compile(r"(?i)auth|key|token|secret|signature|cookie|password|credential")
# What requests checks before sending a header value: no line break, no leading whitespace.
_HEADER_VALUE = re.compile(r"^\S[^\r\n]*$|^$")
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")

# A family's request signing: (method, URL, body, headers) -> the headers to send.
Signer = Callable[[str, str, bytes | None, dict[str, str]], dict[str, str]]

_managers: dict[tuple[int, netguard.AddressPolicy], netguard.GuardedPoolManager] = {}
_lock = threading.Lock()


class Pool:
    """This process's connection pools to backends under `policy` (one per host), made on first
    use in each process: an adapter that a route caches, and threads share, never carries a
    pool across a fork. Every connection, redirects included, goes through the address guard;
    no proxy is ever used (through one, the guard would judge the proxy's address)."""

    __slots__ = ("policy",)

    def __init__(self, policy: netguard.AddressPolicy = netguard.DEFAULT_POLICY) -> None:
        self.policy = policy

    def manager(self) -> netguard.GuardedPoolManager:
        key = (os.getpid(), self.policy)
        found = _managers.get(key)
        if found is None:
            with _lock:
                found = _managers.get(key)
                if found is None:
                    found = _managers[key] = netguard.GuardedPoolManager(
                        num_pools=64,
                        maxsize=32,
                        block=False,
                        policy=self.policy,
                        ca_certs=certifi.where(),
                    )
        return found


def pool(policy: netguard.AddressPolicy = netguard.DEFAULT_POLICY) -> Pool:
    return Pool(policy)


class Response:
    """A backend's answer over urllib3's response: the body is read when asked for (whole, or
    as a stream of chunks or lines)."""

    __slots__ = (
        "__weakref__",
        "_content",
        "cut_off",
        "deadline",
        "headers",
        "raw",
        "reason",
        "status_code",
        "watched",
    )  # fmt: skip

    def __init__(self, raw: urllib3.BaseHTTPResponse, deadline: float = float("inf")) -> None:
        self.raw = raw
        self.status_code = raw.status
        self.reason = raw.reason or ""
        self.headers = raw.headers  # case-insensitive
        self.deadline = deadline
        self.watched = False
        self.cut_off = False
        self._content: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = self.raw.read(decode_content=True)
        return self._content

    @property
    def text(self) -> str:
        charset = self.headers.get("Content-Type", "").partition("charset=")[2].split(";")[0]
        try:
            return self.content.decode(charset.strip(' "') or "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def iter_content(self, size: int = CHUNK) -> Iterator[bytes]:
        yield from self.raw.stream(size, decode_content=True)

    def iter_lines(self) -> Iterator[bytes]:
        """Lines as they arrive, split at CRLF, LF or CR (SSE allows all three)."""
        pending = b""
        for chunk in self.iter_content():
            pending += chunk
            held = pending.endswith(b"\r")  # perhaps the first half of a CRLF
            lines = _LINE_BREAK.split(pending[:-1] if held else pending)
            pending = lines.pop() + (b"\r" if held else b"")
            yield from lines
        if pending:
            yield from _LINE_BREAK.split(pending.rstrip(b"\r"))

    def close(self) -> None:
        """Done with it: a connection read to the end goes back to the pool, one left mid-body
        is closed."""
        if self._content is None and not self.raw.closed:
            self.raw.close()
        self.raw.release_conn()


COMPACT_EVERY = 4096  # calls watched between two sweeps of those that ended


class _Watchdog:
    """One thread per process that ends calls past their deadline by shutting the socket they
    read from: a read the per-read timeout never ends (a backend sending a byte a second, below
    any chunk size) ends at once, and the reader turns the cut into a timeout."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, weakref.ref[Response]]] = []
        self._wake = threading.Condition()
        self._order = itertools.count()
        self._pid = 0

    def watch(self, response: Response, deadline: float) -> None:
        response.watched = True
        with self._wake:
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._pid = os.getpid()
                self._due.clear()
                threading.Thread(target=self._run, name="http-deadlines", daemon=True).start()
            order = next(self._order)
            if order % COMPACT_EVERY == 0:
                self._compact()
            entry = (deadline, order, weakref.ref(response))
            heapq.heappush(self._due, entry)
            if self._due[0] is entry:  # the thread sleeps until a later deadline: wake it
                self._wake.notify()

    def _compact(self) -> None:
        """Drop the calls that ended long before their deadline (most of them)."""
        self._due = [e for e in self._due if getattr(e[2](), "watched", False)]
        heapq.heapify(self._due)

    @staticmethod
    def release(response: Response) -> None:
        response.watched = False

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, ref = heapq.heappop(self._due)
            response = ref()
            if response is not None and getattr(response, "watched", False):
                _cut(response)


def _cut(response: Response) -> None:
    response.cut_off = True
    if response.raw.closed:
        return  # read to the end meanwhile: its socket may serve another call now
    # urllib3 hands the socket to http.client's response: raw._fp (http.client.HTTPResponse),
    # .fp (a socket file), .raw (SocketIO), ._sock.
    reader = getattr(getattr(response.raw, "_fp", None), "fp", None)
    sock = getattr(getattr(reader, "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 60.0  # the longest silence between two reads
    total: float = 600.0  # the longest a call may take, retries and streaming included


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # tries in all, the first included
    backoff: float = 0.5  # seconds, doubled each retry
    max_backoff: float = 8.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        return min(self.backoff * (2 ** (attempt - 1)), self.max_backoff)


def _retry_after(response: Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _parse_body(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _classified(response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
    return failure


def _as_is(path: str, fields: Any, params: Mapping[str, Any] | None) -> tuple[str, Any]:
    return path, params


class HttpClient:
    """One backend's client: base URL, headers, timeouts, retries and error mapping, over the
    process's pools. `classify` (the adapter's hook) refines the mapping of a failed answer;
    `target` (another hook) may move a call's path and query (Azure's deployments)."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        pool: Pool,
        timeouts: Timeouts,
        retry: RetryPolicy,
        secrets: tuple[str, ...],
        error_message: Callable[[Any], str],
        classify: Callable[[Response, errors.UpstreamError], errors.UpstreamError] = _classified,
        target: Callable[[str, Any, Mapping[str, Any] | None], tuple[str, Any]] = _as_is,
        sign: Signer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", **headers}
        self.pool = pool
        self.timeouts = timeouts
        self.retry = retry
        self.secrets = secrets
        self.error_message = error_message
        self.classify = classify
        self.target = target
        self.sign = sign
        self.sleep = sleep
        self._derived: collections.deque[str] = collections.deque(maxlen=8)
        self._timeout = urllib3.Timeout(connect=timeouts.connect, read=timeouts.read)
        # Redirects are followed (each hop through the guard); credentials stay with the host
        # they were given for. Nothing else is retried here: `request` decides that.
        self._redirects = urllib3.Retry(
            total=None, connect=0, read=0, status=0, other=0, redirect=MAX_REDIRECTS,
            respect_retry_after_header=False,
            remove_headers_on_redirect=[
                *urllib3.Retry.DEFAULT_REMOVE_HEADERS_ON_REDIRECT,
                *(name for name in self.headers if CREDENTIAL_HEADER.search(name)),
            ],
        )  # fmt: skip

    def derived_secrets(self) -> tuple[str, ...]:
        """Credential header values `sign` made lately (an exchanged token, a signature)."""
        return tuple(self._derived)

    def _signed(
        self, sign: Signer, method: str, url: str, body: bytes | None, sent: dict[str, str]
    ) -> tuple[dict[str, str], urllib3.Retry]:
        """The headers of one attempt, signed afresh (a signature holds the time), and the
        redirect policy that drops the credential headers signing added."""
        signed = sign(method, url, body, dict(sent))
        added = [
            name for name, value in signed.items()
            if CREDENTIAL_HEADER.search(name) and sent.get(name) != value
        ]  # fmt: skip
        for name in added:
            if signed[name] not in self._derived:
                self._derived.append(signed[name])
                self._derived.append(signed[name].split(" ", 1)[-1])
        _check_header_values(signed)
        redirects = self._redirects.new(
            remove_headers_on_redirect=[*self._redirects.remove_headers_on_redirect, *added]
        )
        return signed, redirects

    def url(self, path: str) -> str:
        if path[:8].lower().startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def bounded(self, text: str, limit: int = MAX_MESSAGE) -> str:
        """`text` on one line, its secrets masked, then cut to `limit` characters (cut after
        masking: a secret cut in two would no longer be found)."""
        secrets = self.secrets
        if self._derived:
            secrets = sorted({*secrets, *self._derived}, key=len, reverse=True)
        text = scrub_values(" ".join(str(text).split()), secrets)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def error_for(self, response: Response) -> errors.UpstreamError:
        status = response.status_code
        message = self.bounded(self.error_message(_parse_body(response)) or response.reason)
        message = f"{status}: {message}"
        lowered = message.lower()
        if status in (401, 403):
            failure: errors.UpstreamError = errors.UpstreamAuth(message)
        elif status == 402 or (status == 429 and ("quota" in lowered or "balance" in lowered)):
            failure = errors.UpstreamQuota(message)
        elif status == 429:
            failure = errors.UpstreamRateLimited(message, retry_after=_retry_after(response))
        elif status == 404:
            failure = errors.UpstreamNotFound(message)
        elif status >= 500:
            failure = errors.UpstreamUnavailable(message)
        else:
            failure = errors.UpstreamBadRequest(message)
        return self.classify(response, failure)

    def _prepare(
        self,
        path: str,
        json_body: Any,
        data: Any,
        files: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[str, bytes | None, dict[str, str]]:
        """The URL, body and headers to send, checked before anything is sent."""
        path, params = self.target(path, json_body if json_body is not None else data, params)
        url = self.url(path)
        if not url[:8].lower().startswith(("http://", "https://")):  # schemes ignore case
            raise errors.UpstreamBadRequest(
                f"The backend's URL is not valid: {self.bounded(url)} (it needs http:// or "
                "https://)."
            )
        if params:
            query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
            url = f"{url}{'&' if '?' in url else '?'}{query}" if query else url
        sent = {**self.headers, **(headers or {})}
        body: bytes | None = None
        if files:
            fields = [*(data or {}).items(), *files.items()]
            body, sent["Content-Type"] = urllib3.encode_multipart_formdata(fields)
        elif json_body is not None:
            try:
                body = json.dumps(json_body, allow_nan=False).encode()
            except ValueError as exc:
                raise errors.InvalidInput(
                    "The request holds a number JSON cannot carry (NaN or infinity).",
                    code="invalid",
                ) from exc
            sent.setdefault("Content-Type", "application/json")
        elif isinstance(data, Mapping):
            body = urlencode(data, doseq=True).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif data is not None:
            body = data if isinstance(data, bytes) else str(data).encode()
        _check_header_values(sent)
        return url, body, sent

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        files: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Response:
        """Send, retrying what `RetryPolicy` allows; a non-2xx answer raises its mapped error.

        The whole call, body and stream included, ends by `timeouts.total`: a backend that
        trickles a byte at a time cannot hold a worker past it."""
        url, body, sent = self._prepare(path, json_body, data, files, params, headers)
        deadline = time.monotonic() + self.timeouts.total
        manager = self.pool.manager()
        attempt = 0
        while True:
            attempt += 1
            headers, redirects = (
                self._signed(self.sign, method, url, body, sent)
                if self.sign
                else (sent, self._redirects)
            )
            try:
                response = Response(
                    manager.urlopen(
                        method,
                        url,
                        body=body,
                        headers=headers,
                        timeout=self._timeout,
                        retries=redirects,
                        preload_content=False,
                    ),
                    deadline,
                )
                _WATCHDOG.watch(response, deadline)
                if not stream or not response.ok:
                    self.read_body(response)
            except errors.UpstreamError as exc:
                failure: errors.UpstreamError = exc
            except (HTTPError, OSError) as exc:
                failure = self._failure(exc, url)
            else:
                if response.ok:
                    return response
                failure = self.error_for(response)
                response.close()
            pause = self.retry.delay(attempt, getattr(failure, "retry_after", None))
            # A request sent and not answered in time is not sent again to the same backend: it
            # may still be generating (and billing) the first answer.
            unanswered = isinstance(failure, errors.UpstreamTimeout) and not isinstance(
                failure, errors.UpstreamConnectTimeout
            )
            if (
                not failure.retryable
                or unanswered
                or attempt >= self.retry.attempts
                or time.monotonic() + pause > deadline
            ):
                raise failure
            self.sleep(pause)

    def _failure(self, exc: HTTPError | OSError, url: str) -> errors.UpstreamError:
        """What a failure to get an answer is, in people's words (failures.py), or raises it
        when retrying cannot help."""
        reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
        refused = netguard.forbidden_in(exc)
        if refused is not None:
            raise errors.UpstreamForbiddenAddress(self.bounded(str(refused))) from exc
        if isinstance(reason, LocationValueError):
            raise errors.UpstreamBadRequest(
                f"The backend's URL is not valid: {self.bounded(str(reason))}"
            ) from exc
        host, port = _host_port(exc, url)
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return errors.UpstreamConnectTimeout(
                self.bounded(
                    failures.connect_timeout_message(
                        host=host, port=port, seconds=self.timeouts.connect
                    )
                )
            )
        if isinstance(reason, (ReadTimeoutError, TimeoutError)):
            return errors.UpstreamTimeout(
                self.bounded(
                    failures.read_timeout_message(host=host, port=port, seconds=self.timeouts.read)
                )
            )
        return errors.UpstreamConnection(
            self.bounded(failures.connection_message(exc, host=host, port=port))
        )

    def read_body(self, response: Response) -> None:
        """Read a whole body by the call's deadline (then `.json()`/`.text` read no further)."""
        chunks = []
        try:
            for chunk in response.iter_content(65536):
                chunks.append(chunk)
                self._check_deadline(response)
        except (ReadTimeoutError, TimeoutError) as exc:
            response.close()
            self._check_deadline(response)
            raise errors.UpstreamTimeout(failures.STALLED) from exc
        except (HTTPError, OSError) as exc:
            response.close()
            self._check_deadline(response)
            raise errors.UpstreamConnection(
                failures.DROPPED.format(reason=self.bounded(failures.drop_reason(exc)))
            ) from exc
        finally:
            _WATCHDOG.release(response)
        response._content = b"".join(chunks)
        response.raw.release_conn()

    def _check_deadline(self, response: Response) -> None:
        if time.monotonic() > response.deadline or response.cut_off:
            _WATCHDOG.release(response)
            response.close()
            raise errors.UpstreamTimeout(
                failures.CUT_OFF.format(seconds=f"{self.timeouts.total:g}")
            )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise errors.UpstreamUnavailable(
                f"The backend answered {response.status_code} with a body that is not JSON: "
                f"{self.bounded(response.text, 200)}"
            ) from exc

    def chunks(self, response: Response) -> Iterator[bytes]:
        """The response body as it arrives, for binary streams (AWS's event stream)."""
        return self._arriving(response, response.iter_content())

    def lines(self, response: Response) -> Iterator[str]:
        """The response body line by line as it arrives."""
        for raw in self._arriving(response, response.iter_lines()):
            yield raw.decode("utf-8", errors="replace")

    def _arriving(self, response: Response, parts: Iterator[bytes]) -> Iterator[bytes]:
        """`parts` of a streamed body as they arrive, by the call's deadline; a stall or a
        dropped connection is an error."""
        try:
            for part in parts:
                self._check_deadline(response)
                yield part
        except (ReadTimeoutError, TimeoutError) as exc:
            self._check_deadline(response)
            raise errors.UpstreamTimeout(failures.STREAM_STALLED) from exc
        except (HTTPError, OSError) as exc:
            self._check_deadline(response)
            raise errors.UpstreamConnection(
                failures.DROPPED_MID_STREAM.format(reason=self.bounded(failures.drop_reason(exc)))
            ) from exc
        finally:
            _WATCHDOG.release(response)
            response.close()

    def sse(self, response: Response) -> Iterator[tuple[str, str]]:
        """Server-sent events as (event, data) pairs; `data: [DONE]` ends the stream."""
        event, data = "", []
        for line in self.lines(response):
            if not line:
                if data:
                    payload = "\n".join(data)
                    if payload.strip() == "[DONE]":
                        return
                    yield event or "message", payload
                event, data = "", []
            elif line.startswith(":"):
                continue
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):  # one leading space is the format's, the rest data
                value = line[5:]
                data.append(value[1:] if value.startswith(" ") else value)
        if data and "\n".join(data).strip() != "[DONE]":
            yield event or "message", "\n".join(data)

    def parse(self, payload: str) -> Any:
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise errors.UpstreamUnavailable(
                f"The backend sent a chunk that is not JSON: {self.bounded(payload, 200)}"
            ) from exc


def _host_port(exc: BaseException, url: str) -> tuple[str, int | None]:
    """Where the failed connection went: the pool that failed (a redirect may have led
    elsewhere), else the request's URL."""
    pool = getattr(exc, "pool", None) if isinstance(exc, MaxRetryError) else None
    if pool is not None and getattr(pool, "host", None):
        return str(pool.host), pool.port
    try:
        parsed = urllib3.util.parse_url(url)
    except LocationValueError:
        return "the backend", None
    default = 443 if (parsed.scheme or "").lower() == "https" else 80
    return parsed.host or "the backend", parsed.port or default


def _check_header_values(headers: Mapping[str, str]) -> None:
    """What requests checks before sending a header, and what HTTP can carry (Latin-1): a
    credential pasted with a line break or typed in another script is refused, not sent."""
    for value in headers.values():
        if not isinstance(value, str) or not _HEADER_VALUE.match(value):
            raise _unsendable_header()
        try:
            value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise _unsendable_header() from exc


def _unsendable_header() -> errors.UpstreamBadRequest:
    return errors.UpstreamBadRequest(
        "A credential holds characters that cannot be sent in an HTTP header; enter it again."
    )
