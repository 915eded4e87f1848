"""The widget's UI strings: English inside the scripts, other languages as catalogues.

- ``widget/src/herald.js``, ``herald-settings.js`` (the settings view) and ``herald-sw.js`` (the
  service worker's fallback title) each hold their English strings (an ``EN`` object): together
  the list of keys and the fallback for each. They stay inline so nothing waits for English.
- ``widget/src/locales/<language>.json`` holds one language's strings, with exactly the English
  keys. Adding a language is adding a file; the widget fetches it from
  ``/widget/v1/locales/<language>.json`` when its locale's language is not English.
- A tenant's ``widget_strings`` override single strings per language or tag (``widget_overrides``
  validates them against the English keys).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from widget.bundle import (
    SERVICE_WORKER_SOURCE,
    SETTINGS_SOURCE,
    SOURCE,
    Bundle,
    bundle_from_bytes,
)

LOCALES_DIR = SOURCE.parent / "locales"
LANGUAGE_PATTERN = r"[a-z]{2,3}"  # the catalogues' names: a language subtag, lower case
OVERRIDE_MAX_LENGTH = 200
OVERRIDE_MAX_LOCALES = 50

_ENGLISH_BLOCK = re.compile(r"\n  const EN = \{\n(.*?)\n  \};", re.S)
_ENGLISH_ENTRY = re.compile(r'^    (\w+): ("(?:[^"\\]|\\.)*"),$')
# An override's locale key, as stored: a tag in canonical case (de, de-AT, zh-Hant-TW, es-419).
# Any well-formed tag: the browser formats dates, so Herald's own locale data does not matter.
OVERRIDE_LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$"
# Plain text on one line (no control characters); the same in Python and ECMA-262.
OVERRIDE_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"


@functools.cache
def english() -> dict[str, str]:
    """The English strings as the scripts hold them (their values are JSON string literals)."""
    strings: dict[str, str] = {}
    for source in (SOURCE, SETTINGS_SOURCE, SERVICE_WORKER_SOURCE):
        block = _ENGLISH_BLOCK.search(source.read_text(encoding="utf-8"))
        if block is None:
            raise RuntimeError(f"{source.name} has no `const EN = {{...}};` block")
        for line in block.group(1).splitlines():
            entry = _ENGLISH_ENTRY.match(line)
            if entry is None or entry.group(1) in strings:
                raise RuntimeError(f"{source.name}: unexpected or repeated English string {line!r}")
            strings[entry.group(1)] = json.loads(entry.group(2))
    return strings


def catalogue_paths() -> dict[str, Path]:
    """Each shipped language's catalogue file, by language subtag."""
    return {
        path.stem: path
        for path in sorted(LOCALES_DIR.glob("*.json"))
        if re.fullmatch(LANGUAGE_PATTERN, path.stem)
    }


@functools.cache
def catalogue_bundles() -> dict[str, Bundle]:
    """The served catalogues (English included, from herald.js), read once per process."""
    bundles = {"en": _json_bundle(english())}
    for language, path in catalogue_paths().items():
        bundles[language] = _json_bundle(json.loads(path.read_text(encoding="utf-8")))
    return bundles


def _json_bundle(strings: dict[str, str]) -> Bundle:
    return bundle_from_bytes(json.dumps(strings, ensure_ascii=False, indent=1).encode())


def widget_overrides(value: Any) -> dict[str, dict[str, str]]:
    """Check a tenant's ``widget_strings``: locale keys in canonical form (``de``, ``de-AT``),
    string keys among the English ones, values plain one-line text of 1 to
    ``OVERRIDE_MAX_LENGTH`` characters. Returns it; raises ValueError naming the first fault."""
    if not isinstance(value, dict):
        raise ValueError('Use an object such as {"de": {"title": "Mitteilungen"}}.')
    if len(value) > OVERRIDE_MAX_LOCALES:
        raise ValueError(f"At most {OVERRIDE_MAX_LOCALES} locales.")
    keys = english()
    for tag, strings in value.items():
        if not re.fullmatch(OVERRIDE_LOCALE_PATTERN, tag):
            raise ValueError(f"{tag!r} is not a language tag written like de, de-AT or es-419.")
        if not isinstance(strings, dict):
            raise ValueError(f"{tag}: use an object of strings by key.")
        for key, text in strings.items():
            if key not in keys:
                raise ValueError(f"{tag}: {key!r} is not a widget string (see {sorted(keys)}).")
            if not isinstance(text, str) or not re.fullmatch(OVERRIDE_TEXT_PATTERN, text):
                raise ValueError(f"{tag}.{key}: use text on one line.")
            if len(text) > OVERRIDE_MAX_LENGTH:
                raise ValueError(f"{tag}.{key}: at most {OVERRIDE_MAX_LENGTH} characters.")
    return value


def overrides_schema() -> dict[str, Any]:
    """The OpenAPI schema of ``widget_strings`` (``x-propertyNames``: see api_docs)."""
    text = {
        "type": "string",
        "minLength": 1,
        "maxLength": OVERRIDE_MAX_LENGTH,
        "pattern": OVERRIDE_TEXT_PATTERN,
    }
    return {
        "type": "object",
        "maxProperties": OVERRIDE_MAX_LOCALES,
        "x-propertyNames": {"pattern": OVERRIDE_LOCALE_PATTERN},
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": {key: text for key in english()},
        },
        "description": "The widget's strings replaced per language or tag, e.g. "
        '{"de": {"title": "Mitteilungen"}}; keys as in /widget/v1/locales/en.json. '
        "A PATCH replaces the whole object.",
    }
