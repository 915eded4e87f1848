"""Text no part of Herald can handle, refused before tenant resolution and views: 400 ``invalid``.

Checked here, for every host and method: the path, and, outside the pages for people, the
query string and form bodies (JSON bodies are the API parser's, ``herald.parsers``). Refused,
once percent-decoded:

- NUL: PostgreSQL refuses it in ``text`` and ``jsonb``, so a lookup by an id or filter holding
  one fails deep in the database layer (a 500) instead of simply finding nothing.
- bytes that are not UTF-8 (stray bytes, encoded surrogates): Python would decode them to
  U+FFFD silently, so a client would read, write or filter on another id than it sent.

Anything else, legitimate Unicode included, passes untouched. On the dashboard, sign-up and
demo pages every query and form field goes through a Django form, whose text fields refuse NUL
themselves and name the field on the page, keeping what was typed; a bare 400 there would
lose it. The common request has no ``%`` in its path, a short query and no form body; each
costs a substring test.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse

from herald.errors import HTML_PREFIXES, page_or_error

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# API bodies are JSON, refused by its parser; a form sent there gets 415 without being read.
API_PREFIX = "/api/"


def is_clean(encoded: str | bytes) -> bool:
    """Whether percent-encoded text (a raw path, a query string, a urlencoded body) decodes to
    UTF-8 without NUL. A ``str`` stands for its UTF-8 bytes."""
    raw = encoded.encode("utf-8", "surrogatepass") if isinstance(encoded, str) else encoded
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    return is_clean_decoded(raw)


def is_clean_decoded(raw: bytes) -> bool:
    """Whether ``raw`` (already percent-decoded) is UTF-8 without NUL."""
    if b"\x00" in raw:
        return False
    if raw.isascii():
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _path_is_clean(request: HttpRequest) -> bool:
    """Checked on the path as the client sent it, where the server keeps it (ASGI's
    ``raw_path``): ``request.path`` has replaced what is not UTF-8 with U+FFFD. Under WSGI
    Django keeps such bytes as ``%XX`` text, harmless; only NUL is left to refuse."""
    raw_path = getattr(request, "scope", {}).get("raw_path")
    if raw_path is not None:
        return is_clean(raw_path)
    return "\x00" not in request.path


class InvalidTextMiddleware:
    """Sits before tenant resolution: nothing after it sees a refused request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = self._unclean_part(request)
        if where is None:
            return self.get_response(request)
        return page_or_error(
            request,
            400,
            f"The {where} holds NUL or bytes that are not UTF-8.",
            details={where: ["Must be UTF-8 text without NUL characters."]},
        )

    @staticmethod
    def _unclean_part(request: HttpRequest) -> str | None:
        if not _path_is_clean(request):
            return "path"
        if request.path.startswith(HTML_PREFIXES):
            return None  # the pages' forms report it on the field (see above)
        query = request.META.get("QUERY_STRING", "")
        if query and not is_clean(query):
            return "query"
        if (
            request.content_type in FORM_TYPES
            and not request.path.startswith(API_PREFIX)
            and not _form_is_clean(request)
        ):
            return "body"
        return None


def _form_is_clean(request: HttpRequest) -> bool:
    if request.content_type == FORM_TYPES[0]:
        return is_clean(request.body)
    # Multipart: Django has decoded each field (what is not UTF-8 became U+FFFD); files, which
    # may be binary, are not checked.
    return not any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.POST.lists()
    )
