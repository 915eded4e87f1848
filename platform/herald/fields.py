"""Strict JSON input for the API: a wrong type is a 400, never silently coerced.

DRF's CharField turns ``123`` into ``"123"`` and BooleanField takes ``"yes"``; a client that sends
those has a bug we should report, not guess around. Unknown body fields are reported too, so a
typo (``recipient`` for ``recipients``) does not silently drop data.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from herald.text import display_name_error


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return super().to_internal_value(data)


class DisplayNameField(StrictCharField):
    """A name that ends up in an email header (``herald.text``): no control characters."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text", "Shown in email headers: no control characters (line breaks, tabs)."
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if error := display_name_error(value):
            raise serializers.ValidationError(error)
        return value


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
