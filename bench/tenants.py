"""Herald with many tenants on one PostgreSQL (issue 20): what grows with the number of tenants.

    .venv/bin/python bench/tenants.py                    # 2,000 tenants (a quick run)
    .venv/bin/python bench/tenants.py --tenants 10000    # the figure that counts
    .venv/bin/python bench/tenants.py --sections '' --checkpoints 2000   # the bulk rate alone

Uses a throwaway database ``herald_bench_tenants_<pid>`` on the server of ``DATABASE_URL``
(default: the PostgreSQL on 127.0.0.1), created and dropped by this script. The population is
built with the bulk path (``tenants.bulk.tenant_provision_bulk``), whose rate is one of the
figures; at each checkpoint the sections below measure what they measure at that size.

Sections (``--sections`` picks a subset, none for the bulk rate alone; the population is always
built, in one bulk step per checkpoint, with ``--jobs`` connections and ``--batch-size`` tenants a
transaction, as ``provision_tenant --bulk`` does by default; the migration roll-out has its own
benchmark, ``bench/rollout.py``):

- provisioning (at each checkpoint): one ``provision_tenant`` (``tenant_provision``) p50 and
  p99, building its schema (the spare schema pool empty) and taking a spare (one built
  beforehand, untimed), each with the deployment's password hasher and with a trivial one (what
  the rest costs), with the admin's password hash timed on its own; the schema step alone by
  replaying the template's DDL and, up to ``--clone-up-to`` tenants (it grows with them), by
  django-tenants' ``clone_schema`` as provisioning did before; and the bulk rate of each step of
  the population.
- size (at each checkpoint): ``pg_database_size`` grown per tenant by each bulk step, and the sum
  of one idle schema's relations (``pg_total_relation_size`` of its tables: indexes and TOAST
  included).
- beat (at each checkpoint): beat's periodic tasks called in-process, as the worker runs them
  (``release_due_sends``, ``sweep_deliveries``, ``close_due_digests``, ms per call), with 0% and
  with 1% of tenants due (rows in the due-work index for each kind, with no work behind them: the
  scan and the visit, not the work, with the hints folded), then the 1-minute
  ``billing.rollup_usage`` once: whether a cycle costs per busy tenant or per tenant; and the
  operator's ``due_work_rebuild``, which visits every tenant, once.
- latency (at the final population): the Procfile's web process on a free port; ``GET
  /api/v1/tenant`` with the tenant's API key and ``GET /api/v1/me/notifications?limit=20`` with an
  end-user token (one send per tenant made the user and its notification), p50/p99 over
  ``--requests`` requests each (default: one per tenant, at least 1,000) spread over all tenants
  (each in turn, shuffled; with fewer requests than tenants, as many distinct tenants as
  requests) and over 2 tenants, interleaved in rounds; the ratio p99(all)/p99(2) against the
  1.5x target; the web process's RSS before and after, and its backends' largest private memory.
  ``--schemas-per-connection 200,500,0`` runs the measurement once per value of
  ``DATABASE_MAX_SCHEMAS_PER_CONNECTION`` on the same population (each with a web process of its
  own, the setup made once): what the connections' retirement costs in latency, against the
  memory it saves. ``--cold-registry`` clears the tenant
  registry cache (and the API keys' recorded uses) before each run over all tenants, so that every
  one of its requests pays what the first request to a tenant idle for longer than the cache
  keeps it pays; ``--idle-before`` waits before the runs.
- memory (at the final population): a fresh connection runs a small query in each of N tenant
  schemas (``SET search_path``, then a few tables), N = 10, 100, the per-connection limit
  (``DATABASE_MAX_SCHEMAS_PER_CONNECTION``), 1000 and all; then the backend's
  ``pg_backend_memory_contexts`` total and its RSS (``/proc/<pid>/status``, when PostgreSQL runs
  on this machine and the file is readable); the bound that the limit gives. The latency section
  also prints the largest private memory among the web process's own backends after its runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from benchdb import (
    Api,
    database_url,
    drop_database,
    recreate_database,
    setup_django,
    time_schema_step,
    web_server,
)

# One database per run: two runs on the same server (say, from two checkouts) never drop each
# other's.
BENCH_DB = f"herald_bench_tenants_{os.getpid()}"
BENCH_PASSWORD = secrets.token_urlsafe(16)  # throwaway tenants in a throwaway database
SECTIONS = ("provisioning", "size", "beat", "latency", "memory")
WEB_APP_NAME = "herald-bench-web"  # the web process's connections, as pg_stat_activity shows them


@dataclass
class Context:
    """What the sections share: the population and where each figure was taken."""

    tenants: int = 0  # tenants in the database now
    bulk: list[tuple[str, str, str]] = field(default_factory=list)  # (schema, domain, API key)
    lines: list[str] = field(default_factory=list)  # the report, printed at the end

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=2000, help="final population (2000)")
    parser.add_argument(
        "--checkpoints",
        help="populations to measure at, comma-separated (default: 10, 1/4, 1/2 and all)",
    )
    parser.add_argument("--samples", type=int, default=20, help="single provisions per checkpoint")
    parser.add_argument("--jobs", type=int, default=2, help="bulk provisioning's connections")
    parser.add_argument("--batch-size", type=int, default=10, help="bulk tenants per transaction")
    parser.add_argument(
        "--clone-up-to", type=int, default=300, help="time the old clone up to this many tenants"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--requests", type=int, help="per API latency figure (default: one per tenant, >= 1000)"
    )
    parser.add_argument(
        "--idle-before",
        type=float,
        default=0,
        help="seconds to wait between the latency section's setup and its runs (0)",
    )
    parser.add_argument(
        "--cold-registry",
        action="store_true",
        help="clear the tenant registry cache before each run over all tenants: every request"
        " finds its tenant idle for longer than the cache keeps it",
    )
    parser.add_argument(
        "--schemas-per-connection",
        help="latency: run once per DATABASE_MAX_SCHEMAS_PER_CONNECTION value, comma-separated"
        " (0: never retire; default: the deployment's setting), on the same population",
    )
    args = parser.parse_args()
    args.requests = args.requests or max(1000, args.tenants)
    try:
        args.schemas_per_connection = [
            int(value) for value in (args.schemas_per_connection or "").split(",") if value.strip()
        ]
    except ValueError:
        parser.error("--schemas-per-connection takes whole numbers, comma-separated")
    if any(value < 0 for value in args.schemas_per_connection):
        parser.error("--schemas-per-connection takes 0 (never retire) or more")
    args.sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.checkpoints:
        checkpoints = sorted({int(n) for n in args.checkpoints.split(",")})
    else:
        checkpoints = sorted({10, args.tenants // 4, args.tenants // 2, args.tenants})

    started = time.perf_counter()
    recreate_database(BENCH_DB)
    # The spare schema refills that sign-ups queue go to a queue of this run, deleted at the end:
    # nothing here consumes them, and no other deployment's worker may get this database's tasks.
    os.environ["CELERY_DEFAULT_QUEUE"] = BENCH_DB
    try:
        setup_django(BENCH_DB)
        _run(args, checkpoints)
    finally:
        drop_database(BENCH_DB)
        _drop_queue(BENCH_DB)
    print(f"Total runtime: {time.perf_counter() - started:.0f} s")


def _run(args: argparse.Namespace, checkpoints: list[int]) -> None:
    from django.core.management import call_command
    from django.db import connection

    context = Context()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    machine = (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {_memory_total()},"
        f" Python {platform.python_version()}, PostgreSQL {pg_version}"
    )
    print(machine)
    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    print(f"initial migrate (public + template): {time.perf_counter() - started:.2f} s")

    every: dict[str, Callable[[Context, argparse.Namespace], None]] = {
        "provisioning": provisioning_at_checkpoint,
        "size": idle_schema_size,
        "beat": beat_cost,
    }
    final: dict[str, Callable[[Context, argparse.Namespace], None]] = {
        "latency": api_latency,
        "memory": backend_memory,
    }
    for checkpoint in checkpoints:
        grow_to(context, args, checkpoint)
        for name, section in every.items():
            if name in args.sections:
                section(context, args)
    for name, section in final.items():
        if name in args.sections:
            section(context, args)
    print()
    print(f"Summary ({context.tenants} tenants; {machine}):")
    for line in context.lines:
        print(f"  {line}")


# --- population: the bulk path, timed ----------------------------------------------------------

_bulk_rates: list[tuple[int, int, float]] = []  # (from, to, tenants per second)


def grow_to(context: Context, args: argparse.Namespace, target: int) -> None:
    from tenants.bulk import BulkTenant, tenant_provision_bulk

    count = target - context.tenants
    if count <= 0:
        return
    rows = [
        BulkTenant(slug=f"b{n}", name=f"Bulk {n}", admin_email=f"admin@b{n}.example.com")
        for n in range(context.tenants, target)
    ]
    size_before = _database_size()
    started = time.perf_counter()
    outcomes = tenant_provision_bulk(tenants=rows, batch_size=args.batch_size, jobs=args.jobs)
    seconds = time.perf_counter() - started
    failed = [outcome for outcome in outcomes if outcome.provisioned is None]
    assert not failed, failed[:3]
    grown = _database_size() - size_before
    context.bulk += [
        (o.provisioned.tenant.schema_name, o.provisioned.domain, o.provisioned.api_key)
        for o in outcomes
        if o.provisioned is not None
    ]
    rate = count / seconds
    _bulk_rates.append((context.tenants, target, rate))
    context.say(
        f"bulk provisioning {context.tenants} -> {target} tenants: {count} in {seconds:.1f} s, "
        f"{rate:.1f} tenants/s ({args.jobs} jobs, {args.batch_size} per transaction);"
        f" database grew {grown / 2**20:.0f} MiB, {grown / count / 1024:.0f} KiB per idle tenant"
    )
    context.tenants = target


def _drop_queue(name: str) -> None:
    if "django.conf" in sys.modules:
        from herald.redisio import shared_redis

        shared_redis().delete(name)


def _database_size() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return cursor.fetchone()[0]


def _memory_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 2**20:.1f} GiB RAM"
    return "RAM unknown"


def _status_kib(pid: int, *fields: str) -> dict[str, int] | None:
    """Fields of ``/proc/<pid>/status`` in KiB (None when unreadable: another machine or user)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            found[key] = int(value.split()[0])
    return found


# --- section: provisioning ---------------------------------------------------------------------


def provisioning_at_checkpoint(context: Context, args: argparse.Namespace) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.test import override_settings
    from django_tenants.clone import CloneSchema

    from tenants.schema import template_schema_name
    from tenants.services import tenant_provision
    from tenants.spares import spares_fill
    from tenants.template_ddl import replay_template

    at = context.tenants
    # Each sample four ways: the pool empty (the schema built by DDL replay) or one spare in it
    # (built beforehand, untimed, as beat or the previous sign-up's refill would have), with the
    # deployment's password hasher, then with a trivial one: what provisioning costs besides the
    # hash, measured rather than a difference of two noisy medians.
    fast_hasher = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    runs: dict[tuple[int, bool], list[float]] = {}
    for n in range(args.samples):
        for pool, fast in ((0, False), (1, False), (0, True), (1, True)):
            spares_fill(target=pool)
            slug = f"s{at}x{n}p{pool}{'f' if fast else 'h'}"
            with override_settings(PASSWORD_HASHERS=fast_hasher) if fast else nullcontext():
                started = time.perf_counter()
                tenant_provision(
                    slug=slug,
                    name=slug,
                    admin_email=f"admin@{slug}.test",
                    admin_password=BENCH_PASSWORD,
                )
                runs.setdefault((pool, fast), []).append(time.perf_counter() - started)
    spares_fill(target=0)
    context.tenants += 4 * args.samples

    hashing = []
    for _ in range(5):
        started = time.perf_counter()
        make_password(BENCH_PASSWORD)
        hashing.append(time.perf_counter() - started)
    hash_median = statistics.median(hashing)

    replay = time_schema_step(replay_template, 10)
    for pool, how in ((0, "building its schema (DDL replay)"), (1, "taking a spare schema")):
        full, fast = runs[(pool, False)], runs[(pool, True)]
        context.say(
            f"at {at} tenants: provision_tenant {how} p50 {_percentile(full, 50) * 1000:.0f} ms,"
            f" p99 {_percentile(full, 99) * 1000:.0f} ms ({args.samples} runs; the admin's"
            f" password hash alone {hash_median * 1000:.0f} ms); with a trivial hasher"
            f" p50 {_percentile(fast, 50) * 1000:.0f} ms, p99 {_percentile(fast, 99) * 1000:.0f} ms"
        )
    context.say(
        f"at {at} tenants: schema step alone (DDL replay) p50"
        f" {statistics.median(replay) * 1000:.0f} ms"
    )
    if at <= args.clone_up_to:

        def clone(schema: str) -> None:
            CloneSchema().clone_schema(template_schema_name(), schema, set_connection=False)

        time_schema_step(clone, 1)  # installs django-tenants' clone function
        cloned = time_schema_step(clone, 3)
        context.say(
            f"at {at} tenants: schema step by django-tenants' clone_schema (before)"
            f" p50 {statistics.median(cloned) * 1000:.0f} ms"
        )
    connection.set_schema_to_public()


# --- section: database size per idle tenant ----------------------------------------------------


def idle_schema_size(context: Context, args: argparse.Namespace) -> None:
    """The sum of one idle (bulk-built, never used) schema's tables with their indexes and TOAST."""
    from django.db import connection

    schema = context.bulk[-1][0]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm')",
            [schema],
        )
        tables, total = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s",
            [schema],
        )
        relations = cursor.fetchone()[0]
    context.say(
        f"at {context.tenants} tenants: idle schema {schema}: {tables} tables, {relations}"
        f" pg_class rows, {total / 1024:.0f} KiB (tables + indexes + TOAST);"
        f" database {_database_size() / 2**20:.0f} MiB"
    )


# --- section: beat's cost ----------------------------------------------------------------------


def beat_cost(context: Context, args: argparse.Namespace) -> None:
    """Beat's periodic tasks, in-process, with 0% and 1% of tenants due."""
    from django.db import connection
    from django.utils import timezone

    from billing_stub.tasks import rollup_usage
    from notifications.services.deliveries import DUE_DELIVERIES
    from notifications.services.digests import DUE_DIGESTS
    from notifications.services.due_work import due_work_rebuild
    from notifications.services.sending import DUE_SENDS
    from notifications.tasks import close_due_digests, release_due_sends, sweep_deliveries
    from tenants.due import due_hint
    from tenants.models import DueWork, Tenant

    tasks = {
        DUE_SENDS: ("release_due_sends", release_due_sends),
        DUE_DELIVERIES: ("sweep_deliveries", sweep_deliveries),
        DUE_DIGESTS: ("close_due_digests", close_due_digests),
    }
    ids = list(Tenant.objects.exclude(schema_name="public").values_list("pk", flat=True))
    busy = random.Random(context.tenants).sample(ids, max(1, len(ids) // 100))
    calls = 5
    figures = []
    for label, due in (("0%", []), (f"1% ({len(busy)})", busy)):
        timings = []
        for kind, (_name, task) in tasks.items():
            runs = []
            for _ in range(calls):
                DueWork.objects.all().delete()
                for tenant_id in due:  # due a second ago, as their sends wrote it
                    due_hint(tenant_id=tenant_id, kind=kind, when=timezone.now())
                started = time.perf_counter()
                task()
                runs.append(time.perf_counter() - started)
                connection.set_schema_to_public()
            timings.append(statistics.median(runs) * 1000)
        figures.append(
            f"{label} busy: "
            + ", ".join(f"{tasks[k][0]} {t:.1f}" for k, t in zip(tasks, timings, strict=True))
            + f" (cycle {sum(timings):.1f})"
        )
    DueWork.objects.all().delete()
    started = time.perf_counter()
    due_work_rebuild()
    rebuild = time.perf_counter() - started
    connection.set_schema_to_public()
    started = time.perf_counter()
    rollup_usage()
    rollup = time.perf_counter() - started
    connection.set_schema_to_public()
    DueWork.objects.all().delete()
    context.say(
        f"at {context.tenants} tenants: beat ms per call (median of {calls}): "
        + "; ".join(figures)
        + f"; rollup_usage (every 1 min) {rollup * 1000:.0f} ms; not periodic: the operator's"
        f" `manage.py due_work_rebuild`, which visits every tenant, {rebuild * 1000:.0f} ms"
    )


# --- section: API latency spread over all tenants vs 2 -----------------------------------------


def api_latency(context: Context, args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.db import connection

    from billing_stub.models import Plan
    from tenants.models import Tenant
    from tenants.registry_cache import forget_tenants

    env = {
        **os.environ, "DATABASE_URL": database_url(BENCH_DB),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "SECRET_KEY": secrets.token_urlsafe(40), "DEBUG": "false", "PLATFORM_HOST": "localhost",
        "LOG_LEVEL": "WARNING", "PGAPPNAME": WEB_APP_NAME,
    }  # fmt: skip
    # The 2-tenant spread sends hundreds of requests per tenant per second: no plan's rate limit.
    unlimited = Plan.objects.create(
        code="bench-unlimited", name="Unlimited", monthly_notification_quota=10**9,
        monthly_email_quota=10**9, api_requests_per_second=10**6, api_burst=10**6,
        websocket_connection_limit=10**6,
    )  # fmt: skip
    Tenant.objects.exclude(schema_name="public").update(plan=unlimited)
    forget_tenants(Tenant.objects.values_list("pk", flat=True))
    connection.close()
    shuffled = context.bulk[:]
    random.Random(1).shuffle(shuffled)
    spread = shuffled[: min(len(shuffled), args.requests)]
    two = shuffled[:2]
    tokens: dict[str, str] = {}
    limits = args.schemas_per_connection or [settings.DATABASE_MAX_SCHEMAS_PER_CONNECTION]
    for limit in limits:
        web_env = {**env, "DATABASE_MAX_SCHEMAS_PER_CONNECTION": str(limit)}
        with web_server(web_env) as (port, pid):
            api = Api(port, "localhost")
            rss_start = _status_kib(pid, "VmRSS")
            if not tokens:
                setup = _latency_setup(api, spread, tokens)
                context.say(
                    f"at {context.tenants} tenants: API latency through the web process"
                    f" (1 uvicorn process; setup: one send + one end-user token in each of"
                    f" {len(spread)} tenants, {setup:.0f} s)"
                )
            if args.idle_before:  # every tenant idle that long, as most of 10,000 are at any time
                time.sleep(args.idle_before)
            results = _latency_runs(api, spread, two, tokens, args)
            rss_end = _status_kib(pid, "VmRSS", "VmHWM")
            backends = _web_backends()
        _latency_report(context, args, limit, results, len(spread), rss_start, rss_end, backends)


def _latency_setup(api: Api, spread: list[tuple[str, str, str]], tokens: dict[str, str]) -> float:
    """One send (which makes the end user and its notification) and one end-user token in each
    tenant of ``spread``; the tokens go into ``tokens`` by schema. Returns the seconds taken."""
    started = time.perf_counter()
    for schema, domain, key in spread:
        api.host = domain
        status, payload = api.call("POST", "/api/v1/notifications", key, {
            "type": "bench", "recipients": ["inbox-user"], "title": "Bench",
            "message": "A notification-shaped message of ordinary length.",
        })  # fmt: skip
        assert status < 300, (status, payload)
        status, payload = api.call("POST", "/api/v1/users/inbox-user/token", key)
        assert status < 300, (status, payload)
        tokens[schema] = payload["token"]
    return time.perf_counter() - started


def _latency_runs(
    api: Api,
    spread: list[tuple[str, str, str]],
    two: list[tuple[str, str, str]],
    tokens: dict[str, str],
    args: argparse.Namespace,
) -> dict[tuple[str, bool], list[float]]:
    """The cheap GET, then the inbox page: over all of ``spread`` and over ``two`` tenants,
    interleaved in 4 rounds. Milliseconds per request, by (spread, inbox)."""
    from django.core.cache import caches
    from django.db import connection

    from tenants import registry_cache
    from tenants.keys import hash_key
    from tenants.models import Tenant
    from tenants.registry_cache import forget_tenants

    def run(tenants: list[tuple[str, str, str]], count: int, inbox: bool) -> list[float]:
        timings = []
        for n in range(count):
            schema, domain, key = tenants[n % len(tenants)]
            api.host = domain
            if inbox:
                timings.append(
                    api.timed("GET", "/api/v1/me/notifications?limit=20", tokens[schema])
                )
            else:
                timings.append(api.timed("GET", "/api/v1/tenant", key))
        return [t * 1000 for t in timings]

    def forget(tenants: list[tuple[str, str, str]]) -> None:
        schemas = {schema for schema, _domain, _key in tenants}
        forget_tenants(Tenant.objects.filter(schema_name__in=schemas).values_list("pk", flat=True))
        caches["registry"].delete_many(
            [registry_cache.used_entry(hash_key(key)) for _schema, _domain, key in tenants]
        )
        connection.close()

    results: dict[tuple[str, bool], list[float]] = {}
    rounds = 4
    per_round = max(1, args.requests // rounds)
    for inbox in (False, True):
        run(two, 20, inbox)  # warm-up
        for round_ in range(rounds):
            offset = round_ * per_round
            rotated = spread[offset % len(spread) :] + spread[: offset % len(spread)]
            if args.cold_registry:
                forget([tenant for tenant in rotated[:per_round] if tenant not in two])
            results.setdefault(("all", inbox), []).extend(run(rotated, per_round, inbox))
            results.setdefault(("two", inbox), []).extend(run(two, per_round, inbox))
    return results


def _latency_report(
    context: Context,
    args: argparse.Namespace,
    limit: int,
    results: dict[tuple[str, bool], list[float]],
    spread: int,
    rss_start: dict[str, int] | None,
    rss_end: dict[str, int] | None,
    backends: str,
) -> None:
    rss = (
        f"web process RSS {rss_start['VmRSS'] / 1024:.0f} MiB at start,"
        f" {rss_end['VmRSS'] / 1024:.0f} MiB after (peak {rss_end['VmHWM'] / 1024:.0f} MiB)"
        if rss_start and rss_end
        else "web process RSS unreadable"
    )
    registry = (
        "cleared before each run over all tenants" if args.cold_registry else "as the runs leave it"
    )
    retired = f"after {limit} schemas" if limit else "never"
    context.say(
        f"at {context.tenants} tenants, connections retired {retired}"
        f" (DATABASE_MAX_SCHEMAS_PER_CONNECTION={limit}): {args.idle_before:.0f} s idle before"
        f" the runs; registry cache {registry}; {rss}"
    )
    labels = {
        False: "GET /api/v1/tenant (API key)",
        True: "GET /api/v1/me/notifications?limit=20 (end-user token)",
    }
    for inbox, label in labels.items():
        spread_all, spread_two = results[("all", inbox)], results[("two", inbox)]
        p99_all, p99_two = _percentile(spread_all, 99), _percentile(spread_two, 99)
        ratio = p99_all / p99_two
        context.say(
            f"at {context.tenants} tenants, retired {retired}: {label}, {len(spread_all)}"
            f" requests each: over {spread} tenants p50 {_percentile(spread_all, 50):.2f} ms,"
            f" p99 {p99_all:.2f} ms; over 2 tenants p50 {_percentile(spread_two, 50):.2f} ms,"
            f" p99 {p99_two:.2f} ms; p99 ratio {ratio:.2f}x (target <= 1.5x:"
            f" {'MET' if ratio <= 1.5 else 'MISSED'})"
        )
    context.say(f"at {context.tenants} tenants, retired {retired}: after the runs, {backends}")


def _web_backends() -> str:
    """The web process's PostgreSQL backends (its pool): how many, and the largest one's private
    memory, which the retirement of connections (tenants.postgresql_backend) bounds."""
    with psycopg.connect(database_url(BENCH_DB), autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [WEB_APP_NAME]
        )]  # fmt: skip
    private = [status["RssAnon"] for pid in pids if (status := _status_kib(pid, "RssAnon"))]
    if not private:
        return f"the web process holds {len(pids)} PostgreSQL connections (RSS unreadable)"
    return (
        f"the web process holds {len(pids)} PostgreSQL connections, the largest backend with"
        f" {max(private) / 1024:.1f} MiB private memory (RssAnon)"
    )


# --- section: PostgreSQL memory per backend -----------------------------------------------------


def backend_memory(context: Context, args: argparse.Namespace) -> None:
    from django.conf import settings

    limit = settings.DATABASE_MAX_SCHEMAS_PER_CONNECTION
    schemas = [schema for schema, _domain, _key in context.bulk]
    sizes = sorted({n for n in (0, 10, 100, limit, 1000) if n < len(schemas)} | {len(schemas)})
    figures = []
    bound = ""
    for count in sizes:
        with psycopg.connect(database_url(BENCH_DB), autocommit=True) as conn:
            for schema in schemas[:count]:
                conn.execute(f"SET search_path = {schema}")
                conn.execute("SELECT count(*) FROM notifications_notification").fetchone()
                conn.execute("SELECT id, external_id FROM notifications_enduser LIMIT 1").fetchall()
                conn.execute(
                    "SELECT id, key FROM notifications_notificationtype LIMIT 1"
                ).fetchall()
            conn.execute("SET search_path = public")
            contexts = conn.execute(
                "SELECT sum(total_bytes) FROM pg_backend_memory_contexts"
            ).fetchone()[0]
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            status = _status_kib(pid, "VmRSS", "RssAnon")
        rss = (
            f", RSS {status['VmRSS'] / 1024:.1f} MiB (anonymous {status['RssAnon'] / 1024:.1f})"
            if status
            else ""
        )
        figures.append(f"{count} schemas: contexts {contexts / 2**20:.1f} MiB{rss}")
        if count == limit:
            bound = f"contexts {contexts / 2**20:.1f} MiB{rss}"
    context.say(
        f"at {context.tenants} tenants: PostgreSQL backend memory after a connection queried 3"
        f" tables in N schemas: " + "; ".join(figures)
    )
    if limit:
        context.say(
            f"bound: Herald retires a connection once it has served"
            f" DATABASE_MAX_SCHEMAS_PER_CONNECTION={limit} distinct schemas, so a backend holds at"
            f" most what it holds at {limit} schemas"
            + (f": {bound}" if limit <= len(schemas) else "")
            + "; per server, times the connections of every process"
        )
    else:
        context.say("bound: none (DATABASE_MAX_SCHEMAS_PER_CONNECTION=0)")


def _percentile(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


if __name__ == "__main__":
    main()
