"""The live inbox over a real WebSocket, against the real web process (uvicorn + Channels).

These tests commit (the server is another process), so each uses end users of its own.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from billing_stub.models import Plan
from herald.realtime import bus_channel
from herald.redisio import shared_redis
from notifications.events import validate_client_frame
from tenants.models import Tenant
from tenants.services import tenant_update
from tests.support.processes import ROOT, Server, http, process_env, wait_until


class Live:
    """HTTP and WebSocket access to the running server as one tenant's backend."""

    def __init__(self, server: Server, host: str, api_key: str) -> None:
        self.server, self.host, self.api_key = server, host, api_key

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Host": f"{self.host}:{self.server.port}"}
        headers["Authorization"] = f"Bearer {token or self.api_key}"
        result = http(method, self.server.url + path, headers=headers, body=body)
        assert result.status < 300, (result.status, result.body)
        return result.body

    def send(self, external_id: str, message: str) -> int:
        body = {"type": "live", "recipients": [external_id], "message": message}
        return self.call("POST", "/api/v1/notifications", body)["id"]

    def token(self, external_id: str) -> str:
        return self.call("POST", f"/api/v1/users/{external_id}/token")["token"]

    def inbox_ids(self, token: str) -> list[int]:
        ids, cursor = [], ""
        while True:
            page = self.call("GET", f"/api/v1/me/notifications?limit=100{cursor}", token=token)
            ids += [n["id"] for n in page["results"]]
            if not page["next_cursor"]:
                return ids
            cursor = f"&cursor={page['next_cursor']}"

    @contextmanager
    def socket(
        self,
        token: str,
        since: int | str | None = None,
        host: str | None = None,
        origin: str | None = None,
    ) -> Iterator[ClientConnection]:
        query = f"?token={token}" + (f"&since={since}" if since is not None else "")
        headers = {"Origin": origin} if origin else None
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        uri = f"ws://{host or self.host}:{self.server.port}/ws/v1/notifications{query}"
        with connect(uri, sock=sock, additional_headers=headers, open_timeout=10) as ws:
            yield ws


def frame(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    data = json.loads(ws.recv(timeout=timeout))
    validate_client_frame(data)
    return data


def frames_until(ws: ClientConnection, predicate, timeout: float = 10) -> list[dict[str, Any]]:
    received = []
    while True:
        received.append(frame(ws, timeout))
        if predicate(received[-1]):
            return received


def close_code(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    return closed.value.rcvd.code


@pytest.fixture
def alpha(web, world) -> Live:
    return Live(web, world.alice.host, world.alice.api_key)


@pytest.fixture
def bravo(web, world) -> Live:
    return Live(web, world.bob.host, world.bob.api_key)


def new_user() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}"


def test_live_notification_matches_the_rest_inbox(alpha):
    user = new_user()
    token = alpha.token(user)
    with alpha.socket(token) as ws:
        assert frame(ws) == {"type": "unread_count", "count": 0}
        alpha.send(user, "hello live")
        pushed = frame(ws)
        assert pushed["type"] == "notification"
        assert frame(ws) == {"type": "unread_count", "count": 1}
    rest = alpha.call("GET", "/api/v1/me/notifications", token=token)["results"][0]
    assert pushed["notification"] == rest


def test_a_connection_subscribes_nothing_of_its_own_in_redis(alpha):
    """Events reach connections through the process's one dispatcher subscription; a channel
    layer channel per connection (one Redis SUBSCRIBE each) would be pure overhead."""
    before = set(shared_redis().pubsub_channels())
    with alpha.socket(alpha.token(new_user())) as ws:
        assert frame(ws)["type"] == "unread_count"
        during = set(shared_redis().pubsub_channels())
    assert bus_channel().encode() in during
    assert during - before - {bus_channel().encode()} == set()


def test_ping_and_mark_read_reach_every_tab(alpha):
    user = new_user()
    token = alpha.token(user)
    alpha.send(user, "one")
    notification_id = alpha.inbox_ids(token)[0]
    with alpha.socket(token) as tab1, alpha.socket(token) as tab2:
        assert frame(tab1)["count"] == frame(tab2)["count"] == 1
        tab1.send(json.dumps({"type": "ping"}))
        assert frame(tab1) == {"type": "pong"}
        tab1.send(json.dumps({"type": "mark_read", "ids": [notification_id]}))
        for tab in (tab1, tab2):
            assert frame(tab) == {"type": "read", "ids": [notification_id]}
            assert frame(tab) == {"type": "unread_count", "count": 0}
    assert alpha.call("GET", "/api/v1/me/notifications/unread_count", token=token) == {"count": 0}


def test_a_frame_nested_thousands_deep_is_ignored_and_the_connection_lives_on(alpha):
    with alpha.socket(alpha.token(new_user())) as ws:
        assert frame(ws)["type"] == "unread_count"
        ws.send('{"type": "mark_read", "ids": ' + "[" * 5000 + "]" * 5000 + "}")
        ws.send(json.dumps({"type": "ping"}))
        assert frame(ws) == {"type": "pong"}


def test_rest_read_updates_open_sockets(alpha):
    user = new_user()
    token = alpha.token(user)
    alpha.send(user, "one")
    alpha.send(user, "two")
    with alpha.socket(token) as ws:
        assert frame(ws)["count"] == 2
        alpha.call("POST", "/api/v1/me/notifications/read_all", token=token)
        assert frame(ws)["type"] == "read"
        assert frame(ws) == {"type": "unread_count", "count": 0}


def test_reconnect_with_since_replays_exactly_what_was_missed(alpha):
    user = new_user()
    token = alpha.token(user)
    with alpha.socket(token) as ws:
        frame(ws)
        alpha.send(user, "seen")
        last_seen = frames_until(ws, lambda f: f["type"] == "notification")[-1]["notification"][
            "id"
        ]
    missed = [alpha.send(user, f"missed {n}") for n in range(3)]
    with alpha.socket(token, since=last_seen) as ws:
        assert frame(ws) == {"type": "unread_count", "count": 4}
        replayed = [frame(ws)["notification"] for _ in range(3)]
        assert [n["message"] for n in replayed] == ["missed 0", "missed 1", "missed 2"]
        assert len(missed) == 3
        alpha.send(user, "live after replay")
        live = frames_until(ws, lambda f: f["type"] == "notification")[-1]
        assert live["notification"]["message"] == "live after replay"


def test_no_gap_no_duplicate_with_sends_racing_reconnects(alpha):
    user = new_user()
    token = alpha.token(user)
    stop = threading.Event()
    sent: list[int] = []

    def keep_sending() -> None:
        n = 0
        while not stop.is_set() and n < 60:
            sent.append(alpha.send(user, f"race {n}"))
            n += 1

    received: list[int] = []
    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        last = None
        for _round in range(6):
            with alpha.socket(token, since=last if last is not None else 0) as ws:
                frame(ws)  # unread_count
                for _ in range(5):
                    got = frames_until(ws, lambda f: f["type"] == "notification")[-1]
                    received.append(got["notification"]["id"])
                    last = got["notification"]["id"]
    finally:
        stop.set()
        sender.join(timeout=60)

    with alpha.socket(token, since=last) as ws:  # the tail sent after the last reconnect
        frame(ws)
        expected_tail = len(set(alpha.inbox_ids(token)) - set(received))
        for _ in range(expected_tail):
            received.append(
                frames_until(ws, lambda f: f["type"] == "notification")[-1]["notification"]["id"]
            )
    assert len(received) == len(set(received)), "a notification arrived twice"
    assert sorted(received) == sorted(alpha.inbox_ids(token)), "gap between socket and inbox"
    assert len(received) == len(sent)  # one notification per send, each seen exactly once


def test_bad_credentials_close_with_the_contract_codes(alpha, bravo, world):
    token = alpha.token(new_user())
    with alpha.socket("not-a-token") as ws:
        assert close_code(ws) == 4401
    with alpha.socket(world.alice.api_key) as ws:  # an API key is not an end-user token
        assert close_code(ws) == 4401
    with alpha.socket(token, host=world.bob.host) as ws:  # tenant A's token on B's host
        assert close_code(ws) == 4403
    with alpha.socket(token, origin="https://evil.example.com") as ws:
        assert close_code(ws) == 4403


def test_allowed_origin_is_accepted(alpha, world, django_db_blocker):
    with django_db_blocker.unblock():
        tenant_update(
            tenant=world.tenant_a, fields={"allowed_origins": ["https://app.example.com"]}
        )
    try:
        with alpha.socket(alpha.token(new_user()), origin="https://app.example.com") as ws:
            assert frame(ws)["type"] == "unread_count"
    finally:
        with django_db_blocker.unblock():
            tenant_update(tenant=world.tenant_a, fields={"allowed_origins": []})


def test_events_of_tenant_a_never_reach_tenant_b_even_for_equal_ids(alpha, bravo):
    user = new_user()  # the same external id in both tenants
    with bravo.socket(bravo.token(user)) as b_ws, alpha.socket(alpha.token(user)) as a_ws:
        frame(b_ws)
        frame(a_ws)
        alpha.send(user, "alpha only")
        assert frame(a_ws)["notification"]["message"] == "alpha only"
        bravo.send(user, "bravo only")
        first_for_b = frames_until(b_ws, lambda f: f["type"] == "notification")
        assert [
            f["notification"]["message"] for f in first_for_b if f["type"] == "notification"
        ] == ["bravo only"]


def test_connection_limit_is_counted_across_the_tenant(bravo, world, django_db_blocker):
    with django_db_blocker.unblock():
        plan = Plan.objects.create(
            code=f"ws-{uuid.uuid4().hex[:6]}", name="WS tiny", monthly_notification_quota=10,
            monthly_email_quota=10, api_requests_per_second=100, api_burst=100,
            websocket_connection_limit=2,
        )  # fmt: skip
        tenant = Tenant.objects.get(pk=world.tenant_b.pk)
        original, tenant.plan = tenant.plan, plan
        tenant.save(update_fields=["plan"])
    try:
        token = bravo.token(new_user())
        with bravo.socket(token) as first, bravo.socket(token) as second:
            frame(first)
            frame(second)
            with bravo.socket(token) as third:
                assert close_code(third) == 4429
        # closed connections free their places
        wait_until(lambda: _opens(bravo, token), timeout=10, what="a free connection place")
    finally:
        with django_db_blocker.unblock():
            tenant.plan = original
            tenant.save(update_fields=["plan"])
            plan.delete()


def _opens(live: Live, token: str) -> bool:
    with live.socket(token) as ws:
        try:
            return frame(ws, timeout=5)["type"] == "unread_count"
        except ConnectionClosed:
            return False


def test_token_in_the_subprotocol_header_instead_of_the_url(alpha, world):
    """Browsers cannot set headers on a WebSocket; the token may travel as a subprotocol, which
    keeps it out of URLs and access logs."""
    token = alpha.token(new_user())
    sock = socket.create_connection(("127.0.0.1", alpha.server.port))
    uri = f"ws://{alpha.host}:{alpha.server.port}/ws/v1/notifications"
    with connect(uri, sock=sock, subprotocols=["bearer", token], open_timeout=10) as ws:
        assert ws.subprotocol == "bearer"
        assert frame(ws)["type"] == "unread_count"


@pytest.mark.parametrize(
    "protocols",
    [["bearer", "TOKEN"], ["bearer", "TOKEN", "v1"], ["v1", "bearer", "TOKEN"], ["bearer"]],
)
def test_the_bearer_subprotocol_is_selected_whenever_offered(alpha, protocols):
    """A browser fails a handshake whose answer selects none of the protocols it offered (1006,
    no close code), so "bearer" is selected wherever it is offered, the token in the URL or not."""
    token = alpha.token(new_user())
    offered = [token if name == "TOKEN" else name for name in protocols]
    query = "" if "TOKEN" in protocols else f"?token={token}"
    sock = socket.create_connection(("127.0.0.1", alpha.server.port))
    uri = f"ws://{alpha.host}:{alpha.server.port}/ws/v1/notifications{query}"
    with connect(uri, sock=sock, subprotocols=offered, open_timeout=10) as ws:
        assert ws.subprotocol == "bearer"
        assert frame(ws)["type"] == "unread_count"
    sock = socket.create_connection(("127.0.0.1", alpha.server.port))
    uri = f"ws://{alpha.host}:{alpha.server.port}/ws/v1/notifications"
    with connect(uri, sock=sock, subprotocols=["bearer"], open_timeout=10) as ws:
        assert ws.subprotocol == "bearer"  # no token anywhere: the browser sees why
        assert close_code(ws) == 4401


@pytest.mark.parametrize(
    "path", ["/ws/v1/other", "/ws/v1/notifications/", "/ws/", "/api/v1/me/notifications"]
)
def test_a_handshake_on_a_path_without_an_endpoint_is_404_json(alpha, path):
    sock = socket.create_connection(("127.0.0.1", alpha.server.port))
    uri = f"ws://{alpha.host}:{alpha.server.port}{path}"
    with pytest.raises(InvalidStatus) as refused, connect(uri, sock=sock, open_timeout=10):
        pass
    response = refused.value.response
    assert response.status_code == 404
    assert json.loads(response.body)["error"]["code"] == "not_found"


def test_erasing_a_user_closes_their_open_connections(alpha):
    user, other = new_user(), new_user()
    with alpha.socket(alpha.token(user)) as ws, alpha.socket(alpha.token(other)) as stays:
        assert frame(ws)["type"] == "unread_count"
        assert frame(stays)["type"] == "unread_count"
        erased = http(
            "DELETE",
            f"{alpha.server.url}/api/v1/users/{user}",
            headers={
                "Host": f"{alpha.host}:{alpha.server.port}",
                "Authorization": f"Bearer {alpha.api_key}",
            },
        )
        assert erased.status == 204
        assert close_code(ws) == 4401
        stays.send(json.dumps({"type": "ping"}))
        assert frame(stays)["type"] == "pong"  # another user's connection lives on


def test_a_bad_since_is_refused(alpha):
    with alpha.socket(alpha.token(new_user()), since="yesterday") as ws:
        assert close_code(ws) == 4400


# --- On the wire: a raw socket, to see how frames arrive and to stop reading at will ---


class RawSocket:
    """A WebSocket client on a bare socket: the handshake, then server frames parsed from
    exactly the bytes each ``recv`` returns (nothing reads in the background)."""

    def __init__(self, live: Live, token: str, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket()
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", live.server.port))
        self.sock.sendall(
            f"GET /ws/v1/notifications?token={token} HTTP/1.1\r\n"
            f"Host: {live.host}:{live.server.port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def parse(self) -> list[dict[str, Any]]:
        """The complete frames in the buffer (text frames of a server: unmasked)."""
        frames = []
        while len(self.buffer) >= 2:
            length, start = self.buffer[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(self.buffer[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < start + length:
                break
            assert self.buffer[0] == 0x81  # final text frame
            frames.append(json.loads(self.buffer[start : start + length]))
            self.buffer = self.buffer[start + length :]
        return frames

    def recv_once(self) -> list[dict[str, Any]]:
        """What one ``recv`` brings."""
        self.buffer += self.sock.recv(65536)
        return self.parse()

    def frames(self, count: int) -> list[dict[str, Any]]:
        got = self.parse()
        while len(got) < count:
            got += self.recv_once()
        return got

    def close(self) -> None:
        self.sock.close()


def test_a_notification_and_its_unread_count_leave_in_one_write(alpha):
    """Both frames of a new notification are written to the socket at once: one system call
    and one TCP segment per connection, not two (what makes a broadcast cheap)."""
    user = new_user()
    raw = RawSocket(alpha, alpha.token(user))
    try:
        assert raw.frames(1) == [{"type": "unread_count", "count": 0}]
        for count in (1, 2):
            alpha.send(user, f"together {count}")
            first_read = raw.recv_once()
            assert [f["type"] for f in first_read] == ["notification", "unread_count"]
            assert first_read[0]["notification"]["message"] == f"together {count}"
            assert first_read[1] == {"type": "unread_count", "count": count}
    finally:
        raw.close()


def test_a_stalled_client_holds_up_no_one_and_loses_nothing(alpha):
    """A tab that stops reading (its socket fills up) does not delay another tab of the same
    user; when it reads again it gets every notification, in order, once."""
    user = new_user()
    token = alpha.token(user)
    stalled = RawSocket(alpha, token, receive_buffer=4096)
    try:
        assert stalled.frames(1) == [{"type": "unread_count", "count": 0}]
        # About 28 KB a notification (the largest message and data a send takes), 5 MB in all:
        # more than the kernel's socket buffers (4 MB at most here) and the server's own.
        message, data = "x" * 9_997, {"blob": "y" * 16_000}
        sends = 180
        with alpha.socket(token) as healthy:
            assert frame(healthy) == {"type": "unread_count", "count": 0}
            for index in range(sends):
                body = {"type": "live", "recipients": [user], "message": f"{index:03d}{message}"}
                alpha.call("POST", "/api/v1/notifications", {**body, "data": data})
                assert frame(healthy)["notification"]["message"].startswith(f"{index:03d}")
                assert frame(healthy) == {"type": "unread_count", "count": index + 1}
        got = stalled.frames(2 * sends)
        messages = [f["notification"]["message"][:3] for f in got if f["type"] == "notification"]
        assert messages == [f"{index:03d}" for index in range(sends)]
        assert [f["count"] for f in got if f["type"] == "unread_count"] == list(range(1, sends + 1))
    finally:
        stalled.close()


class GcProbe:
    """``tests/support/gc_probe.py``: the web app served in a process of its own that reports
    what closed connections left for the cyclic garbage collector."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.port = self.read()["port"]

    def read(self, timeout: float = 30) -> dict[str, Any]:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, "the probe did not answer"
        line = self.process.stdout.readline()
        assert line, f"the probe exited ({self.process.poll()})"
        return json.loads(line)

    def ask(self, command: str) -> dict[str, Any]:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()


@contextmanager
def gc_probe(**env: str) -> Iterator[GcProbe]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "support" / "gc_probe.py")],
        cwd=ROOT,
        env=process_env(**env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield GcProbe(process)
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _live_round_trip(
    probe: GcProbe, live: Live, via: Live, users: list[str], tokens: list[str]
) -> None:
    """Connect each user, send them a notification (``via`` another server), ping, mark it read
    and close: everything a connection does in its life. One connection at a time opens and
    closes, so that Redis needs no more pooled connections than the round before (a new one
    leaves garbage of its own: redis-py's refused maintenance-notifications handshake)."""
    with ExitStack() as stack:
        sockets = []
        for token in tokens:
            sockets.append(stack.enter_context(live.socket(token)))
            assert frame(sockets[-1]) == {"type": "unread_count", "count": 0}
        body = {"type": "live", "recipients": users, "message": "bye"}
        via.call("POST", "/api/v1/notifications", body)
        for ws in sockets:
            notification = frame(ws)["notification"]
            assert frame(ws) == {"type": "unread_count", "count": 1}
            ws.send(json.dumps({"type": "ping"}))
            assert frame(ws) == {"type": "pong"}
            ws.send(json.dumps({"type": "mark_read", "ids": [notification["id"]]}))
            assert frame(ws)["type"] == "read"
            assert frame(ws) == {"type": "unread_count", "count": 0}
        for left, ws in reversed(list(enumerate(sockets))):
            ws.close()
            wait_until(lambda left=left: probe.ask("stats")["registered"] == left, what="a close")


def test_closed_connections_leave_nothing_for_a_full_collection(alpha):
    """A closed connection is freed at once by reference counting, not left in reference
    cycles. A web process holding thousands of connections tracks some 200 objects for each,
    and a full collection walks them all with the event loop stopped (100 ms and more), so
    the collector's thresholds can only be raised if closed connections need no collection.
    Before the cycles were broken, each closed connection left about 160 objects behind."""
    users = [new_user() for _ in range(40)]
    tokens = [alpha.token(user) for user in users]
    with gc_probe(WEB_GC_FREEZE_SECONDS="0") as probe:  # its collections would hide garbage
        server = Server(f"http://127.0.0.1:{probe.port}", probe.port, probe.process)
        local = Live(server, alpha.host, alpha.api_key)
        # Through the shared web process: the bus brings its sends to the probe's connections.
        _live_round_trip(probe, local, alpha, users[:20], tokens[:20])  # first use: loads once
        assert probe.ask("mark") == {}
        _live_round_trip(probe, local, alpha, users[20:], tokens[20:])
        report = probe.ask("collect")
    assert report["objects"] < 20, report


def test_open_connections_are_frozen_and_freed_when_they_close(alpha):
    """The process freezes what survives (herald.gc_policy), so full collections skip the open
    connections; a frozen connection that closes is still freed, by reference counting."""
    users = [new_user() for _ in range(20)]
    tokens = [alpha.token(user) for user in users]
    with gc_probe(WEB_GC_FREEZE_SECONDS="0.2") as probe:
        server = Server(f"http://127.0.0.1:{probe.port}", probe.port, probe.process)
        local = Live(server, alpha.host, alpha.api_key)
        with ExitStack() as stack:
            for token in tokens:
                ws = stack.enter_context(local.socket(token))
                assert frame(ws) == {"type": "unread_count", "count": 0}
            opened = probe.ask("stats")["frozen"]
            wait_until(
                lambda: probe.ask("stats")["frozen"] > opened, what="a freeze after the opens"
            )
            frozen = probe.ask("stats")["frozen"]
        wait_until(lambda: probe.ask("stats")["open"] == 0, what="the connections to close")
        # ~160 objects a connection, the frozen ones among them, are gone without a collection
        wait_until(
            lambda: probe.ask("stats")["frozen"] < frozen - 100 * len(tokens),
            what="the closed connections' frozen objects to be freed",
        )
