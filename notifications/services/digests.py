"""Digests: a type with a digest window sends each user one email per window, listing it all.

- A send of such a type writes its email deliveries as ``batched`` (no batch yet) and makes sure
  each recipient has an open ``DigestBatch`` for (type, ``batch_key``), closing one window from
  now. The partial unique constraint ``digest_one_open`` means concurrent sends can only ever
  meet in the same open batch.
- Due batches are flushed in the tenant's turns (``services.turns``), after its single emails,
  so a tenant with many digests closing at once waits its turn like any other.
- When a batch is due, a worker claims it (``open`` -> ``sending`` with a lease) through the
  delivery state machine (``services.delivery_machine``), then collects every ``batched``
  delivery of its (user, type, key) that has no batch yet, and commits that. It sends one email
  listing the items (``channels.email.digest``) and records the outcome on the batch and its
  items in one transaction.
- A worker that dies after collecting leaves the batch ``sending`` with its items attached; once
  the lease runs out the batch is claimed again and sent with the same items: nothing lost,
  nothing moved to another digest. A temporary SMTP failure waits out a backoff the same way.
- A delivery committed after its batch collected (a send racing the close) has no batch and no
  open batch to join; ``digests_heal`` opens one for it, so it goes out in the next digest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from django.db import connection
from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from notifications.channels import registry
from notifications.models import EMAIL, Delivery, DigestBatch, NotificationType, Send
from notifications.services import delivery_machine as machine
from notifications.services.leases import Holding
from notifications.services.preferences import opted_out, switches_off
from notifications.webhooks.outbox import webhook_events_for_deliveries
from tenants.due import due_hint
from tenants.models import Tenant

if TYPE_CHECKING:
    from notifications.channels.email.channel import EmailSender

DUE_DIGESTS = "digest"

QUEUE = machine.Queue(
    model=DigestBatch,
    held={"status": DigestBatch.Status.SENDING},
    ready="""(status = %(open)s AND closes_at <= %(now)s)
             OR (status = %(sending)s AND locked_until <= %(now)s)""",
    order="closes_at, id",
    claimed=", status = %(sending)s",
    first="status = %(open)s",
    params={"open": DigestBatch.Status.OPEN, "sending": DigestBatch.Status.SENDING},
)


def digest_batches_open(*, tenant_id: int, send: Send, user_ids: list[int], now: datetime) -> None:
    """Give each of these users an open batch for the send's type and key (one statement)."""
    if not user_ids:
        return
    closes_at = now + timedelta(seconds=send.type.digest_window_seconds or 0)
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
        return int(cursor.rowcount)


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
    returns how many this worker claimed. A batch being sent is in ``holding``, for the turn's
    heartbeat to renew its lease. Call in the tenant's schema.

    A batch is claimed ``open`` -> ``sending`` when its window closed, or again when the lease
    of a worker that died (or a retry's wait) ran out; one that has used up
    ``DELIVERY_MAX_ATTEMPTS`` is claimed only to be marked failed."""
    holding = holding or Holding()
    claims = machine.claim(QUEUE, now=timezone.now(), limit=limit)
    if not claims:
        return 0
    holding.hold(QUEUE, (c.id for c in claims))
    plugin = registry.channel(EMAIL)
    with plugin.sender(tenant=tenant) as sender:
        for claim in claims:
            batch = DigestBatch.objects.select_related("recipient", "type").get(pk=claim.id)
            items = _collect(batch, first_claim=claim.first)
            outcome = _outcome(batch, items, claim, cast("EmailSender", sender))
            holding.let_go(QUEUE, batch.pk)
            machine.record(
                tenant=tenant,
                unit=_Digest(batch, items, tenant),
                outcome=outcome,
                now=timezone.now(),
                channel=EMAIL,
                usage_kind=plugin.usage_kind,
            )
    return len(claims)


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
        .select_related("send", "notification")
        .order_by("id")
    )


def _outcome(
    batch: DigestBatch, items: list[Delivery], claim: machine.Claim, sender: EmailSender
) -> machine.Outcome:
    """What became of a claimed batch: sent (or nothing to send), skipped, failed, or a retry."""
    if claim.exhausted:
        return machine.given_up(attempts=batch.attempts, last_error=batch.last_error)
    if not items:
        return machine.Outcome(Delivery.Status.SENT)
    switches = switches_off(user_ids={batch.recipient_id}, channel=EMAIL)
    if opted_out(switches, batch.recipient_id, batch.type_id, critical=batch.type.critical):
        return machine.Outcome(Delivery.Status.SKIPPED_PREFERENCE)
    return machine.attempt(lambda: sender.deliver_digest(batch, items), what=f"digest {batch.pk}")


# The batch's status for its items' outcome: a suppressed digest failed (its items say why).
_BATCH_STATUS = {
    Delivery.Status.SENT: DigestBatch.Status.SENT,
    Delivery.Status.SKIPPED_PREFERENCE: DigestBatch.Status.SKIPPED,
    Delivery.Status.FAILED: DigestBatch.Status.FAILED,
    Delivery.Status.SUPPRESSED_QUOTA: DigestBatch.Status.FAILED,
}


class _Digest:
    """A claimed batch with its items, as a unit of the state machine: one email, metered
    once, whose outcome is every item's."""

    def __init__(self, batch: DigestBatch, items: list[Delivery], tenant: Tenant) -> None:
        self.batch = batch
        self.items = items
        self.tenant = tenant
        self.attempts = batch.attempts
        self.metered = bool(items)

    def wait(self, *, until: datetime, error: str, now: datetime) -> None:
        DigestBatch.objects.filter(pk=self.batch.pk).update(locked_until=until, last_error=error)

    def finish(self, outcome: machine.Outcome, now: datetime) -> int:
        sent = outcome.status == Delivery.Status.SENT
        DigestBatch.objects.filter(pk=self.batch.pk).update(
            status=_BATCH_STATUS[outcome.status],
            locked_until=None,
            last_error=outcome.error,
            sent_at=now if sent else None,
        )
        ids = [item.pk for item in self.items]
        stored = Delivery.objects.filter(pk__in=ids).update(
            status=outcome.status,
            attempts=self.batch.attempts,
            last_error=outcome.error,
            updated_at=now,
            sent_at=now if sent else None,
        )
        # Each item is a delivery: its webhook event, in the same transaction.
        webhook_events_for_deliveries(
            tenant=self.tenant, delivery_ids=ids, status=outcome.status, now=now
        )
        return stored
