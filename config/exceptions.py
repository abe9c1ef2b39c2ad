"""One renderer for every API error: `{"error": {"code", "message", "fields"?}}`."""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from config import errors

logger = logging.getLogger(__name__)


def _field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(name): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for name, msgs in detail.items()
        }
    return {
        "non_field_errors": [str(m) for m in (detail if isinstance(detail, list) else [detail])]
    }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, errors.ServiceError):
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if isinstance(exc, errors.InvalidInput) and exc.fields:
            body["fields"] = exc.fields
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else {}
        return Response({"error": body}, status=exc.http_status, headers=headers)
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
