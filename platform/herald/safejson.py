"""JSON from outside (API bodies, dashboard fields, WebSocket frames), refused before it can hurt.

Python's decoder recurses once per nesting level: a body of a few thousand ``[`` ends in a
``RecursionError`` (a 500), not a ``ValueError``. And it accepts two things that are no text
PostgreSQL can store: ``\\u0000`` (NUL, refused by ``text`` and ``jsonb`` alike) and an unpaired
surrogate such as ``\\ud800`` (no character at all, so not encodable as UTF-8). ``loads`` checks
all three and raises ``UnsafeJSON``, a ``ValueError``, so code that already catches malformed
JSON catches these too. ``decode`` refuses numbers no float can hold: ``NaN`` and ``Infinity``,
which are not JSON, and a number such as ``1e999``, which is JSON but which Python reads as
infinity and ``jsonb`` refuses.

The checks cost little on the common body: the depth is measured only when the body holds more
brackets than the limit, and the strings are walked only when the raw text holds one of those
escapes (neither can arrive any other way: JSON forbids raw control characters in strings, and
raw UTF-8 cannot carry a surrogate).
"""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate
from typing import Any

from django.conf import settings

# Every byte but quotes and brackets, dropped before strings are told apart from the rest.
_NOT_QUOTES_OR_BRACKETS = bytes(set(range(256)) - set(b'"[]{}'))
# Opening brackets become +1 and closing ones -1, as signed bytes.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
# ``\u0000`` or an escaped surrogate. A filter only (``\\u0000``, an escaped backslash and
# "u0000", matches too): the walk over the decoded strings decides.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class UnsafeJSON(ValueError):
    """Well-formed JSON that Herald refuses: nested too deep, or holding text it cannot store.

    ``field``: for text, the top-level key of the object it was found under (``"body"`` when
    the body is no object, or the key itself is the culprit), so the error can name the field."""

    def __init__(self, message: str, *, field: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail or message


def max_depth() -> int:
    """The deepest nesting accepted: ``JSON_MAX_DEPTH`` levels of arrays and objects."""
    return settings.JSON_MAX_DEPTH


def check_depth(raw: bytes, limit: int | None = None) -> None:
    """Raise ``UnsafeJSON`` if ``raw`` (UTF-8 JSON) nests arrays and objects deeper than
    ``limit``. Brackets inside strings do not count. Runs before decoding, without recursion."""
    limit = max_depth() if limit is None else limit
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return  # cannot nest deeper than it has brackets
    steps = array("b", _brackets_outside_strings(raw).translate(_STEPS))
    if max(accumulate(steps), default=0) > limit:
        raise UnsafeJSON(f"JSON must not nest arrays and objects more than {limit} levels deep.")


def _brackets_outside_strings(raw: bytes) -> bytes:
    """The brackets of ``raw`` that are not inside a string, in order; every step in C.

    Escaped backslashes, then escaped quotes, go first (a run of backslashes pairs up from its
    left end, as the decoder reads it), so every quote left opens or closes a string. Of those
    and the brackets, two adjacent quotes are an empty string or the end of one string and the
    start of the next: dropping them keeps every bracket on its side. Only strings holding
    brackets are left to cut out. Where the JSON is malformed, what follows the error may be
    misread; the decoder never gets past it."""
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = raw.translate(None, _NOT_QUOTES_OR_BRACKETS).replace(b'""', b"")
    if b'"' in kept:
        kept = b"".join(kept.split(b'"')[::2])
    return kept


def check_text(raw: bytes, data: Any) -> None:
    """Raise ``UnsafeJSON`` if a string or key of ``data`` (decoded from ``raw``) holds NUL or
    an unpaired surrogate. ``data`` must have passed ``check_depth``: the walk recurses."""
    if not _SUSPECT_ESCAPE.search(raw):
        return
    if not isinstance(data, dict):
        _walk(data, "body")
        return
    for key, value in data.items():
        _check_string(key, "body")
        _walk(value, key)


def _walk(value: Any, field: str) -> None:
    if isinstance(value, str):
        _check_string(value, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_string(key, field)
            _walk(item, field)
    elif isinstance(value, list):
        for item in value:
            _walk(item, field)


def _check_string(text: str, field: str) -> None:
    if "\x00" in text:
        raise UnsafeJSON(
            "JSON strings must not contain NUL characters (\\u0000).",
            field=field,
            detail="Must not contain NUL characters.",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsafeJSON(
            "JSON strings must not contain unpaired surrogates.",
            field=field,
            detail="Must not contain unpaired surrogates.",
        ) from exc


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise UnsafeJSON(f"JSON numbers must fit a double; {text[:40]} does not.")
    return value


def _no_constant(text: str) -> Any:
    raise UnsafeJSON(f"{text} is not JSON: numbers must be finite.")


def decode(text: str | bytes) -> Any:
    """``json.loads`` that refuses numbers no float can hold (``NaN``, ``Infinity``, ``1e999``).
    Only the decoding: ``loads`` adds the checks above."""
    return json.loads(text, parse_float=_finite, parse_constant=_no_constant)


def loads(text: str | bytes) -> Any:
    """``json.loads`` with the checks above; any refusal is a ``ValueError``."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    check_depth(raw)
    data = decode(raw)
    check_text(raw, data)
    return data
