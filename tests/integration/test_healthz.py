"""/healthz reports the database, Redis and a worker, and degrades instead of crashing."""

from __future__ import annotations

import socket

import pytest
from django.test import override_settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_healthz_with_redis_down_reports_it(client) -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["worker"]["ok"] is False


@pytest.mark.django_db
def test_healthz_without_a_worker_says_so(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is True
    assert checks["worker"] == {
        "ok": False,
        "error": "No Celery worker answered a ping.",
        "latency_ms": checks["worker"]["latency_ms"],
    }


def test_healthz_all_green_with_a_real_worker(celery_worker_thread, client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["worker"]["ok"] is True
    assert body["checks"]["worker"]["workers"]
