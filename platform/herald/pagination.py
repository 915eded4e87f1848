"""Keyset pagination for every list endpoint: ``{"results": [...], "next_cursor"}``, newest first.

Lists are ordered by a growing integer id, so the cursor is "everything below this id": stable
while new rows arrive (they sort above the first page) and an index range scan at any depth.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import QuerySet

from herald.errors import ApiError

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    results: list[T]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> int:
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        version, _, value = decoded.partition(":")
        if version != "v1":
            raise ValueError(version)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(
            400, "invalid", "Invalid cursor.", {"cursor": ["Pass back a next_cursor value."]}
        ) from exc


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT) -> int:
    if raw in (None, ""):
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(
            400,
            "invalid",
            "Invalid limit.",
            {"limit": [f"Use a whole number from 1 to {MAX_LIMIT}."]},
        )
    return limit


def paginate(queryset: QuerySet[Any], *, cursor: str | None, limit: int) -> Page[Any]:
    """One page of ``queryset`` by descending id, after ``cursor`` (a previous next_cursor)."""
    ordered = queryset.order_by("-id")
    if cursor:
        ordered = ordered.filter(id__lt=decode_cursor(cursor))
    return page_of_rows(list(ordered[: limit + 1]), limit=limit)


def page_of_rows(rows: list[Any], *, limit: int) -> Page[Any]:
    """The page for up to ``limit + 1`` rows fetched newest first (one more tells that more
    follow)."""
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        last_id = last["id"] if isinstance(last, dict) else last.id
        return Page(results=rows, next_cursor=encode_cursor(last_id))
    return Page(results=rows, next_cursor=None)
