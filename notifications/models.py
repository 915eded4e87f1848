"""Models in each tenant's schema. One tenant's rows never share a table with another's.

Every listable model has a growing integer id, so lists page by keyset (``id < cursor``), newest
first, and stay stable while rows are inserted.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce

# The channels' names, re-exported: the product reads them with the models.
from notifications.channels.names import CHANNEL_CHOICES as CHANNEL_CHOICES
from notifications.channels.names import CHANNELS as CHANNELS
from notifications.channels.names import EMAIL as EMAIL
from notifications.channels.names import IN_APP as IN_APP
from notifications.rules import TYPE_KEY_PATTERN, UNREAD
from notifications.webhooks.events import WEBHOOK_EVENT_CHOICES


def default_type_channels() -> list[str]:
    return [IN_APP]


class EndUser(models.Model):
    """A customer's own user, who receives notifications. Identified by the customer's id."""

    # Unique through ``enduser_external_id_unique`` below, not ``unique=True``: that would be a
    # unique index and, beside it, the ``varchar_pattern_ops`` one Django adds for prefix
    # searches. One unique index in ``varchar_pattern_ops`` serves equality (every lookup and a
    # send's ``ON CONFLICT``), prefix searches and uniqueness alike; each index costs every new
    # user an insert (10,000 users: 54 against 66 ms with both) and every tenant a btree build.
    external_id = models.CharField(max_length=255)
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=200, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                name="enduser_external_id_unique",
                opclasses=["varchar_pattern_ops"],
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class NotificationType(models.Model):
    """What kind of notification a send is: default channels, templates, digest, criticality."""

    key = models.CharField(
        max_length=100, unique=True, validators=[RegexValidator(TYPE_KEY_PATTERN)]
    )
    name = models.CharField(max_length=200)
    channels = ArrayField(
        models.CharField(max_length=16, choices=CHANNEL_CHOICES), default=default_type_channels
    )
    critical = models.BooleanField(
        default=False, help_text="Delivered even to users who opted out of this type or channel."
    )
    digest_window_seconds = models.PositiveIntegerField(null=True, blank=True)
    email_subject = models.CharField(max_length=300, blank=True)
    email_text = models.TextField(blank=True)
    email_html = models.TextField(blank=True)
    # Per-locale texts: {"de-AT": {"title": ..., "message": ..., "email_subject": ...}}, keys
    # normalised BCP 47 tags, values Liquid templates (``notifications.localisation``).
    locales = models.JSONField(default=dict, blank=True)
    # Delayed channels and escalation: {"email": {"delay_seconds": 900, "only_if_unread": true}},
    # checked by ``notifications.channel_rules``; a send's own rules override these.
    channel_rules = models.JSONField(default=dict, db_default={}, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class Topic(models.Model):
    """An audience a send can name instead of listing recipients: everyone subscribed to it
    (a project's followers, a workspace's members). ``self_service``: end users may subscribe
    and unsubscribe themselves (``/api/v1/me/topics``)."""

    key = models.CharField(
        max_length=100, unique=True, validators=[RegexValidator(TYPE_KEY_PATTERN)]
    )
    name = models.CharField(max_length=200, blank=True)
    self_service = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class TopicSubscription(models.Model):
    """One end user subscribed to one topic."""

    # topic leads topic_one_subscription: no index of its own.
    topic = models.ForeignKey(
        Topic, on_delete=models.CASCADE, related_name="subscriptions", db_index=False
    )
    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="topic_subscriptions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["topic", "user"], name="topic_one_subscription"),
        ]
        # The subscriber list pages a topic's subscriptions by id: a range scan, not a sort.
        indexes = [models.Index(fields=["topic", "id"], name="topic_subscription_page")]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.topic_id}"


class Send(models.Model):
    """One accepted ``POST /api/v1/notifications``: what, to how many, on which channels."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted"
        SCHEDULED = "scheduled"
        CANCELLED = "cancelled"

    type = models.ForeignKey(NotificationType, on_delete=models.PROTECT, related_name="sends")
    title = models.CharField(max_length=300, blank=True)
    message = models.TextField()
    url = models.URLField(max_length=2000, blank=True)
    data = models.JSONField(default=dict, blank=True)
    channels = ArrayField(models.CharField(max_length=16, choices=CHANNEL_CHOICES))
    send_at = models.DateTimeField(null=True, blank=True)
    batch_key = models.CharField(max_length=200, blank=True)
    # The send's own channel rules (they override its type's per channel).
    channel_rules = models.JSONField(default=dict, db_default={}, blank=True)
    # An audience: the topic's subscribers at release, besides any listed recipients.
    topic = models.ForeignKey(
        Topic, on_delete=models.SET_NULL, null=True, blank=True, related_name="sends"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)
    # Why a send is ``cancelled``, in words for the API and the dashboard.
    cancel_reason = models.CharField(max_length=300, blank=True, db_default="", default="")
    recipient_count = models.PositiveIntegerField(default=0)
    recipient_ids = ArrayField(
        models.BigIntegerField(),
        default=list,
        blank=True,
        help_text="Held for a scheduled send until it is released.",
    )
    in_app_count = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"send {self.pk} ({self.type_id})"


class Notification(models.Model):
    """One recipient's copy of a send: their in-app inbox item."""

    # No single-column FK indexes: the composite indexes below lead with each of these columns
    # (and serve the cascades), and every extra index is paid for on every row a send writes.
    # ``type`` is the send's type, copied for the type filter's index.
    #
    # Foreign keys: the database checks a foreign key once per inserted row, and a send writes
    # thousands of rows. None of the three has a database constraint (migrations 0008 and 0009;
    # Django still cascades and protects). The one statement that writes notifications,
    # ``fan_out_in_app``, does set-based what the keys did row by row: it reads the send and its
    # type from the send row, which it locks (FOR KEY SHARE) or which its own transaction
    # created, and it writes only for users it finds and locks (FOR KEY SHARE) in that same
    # statement, or that a large send holds from erasure (``recipients_hold``); ``user_erase``
    # waits for both before it collects what to delete, so a send in flight either commits
    # first and is erased with the user, or finds the user gone. The
    # (send, type) key had cost 20 to 40 ms of a 500-row send's commit, the recipient's ~3 ms.
    send = models.ForeignKey(
        Send,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
        db_constraint=False,
    )
    recipient = models.ForeignKey(
        EndUser,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
        db_constraint=False,
    )
    type = models.ForeignKey(
        NotificationType,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    title = models.CharField(max_length=300, blank=True)
    message = models.TextField()
    url = models.URLField(max_length=2000, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The inbox: a user's notifications, newest first.
            models.Index(fields=["recipient", "-id"], name="notif_inbox"),
            # Unread list and unread count stay fast for users with 100k+ notifications.
            models.Index(
                fields=["recipient", "-id"],
                name="notif_inbox_unread",
                condition=UNREAD,
            ),
            models.Index(fields=["type", "-id"], name="notif_type"),
            models.Index(fields=["send"], name="notif_send"),
        ]

    def __str__(self) -> str:
        return f"notification {self.pk} for {self.recipient_id}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class Preference(models.Model):
    """One switch: a user's channel on or off, globally (type null) or for one type.

    A notification reaches a channel when neither the global switch nor the type's switch for
    that channel is off (a missing row is on). Critical types ignore both.
    """

    # user leads pref_one_per_type_channel: no index of its own.
    user = models.ForeignKey(
        EndUser, on_delete=models.CASCADE, related_name="preferences", db_index=False
    )
    type = models.ForeignKey(
        NotificationType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(max_length=16, choices=CHANNEL_CHOICES)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "type", "channel"], name="pref_one_per_type_channel"
            ),
            models.UniqueConstraint(
                fields=["user", "channel"],
                condition=Q(type__isnull=True),
                name="pref_one_global_per_channel",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.type_id or '*'} {self.channel}={self.enabled}"


class DigestBatch(models.Model):
    """A user's open digest for one type (and ``batch_key``): email deliveries of a type with a
    digest window wait here as ``batched`` and go out as one email when the window closes.

    At most one open batch per (user, type, key): a partial unique constraint, so concurrent
    sends can only ever join the same one.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        SENDING = "sending"  # claimed by a worker until locked_until (or waiting for a retry)
        SENT = "sent"
        SKIPPED = "skipped"  # the user turned this email off meanwhile
        FAILED = "failed"

    recipient = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="digest_batches")
    type = models.ForeignKey(NotificationType, on_delete=models.CASCADE, related_name="+")
    batch_key = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "type", "batch_key"],
                condition=Q(status="open"),
                name="digest_one_open",
            ),
        ]
        indexes = [
            models.Index(fields=["closes_at"], name="digest_due", condition=Q(status="open")),
            models.Index(
                fields=["locked_until"], name="digest_sending", condition=Q(status="sending")
            ),
        ]

    def __str__(self) -> str:
        return f"digest {self.pk} ({self.status})"


class Delivery(models.Model):
    """One recipient's copy of a send on one channel beyond in-app (email, web push).

    Written in the send's transaction, before anything is enqueued (an outbox): a task that never
    ran, or a worker that died, leaves the row ``queued`` and the sweep enqueues it again.
    ``locked_until`` is a worker's claim on a queued row, and after a temporary failure the
    earliest time of the next attempt.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED_PREFERENCE = "skipped_preference"
        SKIPPED_READ = "skipped_read"  # only_if_unread, and read or archived before release
        SUPPRESSED_QUOTA = "suppressed_quota"
        BATCHED = "batched"

    # send and recipient lead delivery_send and delivery_recipient: no index of their own.
    send = models.ForeignKey(
        Send, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    notification = models.ForeignKey(
        Notification, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    recipient = models.ForeignKey(
        EndUser, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    batch = models.ForeignKey(
        DigestBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="items"
    )
    channel = models.CharField(max_length=16, choices=CHANNEL_CHOICES)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    # A delayed channel (``channel_rules``): the row waits, queued, until then; with
    # ``only_if_unread`` it is skipped (``skipped_read``) if the in-app copy was read or
    # archived by then.
    deliver_at = models.DateTimeField(null=True, blank=True)
    only_if_unread = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["send", "recipient", "channel"], name="delivery_one_per_channel"
            ),
        ]
        indexes = [
            models.Index(fields=["send", "-id"], name="delivery_send"),
            models.Index(fields=["recipient", "-id"], name="delivery_recipient"),
            # A turn claims a tenant's ready rows, earliest due first: queued ones by the time
            # they came due (a held, leased or retried row's ``locked_until``, else its
            # creation), so a claim reads only due rows however many are held for later
            # (``services.deliveries``).
            models.Index(
                Coalesce("locked_until", "created_at"),
                "id",
                name="delivery_queued_due",
                condition=Q(status="queued"),
            ),
            # Digest items a closed batch has not collected yet (see services.digests).
            models.Index(
                fields=["recipient"],
                name="delivery_unbatched",
                condition=Q(status="batched", batch__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.channel}, {self.status})"


class WebhookEndpoint(models.Model):
    """A URL of the tenant's own systems that receives its events, signed (Standard Webhooks).

    ``events`` and ``types`` filter what it receives; empty means all. The signing secret is
    kept encrypted (``secret_encrypted``, see ``herald.encryption``): the server signs with it,
    so it cannot be a hash. Only ``notifications.webhooks`` reads or writes it.
    ``disabled_reason`` says why the delivery work turned an endpoint off (``enabled`` false
    after failing for days); ``failing_since`` is when its current run of failures began.
    """

    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    events = ArrayField(
        models.CharField(max_length=32, choices=WEBHOOK_EVENT_CHOICES), default=list, blank=True
    )
    types = ArrayField(
        models.CharField(max_length=100, validators=[RegexValidator(TYPE_KEY_PATTERN)]),
        default=list,
        blank=True,
    )
    enabled = models.BooleanField(default=True)
    secret_encrypted = models.TextField()
    disabled_reason = models.CharField(max_length=200, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    # A worker's claim on the endpoint while it delivers to it: one at a time per endpoint, so
    # a slow endpoint holds one worker, never the others (``notifications.webhooks.delivery``).
    busy_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url


def forget_subject(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    """``on_delete`` of a webhook event's subject: ``SET_NULL``, and the stored body (the subject
    as JSON, kept for retries) emptied with it. An erased user's data then neither stays in the
    log nor leaves in a retry: the next attempt finds no body and no subject, and fails the event
    as "no longer exists" instead of POSTing it."""
    # The body's update first: the collector runs its updates in the order they were added, and
    # both select the rows by the subject's id, which the second one clears.
    collector.add_field_update(field.model._meta.get_field("body"), "", sub_objs)
    models.SET_NULL(collector, field, sub_objs, using)


forget_subject.lazy_sub_objs = True  # type: ignore[attr-defined]  # as SET_NULL: no fetch first


class WebhookDelivery(models.Model):
    """One event for one endpoint: the webhooks' outbox row, written in the transaction that
    caused the event, and its delivery's state (the shared state machine's columns).

    ``msg_id`` is the event's ``webhook-id`` on every attempt. ``notification`` or
    ``delivery`` is the event's subject; ``body`` is the exact JSON POSTed, fixed at the first
    attempt (or at creation, for a test event), so every retry carries the same bytes, until the
    subject is deleted (``forget_subject``).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENT = "sent"
        FAILED = "failed"
        SUPPRESSED_QUOTA = "suppressed_quota"

    # endpoint leads webhook_delivery_endpoint: no index of its own.
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    event = models.CharField(max_length=32)
    msg_id = models.CharField(max_length=40)
    notification = models.ForeignKey(
        Notification,
        on_delete=forget_subject,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    delivery = models.ForeignKey(
        Delivery,
        on_delete=forget_subject,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    body = models.TextField(blank=True)
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_endpoint"),
            models.Index(fields=["status", "-id"], name="webhook_delivery_status"),
            # A turn claims each endpoint's oldest ready rows.
            models.Index(
                fields=["endpoint", "id"],
                name="webhook_delivery_queued",
                condition=Q(status="queued"),
            ),
        ]

    def __str__(self) -> str:
        return f"webhook delivery {self.pk} ({self.event}, {self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a webhook delivery: what the endpoint answered, how fast."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", db_index=False
    )
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["delivery", "-id"], name="webhook_attempt_delivery")]

    def __str__(self) -> str:
        return f"webhook attempt {self.pk} ({self.status_code or self.error[:40]})"


class PushSubscription(models.Model):
    """A browser's Web Push subscription of an end user (its ``PushSubscription`` JSON).

    ``endpoint`` is the push service's URL for this browser: unique, so a browser that
    subscribes again, or passes to another user, keeps one row.
    """

    user = models.ForeignKey(
        EndUser, on_delete=models.CASCADE, related_name="push_subscriptions", db_index=False
    )
    endpoint = models.CharField(max_length=2000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-id"], name="push_subscription_user")]

    def __str__(self) -> str:
        return f"push subscription {self.pk} of user {self.user_id}"
