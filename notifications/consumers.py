"""The end user's live inbox: ``ws://<host>/ws/v1/notifications?token=...[&since=<id>]``.

Order of a connection's life, which is what makes it gapless and duplicate-free:

1. accept, then resolve tenant and user with the same resolver as HTTP (close 4401/4403/4429;
   4503 when Redis cannot count the connection);
2. register with this process's dispatcher, which returns once subscribed (or closes 4503 when
   it is not, within a few seconds): from here on no event for this user can be missed, they
   queue up;
3. one snapshot query: the unread count, and the ids already known (those above ``since``, and
   the last minute's: ids do not commit in id order, so "below the largest id" is not "seen");
4. replay every notification above ``since``, oldest first;
5. then drain the queue, dropping events for ids already known, and go live.

Live, a connection whose queue is empty writes its frames straight from the dispatcher's loop
with the server's ``herald.websocket.send_nowait`` extension (see ``herald.wsprotocol``); only
when the socket is full, or under a server without the extension, do frames wait in the queue
for the connection's own task. A process holds thousands of idle connections, so what one keeps
is kept small: the queue is made, and the task that drains it started, only when something has
to wait (an asyncio queue and a parked task are some 4 KiB a connection), and of its tenant a
connection keeps the id, schema and slug, not the resolved model with its plan (another 4 KiB).

After a gap in the dispatcher's subscription (Redis was unreachable), a ``Resync`` goes into the
queue ahead of every newer event: the connection's task sends what ``notifications.catchup``
found it missed, the ids read meanwhile and a fresh unread count, then drains the rest as usual,
again skipping known ids. When that cannot be done, or Redis is unreachable at connect, the
socket closes with 4503 and the client reconnects with ``since``.

Database work runs through ``tenants.entry.run_in_schema``, which sets the tenant's schema and
resets it, because Channels runs every sync call on one shared thread whose connection another
consumer uses next. The end-user token and the ``Origin`` are checked by the same functions as
over HTTP (``tenants.tokens.end_user_id``, ``tenants.origins.origin_allowed``).

Each connection has a request id, the handshake's ``X-Request-ID`` or a new one (echoed in the
handshake's answer), and once authenticated a tenant: both are on every log line and Sentry
event of the connection (``herald.logs``), and the connection's last line says how it closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

import redis
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import connection

from billing_stub.limits import limits_for
from herald import gc_policy, logs, observability, safejson
from herald.metrics import WEBSOCKET_CONNECTIONS, WEBSOCKET_FRAMES
from herald.realtime import ConnectionRegistry, RealtimeUnavailable, dispatcher, encode
from herald.request_ids import scope_request_id
from herald.wsprotocol import SEND_NOWAIT
from notifications import events
from notifications.catchup import KNOWN_WINDOW_SECONDS, TooFarBehind, catch_up
from notifications.events import notification_payload, notification_rows
from notifications.models import EndUser, Notification
from notifications.rules import unread_sql
from notifications.services.inbox import inbox_mark_read
from tenants.entry import in_schema, run_in_schema
from tenants.models import Tenant
from tenants.origins import origin_allowed
from tenants.resolution import InvalidCredential, ResolutionError, WrongTenant, resolve
from tenants.tokens import USER_GONE, TokenRejected, end_user_id

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, WebSocketScope
    from channels.consumer import _ChannelScope  # the stubs' type of a consumer's scope

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TenantRef:
    """What a connection keeps of its tenant once it is accepted (see the module docstring)."""

    pk: int
    schema_name: str
    slug: str


@dataclass(frozen=True, slots=True)
class Resync:
    """Queue item: the bus had a gap that began at ``lost_at`` (Unix time); catch up here."""

    lost_at: float


# a bus message, rendered frames, or a catch-up after a gap
QueueItem = tuple[dict[str, Any], int | None] | list[str] | Resync

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_LIMIT = 4429
CLOSE_TOO_SLOW = 4408
CLOSE_UNAVAILABLE = 4503  # real-time delivery is down (Redis): reconnect with ``since``
ACQUIRE_TIMEOUT = 5.0  # seconds Redis has to count a new connection before a 4503
QUEUE_LIMIT = 1000
REPLAY_BATCH = 200
MAX_MARK_READ = 1000

_registry: ConnectionRegistry | None = None


def _connection_registry() -> ConnectionRegistry:
    global _registry
    if _registry is None:
        _registry = ConnectionRegistry()
    return _registry


class Rejected(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _header(scope: WebSocketScope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


class InboxConsumer(AsyncWebsocketConsumer):
    # No channel layer (Herald configures none): events come through this process's dispatcher
    # (herald.realtime), one Redis subscription per process, not a channel per connection.
    channel_layer_alias = None  # type: ignore[assignment]  # types-channels: str, but Channels takes None as "no layer"
    tenant: TenantRef
    user_id: int
    registration: str | None = None
    live = False  # replay done: bus messages become frames as they arrive
    snapshot_at = 0.0  # when the connection's snapshot was taken: it knows what came before
    busy = False  # the connection's task is sending frames (it may be waiting for the socket)
    queue: deque[QueueItem] | None = None  # made when the first item has to wait
    drainer: asyncio.Task[None] | None = None  # runs while the queue has items (once live)

    async def __call__(
        self, scope: _ChannelScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        self.request_id = scope_request_id(scope)
        # The connection runs in an asyncio task of its own: what is bound here (and the tenant,
        # bound in ``connect``) is this connection's alone, and gone when it ends.
        with observability.isolated(), logs.bound(request_id=self.request_id):
            observability.tag_request_id(self.request_id)
            await super().__call__(scope, receive, send)

    async def connect(self) -> None:
        self.opened_at = time.monotonic()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        # A list from the server (asgiref types it as any iterable); cast: no copy per connection.
        protocols = cast("Sequence[str]", self.scope.get("subprotocols") or [])
        token = (query.get("token") or [""])[0]
        subprotocol = None
        if "bearer" in protocols:
            # Selected whenever offered, or a browser fails the handshake (1006) and never sees
            # a close code; the token is the protocol after it, unless the URL carries one.
            subprotocol = "bearer"
            after = protocols.index("bearer") + 1
            if not token and after < len(protocols):
                token = protocols[after]
        # accept, then close with a code the browser sees
        await self.accept(
            subprotocol=subprotocol,
            headers=[(b"x-request-id", self.request_id.encode())],  # type: ignore[list-item]  # types-channels: str pairs, but ASGI headers are bytes
        )
        gc_policy.freezer().ensure_running()  # keeps long-lived connections out of full GCs

        self.known: set[int] = set()
        # The server's own extension (herald.wsprotocol) is a function, where asgiref types
        # extension values as dicts: cast, once per connection.
        extensions = self.scope.get("extensions") or {}
        self.send_nowait = cast("Callable[[list[str]], bool] | None", extensions.get(SEND_NOWAIT))
        try:
            since = self._since(query)
            tenant = await self._authenticate(token)
            await self._acquire(tenant)
            try:
                await dispatcher().register(self.tenant.pk, self.user_id, self)
            except RealtimeUnavailable as exc:
                raise Rejected(CLOSE_UNAVAILABLE, str(exc)) from exc
        except Rejected as exc:
            logger.info("WebSocket refused (%s): %s", exc.code, exc)
            await self.close(code=exc.code)
            return
        WEBSOCKET_CONNECTIONS.inc()  # registered; disconnect() takes it back
        self.counted = True

        count, self.known, self.snapshot_at = await run_in_schema(
            self.tenant.schema_name, lambda: self._snapshot(since)
        )
        self.unread = count
        await self._send(events.unread_count_frame(count))
        if since is not None:
            await self._replay(since)
        # The drain task, started from the dispatcher, runs in this connection's context
        # (its request id and tenant on every log line), as a task started here would.
        self.context = contextvars.copy_context()
        self.live = True
        if self.queue:
            self._start_drain()

    async def _acquire(self, tenant: Tenant) -> None:
        """A place within the tenant's connection limit, which is counted in Redis. Bounded
        here, not by a socket timeout on the registry's client: on a busy event loop a short
        read timeout can fire for an answer already there, and costs a reconnection."""
        try:
            self.registration = await asyncio.wait_for(
                _connection_registry().acquire(
                    tenant.pk, limits_for(tenant).websocket_connection_limit
                ),
                ACQUIRE_TIMEOUT,
            )
        except (redis.RedisError, OSError, TimeoutError) as exc:
            raise Rejected(CLOSE_UNAVAILABLE, "Redis is unreachable") from exc
        if self.registration is None:
            raise Rejected(CLOSE_LIMIT, "connection limit reached")

    @staticmethod
    def _since(query: dict[str, list[str]]) -> int | None:
        raw = (query.get("since") or [""])[0]
        if raw == "":
            return None
        if not raw.isdigit():
            raise Rejected(CLOSE_BAD_REQUEST, "since must be a notification id")
        return int(raw)

    async def _authenticate(self, token: str) -> Tenant:
        """The token's tenant (resolved, with its plan) and user; ``self.tenant`` keeps a
        ``TenantRef`` of it."""
        host = _header(self.scope, b"host")
        origin = _header(self.scope, b"origin")

        def check() -> tuple[Tenant, int]:
            try:
                resolution = resolve(host=host, token=token or "")
            except WrongTenant as exc:
                raise Rejected(CLOSE_FORBIDDEN, str(exc)) from exc
            except InvalidCredential as exc:
                raise Rejected(CLOSE_UNAUTHENTICATED, exc.message) from exc
            except ResolutionError as exc:
                raise Rejected(CLOSE_FORBIDDEN, exc.message) from exc
            credential = resolution.credential
            try:
                user_pk = end_user_id(credential)
            except TokenRejected as exc:
                raise Rejected(CLOSE_UNAUTHENTICATED, str(exc)) from exc
            if user_pk is None or credential is None:
                raise Rejected(CLOSE_UNAUTHENTICATED, "an end-user token is required")
            tenant = credential.tenant
            # No Origin: not a browser (a server-side client); the token is checked all the same.
            if origin and not origin_allowed(origin, tenant, host=host):
                raise Rejected(CLOSE_FORBIDDEN, f"origin {origin} is not allowed")
            with in_schema(tenant.schema_name):
                user_id = EndUser.objects.filter(pk=user_pk).values_list("pk", flat=True).first()
            if user_id is None:
                raise Rejected(CLOSE_UNAUTHENTICATED, USER_GONE)
            return tenant, user_id

        tenant, self.user_id = await run_in_schema(None, check)
        self.tenant = TenantRef(pk=tenant.pk, schema_name=tenant.schema_name, slug=tenant.slug)
        # Until the connection ends: the binding of ``__call__`` is reset then, this with it.
        logs.bind(tenant=tenant.slug)
        observability.tag_tenant(tenant.slug)
        return tenant

    def _snapshot(self, since: int | None) -> tuple[int, set[int], float]:
        """Unread count and the ids already known, in one statement (one snapshot), and when
        it was taken (Unix time, the database's clock)."""
        table = Notification._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT
                  (SELECT count(*) FROM {table}
                   WHERE recipient_id = %(user)s AND {unread_sql()}),
                  ARRAY(SELECT id FROM {table}
                        WHERE recipient_id = %(user)s AND (id > %(since)s
                              OR created_at > now() - %(window)s * interval '1 second')),
                  extract(epoch FROM now())::float8
                """,  # noqa: S608 -- only the model's table name is interpolated
                {
                    "user": self.user_id,
                    "since": since if since is not None else 2**62,
                    "window": KNOWN_WINDOW_SECONDS,
                },
            )
            count, known, taken_at = cursor.fetchone()
        return count, set(known), taken_at

    async def _replay(self, since: int) -> None:
        after = since
        while True:

            def batch(after: int = after) -> list[dict[str, Any]]:
                rows = notification_rows(
                    Notification.objects.filter(recipient_id=self.user_id, id__gt=after)
                ).order_by("id")[:REPLAY_BATCH]
                return [notification_payload(row) for row in rows]

            payloads = await run_in_schema(self.tenant.schema_name, batch)
            for payload in payloads:
                self.known.add(payload["id"])
                await self._send(events.notification_frame(payload))
            if len(payloads) < REPLAY_BATCH:
                return
            after = payloads[-1]["id"]

    # --- live events ---------------------------------------------------------------------------

    def deliver(self, message: dict[str, Any], notification_id: int | None) -> None:
        """Called by the dispatcher; never blocks. Live, with nothing queued before them, the
        frames are written at once when the socket takes them; otherwise they queue, in order,
        for ``_drain``. A client that cannot keep up is closed (it reconnects with ``since``
        and misses nothing)."""
        item: QueueItem
        if notification_id is None and message.get("erased"):  # the user is gone, their token too
            asyncio.get_running_loop().create_task(self.close(code=CLOSE_UNAUTHENTICATED))
            return
        if self.live and self.send_nowait is not None and not self.busy and not self.queue:
            frames = self._frames(message, notification_id)
            if not frames or self.send_nowait(frames):
                WEBSOCKET_FRAMES.inc(len(frames))
                return
            item = frames
        else:
            item = (message, notification_id)
        if not self._enqueue(item):
            # Called from the dispatcher, outside the connection's context: name it here.
            logger.warning(
                "Closing a WebSocket that cannot keep up",
                extra={"request_id": self.request_id, "tenant": self.tenant.slug},
            )
            asyncio.get_running_loop().create_task(self.close(code=CLOSE_TOO_SLOW))

    def _enqueue(self, item: QueueItem) -> bool:
        """Queue ``item`` behind what waits already (drained once live); False when the queue
        holds ``QUEUE_LIMIT`` items."""
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        if len(queue) >= QUEUE_LIMIT:
            return False
        queue.append(item)
        if self.live:
            self._start_drain()
        return True

    def _start_drain(self) -> None:
        if self.drainer is None:
            self.drainer = asyncio.get_running_loop().create_task(
                self._drain(), context=self.context
            )

    async def _drain(self) -> None:
        """Send what the queue holds, in order, then end (``_enqueue`` starts it again)."""
        queue = self.queue
        try:
            while queue:
                item = queue.popleft()
                self.busy = True
                try:
                    if isinstance(item, Resync):
                        if not await self._catch_up(item.lost_at):
                            self.live = False  # closed: nothing more goes out
                            return
                        continue
                    frames = item if isinstance(item, list) else self._frames(*item)
                    for text in frames:
                        await self.send(text_data=text)
                finally:
                    self.busy = False
        except Exception:
            self.live = False  # the socket failed under a send: nothing more goes out
            raise
        finally:
            self.drainer = None

    def resync(self, lost_at: float) -> None:
        """Called by the dispatcher once subscribed again after a gap; never blocks. The catch-up
        is queued ahead of every event routed after it."""
        if not self._enqueue(Resync(lost_at)):
            self.unavailable()

    def unavailable(self) -> None:
        """Called by the dispatcher when it cannot bridge a gap: the client reconnects with
        ``since``."""
        asyncio.get_running_loop().create_task(self.close(code=CLOSE_UNAVAILABLE))

    async def _catch_up(self, lost_at: float) -> bool:
        """Send what the gap kept from this connection (see ``notifications.catchup``); False
        when that could not be done and the connection is closing."""
        try:
            missed = await catch_up(
                schema_name=self.tenant.schema_name,
                user_id=self.user_id,
                known=self.known,
                # A snapshot taken after the gap began already covers what came before it.
                lost_at=max(lost_at, self.snapshot_at),
            )
        except TooFarBehind as exc:
            logger.info("Closing a WebSocket too far behind to catch up in place: %s", exc)
            await self.close(code=CLOSE_UNAVAILABLE)
            return False
        except Exception:  # the database is down too (logged once per batch by catchup)
            logger.debug("Closing a WebSocket that could not catch up", exc_info=True)
            await self.close(code=CLOSE_UNAVAILABLE)
            return False
        for payload in missed.notifications:
            if payload["id"] not in self.known:
                self.known.add(payload["id"])
                await self._send(events.notification_frame(payload))
        self.known.update(missed.window_ids)
        if missed.read_ids:
            await self._send(events.read_frame(missed.read_ids))
        self.unread = missed.unread
        await self.send(text_data=events.unread_count_frame_text(self.unread))
        return True

    def _frames(self, message: dict[str, Any], notification_id: int | None) -> list[str]:
        """The frames (encoded) a bus message makes for this connection."""
        if notification_id is not None:
            if notification_id in self.known:
                return []
            self.known.add(notification_id)
            self.unread += 1
            return [
                events.notification_frame_text(notification_id, message["notification_json"]),
                events.unread_count_frame_text(self.unread),
            ]
        self.unread = message["unread_count"]
        frames: list[str] = []
        if message["read_ids"]:
            frames.append(encode(events.read_frame(message["read_ids"])))
        frames.append(events.unread_count_frame_text(self.unread))
        return frames

    async def send(  # type: ignore[override]  # as Channels' AsyncWebsocketConsumer.send, whose stubs ignore it too
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        if text_data is not None or bytes_data is not None:
            WEBSOCKET_FRAMES.inc()

    async def _send(self, frame: Mapping[str, object]) -> None:
        await self.send(text_data=encode(frame))

    # --- from the client -------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.registration is None:
            return
        try:
            message = safejson.loads(text_data or "")
        except ValueError:  # malformed, or nested too deep
            return
        if not isinstance(message, dict):
            return
        if message.get("type") == "ping":
            await self._send(events.pong_frame())
        elif message.get("type") == "mark_read":
            ids = message.get("ids")
            if (
                isinstance(ids, list)
                and 0 < len(ids) <= MAX_MARK_READ
                and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
            ):
                user = EndUser(pk=self.user_id)
                tenant = Tenant(pk=self.tenant.pk)  # the service needs only its id
                await run_in_schema(
                    self.tenant.schema_name,
                    lambda: inbox_mark_read(tenant=tenant, user=user, ids=ids),
                )

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            WEBSOCKET_CONNECTIONS.dec()
            seconds = round(time.monotonic() - self.opened_at, 3)
            logger.info(
                "WebSocket closed (%s) after %ss",
                code,
                seconds,
                extra={"close_code": code, "duration_s": seconds},
            )
        # Forget the task: a cancelled task keeps its CancelledError, whose traceback holds
        # the task's frame and so this consumer, a cycle only a full collection would free.
        drainer, self.drainer = self.drainer, None
        if drainer is not None:
            drainer.cancel()
        self.live = False  # nothing more is drained
        if self.registration is not None:
            dispatcher().unregister(self.tenant.pk, self.user_id, self)
            with contextlib.suppress(Exception):
                await _connection_registry().release(self.tenant.pk, self.registration)
            self.registration = None
