"""Response shapes for the OpenAPI schema. Views build responses with plain functions; these
serializers only describe them, so the schema and the docs show every field."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, inline_serializer
from rest_framework import serializers

from herald.fields import EmailOrBlankField
from herald.pagination import (
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_ID,
    MAX_LIMIT,
)
from notifications.channel_rules import MAX_DELAY_SECONDS
from notifications.channels.names import CHANNELS
from notifications.channels.registry import queued_channels
from notifications.models import WebhookDelivery
from notifications.webhooks.events import WEBHOOK_EVENTS, WEBHOOK_TEST

# Query parameters take one value each: a repeated one is refused with 400.
PAGE_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        {"type": "string", "pattern": CURSOR_PATTERN, "maxLength": MAX_CURSOR_LENGTH},
        description="A previous page's next_cursor (opaque: pass it back as it came).",
    ),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        description=f"1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}.",
    ),
]


def id_parameter(name: str, description: str) -> OpenApiParameter:
    """A query parameter naming an object by id (see ``herald.api.id_param``)."""
    return OpenApiParameter(
        name, {"type": "integer", "minimum": 1, "maximum": MAX_ID}, description=description
    )


def page_of(item: serializers.Serializer) -> serializers.Serializer:
    return inline_serializer(
        name=f"{item.__class__.__name__}Page",
        fields={
            "results": serializers.ListField(child=item),
            "next_cursor": serializers.CharField(allow_null=True),
        },
    )


def _switches(name: str) -> serializers.Serializer:
    return inline_serializer(
        name=name,
        fields={channel: serializers.BooleanField() for channel in CHANNELS},
    )


def _notification_fields() -> dict[str, serializers.Field]:
    """Fresh field instances per serializer: a field instance shared by two inline serializers
    is documented in only one of them."""
    return {
        "id": serializers.IntegerField(help_text="Grows with time within a tenant."),
        "type": serializers.CharField(help_text="The notification type's key."),
        "title": serializers.CharField(),
        "message": serializers.CharField(),
        "url": serializers.CharField(),
        "data": serializers.JSONField(),
        "created_at": serializers.DateTimeField(),
        "is_read": serializers.BooleanField(),
        "read_at": serializers.DateTimeField(allow_null=True),
        "archived": serializers.BooleanField(),
    }


NOTIFICATION = inline_serializer(name="Notification", fields=_notification_fields())
SERVER_NOTIFICATION = inline_serializer(
    name="TenantNotification",
    fields={
        **_notification_fields(),
        "recipient": serializers.CharField(help_text="The recipient's external id."),
        "send": serializers.IntegerField(),
    },
)
END_USER = inline_serializer(
    name="EndUser",
    fields={
        "id": serializers.CharField(help_text="Your id for this user (external id)."),
        "email": EmailOrBlankField(help_text="An address, or '' for none."),
        "name": serializers.CharField(),
        "locale": serializers.CharField(),
        "timezone": serializers.CharField(),
        "data": serializers.JSONField(),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
    },
)
END_USER_TOKEN = inline_serializer(
    name="EndUserToken",
    fields={"token": serializers.CharField(), "expires_at": serializers.DateTimeField()},
)
SEND_ACCEPTED = inline_serializer(
    name="SendAccepted",
    fields={
        "id": serializers.IntegerField(),
        "recipients": serializers.IntegerField(),
        "status": serializers.ChoiceField(choices=["accepted", "scheduled"]),
    },
)
DELIVERY = inline_serializer(
    name="Delivery",
    fields={
        "id": serializers.IntegerField(),
        "send": serializers.IntegerField(),
        "notification": serializers.IntegerField(
            allow_null=True, help_text="The in-app copy, when the send made one."
        ),
        "recipient": serializers.CharField(help_text="The recipient's external id."),
        "channel": serializers.ChoiceField(choices=[c.name for c in queued_channels()]),
        "status": serializers.ChoiceField(
            choices=[
                "queued",
                "sent",
                "failed",
                "skipped_preference",
                "skipped_read",
                "suppressed_quota",
                "batched",
            ],
            help_text="skipped_read: the channel's rule said only_if_unread, and the in-app "
            "notification was read or archived before the delivery's release.",
        ),
        "attempts": serializers.IntegerField(),
        "last_error": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
        "sent_at": serializers.DateTimeField(allow_null=True),
        "deliver_at": serializers.DateTimeField(
            allow_null=True,
            help_text="A delayed channel's release (channel_rules): the row waits, queued, until "
            "then. Null without a rule.",
        ),
    },
)
# A serializer instance nested in two fields is documented in only one of them: each field gets
# an instance of its own, of one class (one component).
_used = type(
    inline_serializer(
        name="UsageCount",
        fields={"used": serializers.IntegerField(), "limit": serializers.IntegerField()},
    )
)

USAGE = inline_serializer(
    name="Usage",
    fields={
        "plan": serializers.CharField(help_text="The plan's code: free, pro, enterprise."),
        "period_start": serializers.DateField(help_text="First day of the billing month (UTC)."),
        "period_end": serializers.DateField(help_text="First day of the next one (exclusive)."),
        "notifications": _used(),
        "emails": _used(),
        "webhooks": _used(),
    },
)
_report_line = type(
    inline_serializer(
        name="UsageReportLine",
        fields={
            "used": serializers.IntegerField(),
            "included": serializers.IntegerField(),
            "overage": serializers.IntegerField(),
            "overage_cents": serializers.IntegerField(),
        },
    )
)

USAGE_REPORT = inline_serializer(
    name="UsageReport",
    fields={
        "tenant": serializers.CharField(),
        "plan": serializers.CharField(),
        "period_start": serializers.DateField(),
        "period_end": serializers.DateField(help_text="Exclusive."),
        "plan_price_cents": serializers.IntegerField(),
        "notifications": _report_line(),
        "emails": _report_line(),
        "webhooks": _report_line(),
        "total_cents": serializers.IntegerField(),
    },
)
SEND = inline_serializer(
    name="Send",
    fields={
        "id": serializers.IntegerField(),
        "type": serializers.CharField(),
        "status": serializers.ChoiceField(choices=["accepted", "scheduled", "cancelled"]),
        "recipients": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "send_at": serializers.DateTimeField(allow_null=True),
        "topic": serializers.CharField(
            allow_null=True, help_text="The topic the send named; null for none (or deleted)."
        ),
        "cancel_reason": serializers.CharField(
            allow_null=True,
            help_text="Why a cancelled send was cancelled (on request, its topic's audience "
            "passed the plan's limit at release, its topic was deleted); null otherwise.",
        ),
        "channels": serializers.DictField(
            child=serializers.DictField(child=serializers.IntegerField()),
            help_text='{"<channel>": {"<delivery status>": count}}; {} for a scheduled or '
            "cancelled send (it has reached nobody)",
        ),
    },
)
_channel_rule = type(
    inline_serializer(
        name="ChannelRule",
        fields={
            "delay_seconds": serializers.IntegerField(min_value=0, max_value=MAX_DELAY_SECONDS),
            "only_if_unread": serializers.BooleanField(),
        },
    )
)
TEMPLATE_HELP = (
    "A Liquid template over title, message, url, data, type, user {id, name, email, locale}, "
    "tenant {name} and unsubscribe_url; blank takes Herald's default. One that does not parse "
    "is refused with 400; rendering is bounded (README: TEMPLATE_* limits)."
)
NOTIFICATION_TYPE = inline_serializer(
    name="NotificationType",
    fields={
        "key": serializers.CharField(),
        "name": serializers.CharField(),
        "channels": serializers.ListField(child=serializers.CharField()),
        "critical": serializers.BooleanField(),
        "digest_window_seconds": serializers.IntegerField(allow_null=True),
        "email_subject": serializers.CharField(help_text=TEMPLATE_HELP),
        "email_text": serializers.CharField(help_text=TEMPLATE_HELP),
        "email_html": serializers.CharField(help_text=TEMPLATE_HELP + " HTML-escaped output."),
        "locales": serializers.DictField(
            child=serializers.DictField(child=serializers.CharField()),
            help_text='{"<language tag>": {"title"?, "message"?, "email_subject"?, '
            '"email_text"?, "email_html"?}}, as saved (tags normalised: de_at -> de-AT). A '
            "recipient with locale de-AT gets each text from de-AT, else de, else the type's own "
            "field (email), else the send's title/message. Liquid templates over the context "
            "above; the date_local, number_local and currency_local filters format for the "
            "recipient's locale and time zone.",
        ),
        "channel_rules": serializers.DictField(
            child=_channel_rule(),
            help_text='{"<channel>": {"delay_seconds", "only_if_unread"}} (email, push), as '
            "saved, both fields filled in; {} for none. A send's rule for a channel replaces "
            "this one. See the guide, 'Delayed channels and escalation'.",
        ),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
    },
)
PREFERENCES = inline_serializer(
    name="Preferences",
    fields={
        "channels": _switches("ChannelSwitches"),
        "types": serializers.DictField(child=_switches("TypeChannelSwitches")),
        "locale": serializers.CharField(
            help_text="The user's own language tag ('' for none): picks the texts they receive."
        ),
        "timezone": serializers.CharField(
            help_text="The user's own IANA time zone ('' for none), for dates in templates."
        ),
    },
)
COUNT = inline_serializer(name="Count", fields={"count": serializers.IntegerField()})
UPDATED = inline_serializer(name="Updated", fields={"updated": serializers.IntegerField()})
TOKEN_PAIR = inline_serializer(
    name="TokenPair", fields={"access": serializers.CharField(), "refresh": serializers.CharField()}
)
ACCESS_TOKEN = inline_serializer(name="AccessToken", fields={"access": serializers.CharField()})


def _api_key_fields() -> dict[str, serializers.Field]:
    return {
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "prefix": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "last_used_at": serializers.DateTimeField(allow_null=True),
        "revoked_at": serializers.DateTimeField(allow_null=True),
    }


API_KEY = inline_serializer(name="ApiKey", fields=_api_key_fields())
API_KEY_CREATED = inline_serializer(
    name="ApiKeyCreated",
    fields={
        **_api_key_fields(),
        "key": serializers.CharField(help_text="The secret key. Shown once, never again."),
    },
)

# Named in the settings' ENUM_NAME_OVERRIDES: deliveries have a "status" enum of their own.
WEBHOOK_DELIVERY_STATUSES = list(WebhookDelivery.Status.values)


def _webhook_endpoint_fields() -> dict[str, serializers.Field]:
    return {
        "id": serializers.IntegerField(),
        "url": serializers.CharField(),
        "description": serializers.CharField(),
        "events": serializers.ListField(
            child=serializers.ChoiceField(choices=WEBHOOK_EVENTS), help_text="Empty: all events."
        ),
        "types": serializers.ListField(
            child=serializers.CharField(), help_text="Type keys; empty: all types."
        ),
        "enabled": serializers.BooleanField(),
        "disabled_reason": serializers.CharField(
            help_text="Why Herald disabled it (failing for days), or ''."
        ),
        "failing_since": serializers.DateTimeField(
            allow_null=True, help_text="When its current run of failed deliveries began."
        ),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
    }


WEBHOOK_ENDPOINT = inline_serializer(name="WebhookEndpoint", fields=_webhook_endpoint_fields())
_SHOWN_ONCE = "The signing secret (whsec_...). Shown once, never again."
WEBHOOK_ENDPOINT_WITH_SECRET = inline_serializer(
    name="WebhookEndpointCreated",
    fields={**_webhook_endpoint_fields(), "secret": serializers.CharField(help_text=_SHOWN_ONCE)},
)
WEBHOOK_SECRET = inline_serializer(
    name="WebhookSecret", fields={"secret": serializers.CharField(help_text=_SHOWN_ONCE)}
)


def _webhook_delivery_fields() -> dict[str, serializers.Field]:
    return {
        "id": serializers.IntegerField(),
        "endpoint": serializers.IntegerField(),
        "event": serializers.ChoiceField(choices=[*WEBHOOK_EVENTS, WEBHOOK_TEST]),
        "msg_id": serializers.CharField(help_text="The webhook-id header, the same on retries."),
        "status": serializers.ChoiceField(choices=WEBHOOK_DELIVERY_STATUSES),
        "attempts": serializers.IntegerField(),
        "last_status_code": serializers.IntegerField(
            allow_null=True, help_text="The endpoint's last HTTP status; null: none yet."
        ),
        "last_error": serializers.CharField(),
        "next_attempt_at": serializers.DateTimeField(
            allow_null=True, help_text="Queued: not before this time (null: at once). Else null."
        ),
        "created_at": serializers.DateTimeField(),
        "sent_at": serializers.DateTimeField(allow_null=True),
    }


WEBHOOK_DELIVERY = inline_serializer(name="WebhookDelivery", fields=_webhook_delivery_fields())
WEBHOOK_DELIVERY_DETAIL = inline_serializer(
    name="WebhookDeliveryDetail",
    fields={
        **_webhook_delivery_fields(),
        "attempts_log": serializers.ListField(
            child=inline_serializer(
                name="WebhookAttempt",
                fields={
                    "attempted_at": serializers.DateTimeField(),
                    "status_code": serializers.IntegerField(allow_null=True),
                    "latency_ms": serializers.IntegerField(allow_null=True),
                    "response_excerpt": serializers.CharField(
                        help_text="The start of the endpoint's answer."
                    ),
                    "error": serializers.CharField(help_text="Why it failed, or ''."),
                },
            ),
            help_text="The most recent attempts, newest first.",
        ),
    },
)
WEBHOOK_ENDPOINT_EXAMPLE = OpenApiExample(
    "Invoices to the CRM",
    request_only=True,
    value={
        "url": "https://crm.example.com/hooks/herald",
        "description": "CRM",
        "events": ["notification.created", "delivery.failed"],
        "types": ["billing.invoice"],
    },
)

ERROR = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.ChoiceField(
                    choices=[
                        "invalid",
                        "unauthenticated",
                        "forbidden",
                        "not_found",
                        "conflict",
                        "rate_limited",
                        "quota_exceeded",
                        "server_error",
                    ]
                ),
                "message": serializers.CharField(),
                "details": serializers.DictField(
                    required=False, help_text="For 400: the invalid fields and what is wrong."
                ),
            },
        )
    },
)

ERROR_EXAMPLES = {
    "400": {"code": "invalid", "message": "The request is invalid; see details.",
            "details": {"recipients": ["This field is required."]}},
    "401": {"code": "unauthenticated", "message": "Unknown API key."},
    "403": {"code": "forbidden", "message": "This endpoint needs an end-user token."},
    "404": {"code": "not_found", "message": "No such user."},
    "409": {"code": "conflict",
            "message": "This Idempotency-Key was already used with a different request body."},
    "429": {"code": "rate_limited",
            "message": "Request was throttled. Expected available in 1 second."},
}  # fmt: skip

SEND_EXAMPLE = OpenApiExample(
    "Comment to two users",
    request_only=True,
    value={
        "type": "comment.created",
        "recipients": ["user-1", {"id": "user-2", "email": "ana@example.com", "name": "Ana"}],
        "title": "New comment",
        "message": "Bo replied to your post.",
        "url": "https://app.example.com/posts/42#c7",
        "data": {"post_id": 42},
    },
)
ESCALATION_EXAMPLE = OpenApiExample(
    "In-app now, email only if still unread after 15 minutes",
    request_only=True,
    value={
        "type": "comment.created",
        "recipients": ["user-1"],
        "message": "Bo replied to your post.",
        "channels": ["in_app", "email"],
        "channel_rules": {"email": {"delay_seconds": 900, "only_if_unread": True}},
    },
)
