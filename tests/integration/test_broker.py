"""The Celery broker transport (config/broker.py): kombu's Redis transport, publishing through one
client per channel instead of a new one per message."""

from __future__ import annotations

import pytest

from config.broker import Transport
from config.celery import app

QUEUE = "mps-test-broker"


def test_messages_are_published_through_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        channel = connection.default_channel
        channel.queue_purge(QUEUE)
        built = []
        build = channel._create_client
        monkeypatch.setattr(
            channel, "_create_client", lambda *a, **kw: built.append(1) or build(*a, **kw)
        )
        queue = connection.SimpleQueue(QUEUE)
        try:
            for n in range(5):
                queue.put({"n": n})
            assert len(built) <= 1
            received = [queue.get(timeout=5) for _ in range(5)]
            assert [m.payload["n"] for m in received] == list(range(5))
            for message in received:
                message.ack()
        finally:
            queue.close()
            channel.queue_delete(QUEUE)


def test_a_replaced_pool_gets_a_client_of_its_own() -> None:
    """kombu drops a channel's pools when it reconnects; a client of the old pool is not kept."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as first:
            pass
        channel._pool = None  # what the channel does on a lost connection
        with channel.conn_or_acquire() as second:
            assert second.connection_pool is channel.pool
        assert second is not first
        assert second.ping()
