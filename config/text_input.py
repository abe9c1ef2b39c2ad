"""Query strings and page forms are text: a `%00` (which PostgreSQL can neither store nor compare
with a column) or query bytes that are not UTF-8 (a lone surrogate's `%ED%A0%80`, which Django
would silently turn into U+FFFD) get a 400 before any view reads them. JSON bodies are checked by
their parser (config/parsers.py)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse


def query_problem(query_string: str) -> str | None:
    """What is wrong with a query string as WSGI gives it (its bytes as Latin-1), or None."""
    raw = unquote_to_bytes(query_string.encode("latin-1", "replace"))
    if b"\x00" in raw:
        return "The query string holds a NUL character (%00)."
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "The query string is not UTF-8 text (a lone surrogate, or a stray byte)."
    return None


FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def form_problem(request: HttpRequest) -> str | None:
    """What is wrong with a page's form body, or None (the API's forms are its serializers')."""
    if request.method != "POST" or request.content_type not in FORM_TYPES:
        return None
    for name, values in request.POST.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return f"The form field {name[:64]!r} holds a NUL character."
    return None


class TextInputMiddleware:
    """Refuses what `query_problem` and `form_problem` find: JSON under /api/, text elsewhere.
    (The /v1 gateway is answered before Django and checks its own.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = request.path.startswith("/api/")
        problem = query_problem(request.META.get("QUERY_STRING", ""))
        if problem is None and not api:
            problem = form_problem(request)
        if problem is None:
            return self.get_response(request)
        if api:
            return JsonResponse({"error": {"code": "invalid", "message": problem}}, status=400)
        return HttpResponseBadRequest(problem, content_type="text/plain; charset=utf-8")
