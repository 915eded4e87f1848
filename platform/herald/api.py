"""Small helpers every API view uses: validated input, and the contract's page shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from rest_framework.request import Request
from rest_framework.response import Response

from herald.pagination import Page, paginate, parse_limit


def validated(serializer_class: type, data: Any) -> dict[str, Any]:
    """Validate request data; a failure raises the contract's 400 with the fields named."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def page_response(
    request: Request,
    queryset: QuerySet[Any],
    present: Callable[[Any], dict[str, Any]],
) -> Response:
    """``{"results": [...], "next_cursor"}`` for ``?cursor=`` and ``?limit=``, newest first."""
    page = paginate(
        queryset,
        cursor=request.query_params.get("cursor"),
        limit=parse_limit(request.query_params.get("limit")),
    )
    return Response(page_body(page, present))


def page_body(page: Page[Any], present: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {"results": [present(item) for item in page.results], "next_cursor": page.next_cursor}
