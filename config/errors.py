"""The one error taxonomy of the service.

Pure Python (stdlib only), so anything may import it, the runtime adapters included.

    ServiceError                  code, http_status, retryable
    ├── NotFound                  404
    ├── PermissionDenied          403
    ├── Conflict                  409
    ├── RateLimited               429 rate_limited (an API key's per-minute limit) or
    │                             budget_exhausted (a monthly budget), with retry_after
    ├── InvalidInput              400, with field errors
    ├── Unavailable               503 unavailable: a part of the service itself (Redis, the job
    │                             queue) cannot be reached; nothing was kept, try again
    └── UpstreamError             a model provider's backend failed
        ├── UpstreamAuth          authorization: bad or missing key
        ├── UpstreamRateLimited   rate_limit (retryable, may carry retry_after)
        │   └── AllEntriesCooling all_entries_cooling: every balanced entry is resting (429)
        ├── UpstreamQuota         quota exhausted
        ├── UpstreamUnavailable   server_unavailable, or bad_response (a reply of the wrong shape)
        │   └── UpstreamConnection  connection: refused, reset, DNS (retryable)
        ├── UpstreamTimeout       timeout (retryable)
        ├── UpstreamBadRequest    bad_request
        ├── UpstreamNotFound      not_found (unknown model)
        └── UpstreamForbiddenAddress  forbidden_address: the URL leads to an address this server
                                      refuses to connect to (SSRF guard); never connected

`config.exceptions` renders these as `{"error": {"code", "message", "fields"?}}`.
"""

from __future__ import annotations


class ServiceError(Exception):
    code = "error"
    http_status = 500
    retryable = False

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        if code is not None:
            self.code = code


class NotFound(ServiceError):
    code = "not_found"
    http_status = 404


class PermissionDenied(ServiceError):
    code = "permission_denied"
    http_status = 403


class Conflict(ServiceError):
    code = "conflict"
    http_status = 409


class RateLimited(ServiceError):
    """The caller's own limit (an API key's requests or tokens per minute) is reached."""

    code = "rate_limited"
    http_status = 429

    def __init__(
        self, message: str = "", *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class InvalidInput(ServiceError):
    code = "invalid"
    http_status = 400

    def __init__(
        self,
        message: str = "",
        *,
        fields: dict[str, list[str]] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message or "Invalid input.", code=code)
        self.fields = fields or {}


class Unavailable(ServiceError):
    """The service cannot take the request now (its job queue is away); nothing was kept."""

    code = "unavailable"
    http_status = 503
    retryable = True
    retry_after = 5


class UpstreamError(ServiceError):
    code = "upstream_error"
    http_status = 502


class UpstreamAuth(UpstreamError):
    code = "authorization"


class UpstreamRateLimited(UpstreamError):
    code = "rate_limit"
    retryable = True

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AllEntriesCooling(UpstreamRateLimited):
    """Every load-balancing entry of a model is cooling down after failing."""

    code = "all_entries_cooling"
    http_status = 429


class UpstreamQuota(UpstreamError):
    code = "quota"


class UpstreamUnavailable(UpstreamError):
    code = "server_unavailable"
    retryable = True


class UpstreamConnection(UpstreamUnavailable):
    code = "connection"


class UpstreamTimeout(UpstreamError):
    code = "timeout"
    http_status = 504
    retryable = True


class UpstreamConnectTimeout(UpstreamTimeout):
    """No connection in time: the request never reached the backend, so sending it again is
    safe (after a read timeout it is not: the backend may still be answering, and bills it)."""

    code = "timeout"


class UpstreamBadRequest(UpstreamError):
    code = "bad_request"


class UpstreamNotFound(UpstreamError):
    code = "not_found"


class UpstreamForbiddenAddress(UpstreamError):
    """Refused before connecting: the message is the guard's own, never a response body."""

    code = "forbidden_address"


RETRYABLE: tuple[type[ServiceError], ...] = (
    UpstreamRateLimited,
    UpstreamUnavailable,
    UpstreamTimeout,
)
