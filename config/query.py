"""Query parameters the API reads beyond its serializers: a filter with fixed values, and
`limit`/`offset` pages. A value that is not one the schema documents is a 400 with the field's
error, never quietly read as "no filter" or "the default page" (a typo must not look like an
empty result)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from config import errors


def choice(params: Mapping[str, str], name: str, choices: Iterable[str]) -> str | None:
    """The parameter's value, one of `choices`; None when it is absent."""
    if name not in params:
        return None
    value = params[name]
    allowed = list(choices)
    if value not in allowed:
        raise errors.InvalidInput(fields={name: [f"One of {', '.join(allowed)}."]})
    return value


class Pagination(LimitOffsetPagination):
    """`?limit=&offset=`, both whole numbers (limit from 1 to max_limit, offset from 0)."""

    default_limit = 50
    max_limit = 200

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        problems = {}
        for name, lowest, highest in (("limit", 1, self.max_limit), ("offset", 0, None)):
            raw = request.query_params.get(name)
            if raw is None:
                continue
            if not (raw.isascii() and raw.isdigit()) or not (
                lowest <= int(raw) <= (highest or int(raw))
            ):
                most = f" to {highest}" if highest else " or more"
                problems[name] = [f"A whole number, {lowest}{most}."]
        if problems:
            raise errors.InvalidInput(fields=problems)
        return super().paginate_queryset(queryset, request, view)
