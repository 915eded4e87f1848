"""Strict JSON input for the API: a wrong type is a 400, never silently coerced.

DRF's CharField turns ``123`` into ``"123"`` and BooleanField takes ``"yes"``; a client that sends
those has a bug we should report, not guess around. Unknown body fields are reported too, so a
typo (``recipient`` for ``recipients``) does not silently drop data.
"""

from __future__ import annotations

import json
import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from herald.text import DISPLAY_NAME_ERROR, DISPLAY_NAME_PATTERN

# "" where a value is optional and unset; the schema offers it beside the format it qualifies.
BLANK = {"type": "string", "maxLength": 0}


def blank_or(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI schema of ``schema`` or "" (an optional text that is not set)."""
    return {"oneOf": [schema, BLANK]}


@extend_schema_field(blank_or({"type": "string", "format": "email", "maxLength": 254}))
class EmailOrBlankField(serializers.EmailField):
    """An email address, or "" for none. (OpenAPI's ``format: email`` alone would promise an
    address in every response, and refuse the "" that clears one.)"""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 254)
        super().__init__(allow_blank=True, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string, kept as sent: DRF's default trimming would turn " " into a refused blank that
    the schema (``minLength: 1``) calls valid, and which characters count as white space differs
    between Python and the JSON Schema validators clients use."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError("Must be true or false.")
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError("Must be an integer.")
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "additionalProperties": {}})
class JsonObjectField(serializers.JSONField):
    """A JSON object (dict) of bounded encoded size."""

    def __init__(self, *, max_bytes: int = 16_384, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        encoded = json.dumps(data)
        if len(encoded) > self.max_bytes:
            raise serializers.ValidationError(f"Must encode to at most {self.max_bytes} bytes.")
        if "\\u0000" in encoded:
            raise serializers.ValidationError("Must not contain NUL characters.")
        return data


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class PatternField(StrictCharField):
    """A string that must match ``pattern`` whole. The schema carries the same pattern (see
    ``api_docs.schema``), so what the API accepts and what the schema promises cannot drift.

    Write patterns that mean the same in Python and in ECMA-262 (the dialect of JSON Schema):
    explicit character classes (``[0-9]``, not ``\\d``, which Python also takes for other scripts'
    digits); ``^...$`` anchors (matching is whole-string here, as there)."""

    def __init__(self, pattern: str, *, message: str, **kwargs: Any) -> None:
        self.pattern = pattern
        self.compiled = re.compile(pattern)
        self.pattern_message = message
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value and not self.compiled.fullmatch(value):
            raise serializers.ValidationError(self.pattern_message)
        return value


class DisplayNameField(PatternField):
    """A name that ends up in an email header (``herald.text``): no control characters."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text", "Shown in email headers: no control characters (line breaks, tabs)."
        )
        super().__init__(DISPLAY_NAME_PATTERN, message=DISPLAY_NAME_ERROR, **kwargs)


# An absolute http(s) URL: a scheme we can link to, then no spaces or control characters.
HTTP_URL_PATTERN = r"^https?://[^\u0000-\u0020\u007f]+$"
