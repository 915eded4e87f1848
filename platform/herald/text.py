"""Display names: text that ends up inside an email header.

One rule for every name that becomes a header's display name (an end user's ``name``, a
tenant's ``name`` and ``sender_name``): no control characters. A line break there is never a
name, only a mistake or an attempt to add a header; other control characters render as garbage
or break the address. Input is refused (``display_name_error``); text stored before the rule,
or reaching a header some other way, is cleaned when composing (``display_name_clean``).
"""

from __future__ import annotations

import re

# C0 (tab and line breaks included), DEL, C1 (NEL included), and Unicode's line and paragraph
# separators, which some mail clients and header parsers treat as line breaks.
_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029"
CONTROL_CHARACTERS = re.compile(f"[{_CONTROL}]")
# The same rule as a whole-string pattern, for the OpenAPI schema (ECMA-262 reads it alike).
DISPLAY_NAME_PATTERN = f"^[^{_CONTROL}]*$"
DISPLAY_NAME_ERROR = "Must not contain control characters such as line breaks or tabs."


def display_name_error(value: str) -> str | None:
    """Why ``value`` cannot be a display name; None when it can."""
    return DISPLAY_NAME_ERROR if CONTROL_CHARACTERS.search(value) else None


def display_name_clean(value: str) -> str:
    """``value`` with each run of control characters replaced by one space: what a header gets
    from a name stored before the rule existed. Names without any are returned unchanged."""
    if not CONTROL_CHARACTERS.search(value):
        return value
    return " ".join(CONTROL_CHARACTERS.sub(" ", value).split())
