"""The email channel's plug-in (``channels.base.Channel``).

Fan-out: one outbox row per recipient (``services.deliveries``). For a type with a digest
window, on a plan that allows digests, the rows are ``batched`` into each user's open digest
(``services.digests``) instead of queued; a plan without digests (say, after a downgrade)
sends a digest type's emails one by one. A delayed email (``channel_rules``) of a digest type
waits queued until its release, then joins the batch open at that moment (``released``).

Delivery: the plan's send rate is the budget of a turn; every email reserves one of the plan's
monthly emails (``Suppressed`` once they are used up) and gives it back if it did not go out.
A template that does not render, or exceeds a ``TEMPLATE_*`` limit, fails the email for good;
SMTP errors are mapped by ``transport``. An email the SMTP server accepted just before its
worker died, and that was not recorded yet, goes out again with the same Message-ID.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.core.mail import EmailMultiAlternatives
from django.db import transaction

from billing_stub.limits import Limits, limits_for
from billing_stub.metering import EMAILS, QuotaExceeded, email_quota_reserve, quota_release
from billing_stub.rates import email_tokens_return, email_tokens_take
from notifications.channels.base import Suppressed, TransportError
from notifications.channels.email.digest import compose_digest
from notifications.channels.email.sending import compose_email
from notifications.channels.email.texts import email_templates, email_texts
from notifications.channels.email.transport import SmtpTransport
from notifications.channels.names import EMAIL
from notifications.localisation import text_for
from notifications.models import Delivery, DigestBatch, Send
from notifications.services.deliveries import (
    deliveries_enqueue,
    deliveries_write,
    delivery_hold,
)
from notifications.services.digests import digest_batches_open
from notifications.templating import RenderTimeout, TemplateError
from tenants.models import Tenant

# Sends whose templates ran out of render time in this worker process, with the reason. Their
# other deliveries fail at once with it, as long as the type's templates are unchanged: the
# templates and the send's data are the same for every recipient, and each render would hold
# the worker (and the tenants behind it) for the whole limit again.
_timed_out: OrderedDict[tuple[str, int, int], str] = OrderedDict()
_TIMED_OUT_KEPT = 256


class EmailChannel:
    name = EMAIL
    queued = True
    usage_kind = EMAILS

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
        status = Delivery.Status
        hold = delivery_hold(send=send, channel=EMAIL, now=now)
        # a ruled email of a digest type joins the batch open at its release (``released``)
        digest = (
            send.type.digest_window_seconds is not None
            and limits.digest_allowed
            and hold.deliver_at is None
        )
        rows = deliveries_write(
            send=send,
            channel=EMAIL,
            user_ids=user_ids,
            now=now,
            status=status.BATCHED if digest else status.QUEUED,
            hold=hold,
        )
        if digest:
            batched = [user_id for _id, row_status, user_id in rows if row_status == status.BATCHED]
            digest_batches_open(tenant_id=tenant.pk, send=send, user_ids=batched, now=now)
            return 0
        queued = sum(row_status == status.QUEUED for _id, row_status, _user in rows)
        deliveries_enqueue(tenant=tenant, count=queued, now=now, held_until=hold.held_until)
        return queued

    def released(self, *, tenant: Tenant, deliveries: list[Delivery], now: datetime) -> list[int]:
        """Delayed emails just released (claimed for the first time): those of a digest type,
        on a plan with digests, join their recipient's digest batch open now (one is opened if
        none is), instead of going out alone. Returns their ids."""
        joining = [d for d in deliveries if d.send.type.digest_window_seconds is not None]
        if not joining or not limits_for(tenant).digest_allowed:
            return []
        with transaction.atomic():
            Delivery.objects.filter(
                pk__in=[d.pk for d in joining], status=Delivery.Status.QUEUED
            ).update(status=Delivery.Status.BATCHED, locked_until=None, updated_at=now)
            by_send: dict[int, list[Delivery]] = {}
            for delivery in joining:
                by_send.setdefault(delivery.send_id, []).append(delivery)
            for items in by_send.values():
                digest_batches_open(
                    tenant_id=tenant.pk,
                    send=items[0].send,
                    user_ids=[d.recipient_id for d in items],
                    now=now,
                )
        return [d.pk for d in joining]

    def budget(self, *, tenant: Tenant, wanted: int) -> tuple[int, float]:
        rate = limits_for(tenant).email_send_rate_per_second
        return email_tokens_take(tenant_id=tenant.pk, rate=rate, wanted=wanted)

    def unused(self, *, tenant: Tenant, count: int) -> None:
        rate = limits_for(tenant).email_send_rate_per_second
        email_tokens_return(tenant_id=tenant.pk, rate=rate, unused=count)

    @contextmanager
    def sender(self, *, tenant: Tenant) -> Iterator[EmailSender]:
        sender = EmailSender(tenant)
        try:
            yield sender
        finally:
            sender.close()


class EmailSender:
    """One batch's SMTP connection, for single emails and digests."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant
        self._host: str | None = None
        self._smtp = SmtpTransport()

    def deliver(self, delivery: Delivery) -> None:
        if not delivery.recipient.email:
            raise TransportError("The recipient has no email address.", permanent=True)
        self.send(self._message(delivery))

    def deliver_digest(self, batch: DigestBatch, items: list[Delivery]) -> None:
        """Send one digest of ``items`` (at least one)."""
        if not batch.recipient.email:
            raise TransportError("The recipient has no email address.", permanent=True)
        try:
            message = compose_digest(tenant=self._tenant, batch=batch, items=items)
        except TemplateError as exc:
            raise TransportError(f"Template error: {exc}", permanent=True) from exc
        self.send(message)

    def send(self, message: EmailMultiAlternatives) -> None:
        """Send within the plan's monthly emails: one is reserved, and given back if the
        message did not go out."""
        try:
            reservation = email_quota_reserve(tenant=self._tenant)
        except QuotaExceeded as exc:
            raise Suppressed("The monthly email quota is used up.") from exc
        try:
            self._smtp.send(message)
        except BaseException:
            quota_release(reservation)
            raise

    def close(self) -> None:
        self._smtp.close()

    def _message(self, delivery: Delivery) -> EmailMultiAlternatives:
        """The delivery's message, in the recipient's language (``texts``). Raises a permanent
        TransportError when its templates do not render."""
        tenant, send, notification_type = self._tenant, delivery.send, delivery.send.type
        templates, locale = email_templates(notification_type, delivery.recipient.locale)
        titles = text_for(notification_type.locales or {}, "title", delivery.recipient.locale)
        messages = text_for(notification_type.locales or {}, "message", delivery.recipient.locale)
        key = (tenant.schema_name, delivery.send_id, hash((templates, titles, messages)))
        if key in _timed_out:
            raise TransportError(_timed_out[key], permanent=True)
        if self._host is None:
            self._host = tenant.primary_host()
        try:
            texts = email_texts(
                tenant=tenant,
                send=send,
                user=delivery.recipient,
                notification=delivery.notification if delivery.notification_id else None,
            )
            return compose_email(
                tenant=tenant,
                user=delivery.recipient,
                notification_type=notification_type,
                host=self._host,
                context={
                    "title": texts.title,
                    "message": texts.message,
                    "url": send.url,
                    "data": send.data,
                },
                templates=templates,
                locale=locale,
                message_id=f"delivery.{delivery.pk}",
                headers={"X-Herald-Delivery": str(delivery.pk)},
            )
        except RenderTimeout as exc:
            _timed_out[key] = f"Template error: {exc}"
            while len(_timed_out) > _TIMED_OUT_KEPT:
                _timed_out.popitem(last=False)
            raise TransportError(_timed_out[key], permanent=True) from exc
        except TemplateError as exc:
            raise TransportError(f"Template error: {exc}", permanent=True) from exc
