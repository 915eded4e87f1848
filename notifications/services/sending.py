"""Accepting a send: validate, upsert recipients, write the send and every in-app row at once."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from billing_stub.limits import Limits, limits_for
from billing_stub.metering import (
    NOTIFICATIONS,
    QuotaExceeded,
    Reservation,
    period_of,
    quota_release,
    quota_reserve,
    usage_record_sql,
)
from herald.domain import Conflict, LimitExceeded, NotFound, OverQuota
from herald.metrics import NOTIFICATIONS_CREATED
from notifications.channels.in_app.fan_out import (
    BY_TEXT,
    WRITTEN,
    WRITTEN_BY_TEXT,
    after_fan_out,
)
from notifications.channels.in_app.localised import (
    PreRendered,
    locales_known,
    pre_rendered,
    resolved_sql,
    type_locales_seen,
)
from notifications.channels.registry import channels_fan_out
from notifications.models import IN_APP, Notification, NotificationType, Send, Topic
from notifications.services.audience import audience_count
from notifications.services.preferences import reaches_sql
from notifications.services.topics import (
    NO_SUCH_TOPIC,
    topic_audience_size,
    topic_for_send,
    topic_hold,
)
from notifications.services.types import type_columns, type_for_send, type_from_row
from notifications.services.users import (
    HOLD_FROM,
    RecipientInput,
    external_ids,
    ids_in_order,
    recipient_columns,
    recipients_hold,
    recipients_lookup_params,
    recipients_lookup_sql,
    recipients_upsert,
)
from notifications.type_keys import type_key_seen
from notifications.webhooks.events import NOTIFICATION_CREATED
from notifications.webhooks.outbox import (
    created_events_sql,
    folded,
    webhook_events_written,
    webhooks_subscribed,
)
from tenants.due import due_hint
from tenants.models import Tenant

logger = logging.getLogger(__name__)

DUE_SENDS = "send"

IDEMPOTENCY_WINDOW = timedelta(hours=24)
# The fast path's ``notification.created`` webhook events (``webhooks.outbox``).
_CREATED_EVENTS = created_events_sql(created="created", type_key="%(type_key)s", now="%(now)s")
KEY_REUSED = "This Idempotency-Key was already used with a different request body."


@dataclass(frozen=True)
class SendInput:
    type: str
    recipients: Sequence[RecipientInput]
    message: str
    title: str = ""
    url: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    channels: list[str] | None = None
    send_at: datetime | None = None
    batch_key: str = ""
    # The send's own channel rules, checked (``notifications.channel_rules``); {} for none.
    channel_rules: dict[str, Any] = field(default_factory=dict)
    # A topic's key: its subscribers at release are recipients too, each once.
    topic: str | None = None


@dataclass(frozen=True)
class SendOutcome:
    response: dict[str, Any]
    created: bool  # False: an Idempotency-Key replay of an earlier send


def request_fingerprint(body: Any) -> str:
    """The same JSON body, however its keys are ordered, gives the same fingerprint: the
    SHA-256 of its canonical JSON (keys sorted, no spaces, non-ASCII escaped).

    orjson writes it (a body of 10,000 recipient objects in 0.6 against 4.5 ms) whenever its
    bytes are those ``json.dumps`` writes, so that a send accepted by an earlier release
    matches its retry: for ASCII text without DEL and floats in exponent form. Other bodies
    (non-ASCII text and DEL, which ``json.dumps`` escapes; exponents, which it writes as
    ``1e+16``; integers past 64 bits, which orjson refuses) take ``json.dumps``."""
    try:
        canonical = orjson.dumps(body, option=_FINGERPRINT_OPTIONS, default=str)
    except TypeError:  # orjson.JSONEncodeError is one
        canonical = b""
    if (
        not canonical
        or not canonical.isascii()
        or b"\x7f" in canonical
        or b"0e" in canonical.translate(_DIGITS_AND_E)  # 0.2 ms where a regex takes 2
    ):
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(canonical).hexdigest()


# Types json.dumps would pass to ``default`` (str) are passed to it by orjson too.
_FINGERPRINT_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# Every digit to 0 and E to e: a float in exponent form (or text like one) then holds "0e".
_DIGITS_AND_E = bytes.maketrans(b"123456789E", b"000000000e")


def notification_send(
    *, tenant: Tenant, request: SendInput, fingerprint: str, idempotency_key: str | None, actor: str
) -> SendOutcome:
    """Accept a send: one transaction for the send row and every recipient's in-app row.

    The tenant's limits are read once, here, and apply to the whole send: more recipients than
    the plan allows per send raise ``LimitExceeded``. Each recipient counts as one notification
    against the plan's monthly quota: a send that would pass it is refused whole (``OverQuota``,
    saying how many remain). A replay of an accepted send (same ``Idempotency-Key``) is answered
    as before, quota or not.

    With an ``idempotency_key`` the send row is inserted first: a concurrent request with the same
    key waits on the unique index until this one commits, then replays its response (same body)
    or gets ``Conflict`` (another body). A key older than 24 hours is released for reuse.

    A send naming a ``topic`` (``NotFound`` if there is no such topic) counts its listed
    recipients and the topic's other subscribers as they are now, against both limits; it
    reaches the subscribers of the moment it is released (``sends_release_due``).
    """
    limits = limits_for(tenant)
    if len(request.recipients) > limits.max_recipients_per_send:
        allowed = limits.max_recipients_per_send
        raise LimitExceeded(
            "Too many recipients for your plan.",
            details={"recipients": [f"Your plan allows at most {allowed} recipients per send."]},
        )
    if idempotency_key:
        replay = _replay(idempotency_key, fingerprint)
        if replay is not None:
            return replay
    # After the replay: the topic of an accepted send may be gone, or larger, by its repeat.
    topic = topic_for_send(key=request.topic) if request.topic else None
    count = len(request.recipients)
    if topic is not None:
        count = topic_audience_size(topic=topic, external_ids=external_ids(request.recipients))
        if count > limits.max_recipients_per_send:
            allowed = limits.max_recipients_per_send
            raise LimitExceeded(
                "Too many recipients for your plan.",
                details={
                    "topic": [
                        f"This send would reach {count} recipients (the topic's subscribers "
                        f"and those listed); your plan allows at most {allowed} per send."
                    ]
                },
            )
    reservation = _reserve_notifications(tenant, limits, count)
    try:
        outcome = _accept(
            tenant=tenant,
            limits=limits,
            request=request,
            fingerprint=fingerprint,
            idempotency_key=idempotency_key,
            actor=actor,
            audience=(topic, count),
        )
    except BaseException:
        quota_release(reservation)
        raise
    if not outcome.created:
        quota_release(reservation)
    else:
        NOTIFICATIONS_CREATED.inc(count)
    return outcome


def _reserve_notifications(tenant: Tenant, limits: Limits, quantity: int) -> Reservation:
    limit = limits.monthly_notification_quota
    try:
        return quota_reserve(
            tenant_id=tenant.pk, kind=NOTIFICATIONS, quantity=quantity, limit=limit
        )
    except QuotaExceeded as exc:
        raise OverQuota(
            f"This send of {quantity} notifications would pass your plan's monthly quota; "
            f"{exc.remaining} remain this period.",
            details={
                "remaining": exc.remaining,
                "requested": quantity,
                "limit": limit,
                "period_end": period_of().end.isoformat(),
            },
        ) from exc


def _replay(key: str, fingerprint: str) -> SendOutcome | None:
    """The stored answer for an Idempotency-Key used within 24 hours (Conflict for another
    body)."""
    existing = Send.objects.filter(
        idempotency_key=key, created_at__gte=timezone.now() - IDEMPOTENCY_WINDOW
    ).first()
    if existing is None or existing.response is None:
        return None
    if existing.request_fingerprint != fingerprint:
        raise Conflict(KEY_REUSED)
    return SendOutcome(response=existing.response, created=False)


def _accept(
    *,
    tenant: Tenant,
    limits: Limits,
    request: SendInput,
    fingerprint: str,
    idempotency_key: str | None,
    actor: str,
    audience: tuple[Topic | None, int],
) -> SendOutcome:
    for _attempt in range(3):
        try:
            return _send(
                tenant=tenant,
                limits=limits,
                request=request,
                fingerprint=fingerprint,
                key=idempotency_key,
                actor=actor,
                audience=audience,
            )
        except IntegrityError as exc:
            if not idempotency_key or "idempotency_key" not in str(exc):
                raise
        existing = Send.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            continue  # the other request rolled back: the key is free again
        if existing.created_at < timezone.now() - IDEMPOTENCY_WINDOW:
            Send.objects.filter(pk=existing.pk, idempotency_key=idempotency_key).update(
                idempotency_key=None
            )
            continue
        if existing.request_fingerprint != fingerprint:
            raise Conflict(KEY_REUSED)
        # The statement that inserted a send wrote its response (``_send_insert``).
        return SendOutcome(response=cast("dict[str, Any]", existing.response), created=False)
    raise Conflict("This Idempotency-Key is in use by a concurrent request.")


@transaction.atomic
def _send(
    *,
    tenant: Tenant,
    limits: Limits,
    request: SendInput,
    fingerprint: str,
    key: str | None,
    actor: str,
    audience: tuple[Topic | None, int],
) -> SendOutcome:
    """``audience``: the send's topic, if any, and how many it reaches."""
    now = timezone.now()
    due = request.send_at if request.send_at is not None and request.send_at > now else None
    scheduled = due is not None
    topic, count = audience
    if topic is not None and not topic_hold(topic_id=topic.pk):
        raise NotFound(NO_SUCH_TOPIC, details={"topic": ["The topic was deleted meanwhile."]})
    send = Send(
        title=request.title,
        message=request.message,
        url=request.url,
        data=request.data,
        channel_rules=request.channel_rules,
        send_at=request.send_at,
        batch_key=request.batch_key,
        topic=topic,
        status=Send.Status.SCHEDULED if scheduled else Send.Status.ACCEPTED,
        recipient_count=count,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        created_by=actor,
        created_at=now,
    )
    metering = usage_record_sql(
        tenant_id=tenant.pk, kind=NOTIFICATIONS, quantity=send.recipient_count, when=now,
        source="inserted",
    )  # fmt: skip
    # The common send (now, to recipients without details): send row, lookup and in-app rows in
    # one statement, when every recipient exists. A send due now with details has its
    # recipients looked up in the same statement too. A topic's subscribers are read by the
    # fan-out.
    given = recipient_columns(request.recipients)
    details = given.has_details
    to_known = None if scheduled or topic is not None else given
    texts = (
        pre_rendered(tenant=tenant, type_key=request.type, send=send)
        if to_known is not None and not details
        else None
    )
    # A large send due now holds the tenant's recipients against erasure instead of locking
    # each one it looks up (``recipients_hold``).
    held = not scheduled and len(given) >= HOLD_FROM
    if held:
        recipients_hold(tenant_id=tenant.pk)
    insert = functools.partial(
        _send_insert,
        send,
        type_key=request.type,
        held=held,
        channels=request.channels,
        metering=metering,
        recipients=to_known,
        details=details,
        texts=texts,
        # Only the fast path asks first (see webhooks.outbox); the fan-out writes its events
        # unasked, so that a send that falls back to it makes one query more, not two.
        webhooks=to_known is not None
        and not details
        and webhooks_subscribed(NOTIFICATION_CREATED, request.type),
    )
    fan_out = insert()
    if fan_out is None:
        type_for_send(key=request.type)  # a type named for the first time: create it
        fan_out = insert() or ()
    type_locales_seen(tenant_id=tenant.pk, notification_type=send.type)  # for the next send
    type_key_seen(tenant_id=tenant.pk, notification_type=send.type)  # for inbox pages
    # From here on ``send.response`` is the dict ``_send_insert`` set (the cast says so).
    if due is not None:
        send.recipient_ids = recipients_upsert(given).ids
        send.save(update_fields=["recipient_ids"])
        due_hint(tenant_id=tenant.pk, kind=DUE_SENDS, when=due)
        return SendOutcome(response=cast("dict[str, Any]", send.response), created=True)
    known, pairs = None, None
    if to_known is not None:
        written, count, joined_ids, deliveries, positions, found, webhooked, pairs, by_text = (
            fan_out
        )
        if written:
            send.in_app_count = count
            after_fan_out(
                tenant=tenant, send=send, now=now, count=count, joined_ids=joined_ids,
                deliveries=deliveries, by_text=by_text,
            )  # fmt: skip
            webhook_events_written(tenant=tenant, count=webhooked, now=now)
            return SendOutcome(response=cast("dict[str, Any]", send.response), created=True)
        known = ids_in_order(len(to_known), positions, found)
    recipients = recipients_upsert(given, lock=not held, known=known)
    # What the send path read or wrote of its recipients' locales is not read again: the
    # lookup's users by locale and time zone, the locales of the users it created.
    created = recipients.locales
    if created is None and pairs is not None and recipients.created:
        created = dict.fromkeys(recipients.created, ("", ""))  # created without details
    locales_known(send, created, pairs=pairs)
    channels_fan_out(
        tenant=tenant, send=send, user_ids=recipients.ids, now=now, limits=limits,
        fresh=recipients.created, users_locked=True,
    )  # fmt: skip
    locales_known(send, None)
    return SendOutcome(response=cast("dict[str, Any]", send.response), created=True)


def _send_insert(
    send: Send,
    *,
    type_key: str,
    channels: list[str] | None,
    metering: tuple[str, dict[str, Any]],
    recipients: Sequence[RecipientInput] | None = None,
    details: bool = False,
    texts: PreRendered | None = None,
    webhooks: bool = False,
    held: bool = False,
) -> tuple[Any, ...] | None:
    """Insert ``send`` as of type ``type_key`` (its channels: ``channels``, else the type's)
    with its usage record (``metering``, reading the inserted row) and its 202 response, in one
    statement; None, and nothing written, if no such type exists.

    The response (kept for Idempotency-Key replays) names the send's own id: the id is drawn
    from the sequence in the statement, so no second statement has to write it. Type, send
    and usage record were three statements before, one round trip and 0.3 to 0.8 ms of ORM
    work each, on every send.

    With ``recipients`` (a send due now) the same statement looks them up, locking each FOR KEY
    SHARE until commit (as ``recipients_upsert(lock=True)`` does) unless the transaction holds
    them all (``held``: ``recipients_hold``), and, when every one exists,
    none comes with ``details`` to write and the send is in-app only (no other channel), writes
    their in-app rows (as ``fan_out_in_app`` does), their ``notification.created`` webhook
    events if ``webhooks`` (an endpoint takes them: ``webhooks.outbox``) and the send's in-app
    count: for a type with per-locale texts too, when ``texts`` were rendered from what its row
    holds (``pre_rendered``), each row's texts resolved from the recipient's locale in SQL.
    Returns ``(written, count, joined ids, deliveries, positions, ids, webhook events, pairs,
    by text)``: whether it wrote them, and what (``after_fan_out``, ``webhook_events_written``;
    with ``texts``, the rows by their texts as ``_publish_localised`` takes them);
    else the lookup, as two arrays (``ids_in_order``), for ``recipients_upsert(known=...)``,
    and, for a type with per-locale texts and recipients without details, the users found by
    locale and time zone (``[[locale, time zone, [id, ...]], ...]``, for ``locales_known``:
    17 ms less for 10,000 recipients than ``localised_texts`` reading them again). The common
    send is so one statement, where it was three: two round trips fewer, and no recipient ids
    to Python and back (20,000 integers read and 10,000 written for 10,000 recipients). The
    send row is this statement's own, so it needs no lock; its in-app count is known before it
    is inserted."""
    table = Send._meta.db_table
    skipped: tuple[str, ...] = ("id", "response", "type_id", "channels")
    if recipients is not None:
        skipped += ("in_app_count",)
    fields = [f for f in Send._meta.concrete_fields if f.attname not in skipped]
    columns = ", ".join(f.column for f in fields)  # type: ignore[misc]  # stubs: str | None; a concrete field's is a str
    metering_sql, params = metering
    params = {
        **params,
        "type_key": type_key,
        "count": send.recipient_count,
        "status": send.status,
        "channels": channels or None,
        "table": table,
        **{
            f"f_{f.attname}": f.get_db_prep_save(getattr(send, f.attname), connection)
            for f in fields
        },
    }
    if recipients is None:
        fan_out = in_app_count = outputs = ""
    else:
        webhooked, webhook_count = folded(_CREATED_EVENTS, subscribed=webhooks)
        params.update(
            recipients_lookup_params(external_ids(recipients)),
            title=send.title,
            message=send.message,
            url=send.url,
            data=json.dumps(send.data),
            now=send.created_at,
            in_app=IN_APP,
            channel=IN_APP,
            details=details,
        )
        reaches = reaches_sql(
            user="r.id", channel="%(channel)s", type_id="t.id", critical="t.critical"
        )
        title, message, returning, by_text = "%(title)s", "%(message)s", "", "NULL"
        if texts is not None:
            params.update(locales=texts.locales, titles=texts.titles, messages=texts.messages)
            title = resolved_sql("r.locale", "%(titles)s::jsonb", "%(title)s")
            message = resolved_sql("r.locale", "%(messages)s::jsonb", "%(message)s")
            returning, by_text = ", title, message", BY_TEXT
        fan_out = f"""
            found AS ({recipients_lookup_sql(lock=not held)}),
            go AS (
                SELECT (SELECT count(*) FROM found) = %(count)s
                       AND NOT %(details)s
                       AND t.locales = {"%(locales)s::jsonb" if texts else "'{}'::jsonb"}
                       AND %(in_app)s = ANY(ch.channels)
                       AND ch.channels <@ ARRAY[%(in_app)s]::varchar(16)[]
                       AS yes
                FROM ch, t),
            created AS (
                INSERT INTO {Notification._meta.db_table}
                    (send_id, recipient_id, type_id, title, message, url, data, created_at)
                SELECT n.id, r.id, t.id, {title}, {message}, %(url)s, %(data)s::jsonb,
                       %(now)s
                FROM t, n, found AS r
                WHERE (SELECT yes FROM go)
                  AND {reaches}
                ORDER BY r.i
                RETURNING id, recipient_id{returning}),
            written AS (SELECT {WRITTEN_BY_TEXT if texts else WRITTEN} FROM created){webhooked},
        """
        in_app_count = ", (SELECT written FROM written)"
        outputs = f""",
            go.yes, written.*,
            CASE WHEN NOT go.yes THEN (SELECT array_agg(i) FROM found) END,
            CASE WHEN NOT go.yes THEN (SELECT array_agg(id) FROM found) END,
            {webhook_count},
            CASE WHEN NOT go.yes AND NOT %(details)s AND t.locales <> '{{}}'::jsonb THEN
                (SELECT json_agg(json_build_array(locale, timezone, ids))
                 FROM (SELECT locale, timezone, array_agg(id) AS ids FROM found
                       GROUP BY locale, timezone) AS pairs)
            END,
            {by_text}
        """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH t AS (
                SELECT {type_columns()} FROM {NotificationType._meta.db_table}
                WHERE key = %(type_key)s),
            n AS (SELECT nextval(pg_get_serial_sequence(%(table)s, 'id')) AS id FROM t),
            ch AS (SELECT coalesce(%(channels)s::varchar(16)[], t.channels) AS channels FROM t),
            {fan_out}
            inserted AS (
                INSERT INTO {table} (id, response, type_id, channels,
                                     {columns}
                                     {", in_app_count" if in_app_count else ""})
                SELECT n.id,
                       jsonb_build_object('id', n.id, 'recipients', %(count)s,
                                          'status', %(status)s),
                       t.id, ch.channels,
                       {", ".join(f"%(f_{f.attname})s" for f in fields)}
                       {in_app_count}
                FROM t, n, ch
                RETURNING id, channels),
            metered AS ({metering_sql})
            SELECT {type_columns("t")}, inserted.id, inserted.channels {outputs}
            FROM t, inserted {", go, written" if outputs else ""}
            """,
            params,
        )
        row = cursor.fetchone()
    if row is None:
        return None
    send.type = type_from_row(row)
    at = len(NotificationType._meta.concrete_fields)
    send.pk, send.channels = row[at], row[at + 1]
    send._state.adding, send._state.db = False, connection.alias
    send.response = {"id": send.pk, "recipients": send.recipient_count, "status": send.status}
    return tuple(row[at + 2 :])


CANCELLED_BY_REQUEST = "Cancelled on request before it was due."


def send_cancel(*, send: Send) -> Send:
    """Cancel a scheduled send that is not yet due. Raises Conflict otherwise."""
    updated = Send.objects.filter(
        pk=send.pk, status=Send.Status.SCHEDULED, send_at__gt=timezone.now()
    ).update(status=Send.Status.CANCELLED, recipient_ids=[], cancel_reason=CANCELLED_BY_REQUEST)
    if not updated:
        raise Conflict("Only a scheduled send that is not yet due can be cancelled.")
    send.refresh_from_db()
    return send


def sends_next_due() -> datetime | None:
    """When this tenant's next scheduled send falls due (None: none is scheduled)."""
    due: datetime | None = Send.objects.filter(status=Send.Status.SCHEDULED).aggregate(
        due=Min("send_at")
    )["due"]
    return due


def sends_release_due(*, tenant: Tenant, now: datetime | None = None, batch: int = 100) -> int:
    """Release scheduled sends whose time has come: write their in-app rows. Returns how many.

    Claims rows with ``SKIP LOCKED``, so concurrent releasers never release a send twice.

    A send naming a topic reaches the topic's subscribers of this moment, and its
    ``recipient_count`` becomes their number (with the listed ones). If that passes the plan's
    recipients-per-send limit now, the send is cancelled whole (status ``cancelled``, its
    ``recipient_count`` the audience it found) rather than reach an arbitrary part of it.
    """
    now = now or timezone.now()
    limits = limits_for(tenant)
    released = 0
    while True:
        with transaction.atomic():
            due = list(
                Send.objects.select_for_update(skip_locked=True)
                .select_related("type")
                .filter(status=Send.Status.SCHEDULED, send_at__lte=now)
                .order_by("send_at", "id")[:batch]
            )
            for send in due:
                if send.topic_id is not None and not _topic_audience_allowed(send, limits):
                    continue
                channels_fan_out(
                    tenant=tenant, send=send, user_ids=send.recipient_ids, now=now, limits=limits
                )
                send.status = Send.Status.ACCEPTED
                send.recipient_ids = []
                send.save(
                    update_fields=["status", "recipient_ids", "in_app_count", "recipient_count"]
                )
        released += len(due)
        if len(due) < batch:
            return released


def _topic_audience_allowed(send: Send, limits: Limits) -> bool:
    """Hold the topic of a send being released and count its audience now; False (the send
    cancelled) if that passes the plan's recipients-per-send limit."""
    if not topic_hold(topic_id=cast("int", send.topic_id)):
        send.topic = None  # deleted meanwhile: the listed recipients remain
    send.recipient_count = audience_count(send=send, user_ids=send.recipient_ids)
    allowed = limits.max_recipients_per_send
    if send.recipient_count <= allowed:
        return True
    logger.warning(
        "Scheduled send %s cancelled at release: its topic's audience of %s passes the plan's "
        "%s recipients per send.", send.pk, send.recipient_count, allowed,
    )  # fmt: skip
    send.status = Send.Status.CANCELLED
    send.cancel_reason = (
        f"At its release its audience was {send.recipient_count} recipients, more than the "
        f"plan's {allowed} per send; nothing was delivered."
    )
    send.recipient_ids = []
    send.save(
        update_fields=["status", "recipient_ids", "recipient_count", "topic", "cancel_reason"]
    )
    return False
