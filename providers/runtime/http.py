"""HTTP for adapters: pooled sessions, explicit timeouts, bounded retries, one error mapping.

    status / failure              error (config.errors)      retried
    401, 403                      UpstreamAuth               no
    402, quota-ish 429 bodies     UpstreamQuota              no
    429                           UpstreamRateLimited        yes, after Retry-After (capped)
    404                           UpstreamNotFound           no
    400, 413, 422, other 4xx      UpstreamBadRequest         no
    5xx                           UpstreamUnavailable        yes, with backoff
    refused / reset / DNS         UpstreamConnection         yes, with backoff
    address refused by the guard  UpstreamForbiddenAddress   no (never connected: netguard.py)
    connect or read timeout       UpstreamTimeout            yes, with backoff
    unparseable reply             UpstreamUnavailable        no

A streamed request is retried only until its response starts. Messages keep the backend's words,
bounded in length, with every credential value and known secret shape masked.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from config import errors
from config.redact import scrub_values
from providers.runtime import netguard

MAX_MESSAGE = 300
MAX_RETRY_AFTER = 30.0

_sessions: dict[tuple[int, int, netguard.AddressPolicy], requests.Session] = {}
_lock = threading.Lock()


def session(policy: netguard.AddressPolicy = netguard.DEFAULT_POLICY) -> requests.Session:
    """This process's (and thread's) pooled session for `policy`: one TCP pool per backend host,
    reused. Every connection it opens, redirects included, goes through the address guard."""
    key = (os.getpid(), threading.get_ident(), policy)
    found = _sessions.get(key)
    if found is None:
        with _lock:
            found = requests.Session()
            # No proxy from the environment (HTTP_PROXY, ...) nor .netrc: through a proxy the
            # guard would judge the proxy's address instead of the backend's.
            found.trust_env = False
            pool = netguard.GuardedAdapter(
                policy, pool_connections=32, pool_maxsize=32, max_retries=0
            )
            found.mount("http://", pool)
            found.mount("https://", pool)
            _sessions[key] = found
    return found


COMPACT_EVERY = 4096  # calls watched between two sweeps of those that ended


class _Watchdog:
    """One thread per process that ends calls past their deadline by shutting the socket they
    read from: a read the per-read timeout never ends (a backend sending a byte a second, below
    any chunk size) ends at once, and the reader turns the cut into a timeout."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, weakref.ref[requests.Response]]] = []
        self._wake = threading.Condition()
        self._order = itertools.count()
        self._pid = 0

    def watch(self, response: requests.Response, deadline: float) -> None:
        response.watched = True  # type: ignore[attr-defined]
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
    def release(response: requests.Response) -> None:
        response.watched = False  # type: ignore[attr-defined]

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, ref = heapq.heappop(self._due)
            response = ref()
            if response is not None and getattr(response, "watched", False):
                _cut(response)


def _cut(response: requests.Response) -> None:
    response.cut_off = True  # type: ignore[attr-defined]
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


class PerThreadSession:
    """Stands for `session(policy)` of whichever thread sends: an adapter that is cached and
    shared by threads (routes are) never shares one requests.Session between them."""

    def __init__(self, policy: netguard.AddressPolicy = netguard.DEFAULT_POLICY) -> None:
        self.policy = policy

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        return session(self.policy).request(*args, **kwargs)


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


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _parse_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class HttpClient:
    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        session: requests.Session | PerThreadSession,
        timeouts: Timeouts,
        retry: RetryPolicy,
        secrets: tuple[str, ...],
        error_message: Callable[[Any], str],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.session = session
        self.timeouts = timeouts
        self.retry = retry
        self.secrets = secrets
        self.error_message = error_message
        self.sleep = sleep

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def bounded(self, text: str) -> str:
        text = scrub_values(" ".join(str(text).split()), self.secrets)
        return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"

    def error_for(self, response: requests.Response) -> errors.UpstreamError:
        status = response.status_code
        message = self.bounded(self.error_message(_parse_body(response)) or response.reason)
        message = f"{status}: {message}"
        lowered = message.lower()
        if status in (401, 403):
            return errors.UpstreamAuth(message)
        if status == 402 or (status == 429 and ("quota" in lowered or "balance" in lowered)):
            return errors.UpstreamQuota(message)
        if status == 429:
            return errors.UpstreamRateLimited(message, retry_after=_retry_after(response))
        if status == 404:
            return errors.UpstreamNotFound(message)
        if status >= 500:
            return errors.UpstreamUnavailable(message)
        return errors.UpstreamBadRequest(message)

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
    ) -> requests.Response:
        """Send, retrying what `RetryPolicy` allows; a non-2xx answer raises its mapped error.

        The whole call, body and stream included, ends by `timeouts.total`: a backend that
        trickles a byte at a time cannot hold a worker past it."""
        deadline = time.monotonic() + self.timeouts.total
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.session.request(
                    method,
                    self.url(path),
                    json=json_body,
                    data=data,
                    files=files,
                    params=params,
                    headers={**self.headers, **(headers or {})},
                    timeout=(self.timeouts.connect, self.timeouts.read),
                    stream=True,
                )
                response.deadline = deadline  # type: ignore[attr-defined]
                _WATCHDOG.watch(response, deadline)
                if not stream or not response.ok:
                    self._read_body(response)
            except (requests.exceptions.InvalidHeader, UnicodeEncodeError) as exc:
                raise errors.UpstreamBadRequest(
                    "A credential holds characters that cannot be sent in an HTTP header; "
                    "enter it again."
                ) from exc
            except (
                requests.exceptions.InvalidURL,
                requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema,
            ) as exc:
                raise errors.UpstreamBadRequest(
                    f"The backend's URL is not valid: {self.bounded(str(exc))}"
                ) from exc
            except errors.UpstreamError as exc:
                failure: errors.UpstreamError = exc
            except requests.ConnectTimeout as exc:
                failure = errors.UpstreamConnectTimeout(
                    f"Could not connect to the backend in time ({self.bounded(str(exc))})."
                )
            except requests.Timeout as exc:
                failure = errors.UpstreamTimeout(
                    f"The backend did not answer in time ({self.bounded(str(exc))})."
                )
            except requests.ConnectionError as exc:
                refused = netguard.forbidden_in(exc)
                if refused is not None:
                    raise errors.UpstreamForbiddenAddress(self.bounded(str(refused))) from exc
                failure = errors.UpstreamConnection(
                    f"Could not connect to the backend: {self.bounded(str(exc))}"
                )
            except netguard.ForbiddenAddress as exc:  # a proxy was configured
                raise errors.UpstreamForbiddenAddress(self.bounded(str(exc))) from exc
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

    def _read_body(self, response: requests.Response) -> None:
        """Read a whole body by the call's deadline (then `.json()`/`.text` read no further)."""
        chunks = []
        try:
            for chunk in response.iter_content(65536):
                chunks.append(chunk)
                self._check_deadline(response)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            response.close()
            self._check_deadline(response)
            raise errors.UpstreamConnection(
                f"The connection dropped while the backend answered: {self.bounded(str(exc))}"
            ) from exc
        except requests.Timeout as exc:
            response.close()
            raise errors.UpstreamTimeout(
                "The backend's answer stalled past the read timeout."
            ) from exc
        finally:
            _WATCHDOG.release(response)
        response._content = b"".join(chunks)
        response._content_consumed = True

    def _check_deadline(self, response: requests.Response) -> None:
        late = time.monotonic() > getattr(response, "deadline", float("inf"))
        if late or getattr(response, "cut_off", False):
            _WATCHDOG.release(response)
            response.close()
            raise errors.UpstreamTimeout(
                f"The backend took longer than {self.timeouts.total:g} s in all; the call was "
                "cut off."
            )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise errors.UpstreamUnavailable(
                f"The backend answered {response.status_code} with a body that is not JSON: "
                f"{self.bounded(response.text[:200])}"
            ) from exc

    def lines(self, response: requests.Response) -> Iterator[str]:
        """The response body line by line as it arrives; a dropped connection is an error."""
        try:
            for raw in response.iter_lines(decode_unicode=False):
                self._check_deadline(response)
                yield raw.decode("utf-8", errors="replace")
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            self._check_deadline(response)
            raise errors.UpstreamConnection(
                f"The connection dropped mid-stream: {self.bounded(str(exc))}"
            ) from exc
        except requests.Timeout as exc:
            raise errors.UpstreamTimeout("The stream stalled past the read timeout.") from exc
        finally:
            _WATCHDOG.release(response)
            response.close()

    def sse(self, response: requests.Response) -> Iterator[tuple[str, str]]:
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
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data and "\n".join(data).strip() != "[DONE]":
            yield event or "message", "\n".join(data)

    def parse(self, payload: str) -> Any:
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise errors.UpstreamUnavailable(
                f"The backend sent a chunk that is not JSON: {self.bounded(payload[:200])}"
            ) from exc
