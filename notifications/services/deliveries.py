"""Deliveries beyond in-app (email): the outbox rows a send writes, and what workers do with them.

Life of an email delivery:

1. The send's transaction inserts one ``Delivery`` per recipient (``queued``, or
   ``skipped_preference`` for users who turned the type's email off). After commit the tenant
   asks for turns (``services.turns``); if Redis or the broker is down the rows simply wait for
   the sweep.
2. A turn claims the tenant's oldest ready rows with one ``UPDATE ... SKIP LOCKED``
   (``locked_until`` = now + lease, attempts + 1). A row another worker holds is skipped, so
   nothing is sent twice, whatever the broker redelivers. A ready row that has used up its
   attempts is marked ``failed`` instead. The turn's heartbeat renews the lease of the rows it
   has not recorded yet (``services.leases``).
3. Just before sending, the preference is checked again. Then the email goes out over SMTP and the
   row is marked ``sent`` at once. A 4xx or a connection failure schedules another attempt with
   exponential backoff (``locked_until`` holds its time); a 5xx, a template error (one that
   does not render, or exceeds a ``TEMPLATE_*`` limit), any other error of that one message,
   or too many attempts mark it ``failed`` with the error.
4. A worker that dies leaves its rows claimed and its turn's slot taken for at most one lease
   (its heartbeat died with it); then the sweep gives the tenant a new turn. An email the SMTP
   server accepted just before the worker died, and that was not recorded yet, goes out again
   (with the same Message-ID).
"""

from __future__ import annotations

import logging
import math
import smtplib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from billing_stub.limits import Limits, limits_for
from billing_stub.metering import (
    EMAILS,
    QuotaExceeded,
    email_quota_reserve,
    quota_release,
    usage_record,
)
from billing_stub.rates import email_tokens_return, email_tokens_take
from herald.metrics import DELIVERIES
from notifications.channels.email.sending import (
    Outcome,
    SmtpSession,
    compose_email,
    guarded,
    retry_delay,
    smtp_outcome,
)
from notifications.models import (
    EMAIL,
    Delivery,
    EndUser,
    Notification,
    Preference,
    Send,
)
from notifications.services.digests import digest_batches_open
from notifications.services.leases import Holding
from notifications.services.preferences import email_off, email_switches_off
from notifications.services.turns import turns_request
from notifications.services.users import int_array
from notifications.templating import RenderTimeout, TemplateError
from tenants.due import due_hint
from tenants.models import Tenant

DUE_EMAIL = "email"

logger = logging.getLogger(__name__)


def fan_out_email(
    *, tenant: Tenant, send: Send, user_ids: list[int], now: datetime, limits: Limits | None = None
) -> list[int]:
    """Write the email outbox rows of ``send`` in one statement; returns the queued ids (turns
    are requested after commit). Users who turned email off for this type, or at all, get a
    ``skipped_preference`` row unless the type is critical; erased users get none. For a type
    with a digest window the rows are ``batched`` into each user's open digest instead."""
    status = Delivery.Status
    # A plan without digests (say, after a downgrade) sends a digest type's emails one by one.
    limits = limits or limits_for(tenant)  # the send's, when it read them already
    digest = send.type.digest_window_seconds is not None and limits.digest_allowed
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
                        THEN %(skipped)s ELSE %(pending)s END,
                   0, '', %(now)s, %(now)s
            FROM unnest(%(users)s::bigint[]) WITH ORDINALITY AS r(id, ord)
            LEFT JOIN {Notification._meta.db_table} n
                   ON n.send_id = %(send)s AND n.recipient_id = r.id
            WHERE EXISTS (SELECT 1 FROM {EndUser._meta.db_table} u WHERE u.id = r.id)
            ORDER BY r.ord
            ON CONFLICT DO NOTHING
            RETURNING id, status, recipient_id
            """,
            {
                "send": send.pk,
                "type": send.type_id,
                "channel": EMAIL,
                "critical": send.type.critical,
                "skipped": status.SKIPPED_PREFERENCE,
                "pending": status.BATCHED if digest else status.QUEUED,
                "now": now,
                "users": int_array(user_ids),
            },
        )
        rows = cursor.fetchall()
    if digest:
        batched = [user_id for _id, row_status, user_id in rows if row_status == status.BATCHED]
        digest_batches_open(tenant_id=tenant.pk, send=send, user_ids=batched, now=now)
        return []
    queued = [row_id for row_id, row_status, _user in rows if row_status == status.QUEUED]
    if queued:
        turns = math.ceil(len(queued) / settings.DELIVERY_BATCH_SIZE)
        transaction.on_commit(lambda: turns_request(tenant_id=tenant.pk, wanted=turns))
        due_hint(tenant_id=tenant.pk, kind=DUE_EMAIL, when=now)  # for the sweep
    return queued


# --- in the worker ---------------------------------------------------------------------------


def _claim_next(now: datetime, limit: int) -> list[Delivery]:
    """Claim the oldest ready email deliveries: queued, and neither held by a worker nor
    waiting for a retry. ``SKIP LOCKED`` lets several turns of one tenant claim side by side.

    Every claim counts an attempt. A ready row that has used up ``DELIVERY_MAX_ATTEMPTS`` (its
    workers died, or its lease ran out, every time) is marked ``failed`` in the same statement
    instead of being claimed again, so no row exceeds the limit or comes back forever."""
    lease = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH ready AS (
                SELECT id, attempts FROM {table}
                WHERE status = 'queued' AND channel = %(channel)s
                  AND (locked_until IS NULL OR locked_until <= %(now)s)
                ORDER BY id
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED),
            exhausted AS (
                UPDATE {table} AS d
                SET status = 'failed', locked_until = NULL, updated_at = %(now)s,
                    last_error = left('Gave up after ' || d.attempts || ' attempts; the last '
                                      || 'one never finished (its worker stopped).'
                                      || CASE WHEN d.last_error = '' THEN ''
                                              ELSE ' ' || d.last_error END, 2000)
                FROM ready WHERE d.id = ready.id AND ready.attempts >= %(max)s
                RETURNING d.id),
            claimed AS (
                UPDATE {table} AS d
                SET locked_until = %(lease)s, attempts = d.attempts + 1, updated_at = %(now)s
                FROM ready WHERE d.id = ready.id AND ready.attempts < %(max)s
                RETURNING d.id)
            SELECT id, false FROM claimed UNION ALL SELECT id, true FROM exhausted
            """,
            {
                "lease": lease,
                "now": now,
                "channel": EMAIL,
                "limit": limit,
                "max": settings.DELIVERY_MAX_ATTEMPTS,
            },
        )
        rows = cursor.fetchall()
    ids = [row_id for row_id, gave_up in rows if not gave_up]
    if given_up := [row_id for row_id, gave_up in rows if gave_up]:
        logger.warning("Gave up on deliveries %s: attempts used up", given_up)
    return list(
        Delivery.objects.filter(pk__in=ids)
        .select_related("send", "send__type", "recipient")
        .order_by("id")
    )


def _opted_out(deliveries: list[Delivery]) -> set[int]:
    """The deliveries (ids) whose user turned this email off: one query for the whole batch."""
    switches = email_switches_off(user_ids={d.recipient_id for d in deliveries})
    return {
        d.pk
        for d in deliveries
        if email_off(switches, d.recipient_id, d.send.type_id, critical=d.send.type.critical)
    }


def build_email(*, tenant: Tenant, delivery: Delivery, host: str) -> EmailMultiAlternatives:
    """The message for one delivery. Raises TemplateError."""
    send, notification_type = delivery.send, delivery.send.type
    return compose_email(
        tenant=tenant,
        user=delivery.recipient,
        notification_type=notification_type,
        host=host,
        context={"title": send.title, "message": send.message, "url": send.url, "data": send.data},
        templates=(
            notification_type.email_subject,
            notification_type.email_text,
            notification_type.email_html,
        ),
        message_id=f"delivery.{delivery.pk}",
        headers={"X-Herald-Delivery": str(delivery.pk)},
    )


# Sends whose templates ran out of render time in this worker process, with the reason. Their
# other deliveries fail at once with it, as long as the type's templates are unchanged: the
# templates and the send's data are the same for every recipient, and each render would hold
# the worker (and the tenants behind it) for the whole limit again.
_timed_out: OrderedDict[tuple[str, int, int], str] = OrderedDict()
_TIMED_OUT_KEPT = 256


def _message(tenant: Tenant, delivery: Delivery, host: str) -> EmailMultiAlternatives | Outcome:
    """The delivery's message, or the outcome that fails it when its templates do not render."""
    notification_type = delivery.send.type
    templates = (notification_type.email_subject, notification_type.email_text,
                 notification_type.email_html)  # fmt: skip
    key = (tenant.schema_name, delivery.send_id, hash(templates))
    if key in _timed_out:
        return Outcome(Delivery.Status.FAILED, _timed_out[key])
    try:
        return build_email(tenant=tenant, delivery=delivery, host=host)
    except RenderTimeout as exc:
        _timed_out[key] = f"Template error: {exc}"
        while len(_timed_out) > _TIMED_OUT_KEPT:
            _timed_out.popitem(last=False)
        return Outcome(Delivery.Status.FAILED, _timed_out[key])
    except TemplateError as exc:
        return Outcome(Delivery.Status.FAILED, f"Template error: {exc}")


@transaction.atomic
def _record(tenant: Tenant, delivery: Delivery, outcome: Outcome, now: datetime) -> None:
    """Store an outcome, and meter a sent email in the same transaction. A retry waits in the
    row until ``locked_until``."""
    if outcome.status == Delivery.Status.SENT:
        usage_record(tenant_id=tenant.pk, kind=EMAILS, quantity=1, when=now)
    held = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.QUEUED)
    outcome, delay = retry_delay(outcome, delivery.attempts)
    if delay is not None:
        held.update(
            last_error=outcome.error[:2000],
            locked_until=now + timedelta(seconds=delay),
            updated_at=now,
        )
        return
    stored = held.update(
        status=outcome.status,
        last_error=outcome.error[:2000],
        locked_until=None,
        updated_at=now,
        sent_at=now if outcome.status == Delivery.Status.SENT else None,
    )
    if stored:
        DELIVERIES.labels(delivery.channel, outcome.status).inc()


def _attempt(
    tenant: Tenant, delivery: Delivery, host: str, smtp: SmtpSession, opted_out: bool
) -> Outcome:
    if not delivery.recipient.email:
        return Outcome(Delivery.Status.FAILED, "The recipient has no email address.")
    if opted_out:
        return Outcome(Delivery.Status.SKIPPED_PREFERENCE)
    message = _message(tenant, delivery, host)
    if isinstance(message, Outcome):
        return message
    try:
        reservation = email_quota_reserve(tenant=tenant)
    except QuotaExceeded:
        return Outcome(Delivery.Status.SUPPRESSED_QUOTA, "The monthly email quota is used up.")
    try:
        smtp.send(message)
    except (smtplib.SMTPException, OSError) as exc:
        quota_release(reservation)
        smtp.reset()  # the connection may be broken: the next message opens a fresh one
        return smtp_outcome(exc)
    except Exception:
        quota_release(reservation)
        smtp.reset()  # it may have failed halfway through a message
        raise
    return Outcome(Delivery.Status.SENT)


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    throttled_for: float = 0.0  # the plan's send rate allowed nothing: wait this long


def emails_deliver_batch(*, tenant: Tenant, holding: Holding | None = None) -> BatchResult:
    """Send this tenant's next batch of ready emails, as many as the plan's send rate allows
    now. A failed attempt that deserves another waits in its row (``locked_until``). The
    claimed rows are in ``holding`` until their outcome is recorded, for the turn's heartbeat
    to renew their lease (``services.leases``). Call in the tenant's schema."""
    holding = holding or Holding()
    rate = limits_for(tenant).email_send_rate_per_second
    granted, wait = email_tokens_take(
        tenant_id=tenant.pk, rate=rate, wanted=settings.DELIVERY_BATCH_SIZE
    )
    if granted == 0:
        return BatchResult(claimed=0, throttled_for=wait)
    deliveries = _claim_next(timezone.now(), granted)
    email_tokens_return(tenant_id=tenant.pk, rate=rate, unused=granted - len(deliveries))
    if not deliveries:
        return BatchResult(claimed=0)
    holding.hold_deliveries(d.pk for d in deliveries)
    host = tenant.get_primary_domain().domain
    opted_out = _opted_out(deliveries)  # read just before sending, after the claim
    smtp = SmtpSession()
    try:
        for delivery in deliveries:
            outcome = guarded(
                lambda d=delivery: _attempt(tenant, d, host, smtp, d.pk in opted_out),
                what=f"delivery {delivery.pk}",
            )
            holding.let_go_delivery(delivery.pk)
            _record(tenant, delivery, outcome, timezone.now())
    finally:
        smtp.reset()
    return BatchResult(claimed=len(deliveries))


@dataclass(frozen=True)
class Pending:
    ready: bool  # something can be sent now
    next_in: float | None  # otherwise, seconds until the earliest retry or lease runs out


def email_pending(*, now: datetime | None = None) -> Pending:
    """What email work this tenant has left. Call in the tenant's schema."""
    now = now or timezone.now()
    queued = Delivery.objects.filter(status=Delivery.Status.QUEUED, channel=EMAIL)
    if queued.filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now)).exists():
        return Pending(ready=True, next_in=None)
    earliest = queued.aggregate(earliest=Min("locked_until"))["earliest"]
    return Pending(ready=False, next_in=(earliest - now).total_seconds() if earliest else None)


def email_next_due(*, now: datetime | None = None) -> datetime | None:
    """When this tenant next has email to send (None: nothing queued)."""
    now = now or timezone.now()
    pending = email_pending(now=now)
    if pending.ready:
        return now
    return now + timedelta(seconds=pending.next_in) if pending.next_in is not None else None
