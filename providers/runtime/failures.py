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
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
from collections.abc import Iterator


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


_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection reset",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EHOSTDOWN: "host down",
    errno.EADDRNOTAVAIL: "address not available",
}


def _tls_reason(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = error.verify_message or error.reason or ""
        return f"certificate verify failed: {detail}" if detail else "certificate verify failed"
    reason = (error.reason or "").replace("_", " ").lower()
    if reason == "wrong version number":  # https:// to a server that speaks plain HTTP
        return "TLS handshake failed: the server does not speak TLS here; try http://"
    return f"TLS handshake failed: {reason}" if reason else "TLS handshake failed"


def connection_message(exc: BaseException, *, host: str, port: int | None) -> str:
    """What went wrong connecting to host:port, for a person (see the module's table)."""
    found = list(causes(exc))
    target = where(host, port)
    lookup = next((e for e in found if isinstance(e, socket.gaierror)), None)
    if lookup is not None:
        if lookup.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_FAIL", -4)):
            return f"Could not look up the host {host} (temporary failure in name resolution)."
        return f"Could not find the host {host}."
    tls = next((e for e in found if isinstance(e, ssl.SSLError)), None)
    if tls is not None:
        return f"Could not connect securely to {target} ({_tls_reason(tls)})."
    if any(isinstance(e, http.client.RemoteDisconnected) for e in found):
        return (
            f"Could not connect to {target} (the server closed the connection without answering)."
        )
    for error in found:
        if isinstance(error, OSError) and error.errno in _REASONS:
            return f"Could not connect to {target} ({_REASONS[error.errno]})."
    plain = next((e for e in found if type(e) is OSError or isinstance(e, ConnectionError)), None)
    if plain is not None and getattr(plain, "strerror", None):
        return f"Could not connect to {target} ({plain.strerror.lower()})."
    return f"Could not connect to {target}."


def connect_timeout_message(*, host: str, port: int | None, seconds: float) -> str:
    return f"Could not connect to {where(host, port)} in time (no answer within {seconds:g} s)."


def read_timeout_message(*, host: str, port: int | None, seconds: float) -> str:
    return f"{where(host, port)} did not answer in time (nothing received for {seconds:g} s)."


def drop_reason(exc: BaseException) -> str:
    """Why an answer under way stopped: "connection reset", "the answer was cut short", ..."""
    found = list(causes(exc))
    if any(isinstance(e, http.client.IncompleteRead) for e in found) or any(
        "incompleteread" in str(e).lower().replace(" ", "") for e in found
    ):
        return "the answer was cut short"
    tls = next((e for e in found if isinstance(e, ssl.SSLError)), None)
    if tls is not None:
        return _tls_reason(tls)
    for error in found:
        if isinstance(error, OSError) and error.errno in _REASONS:
            return _REASONS[error.errno]
    return "connection lost"
