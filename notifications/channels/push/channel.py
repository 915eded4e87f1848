"""The web push channel's plug-in (``channels.base.Channel``).

Fan-out: one outbox row per recipient (``services.deliveries``), ``skipped_preference`` for
users who opted out. No plan rate or quota applies, and nothing is metered.

Delivery: the notification goes to every push subscription of the recipient
(``PushSubscription``, one per browser), through ``transport``. The row is ``sent`` when at
least one push service accepted it (their ``last_used_at`` is updated); a subscription whose
push service answers 404 or 410 is deleted. When none accepted: a transient failure of any of
them retries the whole row (the state machine's backoff); otherwise the row fails for good,
with every subscription's error. A recipient with no subscription fails at once with
``No push subscription: ...`` (a browser of theirs never subscribed, or every subscription
expired). A worker that dies after a push service accepted the message, before the row was
recorded, pushes it again.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.utils import timezone

from billing_stub.limits import Limits
from notifications.channels.base import TransportError
from notifications.channels.names import PUSH
from notifications.channels.push.transport import PushTransport, SubscriptionGone
from notifications.models import Delivery, PushSubscription, Send
from notifications.services.deliveries import (
    deliveries_enqueue,
    deliveries_write,
    delivery_hold,
)
from tenants.models import Tenant

# Push services take at most 4096 bytes of encrypted body (RFC 8030 section 7.2). aes128gcm in
# one record adds 86 bytes of header (salt, record size, the 65-byte key), a padding delimiter
# and a 16-byte tag: the JSON text may have 4096 - 86 - 17 bytes.
PAYLOAD_MAX_BYTES = 3993
NO_SUBSCRIPTION = "No push subscription: the recipient has not enabled push in any browser."


def push_payload(
    *, notification_id: int | None, type_key: str, title: str, message: str, url: str
) -> str:
    """The JSON a service worker receives: ``{"id", "type", "title", "message", "url"}``
    (``id``: the in-app notification's, null when the send made none), at most
    ``PAYLOAD_MAX_BYTES`` in UTF-8: the message is shortened to fit (ending in "…"), then the
    title."""
    fields: dict[str, Any] = {
        "id": notification_id,
        "type": type_key,
        "title": title,
        "message": message,
        "url": url,
    }
    for name in ("message", "title"):
        while True:
            text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
            excess = len(text.encode()) - PAYLOAD_MAX_BYTES
            if excess <= 0:
                return text
            value: str = fields[name]
            if not value:
                break
            # Each byte cut from the text takes at least one byte off its JSON (escapes are
            # longer); "…" is 3 bytes. A character cut in half is dropped whole.
            raw = value.removesuffix("…").encode()
            kept = raw[: max(len(raw) - excess - 3, 0)].decode(errors="ignore")
            fields[name] = kept + "…" if kept else ""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


class PushChannel:
    name = PUSH
    queued = True
    usage_kind = None

    def fan_out(
        self,
        *,
        tenant: Tenant,
        send: Send,
        user_ids: list[int],
        now: datetime,
        limits: Limits,
        fresh: Collection[int] = (),
        users_locked: bool = False,
    ) -> int:
        hold = delivery_hold(send=send, channel=PUSH, now=now)
        rows = deliveries_write(
            send=send,
            channel=PUSH,
            user_ids=user_ids,
            now=now,
            status=Delivery.Status.QUEUED,
            hold=hold,
        )
        queued = sum(status == Delivery.Status.QUEUED for _id, status, _user in rows)
        deliveries_enqueue(tenant=tenant, count=queued, now=now, held_until=hold.held_until)
        return queued

    def budget(self, *, tenant: Tenant, wanted: int) -> tuple[int, float]:
        return wanted, 0.0  # no plan rate

    def unused(self, *, tenant: Tenant, count: int) -> None:
        return None

    @contextmanager
    def sender(self, *, tenant: Tenant) -> Iterator[PushSender]:
        yield PushSender()


class PushSender:
    """One batch's pushes. Call in the tenant's schema."""

    def __init__(self) -> None:
        self._transport = PushTransport()

    def deliver(self, delivery: Delivery) -> None:
        subscriptions = list(
            PushSubscription.objects.filter(user_id=delivery.recipient_id).order_by("id")
        )
        if not subscriptions:
            raise TransportError(NO_SUBSCRIPTION, permanent=True)
        send, notification_type = delivery.send, delivery.send.type
        payload = push_payload(
            notification_id=delivery.notification_id,
            type_key=notification_type.key,
            title=send.title or notification_type.name or notification_type.key,
            message=send.message,
            url=send.url,
        )
        urgency = "high" if notification_type.critical else "normal"
        accepted: list[int] = []
        errors: list[TransportError] = []
        gone = 0
        for subscription in subscriptions:
            try:
                self._transport.send(
                    endpoint=subscription.endpoint,
                    p256dh=subscription.p256dh,
                    auth=subscription.auth,
                    payload=payload,
                    urgency=urgency,
                )
            except SubscriptionGone:
                PushSubscription.objects.filter(pk=subscription.pk).delete()
                gone += 1
            except TransportError as exc:
                errors.append(exc)
            else:
                accepted.append(subscription.pk)
        if accepted:
            PushSubscription.objects.filter(pk__in=accepted).update(last_used_at=timezone.now())
            return
        summary = "; ".join(f"subscription {i + 1}: {e.message}" for i, e in enumerate(errors))
        if gone:
            summary = f"{gone} subscription(s) gone (404/410) and deleted. {summary}".strip()
        raise TransportError(summary, permanent=all(e.permanent for e in errors))
