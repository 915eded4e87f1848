"""Deliveries beyond in-app (email): the outbox rows a send writes, and what workers do with them.

Life of an email delivery:

1. The send's transaction inserts one ``Delivery`` per recipient (``queued``, or
   ``skipped_preference`` for users who turned the type's email off). After commit, their ids are
   enqueued in batches; if the broker is down the rows simply wait for the sweep.
2. A worker claims queued rows with one ``UPDATE`` (``locked_until`` = now + lease, attempts + 1).
   A row another worker holds is skipped, so a task delivered twice never sends twice.
3. Just before sending, the preference is checked again. Then the email goes out over SMTP and the
   row is marked ``sent`` at once. A 4xx or a connection failure schedules another attempt with
   exponential backoff (``locked_until`` holds its time); a 5xx, a template error or too many
   attempts mark it ``failed`` with the error.
4. The sweep finds queued rows nobody is working on (never enqueued, or a worker died holding
   them) and enqueues them again.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from notifications.channels.email.rendering import TemplateError, render_email
from notifications.channels.email.unsubscribe import unsubscribe_token, unsubscribe_url
from notifications.models import EMAIL, Delivery, EndUser, Notification, Preference, Send
from tenants.models import Tenant

logger = logging.getLogger(__name__)

DELIVER_EMAIL_TASK = "notifications.deliver_email"


def fan_out_email(*, tenant: Tenant, send: Send, user_ids: list[int], now: datetime) -> list[int]:
    """Write the email outbox rows of ``send`` in one statement; returns the queued ids (they are
    enqueued after commit). Users who turned email off for this type, or at all, get a
    ``skipped_preference`` row unless the type is critical; erased users get none."""
    status = Delivery.Status
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Delivery._meta.db_table}
                (send_id, notification_id, recipient_id, channel, status, attempts, last_error,
                 created_at, updated_at)
            SELECT %(send)s, n.id, r.id, %(channel)s,
                   CASE WHEN NOT %(critical)s AND EXISTS (
                          SELECT 1 FROM {Preference._meta.db_table} p
                          WHERE p.user_id = r.id AND p.channel = %(channel)s AND NOT p.enabled
                            AND (p.type_id IS NULL OR p.type_id = %(type)s))
                        THEN %(skipped)s ELSE %(queued)s END,
                   0, '', %(now)s, %(now)s
            FROM unnest(%(users)s::bigint[]) WITH ORDINALITY AS r(id, ord)
            LEFT JOIN {Notification._meta.db_table} n
                   ON n.send_id = %(send)s AND n.recipient_id = r.id
            WHERE EXISTS (SELECT 1 FROM {EndUser._meta.db_table} u WHERE u.id = r.id)
            ORDER BY r.ord
            ON CONFLICT DO NOTHING
            RETURNING id, status
            """,
            {
                "send": send.pk,
                "type": send.type_id,
                "channel": EMAIL,
                "critical": send.type.critical,
                "skipped": status.SKIPPED_PREFERENCE,
                "queued": status.QUEUED,
                "now": now,
                "users": user_ids,
            },
        )
        queued = [row_id for row_id, row_status in cursor.fetchall() if row_status == "queued"]
    if queued:
        transaction.on_commit(lambda: enqueue(tenant_id=tenant.pk, delivery_ids=queued))
    return queued


def enqueue(*, tenant_id: int, delivery_ids: list[int], countdown: float | None = None) -> bool:
    """Hand deliveries to the workers, in batches. Never raises: when the broker is unreachable
    the rows stay queued and the sweep enqueues them later. Returns whether all went out."""
    size = settings.DELIVERY_BATCH_SIZE
    try:
        for start in range(0, len(delivery_ids), size):
            current_app.send_task(
                DELIVER_EMAIL_TASK,
                args=(tenant_id, delivery_ids[start : start + size]),
                countdown=countdown,
                retry=False,  # fail fast; the sweep is the retry
            )
    except Exception:  # kombu raises several types for an unreachable broker
        logger.warning("Broker unreachable: %d deliveries wait for the sweep", len(delivery_ids))
        return False
    return True


# --- in the worker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str  # a Delivery.Status, or "retry"
    error: str = ""


def _claim(delivery_ids: list[int], now: datetime) -> list[Delivery]:
    lease = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Delivery._meta.db_table}
            SET locked_until = %(lease)s, attempts = attempts + 1, updated_at = %(now)s
            WHERE id = ANY(%(ids)s) AND status = 'queued'
              AND (locked_until IS NULL OR locked_until <= %(now)s)
            RETURNING id
            """,
            {"lease": lease, "now": now, "ids": delivery_ids},
        )
        ids = [row[0] for row in cursor.fetchall()]
    return list(
        Delivery.objects.filter(pk__in=ids)
        .select_related("send", "send__type", "recipient")
        .order_by("id")
    )


def _opted_out(deliveries: list[Delivery]) -> set[int]:
    """The deliveries (ids) whose user turned this email off, for its type or at all: one
    query for the whole batch. Critical types ignore opt-outs."""
    switches_off = set(
        Preference.objects.filter(
            user_id__in={d.recipient_id for d in deliveries}, channel=EMAIL, enabled=False
        ).values_list("user_id", "type_id")
    )
    return {
        d.pk
        for d in deliveries
        if not d.send.type.critical
        and (
            (d.recipient_id, None) in switches_off
            or (d.recipient_id, d.send.type_id) in switches_off
        )
    }


def _sender(tenant: Tenant) -> str:
    _name, default_address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return formataddr((tenant.sender_name or tenant.name, tenant.sender_email or default_address))


def build_email(*, tenant: Tenant, delivery: Delivery, host: str) -> EmailMultiAlternatives:
    """The message for one delivery. Raises TemplateError."""
    send, user, notification_type = delivery.send, delivery.recipient, delivery.send.type
    token = unsubscribe_token(tenant_id=tenant.pk, user_id=user.pk, type_id=notification_type.pk)
    link = unsubscribe_url(host=host, token=token)
    rendered = render_email(
        subject=notification_type.email_subject,
        text=notification_type.email_text,
        html=notification_type.email_html,
        context={
            "title": send.title,
            "message": send.message,
            "url": send.url,
            "data": send.data,
            "type": notification_type.key,
            "user": {"id": user.external_id, "name": user.name, "email": user.email},
            "tenant": {"name": tenant.name},
            "unsubscribe_url": link,
        },
    )
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=_sender(tenant),
        to=[formataddr((user.name, user.email))],
        headers={
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # Stable per delivery: should a retry ever repeat an email, receivers can tell.
            "Message-ID": f"<delivery.{delivery.pk}.{tenant.schema_name}@{settings.PLATFORM_HOST}>",
            "X-Herald-Delivery": str(delivery.pk),
        },
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def _smtp_outcome(exc: Exception) -> Outcome:
    """A 5xx is permanent; a 4xx or a broken connection is worth another attempt."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        detail = "; ".join(f"{code} {msg!r}" for code, msg in exc.recipients.values())
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return Outcome("failed" if permanent else "retry", f"Recipient refused: {detail}")
    if isinstance(exc, smtplib.SMTPResponseException):
        permanent = exc.smtp_code >= 500
        error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        return Outcome("failed" if permanent else "retry", error)
    return Outcome("retry", f"{type(exc).__name__}: {exc}")


def _record(delivery: Delivery, outcome: Outcome, now: datetime) -> float | None:
    """Store an outcome; returns the delay of the next attempt for a retry (None otherwise)."""
    held = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.QUEUED)
    if outcome.status == "retry" and delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
        outcome = Outcome("failed", f"Gave up after {delivery.attempts} attempts. {outcome.error}")
    if outcome.status == "retry":
        delay = min(
            settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1),
            settings.DELIVERY_RETRY_MAX_SECONDS,
        )
        held.update(
            last_error=outcome.error[:2000],
            locked_until=now + timedelta(seconds=delay),
            updated_at=now,
        )
        return delay
    held.update(
        status=outcome.status,
        last_error=outcome.error[:2000],
        locked_until=None,
        updated_at=now,
        sent_at=now if outcome.status == Delivery.Status.SENT else None,
    )
    return None


class _SmtpSession:
    """One SMTP connection for a batch, reopened after a failure."""

    def __init__(self) -> None:
        self._connection: Any = None

    def send(self, message: EmailMultiAlternatives) -> None:
        if self._connection is None:
            self._connection = get_connection(fail_silently=False)
            self._connection.open()
        self._connection.send_messages([message])

    def reset(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


def _attempt(
    tenant: Tenant, delivery: Delivery, host: str, smtp: _SmtpSession, opted_out: bool
) -> Outcome:
    if not delivery.recipient.email:
        return Outcome(Delivery.Status.FAILED, "The recipient has no email address.")
    if opted_out:
        return Outcome(Delivery.Status.SKIPPED_PREFERENCE)
    try:
        message = build_email(tenant=tenant, delivery=delivery, host=host)
    except TemplateError as exc:
        return Outcome(Delivery.Status.FAILED, f"Template error: {exc}")
    try:
        smtp.send(message)
    except (smtplib.SMTPException, OSError) as exc:
        smtp.reset()  # the connection may be broken: the next message opens a fresh one
        return _smtp_outcome(exc)
    return Outcome(Delivery.Status.SENT)


def emails_deliver(*, tenant: Tenant, delivery_ids: list[int]) -> dict[float, list[int]]:
    """Send the claimable deliveries among ``delivery_ids``; returns the ones to try again,
    grouped by delay in seconds. Call in the tenant's schema."""
    deliveries = _claim(delivery_ids, timezone.now())
    if not deliveries:
        return {}
    host = tenant.get_primary_domain().domain
    retries: dict[float, list[int]] = defaultdict(list)
    opted_out = _opted_out(deliveries)  # read just before sending, after the claim
    smtp = _SmtpSession()
    try:
        for delivery in deliveries:
            outcome = _attempt(tenant, delivery, host, smtp, delivery.pk in opted_out)
            delay = _record(delivery, outcome, timezone.now())
            if delay is not None:
                retries[delay].append(delivery.pk)
    finally:
        smtp.reset()
    return dict(retries)


def deliveries_sweep(*, now: datetime | None = None) -> list[int]:
    """Queued deliveries nobody is working on: never enqueued (broker down), or claimed by a
    worker that died, for longer than ``DELIVERY_STUCK_SECONDS``. Marks them (``updated_at``)
    so the next sweep leaves them alone for as long again; returns their ids to enqueue."""
    now = now or timezone.now()
    stuck = now - timedelta(seconds=settings.DELIVERY_STUCK_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Delivery._meta.db_table}
            SET updated_at = %(now)s
            WHERE status = 'queued' AND updated_at < %(stuck)s
              AND (locked_until IS NULL OR locked_until < %(now)s)
            RETURNING id
            """,
            {"now": now, "stuck": stuck},
        )
        return sorted(row[0] for row in cursor.fetchall())


def delivery_counts(*, send: Send) -> dict[str, dict[str, int]]:
    """Per channel, how many deliveries of ``send`` are in each status."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    rows = (
        Delivery.objects.filter(send=send)
        .values_list("channel", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    for channel, status, count in rows:
        counts[channel][status] = count
    return dict(counts)
