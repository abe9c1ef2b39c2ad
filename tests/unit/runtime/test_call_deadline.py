"""A backend that answers at once but then trickles (a byte, a keep-alive comment) never trips the
per-read timeout; the call's total deadline cuts it off, answer or stream alike. A body cut off
by a dropped connection is a typed error too."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.openai_compat import OpenAICompatAdapter
from tests.fakes.base import FakeServer, Reply

PING = ChatRequest(messages=(Message("user", "hi"),))


class TricklingFake(FakeServer):
    """Answers 200 at once, then sends its body a piece every 0.2 s, for ever (or `pieces`)."""

    def __init__(self, pieces: int | None = None) -> None:
        super().__init__(api_key=None)
        self.pieces = pieces
        self.route("POST", "/v1/chat/completions", self.chat)

    def _drip(self, piece: bytes):
        sent = 0
        while self.pieces is None or sent < self.pieces:
            yield piece
            sent += 1
            time.sleep(0.2)

    def chat(self, request):
        if request.json().get("stream"):
            return Reply(stream=self._drip(b": keep-alive\n\n"), content_type="text/event-stream")
        return Reply(stream=self._drip(b" "), content_type="application/json")


def _adapter(fake: FakeServer, total: float) -> OpenAICompatAdapter:
    endpoint = Endpoint(
        base_url=f"{fake.url}/v1",
        timeouts=Timeouts(connect=2, read=1.0, total=total),
        retry=RetryPolicy(attempts=3, backoff=0.01),
    )
    return OpenAICompatAdapter(endpoint, http.pool())


@pytest.mark.parametrize("streamed", [False, True])
def test_a_trickling_backend_is_cut_off_at_the_deadline(streamed) -> None:
    with TricklingFake() as fake:
        adapter = _adapter(fake, total=1.5)
        call = (lambda: accumulate(adapter.stream("m", PING))) if streamed else None
        started = time.monotonic()
        with pytest.raises(errors.UpstreamTimeout) as caught:
            (call or (lambda: adapter.chat("m", PING)))()
        took = time.monotonic() - started
    assert 1.4 < took < 4, took  # the deadline, not the per-read timeout, and no retry past it
    assert "longer than 1.5 s in all" in caught.value.message


def test_a_body_cut_short_is_a_connection_error() -> None:
    class Cut(FakeServer):
        def __init__(self) -> None:
            super().__init__(api_key=None)
            pieces = [b'{"choices"', b": [", b"], ", b'"usage": {}}']
            self.route("POST", "/v1/chat/completions", lambda r: Reply(stream=iter(pieces)))
            self.fail("drop_stream", times=10)

    with Cut() as fake, pytest.raises(errors.UpstreamError) as caught:
        _adapter(fake, total=30).chat("m", PING)
    assert caught.value.code == "connection"
    assert "dropped while the backend answered" in caught.value.message


class _DripWithLength(BaseHTTPRequestHandler):
    """200 with a Content-Length of 100,000, then a byte every 0.2 s: each read waits to fill its
    buffer, so no per-read timeout and no check between chunks would ever end it."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            return  # we were cut off: that is the point

    def log_message(self, *args: object) -> None:
        pass


def test_a_body_trickling_below_any_chunk_size_is_cut_off_at_the_deadline() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DripWithLength)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = Endpoint(
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
            timeouts=Timeouts(connect=2, read=1.0, total=1.5),
            retry=RetryPolicy(attempts=1),
        )
        adapter = OpenAICompatAdapter(endpoint, http.pool())
        started = time.monotonic()
        with pytest.raises(errors.UpstreamTimeout):
            adapter.chat("m", PING)
        assert time.monotonic() - started < 3
    finally:
        server.shutdown()
        server.server_close()


def test_calls_that_ended_do_not_pile_up_until_their_deadline() -> None:
    """A busy process watches hundreds of calls a second with 10-minute deadlines: those that
    ended are swept out as it goes, not kept until their deadline."""
    from providers.runtime.http import COMPACT_EVERY, Response, _Watchdog

    watchdog = _Watchdog()
    kept = []
    for i in range(COMPACT_EVERY * 2 + 1):
        response = Response(urllib3.HTTPResponse(b""))
        watchdog.watch(response, time.monotonic() + 600)
        if i % 100:
            watchdog.release(response)  # ended
        kept.append(response)
    assert len(watchdog._due) <= COMPACT_EVERY + COMPACT_EVERY * 2 // 100 + 1
    live = sum(1 for e in watchdog._due if getattr(e[2](), "watched", False))
    assert live == len([r for r in kept if r.watched])


def test_a_request_sent_and_unanswered_in_time_is_not_sent_again() -> None:
    """A read timeout is not retried on the same backend (it may still be generating, and billing,
    the first answer); a connection that could not be made is."""
    from tests.fakes.openai_server import OpenAIFake

    with OpenAIFake(api_key=None) as fake:
        fake.fail("slow", times=3, seconds=1.0)
        endpoint = Endpoint(
            base_url=f"{fake.url}/v1",
            timeouts=Timeouts(connect=2, read=0.3, total=30),
            retry=RetryPolicy(attempts=3, backoff=0.01),
        )
        with pytest.raises(errors.UpstreamTimeout) as caught:
            OpenAICompatAdapter(endpoint, http.pool()).chat("gpt-4o-mini", PING)
        assert not isinstance(caught.value, errors.UpstreamConnectTimeout)
        assert len(fake.received) == 1
