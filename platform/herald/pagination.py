"""Keyset pagination for every list endpoint: ``{"results": [...], "next_cursor"}``, newest first.

Lists are ordered by a growing integer id, so the cursor is "everything below this id": stable
while new rows arrive (they sort above the first page) and an index range scan at any depth.

Why not DRF's ``CursorPagination``, which pages the same way: it does not keep the contract.
A cursor it cannot decode raises ``NotFound`` (404 "Invalid cursor"), where the contract answers
400 ``invalid`` naming ``cursor``; its page is ``{"next": <absolute URL>, "previous",
"results"}``, not ``next_cursor``; its cursor is base64 of a query string (``o``, ``p``, ``r``)
that the schema cannot describe with a pattern, as it does ``CURSOR_PATTERN``; a bad ``limit``
silently falls back to the default page size (and one above the maximum is cut to it) instead of
a 400; and it pages a queryset only, while the inbox pages the rows of its own single statement
(``page_of_rows``). Overriding all of that would leave nothing of it but the name.
"""

from __future__ import annotations

import base64
import re
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


MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints

# Every cursor ``encode_cursor`` makes, and nothing else: unpadded base64url of "v1:" and the
# id's digits, spelled out per 3-byte group (each digit byte is 0x30 to 0x39, which leaves only
# these characters in each position). The schema documents it, ``decode_cursor`` enforces it.
_PAIR = "(?:[MN][DTjz]|O[DT])"  # the first two characters of a group from its first digit
_LAST = "[AEIMQUYcgk]"  # the third, from the second digit
CURSOR_PATTERN = (
    f"^djE6(?:{_PAIR}{_LAST}[w-z0-5])*"  # "v1:", then whole groups of three digits
    f"(?:{_PAIR}{_LAST}[w-z0-5]|{_PAIR}{_LAST}|(?:[MN][AQgw]|O[AQ]))$"  # then 3, 2 or 1 digits
)
_CURSOR = re.compile(CURSOR_PATTERN)
MAX_CURSOR_LENGTH = 64  # ids have at most 19 digits: 30 characters


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> int:
    """The id a cursor names (capped at the largest id: "below" a greater one is everything)."""
    if len(raw) > MAX_CURSOR_LENGTH or not _CURSOR.fullmatch(raw):
        raise ApiError(
            400, "invalid", "Invalid cursor.", {"cursor": ["Pass back a next_cursor value."]}
        )
    decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    return min(int(decoded.removeprefix("v1:")), MAX_ID)


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT) -> int:
    """``?limit=``: absent means ``default``; otherwise a whole number from 1 to ``MAX_LIMIT``
    in plain digits, as the schema documents it (an empty value is not a number)."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT):
        raise ApiError(
            400,
            "invalid",
            "Invalid limit.",
            {"limit": [f"Use a whole number from 1 to {MAX_LIMIT}."]},
        )
    return int(raw)


def paginate(queryset: QuerySet[Any], *, cursor: str | None, limit: int) -> Page[Any]:
    """One page of ``queryset`` by descending id, after ``cursor`` (a previous next_cursor)."""
    ordered = queryset.order_by("-id")
    if cursor is not None:
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
