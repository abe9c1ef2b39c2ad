"""/healthz: is the database reachable, is Redis, does a Celery worker answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from config.celery import app as celery_app

Check = dict[str, Any]


def _timed(probe: Callable[[], Check]) -> Check:
    started = time.perf_counter()
    try:
        result = probe()
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure, never raises
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def _redis() -> Check:
    timeout = settings.HEALTHCHECK_TIMEOUT
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def _worker() -> Check:
    replies = celery_app.control.ping(timeout=settings.HEALTHCHECK_TIMEOUT, limit=1)
    if not replies:
        return {"ok": False, "error": "No Celery worker answered a ping."}
    return {"ok": True, "workers": sorted(name for reply in replies for name in reply)}


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _timed(_database), "redis": _timed(_redis)}
    if checks["redis"]["ok"]:
        checks["worker"] = _timed(_worker)
    else:
        checks["worker"] = {"ok": False, "error": "Not checked: the broker (Redis) is down."}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "checks": checks},
        status=200 if healthy else 503,
    )
