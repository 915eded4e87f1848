"""The one delivery state machine: claim with a lease, attempt, record, retry with backoff, give up.

It serves every queued channel's deliveries (``services.deliveries``) and email digests
(``services.digests``): each is a *queue* of rows (``Queue``) that a worker claims in batches
and a *unit* (``Unit``) whose outcome it records.

1. ``claim`` takes up to ``limit`` ready rows with one ``UPDATE ... SKIP LOCKED``:
   ``locked_until`` = now + ``DELIVERY_LEASE_SECONDS``, one attempt more. A row another worker
   holds is skipped, so nothing goes out twice, whatever the broker redelivers. A ready row that
   has used up its queue's attempts (its workers died, or their leases ran out, every time) is
   claimed without counting an attempt, only to be given up (``given_up``), so no row exceeds
   the limit or comes back forever. Each queue has its retry policy (``RetryPolicy``):
   email's is ``ExponentialBackoff`` over the ``DELIVERY_*`` settings, webhooks' a schedule
   of their own (``webhooks.delivery``). The turn's heartbeat renews the lease of what it
   holds (``services.leases``).
2. ``attempt`` runs one delivery and turns what it raised into an ``Outcome``
   (``channels.base``: a transient ``TransportError`` is a retry, a permanent one a failure,
   ``Suppressed`` a suppression; an unexpected error fails that unit alone).
3. ``record`` stores it: a retry waits in the row until ``locked_until`` (the policy's backoff,
   ``retry_delay``), or fails once the attempts are used up; any other outcome is final, and a
   sent one is metered in the same transaction.

A worker that dies leaves its rows claimed for at most one lease (its heartbeat died with it);
then they are ready again. What the channel accepted just before the worker died, and that was
not recorded yet, goes out again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis
from django.conf import settings
from django.db import DatabaseError, connection, models, transaction

from billing_stub.metering import usage_record
from herald.metrics import DELIVERIES
from notifications.channels.base import Suppressed, TransportError
from notifications.models import Delivery
from tenants.models import Tenant

Status = Delivery.Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: Status  # what becomes of the unit (of each delivery in it)
    error: str = ""
    retry: bool = False  # a transient failure: another attempt may succeed


class RetryPolicy(Protocol):
    """How a queue retries a transient failure: read from settings at each use, so a test's
    override (or a worker's environment) applies."""

    def max_attempts(self) -> int:
        """Attempts a unit gets in all; the last transient failure is final."""
        ...

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th attempt failed transiently."""
        ...


@dataclass(frozen=True)
class ExponentialBackoff:
    """Email's policy: ``DELIVERY_MAX_ATTEMPTS`` attempts, waiting
    ``DELIVERY_RETRY_BASE_SECONDS`` doubled per attempt, at most
    ``DELIVERY_RETRY_MAX_SECONDS``."""

    def max_attempts(self) -> int:
        return int(settings.DELIVERY_MAX_ATTEMPTS)

    def delay(self, attempts: int) -> float:
        return float(
            min(
                settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** (attempts - 1),
                settings.DELIVERY_RETRY_MAX_SECONDS,
            )
        )


DEFAULT_RETRY: RetryPolicy = ExponentialBackoff()


@dataclass(frozen=True, eq=False)  # one instance per queue, hashed by identity
class Queue:
    """Rows a worker claims: their table, and SQL (over the table's columns, with the
    parameters ``now`` and those given to ``claim``) for which are ready, in what order, what a
    claim sets besides the lease and attempts, and which claims are a unit's first."""

    model: type[models.Model]
    held: dict[str, Any]  # the rows a lease holds (the heartbeat renews only these)
    ready: str
    order: str
    claimed: str = ""
    first: str = "false"
    params: dict[str, Any] = field(default_factory=dict)  # for the SQL above
    retry: RetryPolicy = DEFAULT_RETRY
    lease_field: str = "locked_until"  # the column the lease is in (``services.leases``)


@dataclass(frozen=True)
class Claim:
    id: int
    first: bool  # the unit's first claim (a digest's window closing)
    exhausted: bool  # its attempts are used up: only to be given up


def claim(queue: Queue, *, now: datetime, limit: int, **params: Any) -> list[Claim]:
    """Claim up to ``limit`` ready rows of ``queue``, in its order (one statement)."""
    table = queue.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH ready AS (
                SELECT id, attempts, {queue.first} AS is_first FROM {table}
                WHERE {queue.ready}
                ORDER BY {queue.order}
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED)
            UPDATE {table} AS d
            SET locked_until = %(lease)s,
                attempts = d.attempts + CASE WHEN ready.attempts < %(max)s THEN 1 ELSE 0 END
                {queue.claimed}
            FROM ready WHERE d.id = ready.id
            RETURNING d.id, ready.is_first, ready.attempts >= %(max)s
            """,
            {
                **queue.params,
                **params,
                "now": now,
                "lease": lease_end(now),
                "limit": limit,
                "max": queue.retry.max_attempts(),
            },
        )
        rows = sorted(cursor.fetchall())
    claims = [Claim(id=row_id, first=first, exhausted=gone) for row_id, first, gone in rows]
    if given_up := [c.id for c in claims if c.exhausted]:
        logger.warning("Giving up on %s %s: attempts used up", table, given_up)
    return claims


def lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)


def given_up(*, attempts: int, last_error: str) -> Outcome:
    """The outcome of a unit claimed with its attempts used up."""
    error = (
        f"Gave up after {attempts} attempts; the last one never finished (its worker stopped). "
        f"{last_error}"
    )
    return Outcome(Status.FAILED, error.strip())


def attempt(deliver: Callable[[], None], *, what: str) -> Outcome:
    """Run one delivery: sent when ``deliver()`` returns. An unexpected error fails this unit
    alone (logged, and so seen by Sentry) instead of its whole batch: what a message cannot
    survive (a header Django refuses to encode, say) fails the same way on every attempt.
    Database and Redis errors still end the batch, whose rows are claimed again once their lease
    runs out, within the attempt limit."""
    try:
        deliver()
    except TransportError as exc:
        return Outcome(Status.FAILED, exc.message, retry=not exc.permanent)
    except Suppressed as exc:
        return Outcome(Status.SUPPRESSED_QUOTA, exc.message)
    except (DatabaseError, redis.RedisError):
        raise
    except Exception as exc:
        logger.exception("Sending %s failed unexpectedly", what)
        return Outcome(Status.FAILED, f"Could not send: {type(exc).__name__}: {exc}")
    return Outcome(Status.SENT)


def retry_delay(
    outcome: Outcome, attempts: int, policy: RetryPolicy = DEFAULT_RETRY
) -> tuple[Outcome, float | None]:
    """After ``attempts`` tries: for a retry, the seconds to wait (``policy``'s backoff), or a
    final failure once its attempts are used up. Other outcomes pass unchanged."""
    if not outcome.retry:
        return outcome, None
    if attempts >= policy.max_attempts():
        return Outcome(Status.FAILED, f"Gave up after {attempts} attempts. {outcome.error}"), None
    return outcome, policy.delay(attempts)


class Unit(Protocol):
    """A claimed unit whose outcome ``record`` stores."""

    attempts: int  # counting this one
    metered: bool  # whether its being sent counts against the usage meter

    def wait(self, *, until: datetime, error: str, now: datetime) -> None:
        """Keep the unit claimed until its retry is due."""
        ...

    def finish(self, outcome: Outcome, now: datetime) -> int:
        """Store a final outcome; returns how many deliveries it settled."""
        ...


def record(
    *,
    tenant: Tenant,
    unit: Unit,
    outcome: Outcome,
    now: datetime,
    channel: str,
    usage_kind: str | None,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> Outcome | None:
    """Store ``outcome``: a retry waits in the unit until ``locked_until`` (``policy``: the
    unit's queue's); a final outcome is stored, with a sent unit metered (``usage_kind``) in the
    same transaction. Returns the final outcome, None for a retry."""
    outcome, delay = retry_delay(outcome, unit.attempts, policy)
    error = outcome.error[:2000]
    if delay is not None:
        unit.wait(until=now + timedelta(seconds=delay), error=error, now=now)
        return None
    outcome = Outcome(outcome.status, error)
    with transaction.atomic():
        if outcome.status == Status.SENT and unit.metered and usage_kind:
            usage_record(tenant_id=tenant.pk, kind=usage_kind, quantity=1, when=now)
        stored = unit.finish(outcome, now)
    if stored:
        DELIVERIES.labels(channel, outcome.status).inc(stored)
    return outcome
