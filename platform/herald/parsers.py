"""The API's JSON parser: DRF's, plus the refusals of ``herald.safejson``.

Every API body goes through here, so no endpoint can forget them: a body nested deeper than
``JSON_MAX_DEPTH``, with a number no float can hold (``1e999``, which Python reads as infinity
and ``jsonb`` refuses), or with a string or key holding NUL or an unpaired surrogate, is a 400
``invalid`` before any view or serializer sees it (the last with ``details`` naming the
top-level field it was found under).
"""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from herald import safejson
from herald.errors import ApiError


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        parser_context = dict(parser_context or {})
        encoding = parser_context.get("encoding") or settings.DEFAULT_CHARSET
        if codecs.lookup(encoding).name != "utf-8":  # Django only keeps charsets codecs knows
            try:  # the checks read UTF-8 bytes
                raw = raw.decode(encoding).encode("utf-8", "surrogatepass")
            except UnicodeError as exc:
                raise ParseError(f"The body is not valid {encoding}.") from exc
            parser_context["encoding"] = "utf-8"
        try:
            safejson.check_depth(raw)
            data = safejson.decode(raw.decode("utf-8"))
        except safejson.UnsafeJSON as exc:
            raise ParseError(str(exc)) from exc
        except RecursionError as exc:  # not expected past check_depth; a 400 all the same
            raise ParseError("JSON nested too deep.") from exc
        except ValueError as exc:  # malformed, not UTF-8, or a number out of range: as DRF words it
            raise ParseError(f"JSON parse error - {exc}") from exc
        try:
            safejson.check_text(raw, data)
        except safejson.UnsafeJSON as exc:  # as a serializer would report it: naming the field
            raise ApiError(400, "invalid", str(exc), {exc.field or "body": [exc.detail]}) from exc
        return data
