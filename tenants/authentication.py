"""DRF authentication. Both classes return `(user, Principal)`: `request.auth` is the principal."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from config import shared_state
from tenants import selectors, services, throttling
from tenants.principals import Principal

SESSION_TENANT_KEY = "tenant_id"


class ApiKeyUser(AnonymousUser):
    """Stands for an API key where DRF expects a user: authenticated, but no Django user."""

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed("The Authorization header has no key.")
        # The address's failed keys are read with the keys' cache version: no extra round trip.
        address = throttling.client_address(request.META)
        reads = [services.KEYS_VERSION, throttling.api_key_failures_key(address)]
        with shared_state.read_together(reads):
            throttling.api_key_check(address)
            api_key = services.api_key_authenticate(raw_key=raw_key)
        if api_key is None:
            throttling.api_key_failed(address)
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return ApiKeyUser(), Principal.for_api_key(api_key)

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class SessionTenantAuthentication(authentication.SessionAuthentication):
    """The logged-in user, acting in their current workspace (kept in the session)."""

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        result = super().authenticate(request)  # enforces CSRF on unsafe methods
        if result is None:
            return None
        user, _ = result
        membership = selectors.membership_current(
            user=user, tenant_id=request.session.get(SESSION_TENANT_KEY)
        )
        if membership is None:
            raise exceptions.PermissionDenied("You are not a member of any workspace.")
        return user, Principal.for_member(membership)
