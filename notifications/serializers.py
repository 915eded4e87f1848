"""Input validation (DRF serializers) and the output shapes of the notification API.

Output shapes are plain functions over ``.values()`` rows: the same function feeds REST responses
and (with the real-time issue) WebSocket events, so the two can never drift apart.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db.models import F, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from herald.fields import (
    DisplayNameField,
    JsonObjectField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
)
from herald.text import display_name_error
from notifications.models import CHANNELS, TYPE_KEY_PATTERN, EndUser, NotificationType
from notifications.services.users import RecipientInput
from notifications.templating import compile_errors

MAX_RECIPIENTS = 10_000
LOCALE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"

# --- Output shapes ---------------------------------------------------------------------------

NOTIFICATION_VALUES = (
    "id",
    "title",
    "message",
    "url",
    "data",
    "created_at",
    "read_at",
    "archived_at",
)


def notification_rows(queryset: QuerySet[Any], *, with_recipient: bool = False) -> QuerySet[Any]:
    """The ``.values()`` rows that ``notification_payload`` turns into API objects."""
    extra = {"type_key": F("type__key")}
    if with_recipient:
        extra.update(recipient_external_id=F("recipient__external_id"), send_ref=F("send_id"))
    return queryset.values(*NOTIFICATION_VALUES, **extra)


def notification_payload(row: dict[str, Any]) -> dict[str, Any]:
    """A notification as the end user sees it (REST inbox, and WebSocket events)."""
    payload = {
        "id": row["id"],
        "type": row["type_key"],
        "title": row["title"],
        "message": row["message"],
        "url": row["url"],
        "data": row["data"],
        "created_at": row["created_at"],
        "is_read": row["read_at"] is not None,
        "read_at": row["read_at"],
        "archived": row["archived_at"] is not None,
    }
    if "recipient_external_id" in row:
        payload["recipient"] = row["recipient_external_id"]
        payload["send"] = row["send_ref"]
    return payload


def end_user_payload(user: EndUser) -> dict[str, Any]:
    return {
        "id": user.external_id,
        "email": user.email,
        "name": user.name,
        "locale": user.locale,
        "timezone": user.timezone,
        "data": user.data,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def type_payload(notification_type: NotificationType) -> dict[str, Any]:
    return {
        "key": notification_type.key,
        "name": notification_type.name,
        "channels": notification_type.channels,
        "critical": notification_type.critical,
        "digest_window_seconds": notification_type.digest_window_seconds,
        "email_subject": notification_type.email_subject,
        "email_text": notification_type.email_text,
        "email_html": notification_type.email_html,
        "created_at": notification_type.created_at,
        "updated_at": notification_type.updated_at,
    }


# --- Input ---------------------------------------------------------------------------------------


class ChannelListField(serializers.ListField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            child=serializers.ChoiceField(choices=CHANNELS), allow_empty=False, **kwargs
        )

    def to_internal_value(self, data: Any) -> list[str]:
        channels = super().to_internal_value(data)
        if len(set(channels)) != len(channels):
            raise serializers.ValidationError("Name each channel once.")
        return channels


def validate_template(value: str) -> str:
    """Templates are Liquid (``notifications.templating``): one that does not parse, or names an
    unknown filter, is refused."""
    error = compile_errors(value)
    if error is not None:
        raise serializers.ValidationError(error)
    return value


class UserUpsertSerializer(StrictSerializer):
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    name = DisplayNameField(required=False, allow_blank=True, max_length=200)
    locale = StrictCharField(required=False, allow_blank=True, max_length=35)
    timezone = StrictCharField(required=False, allow_blank=True, max_length=64)
    data = JsonObjectField(required=False)

    def validate_locale(self, value: str) -> str:
        if value and not re.fullmatch(LOCALE_PATTERN, value):
            raise serializers.ValidationError("Use a language tag such as 'en' or 'pt-BR'.")
        return value

    def validate_timezone(self, value: str) -> str:
        if value:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise serializers.ValidationError(
                    "Use an IANA time zone such as 'Europe/Paris'."
                ) from exc
        return value


_RECIPIENT_SCHEMA = {
    "oneOf": [
        {"type": "string", "description": "Your id for the user (external id)."},
        {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "email": {"type": "string", "format": "email"},
                "name": {"type": "string"},
            },
        },
    ]
}
_RECIPIENT_KEYS = frozenset({"id", "email", "name"})


def _recipient(item: Any) -> RecipientInput | str:
    """One recipient, or the reason it is invalid."""
    if isinstance(item, str):
        if 1 <= len(item) <= 255 and "\x00" not in item:  # the common case, without a dict
            return RecipientInput(external_id=item)
        item = {"id": item}
    if not isinstance(item, dict):
        return "Use an id string or an object with an 'id'."
    if unknown := set(item) - _RECIPIENT_KEYS:
        return f"Unknown field(s): {', '.join(sorted(unknown))}."
    external_id, email, name = item.get("id"), item.get("email"), item.get("name")
    if not isinstance(external_id, str) or not 1 <= len(external_id) <= 255:
        return "'id' must be a string of 1 to 255 characters."
    if email is not None:
        if not isinstance(email, str) or len(email) > 254:
            return "'email' must be an email address."
        try:
            validate_email(email)
        except DjangoValidationError:
            return "'email' must be an email address."
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        return "'name' must be a string of at most 200 characters."
    if name and (error := display_name_error(name)):
        return f"'name': {error}"
    if "\x00" in external_id + (email or "") + (name or ""):
        return "Null characters are not allowed."
    return RecipientInput(external_id=external_id, email=email, name=name)


@extend_schema_field({"type": "array", "minItems": 1, "maxItems": MAX_RECIPIENTS,
                      "items": _RECIPIENT_SCHEMA})  # fmt: skip
class RecipientsField(serializers.Field):
    """``["external-id", {"id": ..., "email"?: ..., "name"?: ...}, ...]``, 1 to 10,000 items.

    One plain loop: a nested DRF serializer per recipient costs about 65 us each, which alone
    would cap a 10,000-recipient send at some 15,000 recipients a second.
    """

    def to_internal_value(self, data: Any) -> list[RecipientInput]:
        if not isinstance(data, list):
            raise serializers.ValidationError("Expected a list of recipients.")
        if not 1 <= len(data) <= MAX_RECIPIENTS:
            raise serializers.ValidationError(f"Send to 1 to {MAX_RECIPIENTS} recipients.")
        recipients, errors = [], {}
        for index, item in enumerate(data):
            parsed = _recipient(item)
            if isinstance(parsed, str):
                errors[index] = [parsed]
                if len(errors) >= 20:  # enough to fix the request; don't echo 10,000 errors
                    break
            else:
                recipients.append(parsed)
        if errors:
            raise serializers.ValidationError(errors)
        return recipients

    def to_representation(self, value: Any) -> Any:
        return value


class SendSerializer(StrictSerializer):
    type = StrictCharField(max_length=100)
    recipients = RecipientsField()
    title = StrictCharField(allow_blank=True, max_length=300, default="")
    message = StrictCharField(max_length=10_000)
    url = StrictCharField(
        allow_blank=True,
        max_length=2000,
        default="",
        validators=[URLValidator(schemes=["http", "https"], message="Use an http(s) URL.")],
    )
    data = JsonObjectField(default=dict)
    channels = ChannelListField(required=False)
    send_at = serializers.DateTimeField(allow_null=True, default=None)
    batch_key = StrictCharField(allow_blank=True, max_length=200, default="")

    def validate_type(self, value: str) -> str:
        if not re.fullmatch(TYPE_KEY_PATTERN, value):
            raise serializers.ValidationError(
                "Use 1 to 100 lowercase letters, digits, '_', '.' or '-', "
                "starting with a letter or digit."
            )
        return value

    def validate_recipients(self, value: list[RecipientInput]) -> list[RecipientInput]:
        """One notification per person: a repeated id keeps its first details."""
        unique: dict[str, RecipientInput] = {}
        for recipient in value:
            unique.setdefault(recipient.external_id, recipient)
        return list(unique.values())


class TypeUpsertSerializer(StrictSerializer):
    name = StrictCharField(required=False, max_length=200)
    channels = ChannelListField(required=False)
    critical = StrictBooleanField(required=False)
    digest_window_seconds = StrictIntegerField(
        required=False, allow_null=True, min_value=60, max_value=7 * 86400
    )
    email_subject = StrictCharField(
        required=False, allow_blank=True, max_length=300, validators=[validate_template]
    )
    email_text = StrictCharField(
        required=False, allow_blank=True, max_length=100_000, validators=[validate_template]
    )
    email_html = StrictCharField(
        required=False, allow_blank=True, max_length=200_000, validators=[validate_template]
    )


class ChannelSwitchesSerializer(StrictSerializer):
    email = StrictBooleanField(required=False)
    in_app = StrictBooleanField(required=False)


class PreferencesSerializer(StrictSerializer):
    channels = ChannelSwitchesSerializer(required=False)
    types = serializers.DictField(child=ChannelSwitchesSerializer(), required=False)

    def validate_types(self, value: dict[str, dict[str, bool]]) -> dict[str, dict[str, bool]]:
        known = set(
            NotificationType.objects.filter(key__in=list(value)).values_list("key", flat=True)
        )
        unknown = sorted(set(value) - known)
        if unknown:
            raise serializers.ValidationError(f"Unknown notification types: {', '.join(unknown)}.")
        return value


class InboxPatchSerializer(StrictSerializer):
    is_read = StrictBooleanField(required=False)
    archived = StrictBooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Send is_read and/or archived.")
        return attrs
