"""Logs of the real processes: one JSON object per line on stdout, each request's line with its
request id and tenant, the id echoed in ``X-Request-ID`` and carried into the Celery tasks a
request starts, WebSocket connections with ids of their own; Sentry events tagged with both."""

from __future__ import annotations

import gzip
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection
from sentry_sdk.envelope import Envelope
from websockets.sync.client import connect

from tests.support.api import Caller
from tests.support.personas import committed_tenant
from tests.support.processes import (
    HttpResult,
    Server,
    http,
    log_lines,
    running_beat,
    running_web,
    running_worker,
    wait_until,
)

HEX_ID = 32  # a generated request id: uuid4's hex digits


def header(response: HttpResult, name: str) -> str | None:
    return {key.lower(): value for key, value in response.headers.items()}.get(name.lower())


def call(
    web: Server,
    method: str,
    path: str,
    api: Caller | None = None,
    *,
    request_id: str | None = None,
    token: str | None = None,
    body: Any = None,
) -> HttpResult:
    """A request to the web process on ``api``'s host (the platform host without one)."""
    headers = {"Host": f"{api.host if api else 'localhost'}:{web.port}"}
    token = token or (api.token if api else None)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return http(method, web.url + path, headers=headers, body=body)


def raw_request_id(web: Server, value: bytes) -> tuple[bytes, str | None]:
    """``GET /healthz`` with ``value`` sent as it is as X-Request-ID: the status line, and the
    X-Request-ID of the answer (None without one)."""
    with socket.create_connection(("127.0.0.1", web.port), timeout=10) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: "
            + value
            + b"\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status, *fields = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    echoed = None
    for field in fields:
        name, _, value = field.partition(b":")
        if name.strip().lower() == b"x-request-id":
            echoed = value.strip().decode()
    return status, echoed


def request_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "herald.request"]


@contextmanager
def log_file(tmp_path: Path, name: str) -> Iterator[IO[bytes]]:
    with (tmp_path / f"{name}.log").open("w+b") as stdout:
        yield stdout


def test_request_ids_are_echoed_when_sane_and_made_otherwise(committed):
    _tenant, api = committed_tenant(committed, "echoed", "Echoed Co")
    with running_web() as web:
        given = "edge-7f3a.01:req_42"
        answered = call(web, "GET", "/api/v1/tenant", api, request_id=given)
        assert (answered.status, header(answered, "X-Request-ID")) == (200, given)
        made = header(call(web, "GET", "/api/v1/tenant", api), "X-Request-ID")
        assert made is not None
        assert len(made) == HEX_ID

        for insane in ("x" * 129, "two words", "<script>", "a,b", ""):
            answered = call(web, "GET", "/api/v1/tenant", api, request_id=insane)
            echoed = header(answered, "X-Request-ID")
            assert echoed is not None
            assert len(echoed) == HEX_ID, insane
        # Bytes that are not ASCII reach Herald and are replaced too.
        status, echoed = raw_request_id(web, "caf\u00e9".encode("latin-1"))
        assert status.endswith(b"200 OK")
        assert echoed is not None
        assert len(echoed) == HEX_ID
        # A CR or LF inside a header never reaches Herald: uvicorn refuses the request itself.
        status, echoed = raw_request_id(web, b"abc\rX-Injected: 1")
        assert status.endswith(b"400 Bad Request")
        assert echoed is None

        # Errors and refusals echo it too: an unknown host, a bad key, an unknown route.
        unknown = http(
            "GET",
            web.url + "/api/v1/tenant",
            headers={"Host": f"nowhere.localhost:{web.port}", "X-Request-ID": "r-unknown"},
        )
        assert (unknown.status, header(unknown, "X-Request-ID")) == (404, "r-unknown")
        bad_key = call(web, "GET", "/api/v1/tenant", api, token="sk_nope", request_id="r-key")
        assert (bad_key.status, header(bad_key, "X-Request-ID")) == (401, "r-key")
        missing = call(web, "GET", "/api/v1/no/such/thing", api, request_id="r-route")
        assert (missing.status, header(missing, "X-Request-ID")) == (404, "r-route")


def test_every_stdout_line_is_json_and_each_request_has_a_line_with_its_id_and_tenant(
    committed, tmp_path
):
    tenant, api = committed_tenant(committed, "logged", "Logged Co")
    with log_file(tmp_path, "web") as stdout:
        with running_web(stdout=stdout) as web:
            ok = call(web, "GET", "/api/v1/tenant?probe=s3cr3t-query", api, request_id="req-ok")
            assert ok.status == 200
            refused = call(web, "GET", "/api/v1/tenant", api, token="sk_nope", request_id="req-no")
            assert refused.status == 401
            unsubscribe = call(web, "GET", "/unsubscribe/t0ken-from-an-email", api)
            assert unsubscribe.status in (200, 404)
            platform = call(web, "GET", "/api/v1/tenant", request_id="req-platform")

            def logged() -> list[dict[str, Any]] | None:
                lines = request_lines(log_lines(stdout))
                return lines if len(lines) >= 4 else None

            wait_until(logged, timeout=10, what="a log line per request")
        lines = log_lines(stdout)  # every line is JSON (or this fails naming the line)
        stdout.seek(0)
        raw = stdout.read().decode()

    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
        assert line["time"].endswith("Z")
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # the server's own lines
    by_id = {line["request_id"]: line for line in request_lines(lines)}
    ok_line = dict(by_id["req-ok"])
    assert ok_line.pop("duration_ms") > 0
    assert ok_line.pop("time")
    assert ok_line == {
        "level": "INFO",
        "logger": "herald.request",
        "message": "GET /api/v1/tenant 200",
        "request_id": "req-ok",
        "tenant": tenant.slug,
        "method": "GET",
        "path": "/api/v1/tenant",
        "status": 200,
    }
    # A refused credential on a tenant host names no tenant: the request was not let in.
    assert by_id["req-no"]["status"] == 401
    assert "tenant" not in by_id["req-no"]
    assert "tenant" not in by_id["req-platform"]
    assert by_id["req-platform"]["status"] == platform.status
    assert [line["path"] for line in request_lines(lines) if "unsubscribe" in line["path"]] == [
        "/unsubscribe/<token>"
    ]
    # Neither the query string, nor a credential, nor a link's secret is written anywhere.
    for secret in ("s3cr3t-query", api.token, "sk_nope", "t0ken-from-an-email"):
        assert secret not in raw


def test_a_thread_never_hands_one_requests_id_to_the_next(committed, tmp_path):
    """One request thread serves every request in turn: each request's line carries the id its
    response carries, given or made, never the one before it."""
    _tenant, api = committed_tenant(committed, "threaded", "Threaded Co")
    with log_file(tmp_path, "web") as stdout, running_web(stdout=stdout, WEB_THREADS="1") as web:
        echoed = []
        for n in range(40):
            given = f"seq-{n}" if n % 3 else None  # every third without one
            answered = call(web, "GET", "/api/v1/tenant", api, request_id=given)
            assert answered.status == 200
            echoed.append(header(answered, "X-Request-ID"))
            assert given is None or echoed[-1] == given

        def logged() -> list[str] | None:
            ids = [line["request_id"] for line in request_lines(log_lines(stdout))]
            return ids if len(ids) >= 40 else None

        logged_ids = wait_until(logged, timeout=10, what="40 request lines")

    assert logged_ids == echoed
    assert len(set(echoed)) == 40


def test_a_task_started_by_a_request_logs_with_that_requests_id(committed, tmp_path):
    tenant, api = committed_tenant(committed, "tasked", "Tasked Co")
    key = f"mail-{uuid.uuid4().hex[:8]}"
    assert api.put(f"/api/v1/types/{key}", {"name": "Mail", "channels": ["email"]}).status_code in (
        200,
        201,
    )
    request_id = f"send-{uuid.uuid4().hex[:12]}"
    with log_file(tmp_path, "web") as web_out, log_file(tmp_path, "worker") as worker_out:
        with (
            running_worker(
                settings.CELERY_TASK_DEFAULT_QUEUE, stdout=worker_out, EMAIL_URL="locmem://"
            ),
            running_web(stdout=web_out) as web,
        ):
            sent = call(
                web,
                "POST",
                "/api/v1/notifications",
                api,
                request_id=request_id,
                body={
                    "type": key,
                    "recipients": [{"id": "ada", "email": "ada@example.com"}],
                    "message": "hello",
                },
            )
            assert sent.status == 202, sent.body
            assert header(sent, "X-Request-ID") == request_id

            def task_lines() -> list[dict[str, Any]] | None:
                lines = [
                    line
                    for line in log_lines(worker_out)
                    if line.get("task") == "notifications.email_turn"
                    and line["logger"] == "celery.app.trace"
                    and f"[{line['task_id']}] succeeded" in line["message"]
                    and line.get("tenant") == tenant.slug  # not earlier tests' queued turns
                ]
                # A sweep that earlier tests' beats left in the queue may also give this tenant
                # a turn: that one names no request.
                return lines if any(line.get("request_id") for line in lines) else None

            turns = wait_until(task_lines, timeout=30, what="the email turn's log line")
        worker_lines = log_lines(worker_out)  # every line JSON

    assert {line.get("request_id") for line in turns} - {None} == {request_id}
    assert any(line["logger"].startswith("celery") for line in worker_lines)
    # Lines the worker writes outside any task name none.
    assert all("request_id" not in line for line in worker_lines if "task_id" not in line)


def test_beat_and_the_tasks_it_starts_log_json_lines_naming_no_request(committed, tmp_path):
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with log_file(tmp_path, "beat") as beat_out, log_file(tmp_path, "worker") as worker_out:
        with running_worker(queue, stdout=worker_out), running_beat(stdout=beat_out):

            def ran() -> list[dict[str, Any]] | None:
                lines = [
                    line
                    for line in log_lines(worker_out)
                    if line.get("task") == "notifications.release_due_sends"
                    and line["logger"] == "celery.app.trace"
                ]
                return lines or None

            lines = wait_until(ran, timeout=30, what="a periodic task's log line")
        beat_lines = log_lines(beat_out)  # every line JSON, the stopped beat's too

    assert any(line["logger"] == "celery.beat" for line in beat_lines)
    assert all("request_id" not in line and "tenant" not in line for line in lines)


def test_websocket_connections_log_with_their_request_id_and_tenant(committed, tmp_path):
    tenant, api = committed_tenant(committed, "socketlog", "Socketlog Co")
    with log_file(tmp_path, "web") as stdout, running_web(stdout=stdout) as web:
        minted = call(web, "POST", "/api/v1/users/ws-log/token", api)
        assert minted.status < 300, minted.body
        base = f"ws://{api.host}:{web.port}/ws/v1/notifications?token="
        sock = socket.create_connection(("127.0.0.1", web.port))
        with connect(
            base + minted.body["token"],
            sock=sock,
            open_timeout=10,
            additional_headers={"X-Request-ID": "ws-good"},
        ) as ws:
            assert ws.response.headers["X-Request-ID"] == "ws-good"
            ws.recv(timeout=10)  # the unread count: registered
        sock = socket.create_connection(("127.0.0.1", web.port))
        with connect(base + "not-a-token", sock=sock, open_timeout=10) as refused:
            made = refused.response.headers["X-Request-ID"]
            assert len(made) == HEX_ID

        def closed() -> dict[str, dict[str, Any]] | None:
            lines = {
                line["request_id"]: line
                for line in log_lines(stdout)
                if line["logger"] == "notifications.consumers" and "request_id" in line
            }
            return lines if {"ws-good", made} <= set(lines) else None

        lines = wait_until(closed, timeout=10, what="the connections' log lines")

    assert lines["ws-good"]["tenant"] == tenant.slug
    assert lines["ws-good"]["message"].startswith("WebSocket closed")
    # uvicorn logs each handshake's path with its query: the token is not in the log.
    text = (tmp_path / "web.log").read_text()
    assert minted.body["token"] not in text
    assert "?token=[redacted]" in text
    assert lines[made]["message"].startswith("WebSocket refused (4401)")
    assert "tenant" not in lines[made]


class _SentryServer(ThreadingHTTPServer):
    """Holds what its handler received."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SentryReceiver)
        self.events: list[dict[str, Any]] = []


class _SentryReceiver(BaseHTTPRequestHandler):
    """Sentry's ingestion endpoint, reduced to keeping the events of the envelopes it gets."""

    server: _SentryServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        for item in Envelope.deserialize(body).items:
            if item.type == "event" and item.payload.json is not None:
                self.server.events.append(item.payload.json)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def fake_sentry() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server in Sentry's place: its DSN, and the events it received."""
    server = _SentryServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://public@127.0.0.1:{server.server_port}/1", server.events
    finally:
        server.shutdown()
        server.server_close()


def test_a_crash_reaches_sentry_tagged_with_its_tenant_and_request_id(committed):
    """Two tenants' requests crash in turn on the one request thread: each event carries its
    own tenant and request id, never the other's."""
    callers = [committed_tenant(committed, slug, slug.title()) for slug in ("crashy", "broken")]
    with connection.cursor() as cursor:
        for tenant, _api in callers:
            # The table behind GET /api/v1/types is gone: the view fails as on a broken database.
            cursor.execute(
                f'ALTER TABLE "{tenant.schema_name}".notifications_notificationtype '
                "RENAME TO notifications_notificationtype_gone"
            )
    with fake_sentry() as (dsn, events), running_web(SENTRY_DSN=dsn, WEB_THREADS="1") as web:
        for tenant, api in callers:
            crashed = call(web, "GET", "/api/v1/types", api, request_id=f"crash-{tenant.slug}")
            assert crashed.status == 500
            assert header(crashed, "X-Request-ID") == f"crash-{tenant.slug}"

        def reported() -> dict[str, dict[str, Any]] | None:
            crashes = {
                event["tags"].get("request_id"): event for event in events if event.get("exception")
            }
            return crashes if len(crashes) >= 2 else None

        crashes = wait_until(reported, timeout=20, what="two events at the fake Sentry")

    assert set(crashes) == {"crash-crashy", "crash-broken"}
    for tenant, _api in callers:
        assert crashes[f"crash-{tenant.slug}"]["tags"]["tenant"] == tenant.slug
