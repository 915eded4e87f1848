"""Language tags and which text a recipient gets: the one place that decides both.

- **Tags** are BCP 47 (``de``, ``de-AT``, ``zh-Hant-TW``, ``es-419``), stored normalised:
  language lower case, script title case, region upper case, joined by ``-``. Input may use
  ``_`` and any case (``de_at`` -> ``de-AT``). A tag is valid when it is well formed (language,
  optional script, optional region; no variants or extensions) and its language is one the
  CLDR data of Babel knows, so dates and numbers can be formatted for it.
- **Resolution**, per recipient and per field: the recipient's exact tag, then each shorter
  prefix down to the language (``zh-Hant-TW``, ``zh-Hant``, ``zh``), then the type's own
  field, then the send's own text. ``locale_chain`` gives the tags to try; ``text_for`` picks.

Parsing is by a regular expression over the three subtags Herald stores, not Babel's
``Locale.parse``: Babel refuses region and script combinations it has no data for (``de-XX``,
``sr-Latn-AT``), which are still valid tags and still fall back to their language.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final, Literal

from babel import localedata

LOCALE_MAX_LENGTH: Final = 35
# The fields a type's ``locales`` entry may hold, in the order the API documents them.
LOCALISED_FIELDS: Final = ("title", "message", "email_subject", "email_text", "email_html")
# The most locales a type may hold, and the longest text each field may: as the type's own email
# fields, and as a send's title and message.
MAX_TYPE_LOCALES: Final = 50
LOCALISED_MAX_LENGTH: Final = {
    "title": 300,
    "message": 10_000,
    "email_subject": 300,
    "email_text": 100_000,
    "email_html": 200_000,
}

_TAG = re.compile(
    r"^(?P<language>[A-Za-z]{2,3})"
    r"(?:[-_](?P<script>[A-Za-z]{4}))?"
    r"(?:[-_](?P<region>[A-Za-z]{2}|[0-9]{3}))?$"
)

# Where a resolved text came from: a locale key of the type, the type's own field, the send's.
Source = str | Literal["type", "send"]


@functools.cache
def _languages() -> frozenset[str]:
    return frozenset(identifier.split("_")[0] for identifier in localedata.locale_identifiers())


@functools.cache
def locale_schema_pattern() -> str:
    """A regular expression (the same in Python and ECMA-262) that matches exactly the tags
    ``locale_normalise`` takes, for the OpenAPI schema: any case, ``-`` or ``_``, and only
    languages Babel knows (one case-insensitive alternative each)."""
    languages = "|".join(
        "".join(f"[{c}{c.upper()}]" for c in language) for language in sorted(_languages())
    )
    return rf"^(?:{languages})([-_][A-Za-z]{{4}})?([-_]([A-Za-z]{{2}}|[0-9]{{3}}))?$"


@functools.lru_cache(maxsize=1024)
def locale_normalise(value: str) -> str | None:
    """``value`` as Herald stores it (``de_at`` -> ``de-AT``), or None when it is not a valid
    tag. The empty string stays empty (no locale). Cached: a send's 10,000 recipient objects
    name a handful of tags."""
    if value == "":
        return ""
    if len(value) > LOCALE_MAX_LENGTH:
        return None
    match = _TAG.match(value)
    if match is None:
        return None
    language = match["language"].lower()
    if language not in _languages():
        return None
    parts = [language]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    return "-".join(parts)


def locale_chain(tag: str) -> tuple[str, ...]:
    """The tags to try for a recipient whose locale is ``tag``, most specific first: the tag,
    then each shorter prefix down to its language. Empty for no locale."""
    if not tag:
        return ()
    parts = tag.split("-")
    return tuple("-".join(parts[:n]) for n in range(len(parts), 0, -1))


def text_for(
    locales: Mapping[str, Mapping[str, str]],
    field: str,
    tag: str,
    *,
    type_text: str = "",
) -> tuple[str | None, Source]:
    """The template of ``field`` for a recipient with locale ``tag``, and where it came from:
    a locale key of ``locales`` (the type's), ``"type"`` (``type_text``, when not blank), or
    ``"send"`` (None: use the send's own text)."""
    for candidate in locale_chain(tag):
        text = locales.get(candidate, {}).get(field)
        if text:
            return text, candidate
    if type_text:
        return type_text, "type"
    return None, "send"
