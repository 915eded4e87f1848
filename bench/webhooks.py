"""Webhook delivery throughput and fairness, with real Celery workers and a local receiver.

    .venv/bin/python bench/webhooks.py [--quick]

A. Throughput: tenant A queues ``--events`` events spread over ``--endpoints`` endpoints in
   one transaction; events/s from its commit until the last one reached the receiver, with 1,
   2 and 4 worker processes (``--pool solo``; a tenant may hold as many turns as there are
   workers). Each turn delivers up to ``WEBHOOK_TURN_ENDPOINTS`` endpoints in parallel
   threads, one request at a time per endpoint.
B. Fairness: tenant B queues single events at a steady rate; the delay from each commit until
   the receiver has it, p50/p99, while nothing else runs, then while tenant A's endpoint times
   out on every request (``WEBHOOK_TIMEOUT_SECONDS``) with a backlog of events.

The receiver (``http.server``, threaded) runs in this process on 127.0.0.2, answers 200 at
once (tenant A's slow path: after the timeout) and only reads each request's ``webhook-id``.
Events carry a prebuilt body, as a test event does. The throwaway database (``--database``,
default ``herald_bench_webhooks``) and the run's Celery queue are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchdb import recreate_database, setup_django
from benchworkers import (
    clean_up,
    print_machine,
    unlimited_tenants,
    wait_for,
    worker_env,
    workers,
)

DB = "herald_bench_webhooks"
HOST = "127.0.0.2"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Receiver:
    """Arrival time of each event (by ``webhook-id``) and a count per path; ``/slow`` answers
    only after ``slow_seconds`` (or when the bench ends)."""

    def __init__(self, slow_seconds: float) -> None:
        self.arrivals: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.lock = threading.Lock()
        self.slow_seconds = slow_seconds
        self.stop = threading.Event()

    def arrived(self, path: str, msg_id: str) -> None:
        now = time.perf_counter()
        with self.lock:
            self.arrivals.setdefault(msg_id, now)
            prefix = path.split("/")[1]
            self.count[prefix] = self.count.get(prefix, 0) + 1

    def received(self, prefix: str) -> int:
        with self.lock:
            return self.count.get(prefix, 0)

    def at(self, msg_id: str) -> float | None:
        with self.lock:
            return self.arrivals.get(msg_id)


@contextmanager
def receiver(slow_seconds: float) -> Iterator[tuple[Receiver, int]]:
    sink = Receiver(slow_seconds)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            sink.arrived(self.path, self.headers.get("webhook-id", ""))
            if self.path.startswith("/slow"):
                sink.stop.wait(sink.slow_seconds)
            try:
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the worker gave up (the timeout)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the base's name
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink, server.server_address[1]
    finally:
        sink.stop.set()
        server.shutdown()
        server.server_close()


def endpoints(tenant: Any, port: int, prefix: str, count: int) -> list[Any]:
    from django_tenants.utils import tenant_context

    from notifications.models import WebhookEndpoint
    from notifications.webhooks.signing import webhook_secret_new, webhook_secret_seal

    with tenant_context(tenant):
        return [
            WebhookEndpoint.objects.create(
                url=f"http://{HOST}:{port}/{prefix}/{n}",
                secret_encrypted=webhook_secret_seal(webhook_secret_new()),
            )
            for n in range(count)
        ]


def queue(tenant: Any, targets: list[Any], count: int) -> tuple[list[str], float]:
    """``count`` events round-robin over ``targets``, in one transaction; returns their ids
    and the commit time (turns are requested on commit)."""
    from django.db import transaction
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from notifications.models import WebhookDelivery
    from notifications.webhooks.delivery import webhooks_enqueue
    from notifications.webhooks.events import webhook_message_id

    now = timezone.now()
    rows = [
        WebhookDelivery(
            endpoint=targets[n % len(targets)], event="webhook.test", msg_id=webhook_message_id(),
            body=json.dumps({"type": "webhook.test", "timestamp": now.isoformat(), "n": n}),
            occurred_at=now, created_at=now, updated_at=now,
        )
        for n in range(count)
    ]  # fmt: skip
    with tenant_context(tenant), transaction.atomic():
        WebhookDelivery.objects.bulk_create(rows)
        webhooks_enqueue(tenant=tenant, count=count, now=now)
    return [row.msg_id for row in rows], time.perf_counter()


def pings(tenant: Any, target: Any, sink: Receiver, count: int, rate: float) -> list[float]:
    """Single events of tenant B at ``rate`` per second; each one's delay in ms."""
    delays = []
    for _ in range(count):
        started = time.perf_counter()
        [msg_id], committed = queue(tenant, [target], 1)
        wait_for(lambda m=msg_id: sink.at(m), 60, f"ping {msg_id}")
        delays.append((sink.at(msg_id) - committed) * 1000)  # type: ignore[operator] -- waited for it above
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="events per throughput run")
    parser.add_argument("--endpoints", type=int, default=32, help="tenant A's endpoints")
    parser.add_argument("--workers", default="1,2,4", help="worker counts for throughput")
    parser.add_argument("--fair-workers", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=200, help="A's events at the slow endpoint")
    parser.add_argument("--pings", type=int, default=60)
    parser.add_argument("--rate", type=float, default=2.0, help="tenant B's events per second")
    parser.add_argument("--timeout", type=float, default=10.0, help="WEBHOOK_TIMEOUT_SECONDS")
    parser.add_argument("--database", default=DB, help="the throwaway database (dropped after)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.pings, args.backlog, args.timeout = 1000, 30, 50, 5.0

    started = time.perf_counter()
    celery_queue = f"herald-bench-webhooks-{secrets.token_hex(3)}"
    recreate_database(args.database)
    try:
        with receiver(slow_seconds=args.timeout + 5) as (sink, port):
            run(args, sink, port, celery_queue)
    finally:
        clean_up(args.database, celery_queue)
    print(f"Total runtime: {time.perf_counter() - started:.0f} s")


def run(args: argparse.Namespace, sink: Receiver, port: int, celery_queue: str) -> None:
    # One key for this process and the workers: it seals the endpoints' signing secrets.
    os.environ.update(
        CELERY_DEFAULT_QUEUE=celery_queue, LOG_LEVEL="WARNING", SECRET_KEY=secrets.token_urlsafe(40)
    )
    setup_django(args.database)
    from django.conf import settings

    busy, quiet = unlimited_tenants("busy", "quiet")
    env = worker_env(
        args.database, WEBHOOK_ALLOWED_CIDRS=f"{HOST}/32", WEBHOOK_TIMEOUT_SECONDS=str(args.timeout)
    )
    print_machine()
    print(
        f"Workers: celery --pool solo processes; {settings.WEBHOOK_TURN_ENDPOINTS} endpoints"
        f" per turn, {settings.WEBHOOK_BATCH_SIZE} events each; receiver in the bench process"
    )

    fast = endpoints(busy, port, "fast", args.endpoints)
    print(
        f"\nA. Throughput: {args.events:,} events over {args.endpoints} endpoints,"
        " events/s into the receiver"
    )
    for count in (int(n) for n in args.workers.split(",")):
        with workers(count, env, turns_per_tenant=count):
            before = sink.received("fast")
            _ids, committed = queue(busy, fast[:1], 1)  # warm-up: the workers are up
            wait_for(lambda b=before: sink.received("fast") > b, 60, "warm-up")
            before = sink.received("fast")
            ids, committed = queue(busy, fast, args.events)
            wait_for(lambda b=before: sink.received("fast") >= b + args.events, 900, "all")
            seconds = max(sink.at(m) or 0 for m in ids) - committed
            print(f"  {count} worker(s): {args.events / seconds:>8,.0f} events/s"
                  f"  ({seconds:.1f} s)")  # fmt: skip

    print(
        f"\nB. Fairness: tenant B queues {args.pings} single events at {args.rate:g}/s;"
        f" {args.fair_workers} workers; delay commit -> receiver, ms"
    )
    [target] = endpoints(quiet, port, "quiet", 1)
    [slow] = endpoints(busy, port, "slow", 1)
    with workers(args.fair_workers, env, turns_per_tenant=2):
        _ids, _at = queue(quiet, [target], 1)
        wait_for(lambda: sink.received("quiet"), 60, "warm-up")
        alone = pings(quiet, target, sink, args.pings, args.rate)
        queue(busy, [slow], args.backlog)
        wait_for(lambda: sink.received("slow"), 60, "A's first request")
        beside = pings(quiet, target, sink, args.pings, args.rate)
        slow_requests = sink.received("slow")
    rows = (("B alone", alone), (f"B while A times out ({args.timeout:g} s)", beside))
    print(f"  {'':<34}{'p50':>8}{'p99':>8}{'max':>8}")
    for label, values in rows:
        print(f"  {label:<34}{statistics.median(values):>8.1f}{percentile(values, 99):>8.1f}"
              f"{max(values):>8.1f}")  # fmt: skip
    print(
        f"  A's endpoint got {slow_requests} request(s) for its {args.backlog} events meanwhile"
        " (one timeout per turn, then its retry schedule)"
    )


if __name__ == "__main__":
    main()
