"""Fakes for the outbound address guard: a server that redirects every request elsewhere, and a
bare TCP listener that records every connection made to it (so a test can prove none was).

Both listen on loopback only (127.0.0.0/8 or ::1): tests never send traffic anywhere else.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

from tests.fakes.base import FakeServer, Reply, Request


class RedirectFake(FakeServer):
    """Answers every request with `status` (302 unless told) and `Location: target`."""

    def __init__(self) -> None:
        super().__init__(api_key=None)
        self.target = ""
        self.status = 302
        for method in ("GET", "POST"):
            self.route(method, "/.*", self._redirect)

    def redirect(self, target: str, status: int = 302) -> None:
        self.target, self.status = target, status
        self.received.clear()

    def _redirect(self, request: Request) -> Reply:
        return Reply(self.status, {"moved": self.target}, headers={"Location": self.target})


class Listener:
    """A TCP listener on a loopback address. It records each connection it accepts and answers
    a minimal `200 {"data": []}`, so a request that gets through would succeed."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("Test servers listen on loopback only.")
        self.host = host
        self.connections: list[Any] = []  # peer addresses
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._closed = threading.Event()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Listener:
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self._closed.set()
        self._sock.close()

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(peer)
            with conn:
                conn.settimeout(1.0)
                try:
                    conn.recv(65536)
                    body = b'{"data": []}'
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                except OSError:
                    pass
