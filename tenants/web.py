"""What every settings page shares: the logged-in member acting in their current workspace."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from config import errors
from tenants import selectors
from tenants.authentication import SESSION_TENANT_KEY
from tenants.principals import Perm, Principal


def workspace_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login required; sets request.tenant, request.principal and request.can_change.

    A fragment asked for something the workspace does not have (another workspace's id, an
    unknown provider or model) is a 404, and a malformed request a 400, never a 500."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        membership = selectors.membership_current(
            user=request.user, tenant_id=request.session.get(SESSION_TENANT_KEY)
        )
        if membership is None:
            return render(request, "settings/no_workspace.html", status=403)
        request.tenant = membership.tenant
        request.principal = Principal.for_member(membership)
        request.can_change = request.principal.can(Perm.CHANGE_SETTINGS)
        try:
            return view(request, *args, **kwargs)
        except errors.NotFound as exc:
            raise Http404(exc.message) from exc
        except errors.InvalidInput as exc:
            return HttpResponseBadRequest(exc.message, content_type="text/plain; charset=utf-8")

    return wrapped


def id_param(request: HttpRequest, name: str) -> int | None:
    """An id from the query string or form (None when absent); InvalidInput when not a number."""
    raw = request.GET.get(name) or request.POST.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.InvalidInput(
            f"{name} must be a number.", fields={name: ["Not a number."]}
        ) from None


def require_change(request: HttpRequest) -> None:
    """For POST handlers: editors and members see settings read-only (a 403 page)."""
    if not request.can_change:
        raise PermissionDenied("Only owners and admins change settings.")


def workspaces(request: HttpRequest) -> dict[str, Any]:
    """Template context: the user's workspaces, for the switcher."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"workspaces": list(selectors.membership_list_for_user(user=request.user))}


@require_POST
@workspace_page
def switch_workspace(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("slug", "")
    try:
        membership = selectors.membership_get_by_slug(user=request.user, slug=slug)
    except errors.NotFound:
        return redirect("settings-providers")
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    wanted = request.POST.get("next", "")
    same_site = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(wanted if wanted and same_site else "settings-providers")
