"""Reads for the dashboard's content pages (send log, end users, types). Call inside the tenant's
schema (the request's, on a tenant host).

Every list pages by keyset on a growing id, newest first (``id < cursor``): one index range scan
at any depth, never OFFSET, and stable while rows arrive. Each page costs a fixed number of
queries, whatever its length (the tests pin the counts).

What the indexes cover: the type filter uses the send's type foreign key, the recipient filter
the inbox and delivery indexes by recipient, user lookups the unique external id. The free-text
search (send title/message, user name/email) and the date range are filters on the id-ordered
scan: they stop after a page of matches, which is quick for recent or common matches and
degrades to a table scan for rare ones on very large tenants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db.models import Q

from notifications import topic_selectors
from notifications.models import (
    Delivery,
    EndUser,
    Notification,
    NotificationType,
    PushSubscription,
    Send,
    Topic,
    TopicSubscription,
)
from notifications.selectors import send_channel_summaries

T = TypeVar("T")

SEND_PAGE = 25
USER_PAGE = 30
INBOX_PAGE = 20
DELIVERY_PAGE = 20
RECIPIENT_PAGE = 50
TYPE_PAGE = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows, newest first; ``next_before`` is the id to pass back for the next."""

    rows: list[T]
    next_before: int | None


def _page(queryset: Any, *, before: int | None, size: int) -> Page[Any]:
    if before is not None:
        queryset = queryset.filter(id__lt=before)
    rows = list(queryset.order_by("-id")[: size + 1])
    if len(rows) > size:
        rows = rows[:size]
        return Page(rows=rows, next_before=rows[-1].id)
    return Page(rows=rows, next_before=None)


# --- The send log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendFilters:
    type: NotificationType | None = None
    recipient: EndUser | None = None
    status: str = ""
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    search: str = ""


@dataclass
class SendRow:
    send: Send
    channels: dict[str, dict[str, int]] = field(default_factory=dict)


def send_log(*, filters: SendFilters, before: int | None, size: int = SEND_PAGE) -> Page[SendRow]:
    """A page of the tenant's sends matching ``filters``, each with its per-channel counts.
    Two queries at most: the sends (with their type), and the delivery counts of the page
    (``send_channel_summaries``)."""
    queryset = Send.objects.select_related("type").defer(
        "data", "recipient_ids", "response", "request_fingerprint"
    )
    if filters.type is not None:
        queryset = queryset.filter(type=filters.type)
    if filters.recipient is not None:
        # The sends that reached this user: an in-app row or a delivery of theirs (both indexed
        # by recipient). A scheduled send joins the list when it is released.
        user = filters.recipient
        reached = (
            Notification.objects.filter(recipient=user)
            .values("send_id")
            .union(Delivery.objects.filter(recipient=user).values("send_id"))
        )
        queryset = queryset.filter(id__in=reached)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.created_from is not None:
        queryset = queryset.filter(created_at__gte=filters.created_from)
    if filters.created_to is not None:
        queryset = queryset.filter(created_at__lt=filters.created_to)
    if filters.search:
        queryset = queryset.filter(
            Q(title__icontains=filters.search) | Q(message__icontains=filters.search)
        )
    page = _page(queryset, before=before, size=size)
    summaries = send_channel_summaries(sends=page.rows)
    return Page(
        rows=[SendRow(send=send, channels=summaries[send.pk]) for send in page.rows],
        next_before=page.next_before,
    )


# --- One send's recipients -------------------------------------------------------------------


@dataclass
class RecipientRow:
    user: EndUser
    notification: Notification | None
    deliveries: list[Delivery]


@dataclass(frozen=True)
class RecipientPage:
    rows: list[RecipientRow]
    next_after: int | None  # pass back as ``after`` (recipients go by ascending user id)


def send_recipients(*, send: Send, after: int | None, size: int = RECIPIENT_PAGE) -> RecipientPage:
    """A page of the people ``send`` went to, by user id, with their in-app row and deliveries.

    A released send's recipients are those with an in-app row or a delivery (users who turned
    every channel of it off have neither); a scheduled send's are the ones it holds. Five
    queries at most, whatever the send's size.
    """
    floor = after or 0
    if send.status == Send.Status.SCHEDULED:
        ids = sorted(user_id for user_id in send.recipient_ids if user_id > floor)[: size + 1]
    else:
        in_app = (
            Notification.objects.filter(send=send, recipient_id__gt=floor)
            .order_by("recipient_id")
            .values_list("recipient_id", flat=True)[: size + 1]
        )
        delivered = (
            Delivery.objects.filter(send=send, recipient_id__gt=floor)
            .order_by("recipient_id")
            .values_list("recipient_id", flat=True)
            .distinct()[: size + 1]
        )
        ids = sorted(set(in_app) | set(delivered))[: size + 1]
    next_after = None
    if len(ids) > size:
        ids = ids[:size]
        next_after = ids[-1]
    if not ids:
        return RecipientPage(rows=[], next_after=None)
    users = {user.pk: user for user in EndUser.objects.filter(pk__in=ids)}
    notifications = {
        n.recipient_id: n
        for n in Notification.objects.filter(send=send, recipient_id__in=ids).only(
            "id", "recipient_id", "read_at", "archived_at", "seen_at", "created_at"
        )
    }
    deliveries: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in Delivery.objects.filter(send=send, recipient_id__in=ids).order_by("channel"):
        deliveries[delivery.recipient_id].append(delivery)
    rows = [
        RecipientRow(
            user=users[user_id],
            notification=notifications.get(user_id),
            deliveries=deliveries.get(user_id, []),
        )
        for user_id in ids
        if user_id in users  # erased since
    ]
    return RecipientPage(rows=rows, next_after=next_after)


# --- End users --------------------------------------------------------------------------------


def user_list(*, search: str, before: int | None, size: int = USER_PAGE) -> Page[EndUser]:
    """End users, newest first. ``search`` matches the start of an external id or an email
    address (case-insensitive for emails) or any part of a name."""
    queryset = EndUser.objects.defer("data")
    if search:
        queryset = queryset.filter(
            Q(external_id__startswith=search)
            | Q(email__istartswith=search)
            | Q(name__icontains=search)
        )
    return _page(queryset, before=before, size=size)


def user_suggestions(*, prefix: str, limit: int = 10) -> list[Mapping[str, Any]]:
    """Users whose external id starts with ``prefix`` (the newest ones for a blank prefix), for
    the recipient box of the test-send form."""
    queryset = EndUser.objects.all()
    if prefix:
        queryset = queryset.filter(external_id__startswith=prefix)
    return list(queryset.order_by("-id").values("external_id", "name", "email")[:limit])


def user_inbox(*, user: EndUser, before: int | None, size: int = INBOX_PAGE) -> Page[Notification]:
    """The user's notifications, newest first, with their type (the inbox index)."""
    queryset = (
        Notification.objects.filter(recipient=user).select_related("type").defer("data", "url")
    )
    return _page(queryset, before=before, size=size)


def user_deliveries(
    *, user: EndUser, before: int | None, size: int = DELIVERY_PAGE
) -> Page[Delivery]:
    """The user's deliveries beyond in-app, newest first, with their send's type."""
    queryset = Delivery.objects.filter(recipient=user).select_related("send__type")
    return _page(queryset, before=before, size=size)


def user_counts(*, user: EndUser) -> dict[str, int]:
    """How much erasing ``user`` removes: notifications, deliveries, browsers subscribed to
    web push."""
    return {
        "notifications": Notification.objects.filter(recipient=user).count(),
        "deliveries": Delivery.objects.filter(recipient=user).count(),
        "push_subscriptions": PushSubscription.objects.filter(user=user).count(),
    }


# --- Types --------------------------------------------------------------------------------------


def type_page(*, before: int | None, size: int = TYPE_PAGE) -> Page[NotificationType]:
    return _page(NotificationType.objects.all(), before=before, size=size)


def type_choices() -> list[tuple[str, str]]:
    """Every type as (key, label), by key, for filter and form selects."""
    return [
        (key, key if name in ("", key) else f"{key} · {name}")
        for key, name in NotificationType.objects.order_by("key").values_list("key", "name")
    ]


# --- Topics -------------------------------------------------------------------------------------


def topic_page(*, before: int | None, size: int) -> Page[Topic]:
    """Topics, newest first, each with ``subscriber_count``."""
    return _page(topic_selectors.topic_list(), before=before, size=size)


def subscriber_page(*, topic: Topic, before: int | None, size: int) -> Page[TopicSubscription]:
    """A topic's subscriptions with their users, the latest first."""
    return _page(topic_selectors.topic_subscribers(topic=topic), before=before, size=size)
