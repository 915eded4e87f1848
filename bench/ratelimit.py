"""The API rate limiter under 10x the plan's rate: it answers 429, never 5xx.

    .venv/bin/python bench/ratelimit.py [--rate 20] [--seconds 10]

A tenant on a plan of ``--rate`` requests per second (burst 2x) is sent ``--factor`` (10) times
that through the real web process (the Procfile's command), from several client threads with
persistent connections. Prints the answers by status, the accepted rate against the plan's, and
checks every answer: 429s carry ``Retry-After`` and the contract's error body, and every answer
carries the ``RateLimit-*`` headers. Exits non-zero on any 5xx or a missing header.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import platform
import secrets
import sys
import threading
import time

from benchdb import database_url, drop_database, recreate_database, setup_django, web_server

DB = "herald_bench_ratelimit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=20, help="the plan's requests per second")
    parser.add_argument("--factor", type=float, default=10.0, help="offered load / plan rate")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    recreate_database(DB)
    try:
        ok = run(args)
    finally:
        drop_database(DB)
    sys.exit(0 if ok else 1)


def run(args: argparse.Namespace) -> bool:
    setup_django(DB)
    from django.core.management import call_command

    from billing_stub.models import Plan
    from tenants.services import tenant_provision

    call_command("migrate", interactive=False, verbosity=0)
    result = tenant_provision(
        slug="limited", name="Limited", admin_email="admin@limited.test",
        admin_password=secrets.token_urlsafe(16), plan_code="free",
    )  # fmt: skip
    plan = Plan.objects.create(
        code="bench-rate", name="Bench rate", monthly_notification_quota=10**9,
        monthly_email_quota=10**9, api_requests_per_second=args.rate, api_burst=args.rate * 2,
        websocket_connection_limit=10,
    )  # fmt: skip
    result.tenant.plan = plan
    result.tenant.save(update_fields=["plan"])
    env = {
        **os.environ, "DATABASE_URL": database_url(DB), "SECRET_KEY": secrets.token_urlsafe(40),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "DEBUG": "false", "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    offered = args.rate * args.factor
    interval = args.threads / offered  # each thread's pace
    statuses: collections.Counter[int] = collections.Counter()
    problems: list[str] = []
    lock = threading.Lock()

    def client(port: int, deadline: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Host": "limited.localhost", "Authorization": f"Bearer {result.api_key}"}
        next_at = time.perf_counter()
        while time.perf_counter() < deadline:
            conn.request("GET", "/api/v1/tenant", headers=headers)
            response = conn.getresponse()
            body = response.read()
            trouble = None
            if response.status >= 500:
                trouble = f"{response.status}: {body[:200]!r}"
            elif response.getheader("RateLimit-Limit") is None:
                trouble = f"{response.status} without RateLimit-Limit"
            elif response.status == 429 and (
                response.getheader("Retry-After") is None
                or json.loads(body)["error"]["code"] != "rate_limited"
            ):
                trouble = f"429 without Retry-After or rate_limited: {body[:200]!r}"
            with lock:
                statuses[response.status] += 1
                if trouble:
                    problems.append(trouble)
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))

    with web_server(env) as (port, _pid):
        started = time.perf_counter()
        deadline = started + args.seconds
        threads = [
            threading.Thread(target=client, args=(port, deadline)) for _ in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started

    total = sum(statuses.values())
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"Plan: {args.rate} requests/s sustained (10 s window), burst {args.rate * 2} per second")
    print(f"Offered: {offered:.0f}/s for {args.seconds:g} s from {args.threads} threads;"
          f" achieved {total / elapsed:.0f}/s ({total} requests)")  # fmt: skip
    for status, count in sorted(statuses.items()):
        print(f"  {status}: {count:>6}  ({count / elapsed:.1f}/s)")
    accepted = statuses.get(200, 0) / elapsed
    print(f"Accepted {accepted:.1f}/s against the plan's {args.rate}/s")
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    print(f"5xx: {server_errors}; header or body problems: {len(problems)}")
    for problem in problems[:5]:
        print(f"  {problem}")
    return server_errors == 0 and not problems and statuses.get(429, 0) > 0


if __name__ == "__main__":
    main()
