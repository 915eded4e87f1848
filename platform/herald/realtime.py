"""Real-time plumbing: the one place that publishes events, and the per-process dispatcher.

Publishing: services call ``publish_on_commit``; once the transaction commits the message goes out
as one Redis PUBLISH on ``bus_channel()``, naming its tenant. Nothing is published for a rolled-back
transaction. Within an HTTP request served by ``herald.handlers.SyncASGIHandler`` the message is
built at commit but held (``HeldPublishes``) until the response has been handed to the server:
the caller's 202 then never waits behind the frames of the broadcast it caused, which this same
process starts writing the moment the PUBLISH arrives.

Delivering: every server process runs one ``Dispatcher``. It subscribes once, decodes each message
once, and hands small per-user frames to the connections it holds for that (tenant, user). One send
to 10,000 users is therefore one Redis message per process, not one per user. Each connection has
its own bounded queue, so a slow client never holds up the others.

Losing the subscription (Redis restarts, fails over, or the network drops): whatever was published
meanwhile is gone from the bus, but not from PostgreSQL. The dispatcher notices within seconds (a
PING on a quiet subscription that gets no answer counts as a loss, so does a dropped connection;
redis-py's own silent reconnect is switched off, since it would resubscribe without telling and
hide the gap), resubscribes with backoff, and then hands every connection that was open during the
gap a ``resync``: the connection fetches from PostgreSQL what it has not seen, and a fresh unread
count and the ids read meanwhile, before any newer live event (``notifications.catchup`` batches
that into one statement per tenant and few hundred users). Why replay in place rather than close
the sockets and let clients reconnect with ``since``: a Redis blip must not turn into a reconnect
storm of every socket of every process (each a token check, a snapshot and a replay), and the
clients see the missed notifications within a second of Redis coming back, without doing anything.
Closing stays the fallback, with code 4503, when replaying cannot work: the catch-up fails (the
database is down too), one user missed too much to replay in place, or the gap outlasts
``GAP_CLOSE_AFTER`` (clients then reconnect with ``since``, and the widget polls the REST inbox
until the socket works again). New connections are not accepted as live while the dispatcher is
unsubscribed: they wait up to ``SUBSCRIBE_WAIT`` for it and are then closed with 4503.

Connection limits: ``ConnectionRegistry`` counts live connections per tenant in Redis (a sorted set
of connection ids scored by expiry, refreshed by a heartbeat) so the plan's limit holds across all
server processes, and connections of a crashed process age out on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import redis
from django.conf import settings
from django.db import transaction
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from rest_framework.utils.encoders import JSONEncoder

from herald import logs
from herald.redisio import async_redis, new_async_redis, redis_key, shared_redis

logger = logging.getLogger(__name__)

CONNECTION_TTL = 90  # seconds a connection counts without a heartbeat
HEARTBEAT_INTERVAL = 30
ROUTE_SLICE = 100  # recipients of one message handed out between two turns of the event loop
QUIET_PING_AFTER = 5.0  # seconds without a message before the subscription is PINGed
PONG_TIMEOUT = 3.0  # no answer within this long after a PING: the subscription is dead
WATCH_TICK = 1.0  # how often the watchdog looks
RESUBSCRIBE_BACKOFF = (0.25, 1.0)  # first and longest wait between attempts to resubscribe
SUBSCRIBE_WAIT = 5.0  # how long a new connection waits for the subscription before a 4503
GAP_CLOSE_AFTER = 30.0  # a longer gap closes the connections it concerns (4503) instead
GAP_CLOSE_SPREAD = 10.0  # over this many seconds, not all at once


def bus_channel(*, database: str | None = None) -> str:
    """The pub/sub channel of real-time events (``<namespace>:rt``, see ``herald.redisio``):
    deployments sharing a Redis never receive each other's events."""
    return redis_key("rt", database=database)


def encode(message: Mapping[str, object]) -> str:
    """JSON exactly as the REST API renders it (same datetime format, same escaping)."""
    return json.dumps(message, cls=JSONEncoder, separators=(",", ":"))


class HeldPublishes:
    """Bus messages of one HTTP request, held until its response is out (see the module
    docstring). Filled from the request's thread, released on the event loop; a message that
    comes after the release (a thread outliving its request) is published at once."""

    __slots__ = ("_lock", "_messages", "_open", "publishing")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[str] = []
        self._open = True
        self.publishing: asyncio.Task[None] | None = None

    def hold(self, data: str) -> bool:
        """Keep ``data`` for later; False once released (then the caller publishes it)."""
        with self._lock:
            if self._open:
                self._messages.append(data)
            return self._open

    def release(self) -> list[str]:
        """The held messages, in order; nothing is held after this."""
        with self._lock:
            self._open = False
            messages, self._messages = self._messages, []
        return messages


_held: contextvars.ContextVar[HeldPublishes | None] = contextvars.ContextVar(
    "herald_held_publishes", default=None
)


@contextlib.contextmanager
def holding(held: HeldPublishes) -> Iterator[HeldPublishes]:
    """Hold the bus messages published in this context (and the threads it runs sync code in)."""
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)


def held_publishes() -> HeldPublishes | None:
    """What holds this context's bus messages, if anything does."""
    return _held.get()


async def _publish_all(messages: list[str]) -> None:
    """PUBLISH ``messages``, in order, in one round trip; failures are logged, as in
    ``publish_now``."""
    try:
        async with async_redis().pipeline(transaction=False) as pipe:
            for data in messages:
                pipe.publish(bus_channel(), data)
            await pipe.execute()
    except (redis.RedisError, OSError):
        logger.warning("Real-time events not published (Redis unreachable)", exc_info=True)


def publish_held_soon(held: HeldPublishes) -> None:
    """Start publishing what ``held`` kept, without waiting for it (``held.publishing``): once
    the response is out, the response's task may be cancelled (Django's handler does that when
    the client hangs up), and the events must not go with it."""
    messages = held.release()
    if messages:
        held.publishing = asyncio.get_running_loop().create_task(_publish_all(messages))


async def publish_held(held: HeldPublishes) -> None:
    """Publish what ``held`` still keeps, and wait until what ``publish_held_soon`` started is
    done."""
    messages = held.release()
    if messages:
        await _publish_all(messages)
    if held.publishing is not None:
        await asyncio.shield(held.publishing)


def publish_now(message: Mapping[str, object]) -> None:
    """Publish a bus message (it must name its ``tenant``), or hold it while the current HTTP
    request is answered. Failures are logged, not raised: the data is committed already, and
    clients that missed an event catch up with ``since``."""
    publish_encoded_now(encode(message))


def publish_encoded_now(data: str) -> None:
    """``publish_now`` for a message already encoded as ``encode`` would."""
    held = _held.get()
    if held is not None and held.hold(data):
        return
    try:
        shared_redis().publish(bus_channel(), data)
    except redis.RedisError:
        logger.warning("Real-time event not published (Redis unreachable)", exc_info=True)


def publish_on_commit(build: Callable[[], Mapping[str, object] | None]) -> None:
    """After the current transaction commits, build the message and publish it.

    ``build`` runs after the commit, so it sees committed state (e.g. the new unread count).
    """

    def publish() -> None:
        message = build()
        if message is not None:
            publish_now(message)

    transaction.on_commit(publish)


def publish_encoded_on_commit(data: str) -> None:
    """``publish_on_commit`` for a message already encoded as ``encode`` would (a broadcast to
    thousands, whose text the statement that wrote its rows can build cheaper than Python)."""
    transaction.on_commit(lambda: publish_encoded_now(data))


# --- Per-process delivery ------------------------------------------------------------------------


class Connection(Protocol):
    """What the dispatcher needs from a WebSocket connection."""

    def deliver(self, message: dict[str, Any], notification_id: int | None) -> None: ...

    def resync(self, lost_at: float) -> None:
        """The subscription is back after a gap that began at ``lost_at`` (Unix time): catch up
        from the database before anything delivered after this call. Never blocks."""

    def unavailable(self) -> None:
        """The gap lasts too long to bridge: close (4503), the client reconnects with ``since``."""


class RealtimeUnavailable(Exception):
    """The dispatcher is not subscribed to the bus (Redis is unreachable)."""


class _Gap:
    """Connections that were registered when the subscription was lost, and when that was."""

    __slots__ = ("connections", "lost_at", "started")

    def __init__(
        self, lost_at: float, started: float, connections: list[tuple[tuple[int, int], Connection]]
    ) -> None:
        self.lost_at = lost_at  # Unix time of the last sign of life of the old subscription
        self.started = started  # event loop time the loss was noticed
        self.connections = connections


class Dispatcher:
    """Routes bus messages to the connections of this process (see the module docstring)."""

    def __init__(self) -> None:
        self._connections: dict[tuple[int, int], set[Connection]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._gap: _Gap | None = None
        self._heard: float | None = None  # loop time of the subscription's last sign of life

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    async def register(self, tenant_id: int, user_id: int, connection: Connection) -> None:
        """Route this user's messages to ``connection``; returns once subscribed to Redis, so
        nothing published after this call can be missed. Raises ``RealtimeUnavailable`` (and
        routes nothing) when no subscription comes within ``SUBSCRIBE_WAIT`` seconds."""
        self._connections[(tenant_id, user_id)].add(connection)
        if self._task is None or self._task.done():
            self._subscribed.clear()
            self._task = logs.start_unbound(self._run())
        if self._subscribed.is_set():
            return
        try:
            await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_WAIT)
        except TimeoutError:
            self.unregister(tenant_id, user_id, connection)
            raise RealtimeUnavailable("not subscribed to the real-time bus") from None

    def unregister(self, tenant_id: int, user_id: int, connection: Connection) -> None:
        key = (tenant_id, user_id)
        connections = self._connections.get(key)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._connections[key]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            client = new_async_redis(
                socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
                socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                # No silent reconnect: redis-py would resubscribe on its own and the gap would go
                # unnoticed. (A resubscription seen anyway is handled as a gap, in _read.)
                retry=Retry(NoBackoff(), 0),
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(bus_channel())
                await self._confirmed(pubsub)
                self._gap_closed()
                attempt = 0
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: resubscribe, then the connections catch up
                if attempt == 0:
                    logger.warning("Real-time subscription lost; resubscribing", exc_info=True)
                else:  # one line a second while Redis is down would drown the logs
                    logger.debug("Real-time subscription still down", exc_info=True)
                self._gap_opened(loop)
                first, longest = RESUBSCRIBE_BACKOFF
                await asyncio.sleep(min(longest, first * 2**attempt))
                attempt += 1
                self._close_if_too_long(loop)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _confirmed(self, pubsub: Any) -> None:
        """Wait for the server's confirmation of SUBSCRIBE: from then on nothing is missed."""
        deadline = asyncio.get_running_loop().time() + settings.REDIS_SOCKET_TIMEOUT
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise redis.TimeoutError("SUBSCRIBE was not confirmed")
            raw = await pubsub.get_message(timeout=left)
            if raw is not None and raw.get("type") == "subscribe":
                self._heard = asyncio.get_running_loop().time()
                return

    async def _listen(self, pubsub: Any) -> None:
        """Route messages until the subscription fails. Reading blocks (no timeout machinery
        around every message); a watchdog beside it PINGs a quiet subscription and declares it
        dead when even that gets no answer (a peer that vanished without closing the connection,
        which a blocking read would wait on forever)."""
        reader = asyncio.ensure_future(self._read(pubsub))
        watchdog = asyncio.ensure_future(self._watch(pubsub))
        try:
            done, _ = await asyncio.wait({reader, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended it
            raise redis.ConnectionError("the subscription ended")
        finally:
            reader.cancel()
            watchdog.cancel()
            # Both finished before the connection closes, and neither leaves an unread error.
            await asyncio.gather(reader, watchdog, return_exceptions=True)

    async def _read(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        async for raw in pubsub.listen():
            kind = raw["type"]
            if kind == "subscribe":  # resubscribed underneath us: what came between is lost
                self._gap_opened(loop)
                self._gap_closed()
            self._heard = loop.time()
            if kind == "message":
                await self._route(json.loads(raw["data"]))

    async def _watch(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCH_TICK)
            quiet = loop.time() - (self._heard or 0.0)
            if quiet > QUIET_PING_AFTER + PONG_TIMEOUT:
                raise redis.ConnectionError(f"the subscription has been silent for {quiet:.1f} s")
            if quiet > QUIET_PING_AFTER:  # its answer counts as a sign of life
                await pubsub.ping()

    def _gap_opened(self, loop: asyncio.AbstractEventLoop) -> None:
        self._subscribed.clear()
        if self._gap is None and self._heard is not None:  # (never subscribed: nothing missed)
            lost_at = time.time() - max(0.0, loop.time() - self._heard)
            connections = [(key, c) for key, group in self._connections.items() for c in group]
            self._gap = _Gap(lost_at, loop.time(), connections)

    def _gap_closed(self) -> None:
        """Subscribed (again): connections that were open during a gap catch up, each before
        any message routed from now on."""
        gap, self._gap = self._gap, None
        if gap is not None:
            logger.warning(
                "Real-time subscription back after %.1f s; %d connections catch up",
                asyncio.get_running_loop().time() - gap.started,
                len(gap.connections),
            )
            for key, connection in gap.connections:
                if connection in self._connections.get(key, ()):
                    connection.resync(gap.lost_at)
        self._subscribed.set()

    def _close_if_too_long(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the gap's connections once it has lasted ``GAP_CLOSE_AFTER``, each at a random
        moment within ``GAP_CLOSE_SPREAD``: their clients then reconnect (and poll) spread out
        rather than all in the same second."""
        gap = self._gap
        if gap is None or not gap.connections or loop.time() - gap.started < GAP_CLOSE_AFTER:
            return
        logger.warning("Real-time bus down for %.0f s; closing its connections", GAP_CLOSE_AFTER)
        connections, gap.connections = gap.connections, []
        for key, connection in connections:
            loop.call_later(
                random.uniform(0, GAP_CLOSE_SPREAD),  # noqa: S311 -- jitter, not a secret
                self._close_unavailable,
                key,
                connection,
            )

    def _close_unavailable(self, key: tuple[int, int], connection: Connection) -> None:
        if connection in self._connections.get(key, ()):
            connection.unavailable()

    async def _route(self, message: dict[str, Any]) -> None:
        """Hand a message to the connections it concerns. A ``created`` message goes to each
        recipient's connections with that recipient's notification id, and its shared payload
        is JSON-encoded once here (``notification_json``) for all of their frames.

        A large send is handed out ``ROUTE_SLICE`` recipients at a time, letting the event loop
        run what else is ready in between: the HTTP response of the very request that made the
        send, say, which would otherwise wait until every frame of its broadcast was written."""
        tenant_id: int | None = message.get("tenant")
        if tenant_id is None:  # no connection is registered without a tenant
            return
        if message.get("kind") == "created":
            message["notification_json"] = encode(message["notification"])
            deliveries = message["deliveries"]
            for start in range(0, len(deliveries), ROUTE_SLICE):
                if start:
                    await asyncio.sleep(0)
                for user_id, notification_id in deliveries[start : start + ROUTE_SLICE]:
                    for connection in self._connections.get((tenant_id, user_id), ()):
                        connection.deliver(message, notification_id)
        else:
            user: int | None = message.get("user")
            if user is None:
                return
            for connection in self._connections.get((tenant_id, user), ()):
                connection.deliver(message, None)


_dispatcher: Dispatcher | None = None


def dispatcher() -> Dispatcher:
    """This process's dispatcher (created in the running event loop on first use)."""
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = Dispatcher()
    return _dispatcher


# --- Connection limits across processes ----------------------------------------------------

_ADD_IF_ROOM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class ConnectionRegistry:
    """Live WebSocket connections per tenant, in Redis.

    One task per process keeps this process's connections counted: every ``HEARTBEAT_INTERVAL``
    it pushes their expiry forward, one ``ZADD`` per tenant, rather than a task and a call per
    connection."""

    def __init__(self) -> None:
        self._client = new_async_redis()
        self._add_if_room = self._client.register_script(_ADD_IF_ROOM)
        self._held: dict[int, set[str]] = defaultdict(set)
        self._heartbeat: asyncio.Task[None] | None = None

    @staticmethod
    def _key(tenant_id: int) -> str:
        # (From settings, not ``connection``: in async code that would create a database
        # wrapper for each connection's context.)
        return redis_key("ws", "conns", tenant_id)

    async def acquire(self, tenant_id: int, limit: int) -> str | None:
        """A connection id, or None when the tenant is at its limit."""
        connection_id = uuid.uuid4().hex
        now = time.time()
        added = await self._add_if_room(
            keys=[self._key(tenant_id)],
            args=[now, now + CONNECTION_TTL, limit, connection_id, CONNECTION_TTL * 2],
        )
        if not added:
            return None
        self._held[tenant_id].add(connection_id)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = logs.start_unbound(self._beat())
        return connection_id

    async def refresh_all(self) -> None:
        """Push the expiry of every connection this process holds forward.

        Only ids still in Redis are renewed (``XX``): a refresh racing a release must not bring
        the released id back. Ids Redis lost (it restarted without its data, while the sockets
        stayed open) are added again if this process still holds them afterwards."""
        expiry = time.time() + CONNECTION_TTL
        held = [(tenant_id, list(ids)) for tenant_id, ids in self._held.items() if ids]
        async with self._client.pipeline(transaction=False) as pipe:
            for tenant_id, ids in held:
                pipe.zadd(self._key(tenant_id), dict.fromkeys(ids, expiry), xx=True, ch=True)
                pipe.expire(self._key(tenant_id), CONNECTION_TTL * 2)
            renewed = (await pipe.execute())[::2]
        lost: list[tuple[int, list[str]]] = []
        for (tenant_id, ids), count in zip(held, renewed, strict=True):
            still = self._held.get(tenant_id, set())
            if count < len(ids) and (kept := [i for i in ids if i in still]):
                lost.append((tenant_id, kept))
        if lost:
            async with self._client.pipeline(transaction=False) as pipe:
                for tenant_id, ids in lost:
                    pipe.zadd(self._key(tenant_id), dict.fromkeys(ids, expiry), nx=True)
                    pipe.expire(self._key(tenant_id), CONNECTION_TTL * 2)
                await pipe.execute()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            try:
                await self.refresh_all()
            except (redis.RedisError, OSError):
                logger.warning("Connection heartbeat failed; retrying next interval", exc_info=True)

    async def release(self, tenant_id: int, connection_id: str) -> None:
        held = self._held.get(tenant_id)
        if held is not None:
            held.discard(connection_id)
            if not held:
                del self._held[tenant_id]
        await self._client.zrem(self._key(tenant_id), connection_id)

    async def count(self, tenant_id: int) -> int:
        return await self._client.zcount(self._key(tenant_id), time.time(), "+inf")
