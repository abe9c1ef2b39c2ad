"""/healthz: is the database reachable, is Redis, does a Celery worker answer.

Anyone (a load balancer) learns each check's `ok`; operators also get the details (latencies, the
workers' names, a failure's text, which may name a host): staff users, and requests whose
X-Healthz-Token header equals the HEALTHZ_TOKEN setting.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

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


def _is_operator(request: HttpRequest) -> bool:
    token = settings.HEALTHZ_TOKEN
    given = request.headers.get("X-Healthz-Token", "")
    if token and given and hmac.compare_digest(given.encode(), token.encode()):
        return True
    try:
        return request.user.is_staff
    except DatabaseError:  # the session lives in the database, which may be the outage
        return False


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _timed(_database), "redis": _timed(_redis)}
    if checks["redis"]["ok"]:
        checks["worker"] = _timed(_worker)
    else:
        checks["worker"] = {"ok": False, "error": "Not checked: the broker (Redis) is down."}
    healthy = all(check["ok"] for check in checks.values())
    if not _is_operator(request):
        checks = {name: {"ok": check["ok"]} for name, check in checks.items()}
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "checks": checks},
        status=200 if healthy else 503,
    )
