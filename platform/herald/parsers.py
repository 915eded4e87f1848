"""The API's JSON parser: DRF's, plus a refusal of text that PostgreSQL cannot store."""

from __future__ import annotations

import json
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# An escaped UTF-16 surrogate (\ud800 to \udfff). Raw UTF-8 cannot carry one, so only a body with
# such an escape needs the full check; a valid pair decodes to one character and passes it.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class StrictJSONParser(JSONParser):
    """Refuses a body whose strings hold an unpaired surrogate (``"\\ud800"``): Python's JSON
    decoder accepts one, but it is no character, cannot be encoded as UTF-8 and would fail
    deep in the database layer. The client gets a 400 ``invalid`` instead."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        data = super().parse(_Replay(raw), media_type, parser_context)
        if _SURROGATE_ESCAPE.search(raw):
            try:
                json.dumps(data, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ParseError("JSON strings must not contain unpaired surrogates.") from exc
        return data


class _Replay:
    """A stream that gives back bytes already read."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def read(self, *_args: Any) -> bytes:
        raw, self.raw = self.raw, b""
        return raw
