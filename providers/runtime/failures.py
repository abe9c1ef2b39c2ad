"""Connection failures in the words people use (issue 13, item 10).

urllib3 reports a closed port as "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries
exceeded with url: /v1/models (Caused by NewConnectionError(...))". What a person wants to read
is what happened and where:

    refused          Could not connect to 127.0.0.1:1 (connection refused).
    reset            Could not connect to 127.0.0.1:8080 (connection reset).
    closed           Could not connect to 127.0.0.1:8080 (the server closed the connection
                     without answering).
    unreachable      Could not connect to 10.0.0.9:9997 (network unreachable).
    name unknown     Could not find the host example.invalid.
    DNS away         Could not look up the host example.com (temporary failure in name
                     resolution).
    TLS              Could not connect securely to example.com:443 (certificate verify failed:
                     self-signed certificate).
    connect timeout  Could not connect to 10.0.0.9:9997 in time (no answer within 5 s).
    read timeout     10.0.0.9:9997 did not answer in time (nothing received for 60 s).

The cause is found by walking the exception's chain (urllib3 wraps the socket's error in one or
two of its own), so the same words come from the HTTP client, the discovery call and the
websocket adapters alike. Nothing of the URL but host and port is shown: no path, no query, no
user:password@.

These sentences are stored in English (the API's language) with the job; `SENTENCES` lists them
with their named parts, so that the pages can show them in the reader's language
(`provider_ui.in_reader_language`; the translations live in the locale's catalog).
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
from collections.abc import Iterator


def gettext_noop(text: str) -> str:
    """Marks a sentence for the translation catalog (makemessages); this package has no Django."""
    return text


# Sentences: a {reason} or {message} part is itself one of these; other parts are kept as said.
CONNECT = gettext_noop("Could not connect to {target} ({reason}).")
CONNECT_PLAIN = gettext_noop("Could not connect to {target}.")
CONNECT_SECURELY = gettext_noop("Could not connect securely to {target} ({reason}).")
HOST_UNKNOWN = gettext_noop("Could not find the host {host}.")
LOOKUP_FAILED = gettext_noop(
    "Could not look up the host {host} (temporary failure in name resolution)."
)
CONNECT_TIMEOUT = gettext_noop(
    "Could not connect to {target} in time (no answer within {seconds} s)."
)
READ_TIMEOUT = gettext_noop("{target} did not answer in time (nothing received for {seconds} s).")
DROPPED = gettext_noop("The connection dropped while the backend answered ({reason}).")
DROPPED_MID_STREAM = gettext_noop("The connection dropped mid-stream ({reason}).")
STALLED = gettext_noop("The backend's answer stalled past the read timeout.")
STREAM_STALLED = gettext_noop("The stream stalled past the read timeout.")
CUT_OFF = gettext_noop("The backend took longer than {seconds} s in all; the call was cut off.")
CHECK_UNFINISHED = gettext_noop("The check could not finish: {message}. Check again.")
JOB_LOST = gettext_noop("The job was lost by its workers too many times.")
# Reasons (in parentheses above).
CLOSED_WITHOUT_ANSWER = gettext_noop("the server closed the connection without answering")
CERTIFICATE_FAILED = gettext_noop("certificate verify failed")
CERTIFICATE_FAILED_DETAIL = gettext_noop("certificate verify failed: {detail}")
NOT_TLS = gettext_noop("TLS handshake failed: the server does not speak TLS here; try http://")
TLS_FAILED = gettext_noop("TLS handshake failed")
TLS_FAILED_DETAIL = gettext_noop("TLS handshake failed: {detail}")
CUT_SHORT = gettext_noop("the answer was cut short")
CONNECTION_LOST = gettext_noop("connection lost")

_REASONS = {
    errno.ECONNREFUSED: gettext_noop("connection refused"),
    errno.ECONNRESET: gettext_noop("connection reset"),
    errno.ECONNABORTED: gettext_noop("connection aborted"),
    errno.EPIPE: gettext_noop("connection reset"),
    errno.ENETUNREACH: gettext_noop("network unreachable"),
    errno.EHOSTUNREACH: gettext_noop("host unreachable"),
    errno.EHOSTDOWN: gettext_noop("host down"),
    errno.EADDRNOTAVAIL: gettext_noop("address not available"),
}

SENTENCES = (
    CONNECT, CONNECT_PLAIN, CONNECT_SECURELY, HOST_UNKNOWN, LOOKUP_FAILED, CONNECT_TIMEOUT,
    READ_TIMEOUT, DROPPED, DROPPED_MID_STREAM, STALLED, STREAM_STALLED, CUT_OFF,
    CHECK_UNFINISHED, JOB_LOST, CLOSED_WITHOUT_ANSWER, CERTIFICATE_FAILED,
    CERTIFICATE_FAILED_DETAIL, NOT_TLS, TLS_FAILED, TLS_FAILED_DETAIL, CUT_SHORT, CONNECTION_LOST,
    *dict.fromkeys(_REASONS.values()),
)  # fmt: skip


def where(host: str, port: int | None) -> str:
    """host:port as people write it ("[::1]:8080" for an IPv6 address)."""
    host = host.strip("[]")
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: causes, contexts, urllib3's `reason` and exceptions in args."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__]
        linked += [a for a in current.args if isinstance(a, BaseException)]
        pending += [e for e in linked if isinstance(e, BaseException)]


def _tls_reason(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = error.verify_message or error.reason or ""
        return CERTIFICATE_FAILED_DETAIL.format(detail=detail) if detail else CERTIFICATE_FAILED
    reason = (error.reason or "").replace("_", " ").lower()
    if reason == "wrong version number":  # https:// to a server that speaks plain HTTP
        return NOT_TLS
    return TLS_FAILED_DETAIL.format(detail=reason) if reason else TLS_FAILED


def connection_message(exc: BaseException, *, host: str, port: int | None) -> str:
    """What went wrong connecting to host:port, for a person (see the module's table)."""
    found = list(causes(exc))
    target = where(host, port)
    lookup = next((e for e in found if isinstance(e, socket.gaierror)), None)
    if lookup is not None:
        if lookup.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_FAIL", -4)):
            return LOOKUP_FAILED.format(host=host)
        return HOST_UNKNOWN.format(host=host)
    tls = next((e for e in found if isinstance(e, ssl.SSLError)), None)
    if tls is not None:
        return CONNECT_SECURELY.format(target=target, reason=_tls_reason(tls))
    if any(isinstance(e, http.client.RemoteDisconnected) for e in found):
        return CONNECT.format(target=target, reason=CLOSED_WITHOUT_ANSWER)
    for error in found:
        if isinstance(error, OSError) and error.errno in _REASONS:
            return CONNECT.format(target=target, reason=_REASONS[error.errno])
    plain = next((e for e in found if type(e) is OSError or isinstance(e, ConnectionError)), None)
    if plain is not None and getattr(plain, "strerror", None):
        return CONNECT.format(target=target, reason=plain.strerror.lower())
    return CONNECT_PLAIN.format(target=target)


def connect_timeout_message(*, host: str, port: int | None, seconds: float) -> str:
    return CONNECT_TIMEOUT.format(target=where(host, port), seconds=f"{seconds:g}")


def read_timeout_message(*, host: str, port: int | None, seconds: float) -> str:
    return READ_TIMEOUT.format(target=where(host, port), seconds=f"{seconds:g}")


def drop_reason(exc: BaseException) -> str:
    """Why an answer under way stopped: "connection reset", "the answer was cut short", ..."""
    found = list(causes(exc))
    if any(isinstance(e, http.client.IncompleteRead) for e in found) or any(
        "incompleteread" in str(e).lower().replace(" ", "") for e in found
    ):
        return CUT_SHORT
    tls = next((e for e in found if isinstance(e, ssl.SSLError)), None)
    if tls is not None:
        return _tls_reason(tls)
    for error in found:
        if isinstance(error, OSError) and error.errno in _REASONS:
            return _REASONS[error.errno]
    return CONNECTION_LOST
