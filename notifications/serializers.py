"""Input validation (DRF serializers) and the output shapes of the notification API.

Output shapes are plain functions. A notification's shape is ``events.notification_payload``,
which REST responses, WebSocket frames and the send service share, so they can never drift
apart.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from herald.domain import Invalid
from herald.fields import (
    HTTP_URL_PATTERN,
    DisplayNameField,
    EmailOrBlankField,
    JsonObjectField,
    PatternField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
)
from herald.text import DISPLAY_NAME_PATTERN, display_name_error
from notifications.channel_rules import MAX_DELAY_SECONDS, RULED_CHANNELS, channel_rules_clean
from notifications.localisation import (
    LOCALE_MAX_LENGTH,
    LOCALISED_MAX_LENGTH,
    MAX_TYPE_LOCALES,
    locale_normalise,
    locale_schema_pattern,
)
from notifications.models import CHANNELS, EndUser, NotificationType
from notifications.rules import TYPE_KEY_MESSAGE, TYPE_KEY_PATTERN, type_key_valid
from notifications.services.users import RecipientColumns, RecipientInput
from notifications.templating import compile_errors

MAX_RECIPIENTS = 10_000
MAX_EXTERNAL_ID = 255
# The time zones this server knows, by IANA name. The schema lists them, so a client can tell a
# valid one from the schema alone.
TIME_ZONES = sorted(zoneinfo.available_timezones())
MAX_PREFERENCE_TYPES = 100

# --- Output shapes ---------------------------------------------------------------------------


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
        "locales": notification_type.locales,
        "channel_rules": notification_type.channel_rules,
        "created_at": notification_type.created_at,
        "updated_at": notification_type.updated_at,
    }


# --- Input ---------------------------------------------------------------------------------------


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "enum": list(CHANNELS)}, "minItems": 1,
     "uniqueItems": True}
)  # fmt: skip
class ChannelListField(serializers.ListField):
    """One or more channels, each named once."""

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


LOCALE_MESSAGE = "Use a language tag such as 'en', 'de-AT' or 'pt_BR'."


@extend_schema_field(
    {"type": "string", "maxLength": LOCALE_MAX_LENGTH, "pattern": locale_schema_pattern() + "|^$",
     "description": "A BCP 47 language tag (language, optional script and region), stored "
     "normalised ('de_at' -> 'de-AT'); '' for none."}
)  # fmt: skip
class LocaleField(StrictCharField):
    """A language tag, normalised as Herald stores it (``localisation.locale_normalise``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_blank=True, max_length=LOCALE_MAX_LENGTH, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        normalised = locale_normalise(super().to_internal_value(data))
        if normalised is None:
            raise serializers.ValidationError(LOCALE_MESSAGE)
        return normalised


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_TYPE_LOCALES,
        "description": "Texts per language tag (stored normalised: 'de_at' -> 'de-AT'). A "
        "recipient with locale de-AT gets each text from 'de-AT', else 'de', else the type's "
        "own field (email), else the send's title/message. Each value is a Liquid template "
        "over the send's context.",
        "x-propertyNames": {"pattern": locale_schema_pattern()},
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                name: {"type": "string", "maxLength": length}
                for name, length in LOCALISED_MAX_LENGTH.items()
            },
        },
    }
)
class LocalesField(serializers.Field[dict[str, Any], Any, dict[str, Any], Any]):
    """``{"<tag>": {"title"?, "message"?, "email_subject"?, "email_text"?, "email_html"?}}``."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Its contents are checked by the service (``services.types.type_locales_clean``),
        # the one check the dashboard shares.
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object keyed by language tag.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


CHANNEL_RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Delayed channels and escalation, per channel (not in_app: the in-app copy "
    "is created at once). A channel's delivery waits delay_seconds after the send is released "
    "(a scheduled send's send_at); with only_if_unread it is skipped (status skipped_read) if "
    "the in-app notification was read or archived by then. A send's rule for a channel "
    "replaces its type's. Missing fields: 0 and false.",
    "additionalProperties": False,
    "properties": {
        channel: {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "delay_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_DELAY_SECONDS},
                "only_if_unread": {"type": "boolean"},
            },
        }
        for channel in RULED_CHANNELS
    },
}


@extend_schema_field(CHANNEL_RULES_SCHEMA)
class ChannelRulesField(serializers.Field[dict[str, Any], Any, dict[str, Any], Any]):
    """``{"<channel>": {"delay_seconds"?, "only_if_unread"?}}``: checked whole by its
    serializer (``ChannelRulesChecked``), so that errors are keyed
    ``channel_rules.<channel>.<field>`` as the contract's details are."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object keyed by channel.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ChannelRulesChecked(serializers.Serializer[Any]):
    """A serializer with a ``ChannelRulesField`` named ``channel_rules``: once its fields parsed,
    the rules are checked whole and stored as ``channel_rules_clean`` returns them; a refusal is
    a 400 whose details name each rule's field (``channel_rules.email.delay_seconds``). Done in
    ``to_internal_value``, so that a serializer's own ``validate`` stays free."""

    def to_internal_value(self, data: Any) -> Any:
        attrs = super().to_internal_value(data)
        if "channel_rules" in attrs:
            try:
                attrs["channel_rules"] = channel_rules_clean(attrs["channel_rules"])
            except Invalid as exc:
                raise serializers.ValidationError(exc.details) from exc
        return attrs


@extend_schema_field({"type": "string", "enum": ["", *TIME_ZONES]})
class TimeZoneField(StrictCharField):
    """An IANA time zone name this server knows, or "" for none."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_blank=True, max_length=64, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value and value not in _TIME_ZONE_SET:
            raise serializers.ValidationError("Use an IANA time zone such as 'Europe/Paris'.")
        return value


_TIME_ZONE_SET = frozenset(TIME_ZONES)


class UserUpsertSerializer(StrictSerializer):
    email = EmailOrBlankField(required=False)
    name = DisplayNameField(required=False, allow_blank=True, max_length=200)
    locale = LocaleField(required=False)
    timezone = TimeZoneField(required=False)
    data = JsonObjectField(required=False)  # type: ignore[assignment]  # a field: DRF moves it off .data


_EXTERNAL_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_EXTERNAL_ID}
_RECIPIENT_SCHEMA = {
    "oneOf": [
        {**_EXTERNAL_ID_SCHEMA, "description": "Your id for the user (external id)."},
        {
            "type": "object",
            "required": ["id"],
            "additionalProperties": False,
            "properties": {
                "id": _EXTERNAL_ID_SCHEMA,
                "email": {"type": "string", "format": "email", "maxLength": 254, "nullable": True},
                "name": {
                    "type": "string",
                    "maxLength": 200,
                    "pattern": DISPLAY_NAME_PATTERN,
                    "nullable": True,
                },
                "locale": {
                    "type": "string",
                    "maxLength": LOCALE_MAX_LENGTH,
                    "pattern": locale_schema_pattern() + "|^$",
                    "nullable": True,
                    "description": "Sets the user's locale (normalised: 'de_at' -> 'de-AT').",
                },
            },
        },
    ]
}
_RECIPIENT_KEYS = frozenset({"id", "email", "name", "locale"})


# Django's email validator, with its two patterns compiled here: Django keeps them lazy, and
# the reads through the lazy objects were most of its 4 us a call (10,000 addresses: 40 ms
# through it, 9 ms here). ``_email_valid`` accepts what both patterns match, and asks the
# validator itself about anything else (an address literal, or a refusal).
_EMAIL = EmailValidator()
_EMAIL_USER = re.compile(_EMAIL.user_regex.pattern, _EMAIL.user_regex.flags)
_EMAIL_DOMAIN = re.compile(_EMAIL.domain_regex.pattern, _EMAIL.domain_regex.flags)


def _email_valid(value: str) -> bool:
    """Whether Django's ``validate_email`` takes ``value``."""
    if 0 < len(value) <= 320 and "@" in value:
        user, domain = value.rsplit("@", 1)
        if _EMAIL_USER.match(user) and (
            domain in _EMAIL.domain_allowlist or _EMAIL_DOMAIN.match(domain)
        ):
            return True
    try:
        _EMAIL(value)
    except DjangoValidationError:
        return False
    return True


def _plain_id(item: Any) -> bool:
    """Whether ``item`` is a valid recipient given as a bare external id."""
    return isinstance(item, str) and 1 <= len(item) <= MAX_EXTERNAL_ID and "\x00" not in item


def _recipient(item: Any) -> RecipientInput | str:
    """One recipient, or the reason it is invalid."""
    if isinstance(item, str):
        if _plain_id(item):
            return RecipientInput(external_id=item)
        item = {"id": item}
    if not isinstance(item, dict):
        return "Use an id string or an object with an 'id'."
    if unknown := set(item) - _RECIPIENT_KEYS:
        return f"Unknown field(s): {', '.join(sorted(unknown))}."
    external_id, email, name = item.get("id"), item.get("email"), item.get("name")
    if not isinstance(external_id, str) or not 1 <= len(external_id) <= MAX_EXTERNAL_ID:
        return f"'id' must be a string of 1 to {MAX_EXTERNAL_ID} characters."
    if email is not None:
        if not isinstance(email, str) or len(email) > 254:
            return "'email' must be an email address."
        if not _email_valid(email):
            return "'email' must be an email address."
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        return "'name' must be a string of at most 200 characters."
    if name and (error := display_name_error(name)):
        return f"'name': {error}"
    if "\x00" in external_id + (email or "") + (name or ""):
        return "Null characters are not allowed."
    locale = item.get("locale")
    if locale is not None:
        locale = locale_normalise(locale) if isinstance(locale, str) else None
        if locale is None:
            return f"'locale': {LOCALE_MESSAGE}"
    return RecipientInput(external_id=external_id, email=email, name=name, locale=locale)


def _recipients_simple(data: list[Any]) -> RecipientColumns | None:
    """The recipients of ``data`` as columns when each is valid; None otherwise, and then
    ``_recipient`` reads each (and words what is wrong). The same checks as ``_recipient``'s,
    in one loop that makes no object per recipient: 10,000 objects of an id and a locale in
    3.6 ms, of an id, an email and a name in 15 (where a tuple per recipient took 4.6, and
    ``_recipient`` one by one 55)."""
    ids: list[str] = []
    emails: list[str | None] = []
    names: list[str | None] = []
    locales: list[str | None] = []
    add_id, add_email, add_name, add_locale = (
        ids.append,
        emails.append,
        names.append,
        locales.append,
    )
    given_emails = given_names = given_locales = False
    external_id: Any
    for item in data:
        if type(item) is str:
            external_id, size = item, 1
        elif type(item) is dict:
            external_id, size = item.get("id"), len(item)
        else:
            return None
        # ``_plain_id``, inline: a call per recipient is a tenth of this loop.
        if type(external_id) is not str or not 1 <= len(external_id) <= MAX_EXTERNAL_ID:
            return None
        if "\x00" in external_id:
            return None
        add_id(external_id)
        if size == 1:
            add_email(None)
            add_name(None)
            add_locale(None)
            continue
        email, name, locale = item.get("email"), item.get("name"), item.get("locale")
        if size != 1 + ("email" in item) + ("name" in item) + ("locale" in item):
            return None  # a field of another name
        if email is not None:
            if type(email) is not str or len(email) > 254 or "\x00" in email:
                return None
            if not _email_valid(email):
                return None
            given_emails = True
        if name is not None:
            if type(name) is not str or len(name) > 200 or display_name_error(name):
                return None
            given_names = True  # (a name holding NUL has a control character)
        if locale is not None:
            if type(locale) is not str or (locale := locale_normalise(locale)) is None:
                return None
            given_locales = True
        add_email(email)
        add_name(name)
        add_locale(locale)
    return RecipientColumns(
        ids,
        emails=emails if given_emails else None,
        names=names if given_names else None,
        locales=locales if given_locales else None,
    )


@extend_schema_field({"type": "array", "minItems": 1, "maxItems": MAX_RECIPIENTS,
                      "items": _RECIPIENT_SCHEMA})  # fmt: skip
class RecipientsField(serializers.Field[Sequence[Any], Any, Sequence[Any], Any]):
    """``["external-id", {"id": ..., "email"?, "name"?, "locale"?}, ...]``, 1 to 10,000 items.

    One plain loop: a nested DRF serializer per recipient costs about 65 us each, which alone
    would cap a 10,000-recipient send at some 15,000 recipients a second.
    """

    def to_internal_value(self, data: Any) -> RecipientColumns:
        if not isinstance(data, list):
            raise serializers.ValidationError("Expected a list of recipients.")
        if not 1 <= len(data) <= MAX_RECIPIENTS:
            raise serializers.ValidationError(f"Send to 1 to {MAX_RECIPIENTS} recipients.")
        if all(_plain_id(item) for item in data):  # the common case: ids only, all valid
            return RecipientColumns(data)
        simple = _recipients_simple(data)
        if simple is not None:
            return simple
        recipients: list[RecipientInput] = []
        errors: dict[int, list[str]] = {}
        for index, item in enumerate(data):
            parsed = _recipient(item)
            if isinstance(parsed, str):
                errors[index] = [parsed]
                if len(errors) >= 20:  # enough to fix the request; don't echo 10,000 errors
                    break
            else:
                recipients.append(parsed)
        if errors:
            raise serializers.ValidationError(errors)  # type: ignore[arg-type]  # DRF takes any mapping
        return RecipientColumns.of(recipients)

    def to_representation(self, value: Any) -> Any:
        return value


class SendSerializer(ChannelRulesChecked, StrictSerializer):
    """A send names ``recipients``, a ``topic`` (its subscribers at release), or both."""

    required_any_of = ("recipients", "topic")  # the schema says so too (``api_docs.schema``)
    type = PatternField(TYPE_KEY_PATTERN, message=TYPE_KEY_MESSAGE, max_length=100)
    recipients = RecipientsField(required=False)
    topic = PatternField(
        TYPE_KEY_PATTERN,
        message=TYPE_KEY_MESSAGE,
        max_length=100,
        required=False,
        help_text="A topic's key: its subscribers when the send is released are recipients "
        "too, each once.",
    )
    title = StrictCharField(allow_blank=True, max_length=300, default="")
    message = StrictCharField(max_length=10_000)
    url = PatternField(
        HTTP_URL_PATTERN,
        message="Use an http(s) URL.",
        allow_blank=True,
        max_length=2000,
        default="",
    )
    data = JsonObjectField(default=dict)  # type: ignore[assignment]  # a field: DRF moves it off .data
    channels = ChannelListField(required=False)
    channel_rules = ChannelRulesField(default=dict)
    send_at = serializers.DateTimeField(allow_null=True, default=None)
    batch_key = StrictCharField(allow_blank=True, max_length=200, default="")

    def validate_recipients(self, value: RecipientColumns) -> RecipientColumns:
        """One notification per person, in the order of first mention. A repeated id's details
        merge, each field from whichever entry gives it; entries that give one field different
        values are refused (naming the later one) rather than one of them dropped unsaid."""
        if len(set(value.ids)) == len(value):
            return value  # nothing repeated, the common case
        first: dict[str, int] = {}
        for position, external_id in enumerate(value.ids):
            first.setdefault(external_id, position)
        merged = value.take(list(first.values()))
        if not value.has_details:
            return merged
        slot = {external_id: n for n, external_id in enumerate(merged.ids)}
        errors: dict[str, list[str]] = {}
        for label, given, kept in (
            ("email", value.emails, merged.emails),
            ("name", value.names, merged.names),
            ("locale", value.locales, merged.locales),
        ):
            if given is None or kept is None:
                continue
            for position, detail in enumerate(given):
                if detail is None:
                    continue
                external_id = value.ids[position]
                held = kept[slot[external_id]]
                if held is None:
                    kept[slot[external_id]] = detail
                elif held != detail:
                    errors.setdefault(str(position), []).append(
                        f"Repeats recipient {external_id!r} with another {label}."
                    )
        if errors:
            raise serializers.ValidationError(errors)
        return merged

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not any(name in attrs for name in self.required_any_of):
            raise serializers.ValidationError(
                {"recipients": ["Give recipients, a topic, or both."]}
            )
        attrs.setdefault("recipients", [])
        return attrs


class TypeUpsertSerializer(ChannelRulesChecked, StrictSerializer):
    """A type's fields. ``key``, ``created_at`` and ``updated_at`` are read-only: a body may
    carry them back as a GET returned them (read, change one field, write back); the view
    ignores them, and refuses a ``key`` other than the URL's."""

    echoed_read_only = ("key", "created_at", "updated_at")  # readOnly in the schema
    key = StrictCharField(required=False)
    created_at = serializers.DateTimeField(required=False)
    updated_at = serializers.DateTimeField(required=False)
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
    locales = LocalesField(required=False)
    channel_rules = ChannelRulesField(required=False)


class ChannelSwitchesSerializer(StrictSerializer):
    """One optional switch per channel, as ``CHANNELS`` names them."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {channel: StrictBooleanField(required=False) for channel in CHANNELS}


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_PREFERENCE_TYPES,
        "description": "Keyed by type key (a type that does not exist yet is created, as a "
        "send naming it would).",
        # OpenAPI 3.0 has no `propertyNames`; JSON Schema tools can read the extension as one.
        "x-propertyNames": {"pattern": TYPE_KEY_PATTERN},
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": {channel: {"type": "boolean"} for channel in CHANNELS},
        },
    }
)
class TypeSwitchesField(serializers.DictField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=ChannelSwitchesSerializer(), **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, dict[str, bool]]:
        if isinstance(data, dict):
            if len(data) > MAX_PREFERENCE_TYPES:
                raise serializers.ValidationError(
                    f"Set at most {MAX_PREFERENCE_TYPES} types at once."
                )
            invalid = sorted(key for key in data if not type_key_valid(key))
            if invalid:
                raise serializers.ValidationError({key: [TYPE_KEY_MESSAGE] for key in invalid})
        return super().to_internal_value(data)


class PreferencesSerializer(StrictSerializer):
    channels = ChannelSwitchesSerializer(required=False)
    types = TypeSwitchesField(required=False)
    locale = LocaleField(required=False)
    timezone = TimeZoneField(required=False)


class InboxPatchSerializer(StrictSerializer):
    """Either field, both or neither (then nothing changes)."""

    is_read = StrictBooleanField(required=False)
    archived = StrictBooleanField(required=False)
