"""The language of Herald's own words (email footers, digest headings, the unsubscribe pages).

Herald speaks the languages it has a catalogue for: a ``locale/<language>/LC_MESSAGES/django.mo``
of this app, English being the source language. Adding a language is adding a catalogue. The
language is always picked explicitly, from the recipient's stored locale (``language_for``) or,
on a page for someone Herald does not know, from the request's ``Accept-Language``
(``language_from_header``); never by middleware, so the API and every URL stay as they are.

``text_direction`` tells right-to-left languages (``ar``, ``he``, ``fa``, ``ur``...) by Babel's
CLDR data.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Final, Literal

from babel import Locale, UnknownLocaleError

from notifications.localisation import locale_chain, locale_normalise

SOURCE_LANGUAGE: Final = "en"
# The locale of an email whose texts name none (the recipient has no locale).
DEFAULT_LOCALE: Final = "en"

_CATALOGUES = Path(__file__).resolve().parent / "locale"
_QUALITY = re.compile(r"^q=([0-9.]+)$")


@functools.cache
def herald_languages() -> frozenset[str]:
    """The languages Herald has a catalogue for, as lower-case tags (``de``, ``pt-br``)."""
    found = {SOURCE_LANGUAGE}
    if _CATALOGUES.is_dir():
        for folder in _CATALOGUES.iterdir():
            if (folder / "LC_MESSAGES" / "django.mo").is_file():
                found.add(folder.name.replace("_", "-").lower())
    return frozenset(found)


def language_for(tag: str) -> str | None:
    """Herald's language for a recipient whose locale is ``tag``: the most specific of its
    tags Herald speaks; None when it speaks none of them (or ``tag`` is not a valid tag)."""
    for candidate in locale_chain(locale_normalise(tag) or ""):
        if candidate.lower() in herald_languages():
            return candidate.lower()
    return None


def language_from_header(header: str) -> str | None:
    """The language Herald speaks that an ``Accept-Language`` header prefers most; None when
    it names none of them."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            match = _QUALITY.match(param)
            if match:
                try:
                    quality = float(match[1])
                except ValueError:
                    quality = 0.0
        normalised = locale_normalise(tag) if tag and tag != "*" else None
        if normalised and quality > 0:
            ranked.append((-quality, position, normalised))
    for _quality, _position, tag in sorted(ranked):
        language = language_for(tag)
        if language is not None:
            return language
    return None


def text_direction(tag: str) -> Literal["ltr", "rtl"]:
    """``rtl`` for a tag whose language is written right to left."""
    language = tag.split("-")[0]
    try:
        order = Locale.parse(language).character_order
    except (UnknownLocaleError, ValueError):
        return "ltr"
    return "rtl" if order == "right-to-left" else "ltr"
