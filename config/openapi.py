"""What the OpenAPI schema says beyond each view's own annotations, in one place: the error
responses every operation can give (`{"error": {"code", "message", "fields"?}}`, rendered by
config/exceptions.py), the catalog's providers as the enum of `{provider}`, and a paginated
response's shape (`page_of`).

Which errors an operation documents follows from where they come from:

    400  invalid input (a serializer's or a query parameter's field errors, a bad JSON body, a
         query string with NUL or non-UTF-8 bytes)
    401  no, unknown or revoked API key; 403 a role or key scope that does not allow it
    404  an unknown object in the path, or named in the body (a model to invoke or make the
         default, a workspace to switch to)
    409  a write the workspace's state refuses (a duplicate name, a model not enabled or not
         configured): writes under /model-providers, /default-models and /invocations
    413  a body over the size limit; 415 a body that is not JSON or a form (writes)
    429  too many failed API keys from the address, a key's own rate limit, a budget spent
    502, 504  the provider's server failed or timed out (operations that call it while the
         request waits: discovery)
    503  a part of the service (Redis, the job queue) cannot be reached
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

from providers import selectors

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "invalid, not_found, conflict, ..."},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": 'Field errors by path, e.g. {"input.messages.0.role": [...]}.',
                },
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
DESCRIPTIONS = {
    400: "Invalid input; `fields` holds the errors by field.",
    401: "No API key or session, or an unknown or revoked key.",
    403: "The role or the key's scopes do not allow this.",
    404: "No such object in this workspace.",
    405: "A model named `import` is the import route's path, which takes POST only.",
    409: "The workspace's state does not allow this now.",
    413: "The request body is too large.",
    415: "The body is not JSON (or a form).",
    429: "Too many requests: failed keys from this address, the key's limit, or a spent budget "
    "(see Retry-After).",
    502: "The provider's server failed.",
    503: "A part of the service cannot be reached just now (see Retry-After).",
    504: "The provider's server did not answer in time.",
}
EVERYWHERE = (400, 401, 403, 429, 503)
WRITES = {"post", "put", "patch", "delete"}
CONFLICTING = ("/api/v1/model-providers/", "/api/v1/default-models", "/api/v1/invocations")
SWITCHES = {("put", "/api/v1/tenants/current")}  # to a workspace named by its slug
UPSTREAM = {("post", "/api/v1/model-providers/{provider}/discover")}


def page_of(name: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    """The response of a `config.query.Pagination` list: `{count, next, previous, results}`."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


def page_parameters(max_limit: int) -> list[OpenApiParameter]:
    """`limit` and `offset` as `config.query.Pagination` takes them."""
    return [
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": max_limit}),
        OpenApiParameter("offset", {"type": "integer", "minimum": 0}),
    ]


def _errors_of(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    statuses = list(EVERYWHERE)
    names_objects = method in WRITES and path.startswith(CONFLICTING)  # in the body, too
    in_path = any(p.get("in") == "path" for p in operation.get("parameters", []))
    if in_path or names_objects or (method, path) in SWITCHES:
        statuses.append(404)
    if names_objects:
        statuses.append(409)
    if method in WRITES - {"delete"}:
        statuses += [413, 415]
    if (method, path) in UPSTREAM:
        statuses += [502, 504]
    if path.endswith("/models/{model_id}") and method != "post":
        statuses.append(405)
    return sorted(statuses)


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """spectacular postprocessing hook: the error component, each operation's error responses,
    and the enum of `{provider}`."""
    providers = sorted(selectors.catalog().keys())
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "provider":
                    parameter["schema"] = {"type": "string", "enum": providers}
            responses = operation.setdefault("responses", {})
            for status in _errors_of(method, path, operation):
                responses.setdefault(
                    str(status), {"description": DESCRIPTIONS[status], "content": error}
                )
    return result
