"""Connection failures read as people write (issue 13, item 10): each way a connection fails,
made for real on loopback sockets and sent through the real HTTP client, gives a sentence that
names host and port and the cause, never urllib3's "HTTPConnectionPool(...): Max retries
exceeded"."""

from __future__ import annotations

import datetime
import errno
import ipaddress
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from config import errors
from providers.runtime import failures, http, netguard
from providers.runtime.http import RetryPolicy, Timeouts

RAW = ("HTTPConnectionPool", "HTTPSConnectionPool", "Max retries", "Errno", "Caused by")


def call(url: str, *, connect: float = 2.0, read: float = 2.0, secrets=()) -> errors.UpstreamError:
    client = http.HttpClient(
        base_url=url,
        headers={},
        pool=http.pool(),
        timeouts=Timeouts(connect=connect, read=read),
        retry=RetryPolicy(attempts=1),
        secrets=secrets,
        error_message=str,
    )
    with pytest.raises(errors.UpstreamError) as caught:
        client.request("GET", "v1/models")
    message = caught.value.message
    assert not any(raw in message for raw in RAW), message
    return caught.value


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serve() -> Iterator[Callable[..., int]]:
    """`serve(handler, tls=None)`: a loopback listener whose connections `handler` takes."""
    sockets: list[socket.socket] = []

    def start(handler: Callable[[socket.socket], None], tls: ssl.SSLContext | None = None) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sockets.append(listener)

        def loop() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                sockets.append(conn)
                try:
                    handler(tls.wrap_socket(conn, server_side=True) if tls else conn)
                except (OSError, ssl.SSLError):
                    conn.close()

        threading.Thread(target=loop, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for sock in sockets:
        sock.close()


def read_request(conn: socket.socket) -> None:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = conn.recv(4096)
        if not chunk:
            return
        received += chunk


def test_a_closed_port_is_connection_refused() -> None:
    port = closed_port()
    failure = call(f"http://127.0.0.1:{port}")
    assert isinstance(failure, errors.UpstreamConnection)
    assert failure.message == f"Could not connect to 127.0.0.1:{port} (connection refused)."


def test_the_issue_example_port_1() -> None:
    assert call("http://127.0.0.1:1").message == (
        "Could not connect to 127.0.0.1:1 (connection refused)."
    )


def test_a_reset_connection(serve) -> None:
    def reset(conn: socket.socket) -> None:
        read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    port = serve(reset)
    failure = call(f"http://127.0.0.1:{port}")
    assert isinstance(failure, errors.UpstreamConnection)
    assert failure.message == f"Could not connect to 127.0.0.1:{port} (connection reset)."


def test_a_server_that_hangs_up_without_answering(serve) -> None:
    def hang_up(conn: socket.socket) -> None:
        read_request(conn)
        conn.close()

    port = serve(hang_up)
    assert call(f"http://127.0.0.1:{port}").message == (
        f"Could not connect to 127.0.0.1:{port} (the server closed the connection without "
        "answering)."
    )


def test_a_silent_server_times_out(serve) -> None:
    port = serve(read_request)  # reads the request, never answers
    failure = call(f"http://127.0.0.1:{port}", read=0.3)
    assert isinstance(failure, errors.UpstreamTimeout)
    assert failure.message == (
        f"127.0.0.1:{port} did not answer in time (nothing received for 0.3 s)."
    )


def test_a_connection_never_accepted_is_a_connect_timeout() -> None:
    """A listener whose queue is full drops new SYNs: the connect itself times out."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued = []
        for _ in range(4):  # fill the accept queue (Linux keeps backlog + 1)
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            queued.append(sock)
        try:
            failure = call(f"http://127.0.0.1:{port}", connect=0.3)
        finally:
            for sock in queued:
                sock.close()
    assert isinstance(failure, errors.UpstreamConnectTimeout)
    assert failure.message == (
        f"Could not connect to 127.0.0.1:{port} in time (no answer within 0.3 s)."
    )


def test_an_unknown_host_name() -> None:
    """`.invalid` never resolves (RFC 6761); offline, the resolver may say it cannot look."""
    message = call("http://example.invalid:9997").message
    assert message in {
        "Could not find the host example.invalid.",
        "Could not look up the host example.invalid (temporary failure in name resolution).",
    }


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (socket.EAI_NONAME, "Could not find the host models.example.com."),
        (
            socket.EAI_AGAIN,
            "Could not look up the host models.example.com (temporary failure in name resolution).",
        ),
    ],
)
def test_name_resolution_failures(monkeypatch, code: int, expected: str) -> None:
    def resolve(host: str, port: int, policy: netguard.AddressPolicy, **_: object):
        raise socket.gaierror(code, "lookup failed")

    monkeypatch.setattr(netguard, "resolve", resolve)
    assert call("https://models.example.com/v1").message == expected


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_an_untrusted_certificate(serve, tmp_path) -> None:
    port = serve(read_request, tls=_self_signed(tmp_path))
    failure = call(f"https://127.0.0.1:{port}")
    assert isinstance(failure, errors.UpstreamConnection)
    assert failure.message == (
        f"Could not connect securely to 127.0.0.1:{port} (certificate verify failed: "
        "self-signed certificate)."
    )


def test_https_to_a_plain_http_server(serve) -> None:
    def plain(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    port = serve(plain)
    assert call(f"https://127.0.0.1:{port}").message == (
        f"Could not connect securely to 127.0.0.1:{port} (TLS handshake failed: the server "
        "does not speak TLS here; try http://)."
    )


def test_the_message_holds_no_user_info_and_masks_secrets() -> None:
    """A key put in the URL's user:password@ is not shown; a secret is masked wherever it is."""
    port = closed_port()
    failure = call(f"http://ada:sk-in-url-0001@127.0.0.1:{port}/v1", secrets=("sk-in-url-0001",))
    assert "sk-in-url-0001" not in failure.message
    assert "ada" not in failure.message
    assert failure.message == f"Could not connect to 127.0.0.1:{port} (connection refused)."


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "(network unreachable)"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "(host unreachable)"),
        (OSError(errno.EMFILE, "Too many open files"), "(too many open files)"),
        (ConnectionAbortedError(errno.ECONNABORTED, "aborted"), "(connection aborted)"),
    ],
)
def test_other_socket_errors_name_their_cause(error: OSError, expected: str) -> None:
    wrapped = RuntimeError("urllib3 wrapper")
    wrapped.__cause__ = error
    message = failures.connection_message(wrapped, host="10.0.0.9", port=9997)
    assert message == f"Could not connect to 10.0.0.9:9997 {expected}."


def test_ipv6_hosts_are_bracketed() -> None:
    assert failures.where("::1", 8080) == "[::1]:8080"
    assert failures.where("[::1]", 8080) == "[::1]:8080"
    assert failures.where("example.com", 443) == "example.com:443"
