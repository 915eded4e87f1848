"""A send to a topic's subscribers against the same send listing them, at 100,000 users.

    .venv/bin/python bench/topics.py [--quick] [--users N] [--rounds R] [--database NAME]

The tenant is on an unlimited plan (as in ``bench/webhooks.py``), so the plan's
recipients-per-send limit does not cut the audience. ``--users`` existing users (default
100,000) are subscribed to one topic. In interleaved rounds, in this process through the send
service (``notification_send``: the API caps a request at 10,000 listed recipients, and the
HTTP layer is the same for both), each kind sends to all of them and is timed until its commit:

- topic, in-app: ``{"topic": ...}``; the in-app rows are one ``INSERT ... SELECT`` from the
  subscription table;
- listed, in-app: ``{"recipients": [every external id]}``, the fast path (one statement);
- topic and listed, in-app + email: the same with an email outbox row per recipient;
- topic, type with 5 locales (once): the ids path, rendering per locale group.

Then one topic send through the real HTTP API (the web process of the Procfile), to its 202.
Figures are rows written per second (notifications; deliveries counted beside them). The
throwaway database (default ``herald_bench_topics``) and the run's Celery queue and cache keys
are removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import time
from typing import Any

import psycopg
import redis
from benchdb import Api, database_url, drop_database, recreate_database, setup_django, web_server

BENCH_QUEUE = "herald-bench-topics"  # the sends' Celery tasks, dropped at the end
TOPIC = "everyone"
IN_APP_TYPE, EMAIL_TYPE, LOCALISED_TYPE = "bench", "bench-email", "bench-locales"
BENCH_LOCALES = ("de-AT", "de", "fr", "pt-BR", "ja")
REDIS_URL = "redis://127.0.0.1:6379/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved in-app rounds")
    parser.add_argument("--database", default="herald_bench_topics", help="throwaway database")
    parser.add_argument("--quick", action="store_true", help="10,000 users, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.users, args.rounds = 10_000, 2
    started = time.perf_counter()
    recreate_database(args.database)
    prefix = f"herald-bench-topics-{secrets.token_hex(4)}"
    os.environ.update(
        CELERY_DEFAULT_QUEUE=BENCH_QUEUE, CACHE_KEY_PREFIX=prefix, LOG_LEVEL="WARNING",
        REDIS_URL=REDIS_URL,
    )  # fmt: skip
    try:
        run(args, prefix)
    finally:
        drop_database(args.database)
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(BENCH_QUEUE)
        doomed = list(client.scan_iter(match=f"{prefix}:*", count=5000))
        for start in range(0, len(doomed), 1000):
            client.delete(*doomed[start : start + 1000])
    print(f"Total runtime: {time.perf_counter() - started:.0f} s")


def run(args: argparse.Namespace, prefix: str) -> None:
    setup_django(args.database)
    from django.core.management import call_command
    from django_tenants.utils import schema_context

    from billing_stub.models import Plan
    from tenants.services import tenant_provision

    call_command("migrate", interactive=False, verbosity=0)
    result = tenant_provision(
        slug="bench", name="Bench", admin_email="b@bench.test",
        admin_password=secrets.token_urlsafe(16), plan_code="enterprise",
    )  # fmt: skip
    unlimited = Plan.objects.create(
        code="bench-unlimited", name="Unlimited", monthly_notification_quota=10**9,
        monthly_email_quota=10**9, api_requests_per_second=10**6, api_burst=10**6,
        websocket_connection_limit=10**6, max_recipients_per_send=10**7,
    )  # fmt: skip
    tenant = result.tenant
    tenant.plan = unlimited
    tenant.save(update_fields=["plan"])  # through the ORM: clears the registry cache

    with psycopg.connect(database_url("postgres")) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, PostgreSQL {pg_version}")  # fmt: skip

    external_ids = [f"u-{n}" for n in range(args.users)]
    with schema_context(tenant.schema_name):
        seed(tenant, external_ids)
        figures = interleaved(tenant, external_ids, args.rounds)

    n = args.users
    print(f"\nA. One send to {n:,} existing users, rows/s until commit (best / median)")
    for label, seconds in figures.items():
        rows = n * (2 if "email" in label else 1)
        rates = [rows / s for s in seconds]
        print(f"  {label:<52} {max(rates):>9,.0f} / {statistics.median(rates):>9,.0f}"
              f"   ({statistics.median(seconds) * 1000:,.0f} ms)")  # fmt: skip
    for kind in ("in-app", "in-app + email"):
        topic = statistics.median(figures[f"topic, {kind}"])
        listed = statistics.median(figures[f"listed, {kind}"])
        print(f"  topic / listed, {kind}: {listed / topic:.0%} of the listed send's rate")

    env = {
        **os.environ, "DATABASE_URL": database_url(args.database), "SECRET_KEY":
        secrets.token_urlsafe(40), "DEBUG": "false", "PLATFORM_HOST": "localhost",
        "CACHE_KEY_PREFIX": prefix,
    }  # fmt: skip
    with web_server(env) as (port, _pid):
        api = Api(port, "bench.localhost")
        body = {"type": IN_APP_TYPE, "recipients": ["warm-up"], "message": "warm"}
        api.timed("POST", "/api/v1/notifications", result.api_key, body)
        body = {"type": IN_APP_TYPE, "topic": TOPIC, "title": "Bench", "message": "Topic"}
        seconds = api.timed("POST", "/api/v1/notifications", result.api_key, body)
    print(f"\nB. The same topic send through the HTTP API, until its 202: "
          f"{seconds * 1000:,.0f} ms, {n / seconds:,.0f} rows/s")  # fmt: skip


def seed(tenant: Any, external_ids: list[str]) -> None:
    """The users (a spread of locales), the topic with all of them, the three types."""
    from django.db import connection

    from notifications.models import Topic
    from notifications.services.types import type_upsert

    type_upsert(tenant=tenant, key=IN_APP_TYPE, fields={"name": "Bench"})
    type_upsert(tenant=tenant, key=EMAIL_TYPE,
                fields={"name": "Bench email", "channels": ["in_app", "email"]})  # fmt: skip
    locales = {tag: {"title": f"[{tag}] {{{{ title }}}}", "message": f"{{{{ message }}}} ({tag})"}
               for tag in BENCH_LOCALES}  # fmt: skip
    type_upsert(tenant=tenant, key=LOCALISED_TYPE, fields={"name": "Bench", "locales": locales})
    topic = Topic.objects.create(key=TOPIC, name="Everyone")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO notifications_enduser (external_id, email, name, locale, timezone, data,
                                               created_at, updated_at)
            SELECT 'u-' || n, 'u' || n || '@bench.test', '', (%(locales)s::text[])[n %% 5 + 1],
                   '', '{}', now(), now()
            FROM generate_series(0, %(last)s) AS n
            """,
            {"locales": list(BENCH_LOCALES), "last": len(external_ids) - 1},
        )
        cursor.execute(
            """
            INSERT INTO notifications_topicsubscription (topic_id, user_id, created_at)
            SELECT %s, id, now() FROM notifications_enduser ORDER BY id
            """,
            [topic.pk],
        )
        cursor.execute("ANALYZE")


def interleaved(tenant: Any, external_ids: list[str], rounds: int) -> dict[str, list[float]]:
    from notifications.services.sending import SendInput, notification_send
    from notifications.services.users import RecipientInput

    listed = [RecipientInput(external_id=e) for e in external_ids]

    def timed(type_key: str, **audience: Any) -> float:
        request = SendInput(type=type_key, title="Bench", message="A topic send", **audience)
        started = time.perf_counter()
        notification_send(tenant=tenant, request=request, fingerprint="", idempotency_key=None,
                          actor="bench")  # fmt: skip
        return time.perf_counter() - started

    timed(IN_APP_TYPE, recipients=listed[:100])  # warm-up
    timed(IN_APP_TYPE, recipients=[], topic=TOPIC)
    figures: dict[str, list[float]] = {
        "topic, in-app": [], "listed, in-app": [], "topic, in-app + email": [],
        "listed, in-app + email": [], "topic, 5 locales, in-app (ids path)": [],
    }  # fmt: skip
    for _round in range(rounds):
        figures["topic, in-app"].append(timed(IN_APP_TYPE, recipients=[], topic=TOPIC))
        figures["listed, in-app"].append(timed(IN_APP_TYPE, recipients=listed))
    figures["topic, in-app + email"].append(timed(EMAIL_TYPE, recipients=[], topic=TOPIC))
    figures["listed, in-app + email"].append(timed(EMAIL_TYPE, recipients=listed))
    figures["topic, 5 locales, in-app (ids path)"].append(
        timed(LOCALISED_TYPE, recipients=[], topic=TOPIC)
    )
    return figures


if __name__ == "__main__":
    main()
