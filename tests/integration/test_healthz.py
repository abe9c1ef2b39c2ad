"""/healthz reports the database, Redis and a worker, and degrades instead of crashing. Anyone
learns each check's ok; operators (staff users, holders of HEALTHZ_TOKEN) get the details."""

from __future__ import annotations

import socket

import pytest
from django.test import override_settings

TOKEN = "healthz-token-for-tests-0123456789"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def operator_get(client):
    """GET /healthz as an operator holding the token."""

    def get():
        with override_settings(HEALTHZ_TOKEN=TOKEN):
            return client.get("/healthz", headers={"X-Healthz-Token": TOKEN})

    return get


@pytest.mark.django_db
def test_healthz_with_redis_down_reports_it_to_operators(operator_get) -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"):
        response = operator_get()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["worker"]["ok"] is False


@pytest.mark.django_db
def test_anonymous_callers_learn_only_what_is_ok(client) -> None:
    """No host, exception text, latency or worker name for a caller who is not an operator, even
    with a wrong token."""
    port = _closed_port()
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0", HEALTHZ_TOKEN=TOKEN):
        for headers in ({}, {"X-Healthz-Token": "wrong"}):
            response = client.get("/healthz", headers=headers)
            assert response.status_code == 503
            assert response.json() == {
                "status": "unhealthy",
                "checks": {
                    "database": {"ok": True},
                    "redis": {"ok": False},
                    "worker": {"ok": False},
                },
            }
            assert str(port) not in response.content.decode()
            assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_no_token_configured_accepts_no_token(client) -> None:
    with override_settings(HEALTHZ_TOKEN=""):
        response = client.get("/healthz", headers={"X-Healthz-Token": ""})
    assert set(response.json()["checks"]["redis"]) == {"ok"}


@pytest.mark.django_db
def test_staff_users_get_the_details(client, django_user_model) -> None:
    user = django_user_model.objects.create_user("member", password="x" * 12)
    client.force_login(user)
    assert set(client.get("/healthz").json()["checks"]["redis"]) == {"ok"}
    user.is_staff = True
    user.save()
    checks = client.get("/healthz").json()["checks"]
    assert checks["database"]["vendor"]
    assert "latency_ms" in checks["redis"]


@pytest.mark.django_db
def test_healthz_without_a_worker_says_so(client, operator_get) -> None:
    response = operator_get()
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is True
    assert checks["worker"] == {
        "ok": False,
        "error": "No Celery worker answered a ping.",
        "latency_ms": checks["worker"]["latency_ms"],
    }
    assert client.get("/healthz").json()["checks"]["worker"] == {"ok": False}


def test_healthz_all_green_with_a_real_worker(celery_worker_thread, client, operator_get) -> None:
    response = operator_get()
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["worker"]["ok"] is True
    assert body["checks"]["worker"]["workers"]
    anonymous = client.get("/healthz").json()
    assert anonymous == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "redis": {"ok": True}, "worker": {"ok": True}},
    }
