"""A Redis outage under open WebSockets: nothing accepted meanwhile is lost to an open socket.

Real processes: a throwaway redis-server on a port of its own, the real web process pointed at
it, real WebSocket clients. Redis is killed while clients are connected and sends go on, then
started again on the same port. The sockets stay open and catch up in place, from PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from typing import Any

from django.conf import settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from notifications.events import validate_client_frame
from tests.notifications.test_realtime import Live, close_code, frame, new_user
from tests.support.processes import free_port, running_web, throwaway_redis, wait_until
from tests.support.relay import Relay


class Recorder:
    """Reads one socket in a thread of its own and keeps every frame."""

    def __init__(self, ws: ClientConnection, *, only_above_highest: bool = False) -> None:
        self.ws = ws
        # A client that ignores any id not above the highest it has seen, as a naive one does.
        self.only_above_highest = only_above_highest
        self.frames: list[dict[str, Any]] = []
        self.accepted: list[int] = []  # notification ids it took, in order
        self.closed: int | None = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                data = json.loads(text)
                validate_client_frame(data)
                with self.lock:
                    self.frames.append(data)
                    if data["type"] == "notification":
                        nid = data["notification"]["id"]
                        if not self.only_above_highest or nid > max(self.accepted, default=0):
                            self.accepted.append(nid)
        except ConnectionClosed as exc:
            self.closed = exc.rcvd.code if exc.rcvd else 1006

    def ids(self) -> list[int]:
        with self.lock:
            return [f["notification"]["id"] for f in self.frames if f["type"] == "notification"]

    def last(self, kind: str) -> dict[str, Any] | None:
        with self.lock:
            return next((f for f in reversed(self.frames) if f["type"] == kind), None)

    def has(self, ids: set[int]) -> bool:
        return ids <= set(self.ids())


def test_a_redis_outage_loses_nothing_to_open_sockets(world):
    port = free_port()
    with ExitStack() as stack:
        web = stack.enter_context(running_web(REDIS_URL=f"redis://127.0.0.1:{port}/0"))
        redis_up = ExitStack()
        redis_up.enter_context(throwaway_redis(port))
        stack.callback(redis_up.close)
        alpha = Live(web, world.alice.host, world.alice.api_key)
        bravo = Live(web, world.bob.host, world.bob.api_key)
        users = [(alpha, new_user()), (alpha, new_user()), (bravo, new_user())]
        tokens = [live.token(user) for live, user in users]
        # Something to mark read while Redis is down, as another tab would, over REST.
        alpha.send(users[0][1], "read during the outage")
        to_read = alpha.inbox_ids(tokens[0])[0]

        sockets = [
            stack.enter_context(live.socket(token))
            for (live, _user), token in zip(users, tokens, strict=True)
        ]
        second_tab = stack.enter_context(alpha.socket(tokens[0]))
        for ws in [*sockets, second_tab]:
            assert frame(ws)["type"] == "unread_count"
        recorders = [Recorder(ws) for ws in sockets]
        naive = Recorder(second_tab, only_above_highest=True)
        by_user = [[recorders[0], naive], [recorders[1]], [recorders[2]]]

        def send_round(label: str, n: int) -> None:
            for live, user in users:
                live.send(user, f"{label} {n}")

        def inboxes() -> list[set[int]]:  # less the one that existed before the sockets opened
            ids = [set(live.inbox_ids(t)) for (live, _u), t in zip(users, tokens, strict=True)]
            ids[0].discard(to_read)
            return ids

        def all_arrive(what: str) -> None:
            for group, want in zip(by_user, inboxes(), strict=True):
                for recorder in group:
                    wait_until(lambda r=recorder, w=want: r.has(w), what=what)

        for n in range(3):
            send_round("before", n)
        all_arrive("the sends before the outage")

        redis_up.close()  # Redis is gone (SIGTERM: it closes its connections)
        for n in range(5):  # still accepted: the data is in PostgreSQL
            send_round("during", n)
        alpha.call(
            "PATCH", f"/api/v1/me/notifications/{to_read}", {"is_read": True}, token=tokens[0]
        )
        assert all(r.closed is None for r in [*recorders, naive]), "a socket was closed"
        assert all(len(r.ids()) == 3 for r in recorders), "delivered without Redis?"

        redis_up.enter_context(throwaway_redis(port))  # back, empty, on the same port
        back = time.monotonic()
        all_arrive("the sends made during the outage")
        caught_up = time.monotonic() - back
        for n in range(2):
            send_round("after", n)
        all_arrive("the sends after the outage")
        expected = inboxes()
        unread = [
            live.call("GET", "/api/v1/me/notifications/unread_count", token=token)["count"]
            for (live, _user), token in zip(users, tokens, strict=True)
        ]
        wait_until(
            lambda: all(
                (r.last("unread_count") or {}).get("count") == count
                for group, count in zip(by_user, unread, strict=True)
                for r in group
            ),
            what="the final unread counts",
        )

    for group, want in zip(by_user, expected, strict=True):
        assert len(want) == 10  # 3 before + 5 during + 2 after
        for recorder in group:
            ids = recorder.ids()
            assert len(ids) == len(set(ids)), "a notification arrived twice"
            assert set(ids) == want
            assert recorder.closed in (None, 1000), "the socket was closed by the server"
    assert naive.accepted == naive.ids(), "a missed notification came after a newer one"
    for recorder in by_user[0]:  # the other tab's read, missed live, comes with the catch-up
        assert any(f["type"] == "read" and to_read in f["ids"] for f in recorder.frames)
    print(f"missed notifications delivered {caught_up:.2f} s after Redis was back")


def test_a_connection_made_while_redis_is_down_is_closed_4503_and_works_again(world):
    port = free_port()
    with running_web(REDIS_URL=f"redis://127.0.0.1:{port}/0") as web:
        alpha = Live(web, world.alice.host, world.alice.api_key)
        with throwaway_redis(port):
            user = new_user()
            token = alpha.token(user)
            with alpha.socket(token) as ws:
                assert frame(ws)["type"] == "unread_count"
        started = time.monotonic()
        with alpha.socket(token) as ws:  # Redis is down: no hanging handshake, a clear code
            assert close_code(ws) == 4503
        assert time.monotonic() - started < 8
        with throwaway_redis(port):
            alpha.send(user, "after the outage")
            with alpha.socket(token, since=0) as ws:
                assert frame(ws) == {"type": "unread_count", "count": 1}
                assert frame(ws)["notification"]["message"] == "after the outage"


def test_sockets_that_cannot_catch_up_are_closed_4503_and_lose_nothing(world):
    """Redis comes back while the database is unreachable: replaying in place cannot work, so
    the sockets close with 4503, and a reconnect with ``since`` brings exactly what they missed."""
    db = settings.DATABASES["default"]
    database = Relay(int(db["PORT"] or 5432))
    port = free_port()
    database_url = f"postgres://{db['USER']}@127.0.0.1:{database.port}/{db['NAME']}"
    redis_up = ExitStack()
    try:
        redis_up.enter_context(throwaway_redis(port))
        with running_web(REDIS_URL=f"redis://127.0.0.1:{port}/0", DATABASE_URL=database_url) as web:
            alpha = Live(web, world.alice.host, world.alice.api_key)
            user = new_user()
            token = alpha.token(user)
            alpha.send(user, "seen")
            seen = alpha.inbox_ids(token)[0]
            with alpha.socket(token, since=0) as ws:
                recorder = Recorder(ws)
                wait_until(lambda: recorder.has({seen}), what="the first notification")
                redis_up.close()
                for n in range(3):
                    alpha.send(user, f"during {n}")
                missed = set(alpha.inbox_ids(token)) - {seen}
                database.cut()
                redis_up.enter_context(throwaway_redis(port))
                wait_until(lambda: recorder.closed is not None, what="the socket to close")
                assert recorder.closed == 4503
                assert recorder.ids() == [seen]
            database.mend()
            with alpha.socket(token, since=seen) as ws:
                assert frame(ws) == {"type": "unread_count", "count": 4}
                assert {frame(ws)["notification"]["id"] for _ in missed} == missed
    finally:
        redis_up.close()
        database.close()


def test_sends_racing_a_ten_second_outage_reach_every_socket_once(world):
    """The reported case: sends at a steady pace, Redis killed for about 10 s and started again
    while they go on, and clients that keep only their highest id."""
    port = free_port()
    redis_up = ExitStack()
    try:
        redis_up.enter_context(throwaway_redis(port))
        with ExitStack() as stack:
            web = stack.enter_context(running_web(REDIS_URL=f"redis://127.0.0.1:{port}/0"))
            alpha = Live(web, world.alice.host, world.alice.api_key)
            users = [new_user(), new_user()]
            tokens = [alpha.token(user) for user in users]
            recorders = []
            for token in tokens:
                ws = stack.enter_context(alpha.socket(token))
                assert frame(ws)["type"] == "unread_count"
                recorders.append(Recorder(ws, only_above_highest=True))
            stop, accepted = threading.Event(), []

            def keep_sending() -> None:
                n = 0
                while not stop.wait(0.2):  # 5 sends a second, alternating users
                    user = users[n % 2]
                    accepted.append(alpha.send(user, f"steady {n}"))  # 202, Redis or not
                    n += 1

            sender = threading.Thread(target=keep_sending)
            sender.start()
            try:
                wait_until(lambda: len(accepted) >= 10, what="sends before the outage")
                redis_up.close()
                down_at = len(accepted)
                # Down for 50 sends (about 10 s), all answered 202 meanwhile.
                wait_until(lambda: len(accepted) >= down_at + 50, timeout=40, what="50 sends")
                during = len(accepted) - down_at
                redis_up.enter_context(throwaway_redis(port))
                back = time.monotonic()
                wanted = [set(alpha.inbox_ids(token)) for token in tokens]
                for recorder, want in zip(recorders, wanted, strict=True):
                    wait_until(lambda r=recorder, w=want: r.has(w), what="the missed ones")
                caught_up = time.monotonic() - back
                wait_until(lambda: len(accepted) >= down_at + during + 10, what="sends after")
            finally:
                stop.set()
                sender.join(timeout=30)
            wanted = [set(alpha.inbox_ids(token)) for token in tokens]
            for recorder, want in zip(recorders, wanted, strict=True):
                wait_until(lambda r=recorder, w=want: r.has(w), what="the last ones")
    finally:
        redis_up.close()

    assert sum(len(want) for want in wanted) == len(accepted)
    for recorder, want in zip(recorders, wanted, strict=True):
        ids = recorder.ids()
        assert len(ids) == len(set(ids)), "a notification arrived twice"
        assert set(ids) == want
        assert recorder.accepted == ids, "a client keeping its highest id would skip some"
        assert recorder.closed in (None, 1000)
    print(f"{during} sends during the outage; all delivered {caught_up:.2f} s after Redis was back")
