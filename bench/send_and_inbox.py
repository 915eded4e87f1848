"""Send fan-out, single-send latency and inbox latency through the real HTTP API, against bare
baselines, in one run.

    .venv/bin/python bench/send_and_inbox.py [--quick] [--only send|inbox]

A. One send to 10,000 recipients through the API (validation, user upsert, preferences, rows),
   in interleaved rounds, each against a raw COPY of every row it writes, in one committed
   transaction per round: to new recipients of an in-app type (users + notifications, target
   >= 50%), to new recipients of a type with email on (users + notifications + deliveries,
   target >= 50%), and to existing recipients (notifications, target >= 60%); and the new
   in-app send against django-notifications-hq 1.8.3's notify.send to as many users (in a
   virtualenv of its own with Django 5.0, since 1.8.3 no longer imports on 5.1+). Localised
   sends to a type with five locales: to existing users with stored locales named by plain ids,
   against the same send of a plain type (target >= 90%); to new users given as recipient
   objects with their locales, against plain ids and against the same objects sent to a plain
   type (targets >= 90%). Targets are on the median of the per-round ratios. Each round runs
   the same steps starting one further on, and every send or COPY of new users inserts its ids
   after all written before, so that neither a step's neighbours nor where its ids land in
   the index favour one figure over another.
C. A send to one existing recipient, p50/p99 of its 202, against the HTTP floor (a cheap
   authenticated endpoint) one request of each in turn; target: p50 at most the floor's + 3 ms.
B. Inbox page and unread count through the API, p50/p99, for a normal user and a user with
   100,000 unread, at 1,000,000 notifications in the tenant, against the bare SQL of the same
   queries and the HTTP floor.

Throwaway databases ``herald_bench_send`` and ``herald_bench_dnhq`` are created and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis
from benchdb import (
    Api,
    database_url,
    drop_database,
    latencies,
    percentile,
    recreate_database,
    setup_django,
    web_server,
)

ROOT = Path(__file__).resolve().parents[1]
DB = "herald_bench_send"
DNHQ_DB = "herald_bench_dnhq"
DNHQ_VENV = Path(tempfile.gettempdir()) / "herald-bench-dnhq-venv"
BENCH_QUEUE = "herald-bench-send"  # the sends' Celery tasks, dropped at the end


# --- A. fan-out --------------------------------------------------------------------------------

TITLE = "Benchmark"
MESSAGE = "A notification-shaped message of ordinary length, as apps send them."
IN_APP_TYPE, EMAIL_TYPE, LOCALISED_TYPE = "bench", "bench-email", "bench-locales"
# Five locales, each with its own title and message templates (over the send's own texts).
BENCH_LOCALES = ("de-AT", "de", "fr", "pt-BR", "ja")
NOTIFICATION_COLUMNS = "send_id, recipient_id, type_id, title, message, url, data, created_at"
WHEN = "2026-01-01T00:00:00Z"


def api_send_seconds(api: Api, key: str, type_key: str, recipients: list[Any]) -> float:
    """One send through the HTTP API, until its 202: seconds."""
    body = {"type": type_key, "recipients": recipients, "title": TITLE, "message": MESSAGE}
    return api.timed("POST", "/api/v1/notifications", key, body)


class CopyBaseline:
    """Raw COPY of the rows a send writes, one committed transaction per round: for new
    recipients their users too (ids reserved from the sequences in one statement each, so that
    rows can name each other), and the email deliveries when the type has email on."""

    def __init__(self, schema: str) -> None:
        self.conn = psycopg.connect(database_url(DB))
        self.conn.execute(f"SET search_path = {schema}")
        self.conn.commit()
        self.sends = dict(self.conn.execute(
            "SELECT t.key, max(s.id) FROM notifications_send s"
            " JOIN notifications_notificationtype t ON t.id = s.type_id GROUP BY t.key"
        ).fetchall())  # fmt: skip
        self.types = dict(
            self.conn.execute("SELECT key, id FROM notifications_notificationtype").fetchall()
        )
        self.conn.rollback()

    def user_ids(self, external_ids: list[str]) -> list[int]:
        found = dict(self.conn.execute(
            "SELECT external_id, id FROM notifications_enduser"
            " WHERE external_id = ANY(%s)", [external_ids]
        ).fetchall())  # fmt: skip
        self.conn.rollback()
        return [found[external_id] for external_id in external_ids]

    def _reserve(self, table: str, count: int) -> int:
        """The first of ``count`` consecutive ids taken from ``table``'s sequence."""
        return self.conn.execute(
            "SELECT setval(pg_get_serial_sequence(%(t)s, 'id'),"
            " nextval(pg_get_serial_sequence(%(t)s, 'id')) + %(n)s - 1) - %(n)s + 1",
            {"t": table, "n": count},
        ).fetchone()[0]

    def seconds(
        self, type_key: str, *, new: list[str] | None = None, users: list[int] | None = None
    ) -> float:
        """COPY for ``new`` users (external ids) or existing ``users`` (ids): seconds."""
        send_id, type_id = self.sends[type_key], self.types[type_key]
        email = type_key == EMAIL_TYPE
        started = time.perf_counter()
        with self.conn.cursor() as cursor:
            if new is not None:
                first = self._reserve("notifications_enduser", len(new))
                users = list(range(first, first + len(new)))
                with cursor.copy(
                    "COPY notifications_enduser (id, external_id, email, name, locale, timezone,"
                    " data, created_at, updated_at) FROM STDIN"
                ) as copy:
                    for user, external_id in zip(users, new, strict=True):
                        copy.write_row((user, external_id, "", "", "", "", "{}", WHEN, WHEN))
            assert users is not None
            columns = NOTIFICATION_COLUMNS
            if email:
                first = self._reserve("notifications_notification", len(users))
                columns = f"id, {columns}"
            with cursor.copy(f"COPY notifications_notification ({columns}) FROM STDIN") as copy:
                for index, user in enumerate(users):
                    row = (send_id, user, type_id, TITLE, MESSAGE, "", "{}", WHEN)
                    copy.write_row((first + index, *row) if email else row)
            if email:
                with cursor.copy(
                    "COPY notifications_delivery (send_id, notification_id, recipient_id,"
                    " channel, status, attempts, last_error, created_at, updated_at) FROM STDIN"
                ) as copy:
                    for index, user in enumerate(users):
                        copy.write_row((send_id, first + index, user, "email", "sent", 0, "",
                                        WHEN, WHEN))  # fmt: skip
        self.conn.commit()
        return time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


# Creates the users once, then runs one notify.send to all of them per line on stdin.
DNHQ_SCRIPT = """
import json, os, sys, time
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "notifications"],
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": sys.argv[1],
               "USER": "postgres", "HOST": "127.0.0.1", "PORT": "5432"}},
    USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from notifications.signals import notify
count = int(sys.argv[2])
User.objects.bulk_create([User(username=f"u{n}") for n in range(count + 1)], batch_size=5000)
actor = User.objects.get(username=f"u{count}")
print(json.dumps({"django": django.get_version()}), flush=True)
for _line in sys.stdin:
    started = time.perf_counter()
    notify.send(actor, recipient=User.objects.exclude(pk=actor.pk), verb="benchmarked")
    print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)
"""


class Dnhq:
    """django-notifications-hq 1.8.3 in a virtualenv of its own (Django 5.0), driven one
    ``notify.send`` at a time so that its rounds interleave with Herald's."""

    def __init__(self, recipients: int) -> None:
        self.recipients = recipients
        python = DNHQ_VENV / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(DNHQ_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "Django>=5.0,<5.1",
                 "django-notifications-hq==1.8.3", "psycopg[binary]"],
                check=True, capture_output=True,
            )  # fmt: skip
        recreate_database(DNHQ_DB)
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
            script.write(DNHQ_SCRIPT)
        self.process = subprocess.Popen(
            [str(python), script.name, DNHQ_DB, str(recipients)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.django = json.loads(self._line())["django"]

    def _line(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the dnhq process exited ({self.process.wait()})")
        return line

    def seconds(self) -> float:
        self.process.stdin.write("send\n")
        self.process.stdin.flush()
        return json.loads(self._line())["seconds"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        drop_database(DNHQ_DB)


def fan_out(api: Api, key: str, schema: str, recipients: int, rounds: int) -> None:
    """Herald's API, raw COPY and dnhq in interleaved rounds (this machine's speed drifts by 2x
    over minutes), then each target on the median of the per-round ratios."""
    why: Exception | None = None
    try:
        dnhq: Dnhq | None = Dnhq(recipients)
    except (subprocess.SubprocessError, OSError, ValueError, RuntimeError) as exc:
        dnhq, why = None, exc
    api.call("PUT", f"/api/v1/types/{EMAIL_TYPE}", key,
             {"name": "Bench email", "channels": ["in_app", "email"]})  # fmt: skip
    api_send_seconds(api, key, EMAIL_TYPE, ["warm-up"])
    locales = {tag: {"title": f"[{tag}] {{{{ title }}}}", "message": f"{{{{ message }}}} ({tag})"}
               for tag in BENCH_LOCALES}  # fmt: skip
    api.call("PUT", f"/api/v1/types/{LOCALISED_TYPE}", key, {"locales": locales})
    api_send_seconds(api, key, LOCALISED_TYPE, ["warm-up"])
    existing = [f"e-{n}" for n in range(recipients)]
    api_send_seconds(api, key, IN_APP_TYPE, existing)  # creates them
    # Existing users with their locales stored (as the API, the dashboard or the widget set
    # them), to whom a send lists plain ids: a localised send's usual shape.
    localised = [f"el-{n}" for n in range(recipients)]
    api_send_seconds(api, key, IN_APP_TYPE, [
        {"id": external_id, "locale": BENCH_LOCALES[n % len(BENCH_LOCALES)]}
        for n, external_id in enumerate(localised)])  # fmt: skip
    copy = CopyBaseline(schema)
    existing_ids = copy.user_ids(existing)
    seconds: dict[str, list[float]] = {name: [] for name in FAN_OUT_LABELS}

    runs = iter(range(10**6))

    def new() -> list[str]:
        # Every run of new ids sorts after all written before it, and before the few other ids
        # ("single-user", "warm-up"), so that every send inserts its users at the same place
        # of the external-id index: where a run lands moves a 10,000-user insert by a fifth
        # (amid the index against at its end), which would favour one figure over another.
        run = next(runs)
        return [f"n{run:06d}-{n}" for n in range(recipients)]

    def with_locales(external_ids: list[str]) -> list[dict[str, str]]:
        return [{"id": external_id, "locale": BENCH_LOCALES[n % len(BENCH_LOCALES)]}
                for n, external_id in enumerate(external_ids)]  # fmt: skip

    steps: dict[str, Callable[[], float]] = {
        "api new": lambda: api_send_seconds(api, key, IN_APP_TYPE, new()),
        "copy new": lambda: copy.seconds(IN_APP_TYPE, new=new()),
        "api new 5 locales": lambda: api_send_seconds(
            api, key, LOCALISED_TYPE, with_locales(new())
        ),
        # The same recipient objects to a type without locales: what the objects cost.
        "api new objects": lambda: api_send_seconds(api, key, IN_APP_TYPE, with_locales(new())),
        "api new+email": lambda: api_send_seconds(api, key, EMAIL_TYPE, new()),
        "copy new+email": lambda: copy.seconds(EMAIL_TYPE, new=new()),
        "api existing": lambda: api_send_seconds(api, key, IN_APP_TYPE, existing),
        "api existing 5 locales": lambda: api_send_seconds(api, key, LOCALISED_TYPE, localised),
        "copy existing": lambda: copy.seconds(IN_APP_TYPE, users=existing_ids),
    }
    if dnhq:
        steps["dnhq"] = dnhq.seconds
    order = list(steps)
    try:
        for round_ in range(rounds):
            # Each round starts one step further on, so that no figure always follows the same
            # one: a send right after a COPY of 20,000 rows meets the writes it left behind,
            # one after django-notifications-hq's seconds-long loop a rested machine.
            shift = round_ % len(order)
            for name in order[shift:] + order[:shift]:
                seconds[name].append(steps[name]())
    finally:
        copy.close()
        if dnhq:
            dnhq.close()

    print(f"\nA. Fan-out: one send to {recipients:,} recipients, recipients/s, {rounds} interleaved"
          " rounds (best / median)")  # fmt: skip
    for name, label in FAN_OUT_LABELS.items():
        if name == "dnhq":
            label = label.format(django=dnhq.django if dnhq else "-")
        rates = [recipients / s for s in seconds[name]]
        if rates:
            print(f"  {label:<62}{max(rates):>9,.0f} / {statistics.median(rates):,.0f}")
        else:
            print(f"  {label:<62} not measured: {why}")
    for round_ in range(rounds):
        figures = [f"{name} {recipients / seconds[name][round_]:,.0f}"
                   for name in seconds if seconds[name]]  # fmt: skip
        print(f"  round {round_ + 1}: {', '.join(figures)}")
    for api_name, base, target, unit in FAN_OUT_TARGETS:
        if not seconds[base]:
            continue
        ratios = [b / a for a, b in zip(seconds[api_name], seconds[base], strict=True)]
        median = statistics.median(ratios)
        shown = [f"{r:.0%}" if unit == "%" else f"{r:.0f}x" for r in ratios]
        goal = f"{target:.0%}" if unit == "%" else f"{target}x"
        middle = f"{median:.0%}" if unit == "%" else f"{median:.1f}x"
        print(f"  {api_name} / {base} per round {', '.join(shown)}; median {middle}"
              f" (target >= {goal}): {'MET' if median >= target else 'MISSED'}")  # fmt: skip


FAN_OUT_LABELS = {
    "api new": "Herald API, new recipients, in-app",
    "copy new": "raw COPY: users + notifications",
    "api new 5 locales": "Herald API, new recipients in 5 locales, in-app, localised",
    "api new objects": "Herald API, the same recipient objects, in-app, no locales",
    "api new+email": "Herald API, new recipients, in-app + email",
    "copy new+email": "raw COPY: users + notifications + deliveries",
    "api existing": "Herald API, existing recipients, in-app",
    "api existing 5 locales": "Herald API, existing recipients in 5 locales (stored), localised",
    "copy existing": "raw COPY: notifications",
    "dnhq": "django-notifications-hq notify.send (Django {django})",
}
# (API figure, baseline, target on the median of per-round ratios, unit)
FAN_OUT_TARGETS = (
    ("api new", "copy new", 0.5, "%"),
    ("api new 5 locales", "api new", 0.9, "%"),
    ("api new 5 locales", "api new objects", 0.9, "%"),
    ("api new+email", "copy new+email", 0.5, "%"),
    ("api existing", "copy existing", 0.6, "%"),
    ("api existing 5 locales", "api existing", 0.9, "%"),
    ("api new", "dnhq", 25, "x"),
)


def single_send(api: Api, key: str, count: int) -> None:
    """A send to one (existing) recipient against the HTTP floor, one request of each in turn,
    so both see the same machine; target on the p50s."""
    body = {"type": IN_APP_TYPE, "recipients": ["single-user"], "title": TITLE, "message": MESSAGE}
    floor: list[float] = []
    send: list[float] = []
    for index in range(20 + count):
        floor_ms = api.timed("GET", "/api/v1/tenant", key) * 1000
        send_ms = api.timed("POST", "/api/v1/notifications", key, body) * 1000
        if index >= 20:
            floor.append(floor_ms)
            send.append(send_ms)
    print(f"\nC. Single-recipient send, {count} interleaved requests each, ms")
    print(f"  {'':<44}{'p50':>8}{'p99':>8}")
    for label, values in (("HTTP floor: GET /api/v1/tenant", floor),
                          ("POST /api/v1/notifications, 1 recipient (202)", send)):  # fmt: skip
        print(f"  {label:<44}{percentile(values, 50):>8.2f}{percentile(values, 99):>8.2f}")
    p50, bound = percentile(send, 50), percentile(floor, 50) + 3
    print(
        f"  send p50 {p50:.2f} <= floor p50 + 3 = {bound:.2f}:"
        f" {'MET' if p50 <= bound else 'MISSED'}"
    )


# --- B. inbox at a million rows ---------------------------------------------------------------


def seed_inbox(schema: str, total: int, heavy_unread: int, others: int) -> tuple[int, int]:
    """A normal user with 50 notifications, a heavy one with ``heavy_unread`` unread, the rest
    spread over ``others`` users, up to ``total`` rows. Returns the two users' ids."""
    with psycopg.connect(database_url(DB)) as conn:
        conn.execute(f"SET search_path = {schema}")
        send_id, type_id = conn.execute(
            "SELECT id, type_id FROM notifications_send ORDER BY id LIMIT 1"
        ).fetchone()
        normal, heavy = (
            conn.execute(
                "INSERT INTO notifications_enduser (external_id, email, name, locale, timezone,"
                " data, created_at, updated_at) VALUES (%s, '', '', '', '', '{}', now(), now())"
                " RETURNING id",
                [external_id],
            ).fetchone()[0]
            for external_id in ("normal-user", "heavy-user")
        )
        first_other = conn.execute(
            "INSERT INTO notifications_enduser (external_id, email, name, locale, timezone, data,"
            " created_at, updated_at) SELECT 'other-' || n, '', '', '', '', '{}', now(), now()"
            " FROM generate_series(1, %s) n RETURNING id",
            [others],
        ).fetchone()[0]
        existing = conn.execute("SELECT count(*) FROM notifications_notification").fetchone()[0]
        rest = total - existing - 50 - heavy_unread
        insert = (
            "INSERT INTO notifications_notification (send_id, recipient_id, type_id, title,"
            " message, url, data, created_at, read_at) SELECT %(send)s, {user}, %(type)s,"
            " 'Seeded', 'A seeded notification of ordinary length.', '', '{{}}',"
            " now() - n * interval '1 second', {read} FROM generate_series(1, %(n)s) n"
        )
        args = {"send": send_id, "type": type_id}
        conn.execute(insert.format(user=normal, read="CASE WHEN n %% 2 = 0 THEN now() END"),
                     {**args, "n": 50})  # fmt: skip
        conn.execute(insert.format(user=heavy, read="NULL"), {**args, "n": heavy_unread})
        conn.execute(
            insert.format(user=f"{first_other} + n %% {others}", read="now()"),
            {**args, "n": max(0, rest)},
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE notifications_notification")
        conn.execute("ANALYZE notifications_enduser")
    return normal, heavy


PAGE_SQL = (
    "SELECT n.id, n.title, n.message, n.url, n.data, n.created_at, n.read_at, n.archived_at,"
    " t.key FROM notifications_notification n JOIN notifications_notificationtype t"
    " ON t.id = n.type_id WHERE n.recipient_id = %s ORDER BY n.recipient_id DESC, n.id DESC"
    " LIMIT 21"
)
COUNT_SQL = (
    "SELECT count(*) FROM notifications_notification"
    " WHERE recipient_id = %s AND read_at IS NULL AND archived_at IS NULL"
)


def bare_sql(schema: str, user: int, count: int) -> tuple[list[float], list[float], list[str]]:
    """The same queries on a bare connection, with the planner setting the product uses."""
    cost = os.environ.get("DATABASE_RANDOM_PAGE_COST", "1.1")
    options = f"-c random_page_cost={cost}"
    with psycopg.connect(database_url(DB), autocommit=True, options=options) as conn:
        conn.execute(f"SET search_path = {schema}")

        def run(sql: str) -> float:
            started = time.perf_counter()
            conn.execute(sql, [user]).fetchall()
            return time.perf_counter() - started

        page = latencies(lambda: run(PAGE_SQL), count)
        counts = latencies(lambda: run(COUNT_SQL), count)
        plans = []
        for sql in (PAGE_SQL, COUNT_SQL):
            rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", [user]).fetchall()
            kept = [r[0].strip() for r in rows if "Index" in r[0] or "Execution" in r[0]]
            plans.append(" / ".join(kept))
    return page, counts, plans


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved fan-out rounds")
    parser.add_argument("--total", type=int, default=1_000_000, help="notifications in the tenant")
    parser.add_argument("--heavy-unread", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=400, help="per latency figure")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only", choices=["send", "inbox"], help="only the send figures (A, C) or the inbox (B)"
    )
    args = parser.parse_args()
    if args.quick:
        args.total, args.heavy_unread, args.others, args.requests = 50_000, 5_000, 1000, 50
        args.rounds = min(args.rounds, 3)

    started = time.perf_counter()
    recreate_database(DB)
    try:
        run(args)
    finally:
        drop_database(DB)
    print(f"Total runtime: {time.perf_counter() - started:.0f} s")


def bench_tenant() -> tuple[str, str, dict[str, str], str]:
    """Migrate ``DB`` and provision the tenant the sends go to, on a plan without limits:
    (its schema, its API key, the web process's environment, the run's cache key prefix)."""
    setup_django(DB)
    from django.core.management import call_command

    from billing_stub.models import Plan
    from tenants.services import tenant_provision

    call_command("migrate", interactive=False, verbosity=0)
    result = tenant_provision(
        slug="bench",
        name="Bench",
        admin_email="b@bench.test",
        admin_password=secrets.token_urlsafe(16),
        plan_code="enterprise",
    )
    unlimited = Plan.objects.create(
        code="bench-unlimited", name="Unlimited", monthly_notification_quota=10**9,
        monthly_email_quota=10**9, api_requests_per_second=10**6, api_burst=10**6,
        websocket_connection_limit=10**6,
    )  # fmt: skip
    result.tenant.plan = unlimited
    result.tenant.save(update_fields=["plan"])  # through the ORM: clears the registry cache
    schema, key = result.tenant.schema_name, result.api_key
    # A cache key space of this run's own: tenant and user ids repeat in every run's database,
    # and an earlier run's unread generations (they live a week) would be this run's.
    prefix = f"herald-bench-{secrets.token_hex(4)}"
    env = {
        **os.environ, "DATABASE_URL": database_url(DB), "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SECRET_KEY": secrets.token_urlsafe(40), "DEBUG": "false", "PLATFORM_HOST": "localhost",
        "LOG_LEVEL": "WARNING", "CELERY_DEFAULT_QUEUE": BENCH_QUEUE, "CACHE_KEY_PREFIX": prefix,
    }  # fmt: skip
    return schema, key, env, prefix


def forget_run(prefix: str) -> None:
    """No worker runs: drop the email turns the sends asked for, and the run's cache keys."""
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    client.delete(BENCH_QUEUE)
    doomed = list(client.scan_iter(match=f"{prefix}:*", count=5000))
    for start in range(0, len(doomed), 1000):
        client.delete(*doomed[start : start + 1000])


def run(args: argparse.Namespace) -> None:
    schema, key, env, prefix = bench_tenant()
    with psycopg.connect(database_url("postgres")) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, PostgreSQL {pg_version}")  # fmt: skip

    with web_server(env) as (port, _pid):
        api = Api(port, "bench.localhost")
        api.timed("POST", "/api/v1/notifications", key,
                  {"type": "bench", "recipients": ["warm-up"], "message": "warm"})  # fmt: skip
        if args.only != "inbox":
            fan_out(api, key, schema, args.recipients, args.rounds)
            single_send(api, key, args.requests)
        if args.only != "send":
            inbox(api, key, schema, args)
    forget_run(prefix)


def inbox(api: Api, key: str, schema: str, args: argparse.Namespace) -> None:
    seeding = time.perf_counter()
    normal, heavy = seed_inbox(schema, args.total, args.heavy_unread, args.others)
    seconds = time.perf_counter() - seeding
    print(f"\nB. Inbox at {args.total:,} notifications (seeded in {seconds:.0f} s);"
          f" {args.requests} requests each, ms")  # fmt: skip
    tokens = {
        name: api.call("POST", f"/api/v1/users/{name}-user/token", key)[1]["token"]
        for name in ("normal", "heavy")
    }
    rows: list[tuple[str, list[float]]] = [
        ("HTTP floor: GET /api/v1/tenant", latencies(
            lambda: api.timed("GET", "/api/v1/tenant", key), args.requests)),
    ]  # fmt: skip
    plans = []
    for name, user in (("normal", normal), ("heavy", heavy)):
        token = tokens[name]
        rows.append((f"{name}: API inbox page (20)", latencies(
            lambda t=token: api.timed("GET", "/api/v1/me/notifications?limit=20", t),
            args.requests)))  # fmt: skip
        rows.append((f"{name}: API unread_count", latencies(
            lambda t=token: api.timed("GET", "/api/v1/me/notifications/unread_count", t),
            args.requests)))  # fmt: skip
        page, count, plan = bare_sql(schema, user, args.requests)
        rows.append((f"{name}: bare SQL page", page))
        rows.append((f"{name}: bare SQL count(*)", count))
        plans.append((name, plan))
    cache = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    cache.set("herald-bench:gen", "g1")
    cache.set("herald-bench:count", "100000")

    def cache_hit() -> float:
        started = time.perf_counter()
        cache.get("herald-bench:gen")
        cache.get("herald-bench:count")
        return time.perf_counter() - started

    rows.append(("cache hit: 2 Redis GETs", latencies(cache_hit, args.requests)))
    cache.delete("herald-bench:gen", "herald-bench:count")

    print(f"  {'':<36}{'p50':>8}{'p99':>8}")
    figures = {}
    for label, values in rows:
        figures[label] = (percentile(values, 50), percentile(values, 99))
        print(f"  {label:<36}{figures[label][0]:>8.2f}{figures[label][1]:>8.2f}")
    floor = figures["HTTP floor: GET /api/v1/tenant"][1]
    for name in ("normal", "heavy"):
        page = figures[f"{name}: API inbox page (20)"][1]
        bound = 2 * figures[f"{name}: bare SQL page"][1] + floor
        bare_page = figures[f"{name}: bare SQL page"][1]
        print(
            f"  {name}: page p99 {page:.2f} <= 2 x bare {bare_page:.2f} + floor {floor:.2f}"
            f" = {bound:.2f}: {'MET' if page <= bound else 'MISSED'}"
        )
    cached = figures["heavy: API unread_count"][1]
    bare = figures["heavy: bare SQL count(*)"][1]
    hit = figures["cache hit: 2 Redis GETs"][1]
    print(
        f"  heavy: cache hit p99 {hit:.2f} < bare count(*) p99 {bare:.2f}:"
        f" {'MET' if hit < bare else 'MISSED'}"
    )
    print(
        f"  heavy: API unread_count p99 {cached:.2f} < floor + bare count(*) {floor + bare:.2f}:"
        f" {'MET' if cached < floor + bare else 'MISSED'}"
    )
    for name, plan in plans:
        print(f"  plan ({name}): page: {plan[0]}\n  plan ({name}): count: {plan[1]}")


if __name__ == "__main__":
    main()
