"""One renderer for every API error: `{"error": {"code", "message", "fields"?}}`."""

from __future__ import annotations

import logging
import math
from typing import Any

import kombu.exceptions
import redis
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response

from config import errors

logger = logging.getLogger(__name__)

TOO_LARGE = {"code": "too_large", "message": "The request body is too large."}
UNAVAILABLE = {
    "code": "unavailable",
    "message": "A part of the service (its Redis) cannot be reached just now; try again shortly.",
}


def _field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as flat field paths: {"input.messages.0.role": ["..."]}."""
    if isinstance(detail, dict):
        found: dict[str, list[str]] = {}
        for name, inner in detail.items():
            path = str(name) if not prefix else f"{prefix}.{name}"
            if prefix and name == "non_field_errors":
                path = prefix
            for key, messages in _field_errors(inner, path).items():
                found.setdefault(key, []).extend(messages)
        return found
    if isinstance(detail, list) and any(isinstance(m, dict | list) for m in detail):
        found = {}
        for index, inner in enumerate(detail):
            if inner:  # a list of items: only those with errors
                for key, messages in _field_errors(inner, f"{prefix}.{index}").items():
                    found.setdefault(key, []).extend(messages)
        return found
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(m) for m in messages]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, errors.ServiceError):
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if isinstance(exc, errors.InvalidInput) and exc.fields:
            body["fields"] = exc.fields
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else {}
        return Response({"error": body}, status=exc.http_status, headers=headers)
    if isinstance(exc, RequestDataTooBig):
        return Response({"error": TOO_LARGE}, status=413)
    if isinstance(exc, redis.RedisError | kombu.exceptions.OperationalError):
        logger.warning("A request failed: Redis cannot be reached (%s)", exc)
        return Response({"error": UNAVAILABLE}, status=503, headers={"Retry-After": "5"})
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return Response({"error": {"code": "invalid", "message": str(exc)}}, status=400)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, drf.ValidationError):
        return Response(
            {
                "error": {
                    "code": "invalid",
                    "message": "Invalid input.",
                    "fields": _field_errors(exc.detail),
                }
            },
            status=400,
        )
    if isinstance(exc, drf.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        return Response(
            {"error": {"code": code, "message": str(exc.detail)}},
            status=exc.status_code,
            headers=headers,
        )
    return None  # Django's 500 handling; the traceback goes to the (redacting) log.


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 handler, for what fails before a view (a middleware reading a body past
    DATA_UPLOAD_MAX_MEMORY_SIZE, a Host not allowed): under /api/ the API's JSON, else the page."""
    if not request.path.startswith("/api/"):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"error": TOO_LARGE}, status=413)
    return JsonResponse({"error": {"code": "bad_request", "message": "Bad request."}}, status=400)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF failure view (CSRF_FAILURE_VIEW): under /api/ the API's JSON 403 (DRF's views
    check CSRF themselves, so this is an unsafe request to no endpoint), else Django's page."""
    if not request.path.startswith("/api/"):
        return csrf.csrf_failure(request, reason)
    return JsonResponse(
        {"error": {"code": "csrf_failed", "message": f"CSRF check failed: {reason}"}}, status=403
    )
