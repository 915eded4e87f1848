"""Small helpers every API view uses: validated input, query parameters, and the contract's page
shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from rest_framework.request import Request
from rest_framework.response import Response

from herald.errors import ApiError
from herald.pagination import MAX_ID, Page, paginate, parse_limit


def validated(serializer_class: type, data: Any) -> dict[str, Any]:
    """Validate request data; a failure raises the contract's 400 with the fields named."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def query_param(request: Request, name: str) -> str | None:
    """A query parameter that takes one value: None when absent, 400 when repeated.

    ``QueryDict.get`` would silently keep the last of ``?limit=5&limit=500``; the schema documents
    each parameter as a single value, so a repeat is the client's bug, reported like any other."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ApiError(
            400, "invalid", f"Invalid {name}.", {name: ["Pass this parameter at most once."]}
        )
    return values[0] if values else None


def id_param(request: Request, name: str, *, what: str) -> int | None:
    """A query parameter naming an object by id (a positive integer), or None when absent."""
    raw = query_param(request, name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID):
        raise ApiError(400, "invalid", f"Invalid {name}.", {name: [f"A {what} id is an integer."]})
    return int(raw)


def page_response(
    request: Request,
    queryset: QuerySet[Any],
    present: Callable[[Any], dict[str, Any]],
) -> Response:
    """``{"results": [...], "next_cursor"}`` for ``?cursor=`` and ``?limit=``, newest first."""
    page = paginate(
        queryset,
        cursor=query_param(request, "cursor"),
        limit=parse_limit(query_param(request, "limit")),
    )
    return Response(page_body(page, present))


def page_body(page: Page[Any], present: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {"results": [present(item) for item in page.results], "next_cursor": page.next_cursor}
