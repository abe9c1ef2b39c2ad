"""The site's and the admin's login, with the brute-force limits of `throttling`: while an account
or a client address is locked out, a login is refused with 429 and Retry-After, the right
password included."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from config import errors
from tenants import throttling


class ThrottledLoginMixin:
    """Checks the lock before the password, counts a failed login, clears the account's count
    on success."""

    request: HttpRequest
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        address = throttling.client_address(self.request.META)
        try:
            throttling.login_check(username=username, address=address)
        except errors.RateLimited as locked:
            self.request.login_retry_after = locked.retry_after  # type: ignore[attr-defined]
            raise ValidationError(locked.message, code=throttling.LOCKED_CODE) from None
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except ValidationError as exc:
            if username and exc.code == "invalid_login":
                throttling.login_failed(username=username, address=address)
            raise
        if username:
            throttling.login_succeeded(username=username)
        return cleaned


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


def refused_while_locked(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A login page that its form found locked answers 429 with Retry-After."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        retry_after = getattr(request, "login_retry_after", None)
        if retry_after is not None:
            response.status_code = 429
            response["Retry-After"] = str(max(1, int(retry_after)))
        return response

    return wrapped
