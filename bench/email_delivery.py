"""Email throughput and fairness between tenants, with real Celery workers and an SMTP sink.

    .venv/bin/python bench/email_delivery.py [--quick]

A. Throughput: tenant A sends one send to ``--emails`` recipients; emails/s from its commit
   until the last one is in the SMTP sink, with 1, 2 and 4 worker processes (``--pool solo``).
B. Fairness: tenant B sends single emails at a steady rate; its latency (commit to sink) p50/p99
   while nothing else runs, then while tenant A floods. Target: flooded p99 <= 2x quiet p99.

The SMTP sink (aiosmtpd) runs in this process and only reads each message's headers. The
throwaway database (``--database``, default ``herald_bench_email``) and the run's Celery queue
are removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import BytesHeaderParser
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

DB = "herald_bench_email"
FAIRNESS_TARGET = 2.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Sink:
    """Records when each message arrives, by subject."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}  # first message of each subject
        self.last: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.lock = threading.Lock()
        self.parser = BytesHeaderParser()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject = str(self.parser.parsebytes(envelope.content)["Subject"])
        now = time.perf_counter()
        with self.lock:
            self.arrivals.setdefault(subject, now)
            self.last[subject] = now
            self.count[subject] = self.count.get(subject, 0) + 1
        return "250 OK"

    def received(self, subject: str) -> int:
        with self.lock:
            return self.count.get(subject, 0)


@contextmanager
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def send(tenant: Any, type_key: str, recipients: list[Any], title: str) -> float:
    """One send through the service (as the API calls it); returns the commit time."""
    from django_tenants.utils import tenant_context

    from notifications.services.sending import SendInput, notification_send

    with tenant_context(tenant):
        notification_send(
            tenant=tenant,
            request=SendInput(
                type=type_key,
                recipients=recipients,
                message="bench",
                title=title,
                channels=["email"],
            ),
            fingerprint="",
            idempotency_key=None,
            actor="bench",
        )
    return time.perf_counter()  # the turns were requested on commit, inside the call


def people(prefix: str, count: int) -> list[Any]:
    from notifications.services.users import RecipientInput

    return [
        RecipientInput(external_id=f"{prefix}-{n}", email=f"{prefix}-{n}@example.com")
        for n in range(count)
    ]


def pings(tenant: Any, sink: Sink, count: int, rate: float, tag: str) -> list[float]:
    """Single emails of tenant B at ``rate`` per second; each one's latency in ms."""
    recipient = people("ping", 1)
    latencies = []
    for n in range(count):
        started = time.perf_counter()
        subject = f"{tag}-{n}"
        committed = send(tenant, "ping", recipient, subject)
        wait_for(lambda s=subject: sink.received(s), 30, f"ping {subject}")
        latencies.append((sink.arrivals[subject] - committed) * 1000)
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--emails", type=int, default=5000, help="emails per throughput run")
    parser.add_argument("--workers", default="1,2,4", help="worker counts for throughput")
    parser.add_argument("--fair-workers", type=int, default=4)
    parser.add_argument(
        "--fair-turns", type=int, default=2, help="turns one tenant may hold (the default 2)"
    )
    parser.add_argument("--flood", type=int, default=20_000, help="tenant A's flood")
    parser.add_argument("--pings", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="tenant B's emails per second")
    parser.add_argument("--database", default=DB, help="the throwaway database (dropped after)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.emails, args.workers, args.flood, args.pings = 500, "1,2", 3000, 20

    started = time.perf_counter()
    queue = f"herald-bench-email-{secrets.token_hex(3)}"
    recreate_database(args.database)
    try:
        with smtp_sink() as (sink, port):
            run(args, sink, port, queue)
    finally:
        clean_up(args.database, queue)
    print(f"Total runtime: {time.perf_counter() - started:.0f} s")


def run(args: argparse.Namespace, sink: Sink, port: int, queue: str) -> None:
    os.environ.update(
        CELERY_DEFAULT_QUEUE=queue,
        EMAIL_URL=f"smtp://127.0.0.1:{port}",
        LOG_LEVEL="WARNING",
    )
    setup_django(args.database)
    from django.conf import settings

    flooder, quiet = unlimited_tenants("flooder", "quiet")
    env = worker_env(args.database)
    print_machine()
    print(
        f"Workers: celery --pool solo processes; {settings.DELIVERY_BATCH_SIZE} emails per turn;"
        " SMTP sink (aiosmtpd) in the bench process"
    )

    print(f"\nA. Throughput: one send to {args.emails:,} recipients, emails/s into the sink")
    for round_no, count in enumerate(int(n) for n in args.workers.split(",")):
        with workers(count, env, turns_per_tenant=count):
            send(flooder, "warm", people(f"warm{round_no}", count), f"warm{round_no}")
            wait_for(lambda r=round_no, c=count: sink.received(f"warm{r}") >= c, 60, "warm-up")
            subject = f"throughput{round_no}"
            committed = send(flooder, "bulk", people(f"bulk{round_no}", args.emails), subject)
            wait_for(lambda s=subject: sink.received(s) >= args.emails, 600, "throughput")
            seconds = sink.last[subject] - committed
            print(f"  {count} worker(s): {args.emails / seconds:>8,.0f} emails/s"
                  f"  ({seconds:.1f} s)")  # fmt: skip

    print(
        f"\nB. Fairness: tenant B sends {args.pings} single emails at {args.rate:g}/s;"
        f" {args.fair_workers} workers, at most {args.fair_turns} turns per tenant;"
        " latency commit -> sink, ms"
    )
    with workers(args.fair_workers, env, turns_per_tenant=args.fair_turns):
        send(quiet, "ping", people("ping", 1), "warm-ping")
        wait_for(lambda: sink.received("warm-ping"), 60, "warm-up")
        quiet_ms = pings(quiet, sink, args.pings, args.rate, "quiet")
        flood_subject = "flood"
        send(flooder, "flood", people("flood", args.flood), flood_subject)
        flooded_ms = pings(quiet, sink, args.pings, args.rate, "flooded")
        backlog = args.flood - sink.received(flood_subject)
    rows = (("B alone", quiet_ms), ("B while A floods", flooded_ms))
    print(f"  {'':<22}{'p50':>8}{'p99':>8}{'max':>8}")
    for label, values in rows:
        print(f"  {label:<22}{statistics.median(values):>8.1f}{percentile(values, 99):>8.1f}"
              f"{max(values):>8.1f}")  # fmt: skip
    print(
        f"  A's flood: {args.flood:,} emails, {backlog:,} still unsent when B's last email"
        " arrived (so B never waited for the flood)"
    )
    ratio = percentile(flooded_ms, 99) / percentile(quiet_ms, 99)
    verdict = "MET" if ratio <= FAIRNESS_TARGET else "MISSED"
    print(f"  flooded p99 / quiet p99 = {ratio:.2f}x (target <= {FAIRNESS_TARGET:g}x): {verdict}")


if __name__ == "__main__":
    main()
