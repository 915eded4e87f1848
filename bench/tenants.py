"""Herald with many tenants on one PostgreSQL (issue 20): what grows with the number of tenants.

    .venv/bin/python bench/tenants.py                    # 2,000 tenants (a quick run)
    .venv/bin/python bench/tenants.py --tenants 10000    # the figure that counts

Uses a throwaway database ``herald_bench_tenants`` on the server of ``DATABASE_URL`` (default: the
PostgreSQL on 127.0.0.1), created and dropped by this script. The population is built with the
bulk path (``tenants.bulk.tenant_provision_bulk``), whose rate is one of the figures; at each
checkpoint the sections below measure what they measure at that size.

Sections (each a function taking the running context; more are to come: API latency spread over
all tenants, PostgreSQL memory per backend, a migration rolled out to every schema, beat's cost,
database size per tenant):

- provisioning: one ``provision_tenant`` (``tenant_provision``, with the deployment's password
  hasher) p50 and p99 at each checkpoint, with the admin's password hash timed on its own; the
  schema step alone by replaying the template's DDL and, up to ``--clone-up-to`` tenants (it
  grows with them), by django-tenants' ``clone_schema`` as provisioning did before; and the bulk
  rate of each step of the population.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchdb import drop_database, recreate_database, setup_django, time_schema_step

BENCH_DB = "herald_bench_tenants"
BENCH_PASSWORD = secrets.token_urlsafe(16)  # throwaway tenants in a throwaway database


@dataclass
class Context:
    """What the sections share: the population and where each figure was taken."""

    tenants: int = 0  # tenants in the database now
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
    args = parser.parse_args()
    if args.checkpoints:
        checkpoints = sorted({int(n) for n in args.checkpoints.split(",")})
    else:
        checkpoints = sorted({10, args.tenants // 4, args.tenants // 2, args.tenants})

    recreate_database(BENCH_DB)
    try:
        setup_django(BENCH_DB)
        _run(args, checkpoints)
    finally:
        drop_database(BENCH_DB)


def _run(args: argparse.Namespace, checkpoints: list[int]) -> None:
    from django.core.management import call_command
    from django.db import connection

    context = Context()
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        print(f"PostgreSQL {cursor.fetchone()[0]}")
    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    print(f"initial migrate (public + template): {time.perf_counter() - started:.2f} s")

    sections: list[Callable[[Context, argparse.Namespace], None]] = [provisioning_at_checkpoint]
    for checkpoint in checkpoints:
        grow_to(context, args, checkpoint)
        for section in sections:
            section(context, args)
    print()
    print(f"Summary ({context.tenants} tenants):")
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
    started = time.perf_counter()
    outcomes = tenant_provision_bulk(tenants=rows, batch_size=args.batch_size, jobs=args.jobs)
    seconds = time.perf_counter() - started
    failed = [outcome for outcome in outcomes if outcome.provisioned is None]
    assert not failed, failed[:3]
    rate = count / seconds
    _bulk_rates.append((context.tenants, target, rate))
    context.say(
        f"bulk provisioning {context.tenants} -> {target} tenants: {count} in {seconds:.1f} s, "
        f"{rate:.1f} tenants/s ({args.jobs} jobs, {args.batch_size} per transaction)"
    )
    context.tenants = target


# --- section: provisioning ---------------------------------------------------------------------


def provisioning_at_checkpoint(context: Context, args: argparse.Namespace) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django_tenants.clone import CloneSchema

    from tenants.schema import template_schema_name
    from tenants.services import tenant_provision
    from tenants.template_ddl import replay_template

    at = context.tenants
    single = []
    for n in range(args.samples):
        slug = f"s{at}x{n}"
        started = time.perf_counter()
        tenant_provision(
            slug=slug, name=slug, admin_email=f"admin@{slug}.test", admin_password=BENCH_PASSWORD
        )
        single.append(time.perf_counter() - started)
    context.tenants += args.samples

    hashing = []
    for _ in range(5):
        started = time.perf_counter()
        make_password(BENCH_PASSWORD)
        hashing.append(time.perf_counter() - started)
    hash_median = statistics.median(hashing)

    replay = time_schema_step(replay_template, 10)
    p50, p99 = _percentile(single, 50), _percentile(single, 99)
    context.say(
        f"at {at} tenants: provision_tenant p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        f" ({args.samples} runs), of which the admin's password hash {hash_median * 1000:.0f} ms:"
        f" p50 without it {(p50 - hash_median) * 1000:.0f} ms;"
        f" schema step (DDL replay) p50 {statistics.median(replay) * 1000:.0f} ms"
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


def _percentile(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


if __name__ == "__main__":
    main()
