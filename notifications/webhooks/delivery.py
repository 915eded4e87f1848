"""Delivering webhook events: the tenant's own turns POST its queued ``WebhookDelivery`` rows
through the shared delivery state machine (``services.delivery_machine``).

Webhooks are an event sink, not a channel: one row per event and endpoint, not per recipient.
They ride the same machinery as email all the same:

1. Whoever writes rows (the outbox writers, a test event, a retry) calls ``webhooks_enqueue``
   in the same transaction: turns are requested once it commits (``services.turns``) and the
   work is noted as due for the sweep, under the deliveries' kind of due work, so
   ``deliveries_pending`` and the sweep see webhook rows too (``webhooks.pending``).
2. A turn (``tasks.email_turn``), after its deliveries and before digests, calls
   ``webhooks_deliver``. It claims up to ``WEBHOOK_TURN_ENDPOINTS`` endpoints that are enabled,
   not busy and have a ready row, oldest ready row first, with one ``UPDATE ... SKIP LOCKED``
   that sets their ``busy_until`` (a lease the turn's heartbeat renews, ``services.leases``).
   So each endpoint has at most one delivering worker at a time, and its events go out in
   order. A disabled endpoint is never claimed: its rows wait until it is enabled again.
3. Each claimed endpoint gets a thread of its own (with its own database connection, entering
   the tenant through ``tenants.entry``), so a slow endpoint holds back neither the tenant's
   other endpoints nor, beyond its one turn, other tenants. The thread claims the endpoint's
   next ``WEBHOOK_BATCH_SIZE`` ready rows through the machine (``QUEUE``) and POSTs them in
   order; after a transient failure (a timeout, a refused connection, a 5xx, 408, 409, 425 or
   429) it stops: the rest of its rows are given back unattempted and wait behind the failed
   one's retry, so a timing-out endpoint costs one timeout per turn, not one per event. An
   endpoint that answers slowly starts no new request after ``ENDPOINT_TURN_SECONDS``: its
   other rows are given back for the next turn.
4. A row's ``body`` is fixed at its first attempt: built from the event's subject if empty
   (``webhooks.events``), and stored, so every retry sends the same bytes with the same
   ``webhook-id``. A subject gone meanwhile (an erased user) fails the row for good.
5. Each attempt is signed afresh (Standard Webhooks, ``webhooks.signing``), POSTed through the
   outbound guard (``herald.egress``) within ``WEBHOOK_TIMEOUT_SECONDS``, logged
   (``WebhookAttempt``) and recorded by the machine: a 2xx is sent and metered (one webhook of
   the plan's monthly quota, reserved before the POST and given back if not sent; a used-up
   quota marks the row ``suppressed_quota`` without a request); a 4xx other than those above,
   or an address the guard refuses, fails it at once; anything else is retried on
   ``WEBHOOK_RETRY_SCHEDULE`` (with jitter) until ``WEBHOOK_MAX_ATTEMPTS``.
6. An endpoint's ``failing_since`` marks the start of a run of failed attempts and is cleared
   by any success. A failure ``WEBHOOK_DISABLE_AFTER_DAYS`` into a run disables the endpoint
   and mails the tenant's admins, once.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from billing_stub.metering import (
    WEBHOOKS,
    QuotaExceeded,
    quota_release,
    webhook_quota_reserve,
)
from herald import egress, encryption
from notifications.events import DELIVERY_VALUES, notification_rows
from notifications.models import (
    Delivery,
    Notification,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.services import delivery_machine as machine
from notifications.services.deliveries import DUE_DELIVERIES
from notifications.services.leases import Holding
from notifications.services.turns import turns_request
from notifications.webhooks.events import (
    DELIVERY_FAILED,
    DELIVERY_SENT,
    NOTIFICATION_CREATED,
    NOTIFICATION_READ,
    delivery_event,
    notification_event,
)
from notifications.webhooks.signing import webhook_secret_open, webhook_sign
from tenants.due import due_hint
from tenants.entry import in_tenant
from tenants.models import Tenant

logger = logging.getLogger(__name__)

Status = machine.Status
CHANNEL = "webhook"  # the ``channel`` label of the deliveries metric
USER_AGENT = "Herald-Webhooks/1.0"
EXCERPT_BYTES = 1024  # of an answer's body, kept in the attempt log
# Answers that a later attempt may change: timeout, conflict, too early, too many requests.
TRANSIENT_4XX = frozenset({408, 409, 425, 429})
# An endpoint that answers, but slowly, starts no new request after this long in one turn, so
# that the turn (and the tenant's endpoints it serves) is not held for a batch of slow answers.
ENDPOINT_TURN_SECONDS = 15.0


@dataclass(frozen=True)
class WebhookSchedule:
    """Webhooks' retry policy: ``WEBHOOK_MAX_ATTEMPTS`` attempts; after the n-th failed one,
    the n-th wait of ``WEBHOOK_RETRY_SCHEDULE`` (its last repeats), varied by
    +-``WEBHOOK_RETRY_JITTER`` so that events failed together do not come back together."""

    def max_attempts(self) -> int:
        return int(settings.WEBHOOK_MAX_ATTEMPTS)

    def delay(self, attempts: int) -> float:
        schedule = settings.WEBHOOK_RETRY_SCHEDULE
        base = float(schedule[min(max(attempts, 1), len(schedule)) - 1])
        jitter = float(settings.WEBHOOK_RETRY_JITTER)
        return base * random.uniform(1 - jitter, 1 + jitter)  # noqa: S311 -- spreading retries, not a secret


QUEUE = machine.Queue(
    model=WebhookDelivery,
    held={"status": WebhookDelivery.Status.QUEUED},
    ready="""status = %(queued)s AND endpoint_id = %(endpoint)s
             AND (locked_until IS NULL OR locked_until <= %(now)s)""",
    order="id",
    claimed=", updated_at = %(now)s",
    params={"queued": WebhookDelivery.Status.QUEUED},
    retry=WebhookSchedule(),
)


@dataclass(frozen=True, eq=False)  # one instance, hashed by identity (``services.leases``)
class _EndpointLeases:
    model: type[WebhookEndpoint] = WebhookEndpoint
    held: dict[str, Any] = field(default_factory=dict)
    lease_field: str = "busy_until"


ENDPOINTS = _EndpointLeases()


def webhooks_enqueue(*, tenant: Tenant, count: int, now: datetime) -> None:
    """``count`` webhook rows were queued in this transaction (or a disabled endpoint was
    enabled again): ask for a turn once it commits, and note the work as due, for the sweep.
    One turn serves up to ``WEBHOOK_TURN_ENDPOINTS`` endpoints and asks for the next itself."""
    if not count:
        return
    transaction.on_commit(lambda: turns_request(tenant_id=tenant.pk))
    due_hint(tenant_id=tenant.pk, kind=DUE_DELIVERIES, when=now)


# --- in the worker ---------------------------------------------------------------------------


def webhooks_deliver(*, tenant: Tenant, holding: Holding) -> int:
    """Deliver the next events of up to ``WEBHOOK_TURN_ENDPOINTS`` of this tenant's endpoints,
    each endpoint in a thread of its own; returns how many rows were attempted (or settled
    without an attempt). The claimed endpoints and rows are in ``holding`` until they are let
    go, for the turn's heartbeat. Call in the tenant's schema."""
    endpoint_ids = _claim_endpoints(now=timezone.now(), limit=settings.WEBHOOK_TURN_ENDPOINTS)
    if not endpoint_ids:
        return 0
    holding.hold(ENDPOINTS, endpoint_ids)
    if len(endpoint_ids) == 1:  # no thread needed: this one's connection is in the schema
        return _deliver_logged(tenant, endpoint_ids[0], holding)
    with ThreadPoolExecutor(len(endpoint_ids), thread_name_prefix="webhooks") as pool:
        futures = [
            pool.submit(_deliver_in_thread, tenant, endpoint_id, holding)
            for endpoint_id in endpoint_ids
        ]
    return sum(future.result() for future in futures)


def _deliver_logged(tenant: Tenant, endpoint_id: int, holding: Holding) -> int:
    """``_deliver_endpoint``; an error is logged and ends this endpoint's part of the turn
    alone (its claimed rows are ready again once their lease runs out, within their
    attempts)."""
    try:
        return _deliver_endpoint(tenant, endpoint_id, holding)
    except Exception:
        logger.exception("Delivering to webhook endpoint %s of %s failed", endpoint_id, tenant.slug)
        return 0


def _claim_endpoints(*, now: datetime, limit: int) -> list[int]:
    """Lease up to ``limit`` enabled, idle endpoints that have a ready row, the one with the
    oldest ready row first (one statement)."""
    endpoints, rows = WebhookEndpoint._meta.db_table, WebhookDelivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH ready AS (
                SELECT e.id, q.first FROM {endpoints} e
                JOIN LATERAL (
                    SELECT min(d.id) AS first FROM {rows} d
                    WHERE d.endpoint_id = e.id AND d.status = %(queued)s
                      AND (d.locked_until IS NULL OR d.locked_until <= %(now)s)) q
                  ON q.first IS NOT NULL
                WHERE e.enabled AND (e.busy_until IS NULL OR e.busy_until <= %(now)s)
                ORDER BY q.first
                LIMIT %(limit)s
                FOR UPDATE OF e SKIP LOCKED)
            UPDATE {endpoints} AS e SET busy_until = %(lease)s
            FROM ready WHERE e.id = ready.id
            RETURNING e.id, ready.first
            """,  # noqa: S608 -- only the models' table names are interpolated
            {
                "queued": WebhookDelivery.Status.QUEUED,
                "now": now,
                "limit": limit,
                "lease": machine.lease_end(now),
            },
        )
        claimed = sorted(cursor.fetchall(), key=lambda row: row[1])
    return [endpoint_id for endpoint_id, _first in claimed]


def _deliver_in_thread(tenant: Tenant, endpoint_id: int, holding: Holding) -> int:
    """``_deliver_logged`` on this thread's own database connection, closed at the end."""
    try:
        with in_tenant(tenant):
            return _deliver_logged(tenant, endpoint_id, holding)
    finally:
        connection.close()


UNREADABLE = (
    "The endpoint's signing secret cannot be decrypted with the configured "
    "HERALD_ENCRYPTION_KEYS: restore the key it was sealed with, or rotate the secret."
)


def _deliver_endpoint(tenant: Tenant, endpoint_id: int, holding: Holding) -> int:
    """POST the endpoint's next ready rows in order, then free it."""
    try:
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).first()
        if endpoint is None:
            return 0
        claims = machine.claim(
            QUEUE, now=timezone.now(), limit=settings.WEBHOOK_BATCH_SIZE, endpoint=endpoint_id
        )
        if not claims:
            return 0
        holding.hold(QUEUE, (c.id for c in claims))
        rows = {r.pk: r for r in WebhookDelivery.objects.filter(pk__in=[c.id for c in claims])}
        for claim in claims:
            if claim.exhausted:
                row = rows.pop(claim.id)
                outcome = machine.given_up(attempts=row.attempts, last_error=row.last_error)
                _record(tenant, holding, _Row(row), outcome)
        queue = sorted(rows.values(), key=lambda r: r.pk)
        vanished = _fill_bodies(queue)
        try:
            secret = webhook_secret_open(endpoint)
        except encryption.InvalidToken:
            # The keys changed without the old one kept: retried (the events are not lost)
            # until an operator restores the key or the tenant rotates the secret.
            logger.error("Webhook endpoint %s: its secret does not decrypt", endpoint_id)
            if queue:
                unit = _Row(queue[0])
                _record(tenant, holding, unit, machine.Outcome(Status.FAILED, UNREADABLE, True))
                _give_back(holding, queue[1:], until=unit.until)
            return len(claims)
        budget_ends = time.monotonic() + ENDPOINT_TURN_SECONDS
        for position, row in enumerate(queue):
            if time.monotonic() > budget_ends:  # slow answers: the rest go in the next turn
                _give_back(holding, queue[position:], until=None)
                break
            if row.pk in vanished:
                outcome = machine.Outcome(Status.FAILED, vanished[row.pk])
                _record(tenant, holding, _Row(row), outcome)
                continue
            unit, outcome = _attempt(tenant, endpoint, secret, row)
            _record(tenant, holding, unit, outcome)
            if unit.attempted and _endpoint_health(
                tenant, endpoint, sent=outcome.status == Status.SENT
            ):
                _give_back(holding, queue[position + 1 :], until=None)  # disabled: they wait
                break
            if outcome.retry:
                _give_back(holding, queue[position + 1 :], until=unit.until)
                break
        return len(claims)
    finally:
        holding.let_go(ENDPOINTS, endpoint_id)
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(busy_until=None)


class _Row:
    """A claimed webhook row, as a unit of the state machine."""

    metered = True

    def __init__(self, row: WebhookDelivery) -> None:
        self.pk = row.pk
        self.attempts = row.attempts
        self.attempted = False  # an HTTP attempt was made (its answer, if any, is below)
        self.status_code: int | None = None
        self.until: datetime | None = None  # the retry's time, once ``wait`` set it

    def _answer(self) -> dict[str, Any]:
        return {"last_status_code": self.status_code} if self.attempted else {}

    def wait(self, *, until: datetime, error: str, now: datetime) -> None:
        self.until = until
        WebhookDelivery.objects.filter(pk=self.pk, status=Status.QUEUED).update(
            last_error=error, locked_until=until, updated_at=now, **self._answer()
        )

    def finish(self, outcome: machine.Outcome, now: datetime) -> int:
        return WebhookDelivery.objects.filter(pk=self.pk, status=Status.QUEUED).update(
            status=outcome.status,
            last_error=outcome.error,
            locked_until=None,
            updated_at=now,
            sent_at=now if outcome.status == Status.SENT else None,
            **self._answer(),
        )


def _record(tenant: Tenant, holding: Holding, unit: _Row, outcome: machine.Outcome) -> None:
    holding.let_go(QUEUE, unit.pk)
    machine.record(
        tenant=tenant,
        unit=unit,
        outcome=outcome,
        now=timezone.now(),
        channel=CHANNEL,
        usage_kind=WEBHOOKS,
        policy=QUEUE.retry,
    )


def _give_back(
    holding: Holding, rows: Iterable[WebhookDelivery], *, until: datetime | None
) -> None:
    """Return claimed rows unattempted, their attempt not counted: ready again at ``until``
    (behind the failed row's retry, keeping their order), or at once."""
    ids = [row.pk for row in rows]
    if not ids:
        return
    for row_id in ids:
        holding.let_go(QUEUE, row_id)
    WebhookDelivery.objects.filter(pk__in=ids, status=Status.QUEUED, attempts__gt=0).update(
        attempts=F("attempts") - 1, locked_until=until
    )


# --- bodies ----------------------------------------------------------------------------------


def _json_default(value: object) -> str:
    if isinstance(value, datetime):  # as the API writes them
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def event_body(event: Any) -> str:
    """An event (``webhooks.events``) as the JSON text POSTed."""
    return json.dumps(event, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def _fill_bodies(rows: list[WebhookDelivery]) -> dict[int, str]:
    """Build and store the body of each row without one, from its subject: one query per kind
    of subject for all of them. Returns the rows whose subject is gone, with the reason."""
    empty = [row for row in rows if not row.body]
    if not empty:
        return {}
    notification_ids = {r.notification_id for r in empty if r.notification_id is not None}
    delivery_ids = {r.delivery_id for r in empty if r.delivery_id is not None}
    notifications = (
        {
            n["id"]: n
            for n in notification_rows(
                Notification.objects.filter(pk__in=notification_ids), with_recipient=True
            )
        }
        if notification_ids
        else {}
    )
    deliveries = (
        {d["id"]: d for d in Delivery.objects.filter(pk__in=delivery_ids).values(*DELIVERY_VALUES)}
        if delivery_ids
        else {}
    )
    vanished: dict[int, str] = {}
    built: list[WebhookDelivery] = []
    for row in empty:
        event: Any
        if row.event in (NOTIFICATION_CREATED, NOTIFICATION_READ):
            subject = notifications.get(row.notification_id or 0)
            if subject is None:
                vanished[row.pk] = (
                    "The event's notification no longer exists (its user was erased)."
                )
                continue
            name: Any = row.event  # one of the two, checked above
            event = notification_event(name, row=subject, timestamp=row.occurred_at)
        elif row.event in (DELIVERY_SENT, DELIVERY_FAILED):
            subject = deliveries.get(row.delivery_id or 0)
            if subject is None:
                vanished[row.pk] = "The event's delivery no longer exists (its user was erased)."
                continue
            name = row.event  # one of the two, checked above
            event = delivery_event(name, row=subject, timestamp=row.occurred_at)
        else:
            vanished[row.pk] = f"The event {row.event!r} has no body to send."
            continue
        row.body = event_body(event)
        built.append(row)
    if built:
        WebhookDelivery.objects.bulk_update(built, ["body"])
    return vanished


# --- one attempt -----------------------------------------------------------------------------


def _attempt(
    tenant: Tenant, endpoint: WebhookEndpoint, secret: str, row: WebhookDelivery
) -> tuple[_Row, machine.Outcome]:
    """POST one row within the plan's monthly webhooks, log the attempt, and say what came of
    it (the unit carries the answer's status code)."""
    unit = _Row(row)
    try:
        reservation = webhook_quota_reserve(tenant=tenant)
    except QuotaExceeded:
        return unit, machine.Outcome(
            Status.SUPPRESSED_QUOTA, "The monthly webhook quota is used up."
        )
    unit.attempted = True
    try:
        outcome, answer = _post(endpoint, secret, row)
    except BaseException:
        quota_release(reservation)
        raise
    if outcome.status != Status.SENT:
        quota_release(reservation)
    unit.status_code = answer.status_code
    answer.save(row)
    return unit, outcome


@dataclass
class _Answer:
    attempted_at: datetime
    status_code: int | None = None
    latency_ms: int | None = None
    excerpt: str = ""
    error: str = ""

    def save(self, row: WebhookDelivery) -> None:
        WebhookAttempt.objects.create(
            delivery_id=row.pk,
            attempted_at=self.attempted_at,
            status_code=self.status_code,
            latency_ms=self.latency_ms,
            response_excerpt=self.excerpt,
            error=self.error[:2000],
        )


def _post(
    endpoint: WebhookEndpoint, secret: str, row: WebhookDelivery
) -> tuple[machine.Outcome, _Answer]:
    body = row.body.encode()
    answer = _Answer(attempted_at=timezone.now())
    headers = {
        **webhook_sign(secret, msg_id=row.msg_id, timestamp=answer.attempted_at, body=body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    started = timezone.now()
    try:
        response = egress.post(endpoint.url, body, headers, settings.WEBHOOK_TIMEOUT_SECONDS)
    except egress.EgressError as exc:
        answer.latency_ms = round((timezone.now() - started).total_seconds() * 1000)
        answer.error = f"{exc.kind}: {exc.message}"
        return machine.Outcome(Status.FAILED, answer.error, retry=not exc.permanent), answer
    answer.status_code = response.status
    answer.latency_ms = round(response.elapsed * 1000)
    answer.excerpt = response.body_excerpt[:EXCERPT_BYTES].decode("utf-8", "replace")
    if 200 <= response.status < 300:
        return machine.Outcome(Status.SENT), answer
    answer.error = f"The endpoint answered HTTP {response.status}."
    permanent = 400 <= response.status < 500 and response.status not in TRANSIENT_4XX
    return machine.Outcome(Status.FAILED, answer.error, retry=not permanent), answer


# --- failing endpoints -----------------------------------------------------------------------


def _endpoint_health(tenant: Tenant, endpoint: WebhookEndpoint, *, sent: bool) -> bool:
    """Note an attempt's result on its endpoint: a success ends a run of failures; a failure
    starts one, or, ``WEBHOOK_DISABLE_AFTER_DAYS`` into it, disables the endpoint and mails the
    tenant's admins (once: only the call that turned it off). Returns whether it was
    disabled."""
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint.pk)
    if sent:
        if endpoint.failing_since is not None:  # as read at the claim, or set by this turn
            endpoints.filter(failing_since__isnull=False).update(failing_since=None)
            endpoint.failing_since = None
        return False
    now = timezone.now()
    if endpoint.failing_since is None:
        endpoints.filter(failing_since__isnull=True).update(failing_since=now)
        endpoint.failing_since = now
    cutoff = now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    since = (
        endpoints.filter(enabled=True, failing_since__lte=cutoff)
        .values_list("failing_since", flat=True)
        .first()
    )
    if since is None:
        return False
    reason = (
        f"Disabled on {now:%Y-%m-%d %H:%M} UTC: every attempt failed since "
        f"{since:%Y-%m-%d %H:%M} UTC."
    )
    if not endpoints.filter(enabled=True).update(enabled=False, disabled_reason=reason):
        return True  # another worker turned it off (and told the admins)
    logger.warning(
        "Webhook endpoint %s of %s disabled: failing since %s", endpoint.pk, tenant.slug, since
    )
    _tell_admins(tenant, endpoint, since=since)
    return True


def _tell_admins(tenant: Tenant, endpoint: WebhookEndpoint, *, since: datetime) -> None:
    """Mail the tenant's admins that ``endpoint`` was disabled. Never raises: the endpoint
    stays disabled either way, and the dashboard shows why."""
    try:
        admins = list(
            get_user_model()
            .objects.filter(is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
        if not admins:
            return
        days = settings.WEBHOOK_DISABLE_AFTER_DAYS
        send_mail(
            subject=f"{tenant.name}: webhook endpoint disabled",
            message=(
                f"Herald stopped sending events to your webhook endpoint\n\n    {endpoint.url}\n\n"
                f"because every delivery to it has failed since {since:%Y-%m-%d %H:%M} UTC "
                f"(more than {days:g} days).\n\n"
                "Events for it are kept and wait. Once the endpoint answers again, enable it "
                "in the dashboard (Webhooks) or with PATCH /api/v1/webhook-endpoints/"
                f'{endpoint.pk} and the body {{"enabled": true}}; the waiting events are '
                "delivered then.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=admins,
        )
    except Exception:
        logger.exception(
            "Could not tell %s's admins that a webhook endpoint was disabled", tenant.slug
        )


__all__ = [
    "ENDPOINTS",
    "QUEUE",
    "WebhookSchedule",
    "event_body",
    "webhooks_deliver",
    "webhooks_enqueue",
]
