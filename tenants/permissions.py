from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from tenants.principals import Perm, Principal


class IsTenantPrincipal(BasePermission):
    """The request was authenticated for a tenant; views add `required_perms` on top."""

    message = "Authentication with an API key or a workspace session is required."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return False
        required: dict[str, Perm] = getattr(view, "required_perms", {})
        perm = required.get(request.method or "GET")
        if perm is not None and not principal.can(perm):
            self.message = f"Your role or key does not allow this ({perm})."
            return False
        return True
