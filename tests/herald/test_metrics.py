"""``GET /metrics`` on the real web process: Prometheus text summed over its worker processes,
on the platform host only, behind ``METRICS_TOKEN`` when one is set."""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from billing_stub.metering import NOTIFICATIONS, usage_record, usage_rollup
from tenants.due import due_backlog
from tenants.models import DueWork
from tests.support.personas import committed_tenant
from tests.support.processes import Server, http, running_web, wait_until

TOKEN = "scrape-secret"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(parsed: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in parsed.items()
        if sample == name and all((k, v) in sample_labels for k, v in labels.items())
    )


def scrape(web: Server) -> str:
    response = web.get("/metrics", host=settings.PLATFORM_HOST, Authorization=f"Bearer {TOKEN}")
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("text/plain")
    return response.body


def test_metrics_sum_every_web_process(committed, tmp_path: Path):
    tenant, api = committed_tenant(committed, "metered", "Metered Co")
    with running_web(
        WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path), METRICS_TOKEN=TOKEN
    ) as web:
        before = samples(scrape(web))
        caller = {"host": api.host, "Authorization": f"Bearer {api.token}"}
        for _ in range(40):  # a new connection each: both workers get some
            assert web.get("/api/v1/tenant", **caller).status == 200
        sent = http(
            "POST",
            f"{web.url}/api/v1/notifications",
            headers={"Host": f"{api.host}:{web.port}", "Authorization": f"Bearer {api.token}"},
            body={"type": "metered", "recipients": ["m-1", "m-2", "m-3"], "message": "m"},
        )
        assert sent.status == 202, sent.body
        text = scrape(web)

    after = samples(text)
    route = {"method": "GET", "route": "/api/v1/tenant", "status": "200"}
    assert (
        total(after, "herald_http_requests_total", **route)
        - total(before, "herald_http_requests_total", **route)
        == 40
    )
    assert total(after, "herald_http_request_duration_seconds_count", route="/api/v1/tenant") >= 40
    assert (
        total(after, "herald_notifications_created_total")
        - total(before, "herald_notifications_created_total")
        == 3
    )
    assert "herald_websocket_connections" in text
    assert "# TYPE herald_queue_tenants_due gauge" in text
    assert "# TYPE herald_queue_oldest_due_age_seconds gauge" in text
    # Both workers wrote samples, and the scrape summed them.
    assert len({f.stem.rsplit("_", 1)[-1] for f in tmp_path.glob("counter_*.db")}) >= 2
    # Bounded labels: no tenant slug, host or recipient id anywhere.
    for needle in (tenant.slug, tenant.schema_name, "m-1"):
        assert needle not in text


def test_metrics_need_the_token_and_the_platform_host(committed, tmp_path: Path):
    _tenant, api = committed_tenant(committed, "scraped", "Scraped Co")
    with running_web(PROMETHEUS_MULTIPROC_DIR=str(tmp_path), METRICS_TOKEN=TOKEN) as web:
        assert web.get("/metrics", host=settings.PLATFORM_HOST).status == 401
        wrong = web.get("/metrics", host=settings.PLATFORM_HOST, Authorization="Bearer nope")
        assert wrong.status == 401
        assert wrong.body["error"]["code"] == "unauthenticated"
        assert scrape(web)
        on_tenant = web.get("/metrics", host=api.host, Authorization=f"Bearer {TOKEN}")
        assert on_tenant.status == 404
        assert on_tenant.body["error"]["code"] == "not_found"
        unknown = web.get("/metrics", host="unknown.example.net", Authorization=f"Bearer {TOKEN}")
        assert unknown.status == 404
        # Prometheus scrapes each pod at its IP address and sends that as the host.
        for pod in ("10.1.2.3", "[fd00::7]"):
            assert web.get("/metrics", host=pod).status == 401
            assert web.get("/metrics", host=pod, Authorization=f"Bearer {TOKEN}").status == 200


def test_websocket_connections_are_a_live_gauge(committed, tmp_path: Path):
    _tenant, api = committed_tenant(committed, "socketed", "Socketed Co")
    with running_web(
        WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path), METRICS_TOKEN=TOKEN
    ) as web:
        minted = http(
            "POST",
            f"{web.url}/api/v1/users/ws-metrics/token",
            headers={"Host": f"{api.host}:{web.port}", "Authorization": f"Bearer {api.token}"},
        )
        assert minted.status < 300, minted.body
        frames_before = total(samples(scrape(web)), "herald_websocket_frames_sent_total")
        uri = f"ws://{api.host}:{web.port}/ws/v1/notifications?token={minted.body['token']}"
        sock = socket.create_connection(("127.0.0.1", web.port))
        with connect(uri, sock=sock, open_timeout=10) as ws:
            ws.recv(timeout=10)  # the unread count: registered by now
            opened = samples(scrape(web))
            assert total(opened, "herald_websocket_connections") == 1
            assert total(opened, "herald_websocket_frames_sent_total") > frames_before

        def closed() -> bool:
            return total(samples(scrape(web)), "herald_websocket_connections") == 0

        wait_until(closed, timeout=10, what="the gauge to drop")


def test_backlog_counts_tenants_with_work_due_and_the_oldest_age(db, world):
    now = timezone.now()
    DueWork.objects.create(tenant=world.tenant_a, kind="probe", due_at=now - timedelta(minutes=2))
    DueWork.objects.create(tenant=world.tenant_b, kind="probe", due_at=now - timedelta(seconds=5))
    DueWork.objects.create(tenant=world.tenant_b, kind="later", due_at=now + timedelta(hours=1))

    backlog = due_backlog(now=now)

    assert backlog["probe"] == (2, 120.0)
    assert "later" not in backlog


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _leave_samples(directory: Path, kind: str, pid: int, name: str, value: float, **labels) -> None:
    """Write a sample file as a process of a web pod would have (prometheus-client's format)."""
    values = MmapedDict(str(directory / f"{kind}_{pid}.db"))
    key = mmap_key(name, name, list(labels), list(labels.values()), "left behind")
    values.write_value(key, value, 0.0)
    values.close()


def test_a_restarted_web_sums_nothing_an_earlier_or_dead_process_left(tmp_path: Path):
    """The pod's metrics directory outlives a container restart; a web worker uvicorn replaced
    leaves its files behind. Neither is counted."""
    dead = _dead_pid()
    _leave_samples(tmp_path, "gauge_livesum", dead, "herald_websocket_connections", 7)
    _leave_samples(
        tmp_path, "counter", dead, "herald_http_requests_total", 99,
        method="GET", route="/stale", status="200",
    )  # fmt: skip
    with running_web(PROMETHEUS_MULTIPROC_DIR=str(tmp_path), METRICS_TOKEN=TOKEN) as web:
        started = samples(scrape(web))
        assert total(started, "herald_websocket_connections") == 0
        assert total(started, "herald_http_requests_total", route="/stale") == 0
        # A worker dies while the server runs (its replacement has another pid).
        _leave_samples(tmp_path, "gauge_livesum", _dead_pid(), "herald_websocket_connections", 5)
        assert total(samples(scrape(web)), "herald_websocket_connections") == 0
        assert not list(tmp_path.glob(f"gauge_livesum_{dead}.db"))


def test_top_tenants_by_notifications_this_period_are_opt_in_and_bounded(committed, tmp_path):
    """METRICS_TOP_TENANTS=1 names the one tenant with the most notifications this period."""
    busy, _ = committed_tenant(committed, "busiest", "Busiest Co")
    quiet, _ = committed_tenant(committed, "quieter", "Quieter Co")
    # Far above what any other test's tenant sends, so these two lead whatever ran before.
    usage_record(tenant_id=busy.pk, kind=NOTIFICATIONS, quantity=2_000_000_000)
    usage_record(tenant_id=quiet.pk, kind=NOTIFICATIONS, quantity=1_999_999_999)
    usage_rollup()  # what beat does every minute

    with running_web(PROMETHEUS_MULTIPROC_DIR=str(tmp_path), METRICS_TOKEN=TOKEN) as web:
        assert "herald_tenant_notifications_current_period" not in scrape(web)  # off by default
    with running_web(
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path), METRICS_TOKEN=TOKEN, METRICS_TOP_TENANTS="1"
    ) as web:
        text = scrape(web)
    series = {
        labels: value
        for (name, labels), value in samples(text).items()
        if name == "herald_tenant_notifications_current_period"
    }
    assert series == {(("tenant", "busiest"),): 2_000_000_000}
    assert "quieter" not in text
