"""Digests: a type with a digest window sends each user one email per window, listing it all.

- A send of such a type writes its email deliveries as ``batched`` (no batch yet) and makes sure
  each recipient has an open ``DigestBatch`` for (type, ``batch_key``), closing one window from
  now. The partial unique constraint ``digest_one_open`` means concurrent sends can only ever
  meet in the same open batch.
- Due batches are flushed in the tenant's turns (``services.turns``), after its single emails,
  so a tenant with many digests closing at once waits its turn like any other.
- When a batch is due, a worker claims it (``open`` -> ``sending`` with a lease), then collects
  every ``batched`` delivery of its (user, type, key) that has no batch yet, and commits that.
  It sends one email listing the items and marks batch and items ``sent`` in one transaction.
- A worker that dies after collecting leaves the batch ``sending`` with its items attached; once
  the lease runs out the batch is claimed again and sent with the same items: nothing lost,
  nothing moved to another digest. A temporary SMTP failure waits out a backoff the same way.
- A delivery committed after its batch collected (a send racing the close) has no batch and no
  open batch to join; ``digests_heal`` opens one for it, so it goes out in the next digest.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q, QuerySet
from django.utils import timezone

from billing_stub.metering import (
    EMAILS,
    QuotaExceeded,
    email_quota_reserve,
    quota_release,
    usage_record,
)
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
    DigestBatch,
    NotificationType,
    Send,
)
from notifications.services.leases import Holding
from notifications.services.preferences import email_off, email_switches_off
from notifications.templating import TemplateError
from tenants.due import due_hint
from tenants.models import Tenant

DUE_DIGESTS = "digest"

logger = logging.getLogger(__name__)

# A digest lists its latest items, each message cut short, so that a busy window stays a
# readable email within the template limits (loop turns, output size) like any other;
# ``more`` counts the rest. Fifty items of ordinary text come to about 50 KiB of HTML; only
# text made of little but characters HTML escapes, with 2,000-character links, could reach the
# 256 KiB output limit, and that digest fails with the reason like any email over a limit.
DIGEST_ITEMS_SHOWN = 50
DIGEST_MESSAGE_CHARS = 500
DEFAULT_DIGEST_SUBJECT = (
    "{{ count }} new notification{% if count != 1 %}s{% endif %}"
    "{% if title %}: {{ title }}{% endif %}"
)
DEFAULT_DIGEST_TEXT = (
    "{% for item in items %}- {% if item.title %}{{ item.title }}: {% endif %}{{ item.message }}"
    "{% if item.url %} ({{ item.url }}){% endif %}\n{% endfor %}"
    "{% if more > 0 %}... and {{ more }} earlier\n{% endif %}"
    "\n--\n{{ tenant.name }}. Stop these emails: {{ unsubscribe_url }}\n"
)
DEFAULT_DIGEST_HTML = (
    "<!doctype html><html><body><ul>{% for item in items %}<li>"
    "{% if item.title %}<strong>{{ item.title }}</strong>: {% endif %}{{ item.message }}"
    '{% if item.url %} <a href="{{ item.url }}">{{ item.url }}</a>{% endif %}</li>{% endfor %}'
    "</ul>{% if more > 0 %}<p>... and {{ more }} earlier</p>{% endif %}"
    '<hr><p style="font-size:small">{{ tenant.name }}. '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> from these emails.</p></body></html>'
)


def digest_batches_open(*, tenant_id: int, send: Send, user_ids: list[int], now: datetime) -> None:
    """Give each of these users an open batch for the send's type and key (one statement)."""
    if not user_ids:
        return
    closes_at = now + timedelta(seconds=send.type.digest_window_seconds)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {DigestBatch._meta.db_table}
                (recipient_id, type_id, batch_key, status, opened_at, closes_at, attempts,
                 last_error)
            SELECT u.id, %(type)s, %(key)s, 'open', %(now)s, %(closes)s, 0, ''
            FROM unnest(%(users)s::bigint[]) AS u(id)
            ORDER BY u.id
            ON CONFLICT (recipient_id, type_id, batch_key) WHERE status = 'open' DO NOTHING
            """,
            {
                "type": send.type_id,
                "key": send.batch_key,
                "now": now,
                "closes": closes_at,
                "users": sorted(set(user_ids)),
            },
        )
    # An existing open batch may close sooner; the index keeps the earliest.
    due_hint(tenant_id=tenant_id, kind=DUE_DIGESTS, when=closes_at)


def digests_next_due(*, now: datetime | None = None) -> datetime | None:
    """When this tenant next has a digest to close or retry (None: no digest pending)."""
    now = now or timezone.now()
    if Delivery.objects.filter(status=Delivery.Status.BATCHED, batch__isnull=True).exists():
        return now  # items that need a batch
    times = [
        DigestBatch.objects.filter(status=DigestBatch.Status.OPEN).aggregate(t=Min("closes_at")),
        DigestBatch.objects.filter(status=DigestBatch.Status.SENDING).aggregate(
            t=Min("locked_until")
        ),
    ]
    pending = [row["t"] for row in times if row["t"] is not None]
    return min(pending) if pending else None


def digests_heal(*, now: datetime | None = None) -> int:
    """Open a batch for every batched delivery left without one (it raced a closing batch)."""
    now = now or timezone.now()
    delivery, batch = Delivery._meta.db_table, DigestBatch._meta.db_table
    send, notification_type = Send._meta.db_table, NotificationType._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {batch}
                (recipient_id, type_id, batch_key, status, opened_at, closes_at, attempts,
                 last_error)
            SELECT DISTINCT d.recipient_id, s.type_id, s.batch_key, 'open', %(now)s,
                   %(now)s + make_interval(secs => coalesce(t.digest_window_seconds, 0)), 0, ''
            FROM {delivery} d
            JOIN {send} s ON s.id = d.send_id
            JOIN {notification_type} t ON t.id = s.type_id
            WHERE d.status = 'batched' AND d.batch_id IS NULL
            ON CONFLICT (recipient_id, type_id, batch_key) WHERE status = 'open' DO NOTHING
            """,
            {"now": now},
        )
        return cursor.rowcount


def _due(now: datetime) -> QuerySet[DigestBatch]:
    """Batches to flush: open ones whose window closed, and ``sending`` ones whose worker's
    lease (or retry wait) ran out."""
    return DigestBatch.objects.filter(
        Q(status=DigestBatch.Status.OPEN, closes_at__lte=now)
        | Q(status=DigestBatch.Status.SENDING, locked_until__lte=now)
    )


def digests_ready(*, now: datetime | None = None) -> bool:
    """Whether a digest is due now (its tenant then needs a turn)."""
    return _due(now or timezone.now()).exists()


def digests_flush_due(*, tenant: Tenant, limit: int, holding: Holding | None = None) -> int:
    """Flush up to ``limit`` due digests, oldest window first, as part of a tenant's turn;
    returns how many this worker flushed. A batch being sent is in ``holding``, for the turn's
    heartbeat to renew its lease. Call in the tenant's schema."""
    holding = holding or Holding()
    ids = list(_due(timezone.now()).order_by("closes_at").values_list("pk", flat=True)[:limit])
    return sum(
        digest_flush(tenant=tenant, batch_id=batch_id, holding=holding) is not None
        for batch_id in ids
    )


FIRST, AGAIN, EXHAUSTED = "first", "again", "exhausted"


def _claim(batch_id: int, now: datetime) -> tuple[DigestBatch | None, str]:
    """Claim a due batch for this worker. Returns it (None when not claimable) and how:
    ``FIRST`` for a closing window, ``AGAIN`` when taking over from a dead worker or after a
    retry wait, ``EXHAUSTED`` when it has used up ``DELIVERY_MAX_ATTEMPTS`` and is only to be
    marked failed. Every claim but the last kind counts an attempt."""
    lease = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    claim = {"status": DigestBatch.Status.SENDING, "locked_until": lease,
             "attempts": F("attempts") + 1}  # fmt: skip
    batches = DigestBatch.objects.filter(pk=batch_id)
    expired = batches.filter(status=DigestBatch.Status.SENDING, locked_until__lte=now)
    limit = settings.DELIVERY_MAX_ATTEMPTS
    if batches.filter(status=DigestBatch.Status.OPEN, closes_at__lte=now).update(**claim):
        how = FIRST
    elif expired.filter(attempts__lt=limit).update(**claim):
        how = AGAIN
    elif expired.filter(attempts__gte=limit).update(locked_until=lease):
        how = EXHAUSTED
    else:
        return None, ""
    return DigestBatch.objects.select_related("recipient", "type").get(pk=batch_id), how


def _collect(batch: DigestBatch, *, first_claim: bool) -> list[Delivery]:
    """On the first claim, attach every uncollected item of the batch's (user, type, key) to
    it, committed at once, so a worker taking over later sends exactly the same items (newer
    ones wait for the next batch). Returns the batch's items still pending."""
    if first_claim:
        Delivery.objects.filter(
            status=Delivery.Status.BATCHED,
            batch__isnull=True,
            recipient_id=batch.recipient_id,
            send__type_id=batch.type_id,
            send__batch_key=batch.batch_key,
        ).update(batch=batch)
    return list(
        Delivery.objects.filter(batch=batch, status=Delivery.Status.BATCHED)
        .select_related("send")
        .order_by("id")
    )


def _opted_out(batch: DigestBatch) -> bool:
    switches = email_switches_off(user_ids={batch.recipient_id})
    return email_off(switches, batch.recipient_id, batch.type_id, critical=batch.type.critical)


SUPPRESSED = "suppressed_quota"  # a digest outcome: the email quota is used up


def _finish(
    tenant: Tenant, batch: DigestBatch, items: list[Delivery], outcome: Outcome, now: datetime
) -> None:
    """Record the outcome for the batch and all its items, and meter a sent digest (one email),
    in one transaction."""
    item_status = {
        "sent": Delivery.Status.SENT,
        "skipped": Delivery.Status.SKIPPED_PREFERENCE,
        "failed": Delivery.Status.FAILED,
        SUPPRESSED: Delivery.Status.SUPPRESSED_QUOTA,
    }[outcome.status]
    batch_status = DigestBatch.Status.FAILED if outcome.status == SUPPRESSED else outcome.status
    sent = outcome.status == "sent"
    with transaction.atomic():
        if sent and items:
            usage_record(tenant_id=tenant.pk, kind=EMAILS, quantity=1, when=now)
        DigestBatch.objects.filter(pk=batch.pk).update(
            status=batch_status,
            locked_until=None,
            last_error=outcome.error[:2000],
            sent_at=now if sent else None,
        )
        stored = Delivery.objects.filter(pk__in=[item.pk for item in items]).update(
            status=item_status,
            attempts=batch.attempts,
            last_error=outcome.error[:2000],
            updated_at=now,
            sent_at=now if sent else None,
        )
    if stored:
        DELIVERIES.labels(EMAIL, item_status).inc(stored)


def digest_flush(*, tenant: Tenant, batch_id: int, holding: Holding | None = None) -> str | None:
    """Send one due digest. Returns the batch's new status (None when it was not claimable,
    e.g. another worker holds it). Call in the tenant's schema."""
    holding = holding or Holding()
    batch, how = _claim(batch_id, timezone.now())
    if batch is None:
        return None
    holding.hold_digest(batch.pk)
    items = _collect(batch, first_claim=how == FIRST)
    outcome = _outcome(tenant, batch, items, how)
    holding.let_go_digest(batch.pk)
    now = timezone.now()
    outcome, delay = retry_delay(outcome, batch.attempts)
    if delay is not None:
        DigestBatch.objects.filter(pk=batch.pk).update(
            locked_until=now + timedelta(seconds=delay), last_error=outcome.error[:2000]
        )
        return "sending"
    _finish(tenant, batch, items, outcome, now)
    return outcome.status


def _outcome(tenant: Tenant, batch: DigestBatch, items: list[Delivery], how: str) -> Outcome:
    """What became of a claimed batch: sent (or nothing to send), skipped, failed, or a retry."""
    if how == EXHAUSTED:
        error = (
            f"Gave up after {batch.attempts} attempts; the last one never finished "
            f"(its worker stopped). {batch.last_error}"
        )
        return Outcome("failed", error.strip())
    if not items:
        return Outcome("sent")
    if _opted_out(batch):
        return Outcome("skipped")
    if not batch.recipient.email:
        return Outcome("failed", "The recipient has no email address.")
    return guarded(lambda: _send(tenant, batch, items), what=f"digest {batch.pk}")


def _shortened(message: str) -> str:
    if len(message) <= DIGEST_MESSAGE_CHARS:
        return message
    return message[: DIGEST_MESSAGE_CHARS - 1] + "…"


def _send(tenant: Tenant, batch: DigestBatch, items: list[Delivery]) -> Outcome:
    notification_type = batch.type
    latest = items[-1].send
    shown = items[-DIGEST_ITEMS_SHOWN:]
    context = {
        "count": len(items),
        "more": len(items) - len(shown),
        "items": [
            {
                "title": i.send.title,
                "message": _shortened(i.send.message),
                "url": i.send.url,
                "data": i.send.data,
                "created_at": i.created_at,
            }
            for i in shown
        ],
        "title": latest.title,
        "message": latest.message,
        "url": latest.url,
        "data": latest.data,
        "batch_key": batch.batch_key,
    }
    try:
        message = compose_email(
            tenant=tenant,
            user=batch.recipient,
            notification_type=notification_type,
            host=tenant.get_primary_domain().domain,
            context=context,
            templates=(DEFAULT_DIGEST_SUBJECT, DEFAULT_DIGEST_TEXT, DEFAULT_DIGEST_HTML),
            message_id=f"digest.{batch.pk}",
            headers={"X-Herald-Digest": str(batch.pk)},
        )
    except TemplateError as exc:
        return Outcome("failed", f"Template error: {exc}")
    try:
        reservation = email_quota_reserve(tenant=tenant)
    except QuotaExceeded:
        return Outcome(SUPPRESSED, "The monthly email quota is used up.")
    smtp = SmtpSession()
    try:
        smtp.send(message)
    except (smtplib.SMTPException, OSError) as exc:
        quota_release(reservation)
        return smtp_outcome(exc)
    except Exception:
        quota_release(reservation)
        raise
    finally:
        smtp.reset()
    return Outcome("sent")
