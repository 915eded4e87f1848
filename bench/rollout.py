"""Rolling one new migration out to every tenant schema: total time, rate, and resume after a kill.

    .venv/bin/python bench/rollout.py [--schemas 500] [--parallel 1,2,4]

Uses a throwaway database ``herald_bench_rollout`` on the server of ``DATABASE_URL`` (default:
the PostgreSQL on 127.0.0.1), created and dropped by this script. The tenant schemas are made
by replaying the template's DDL as provisioning does (``tenants.template_ddl``), without the
admin, domain and API key it adds. The new migration is ``rollout_bench``'s
(a table with a foreign key and an index); the roll-out runs as ``manage.py tenants_migrate``
in a subprocess, as ``release`` runs it. Between measurements the migration is undone in every
schema so each one rolls out the same migration to all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

from benchdb import ROOT, database_url, drop_database, recreate_database, setup_django

BENCH_DB = "herald_bench_rollout"
APP = "rollout_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schemas", type=int, default=500, help="tenant schemas (default 500)")
    parser.add_argument(
        "--parallel", default=f"1,{os.cpu_count()},{2 * (os.cpu_count() or 1)}",
        help="worker processes to compare, comma-separated (default: 1, CPUs, 2x CPUs)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    levels = sorted({int(p) for p in args.parallel.split(",")})

    recreate_database(BENCH_DB)
    try:
        setup_django(BENCH_DB)
        _run(args.schemas, levels)
    finally:
        if not args.keep:
            drop_database(BENCH_DB)


def _run(count: int, levels: list[int]) -> None:
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    created = time.perf_counter()
    _create_schemas(count)
    made = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_class")
        relations = cursor.fetchone()[0]
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, PostgreSQL {server}"
    )
    print(
        f"Setup: migrate {created - started:.1f} s; {count} tenant schemas from the template's "
        f"DDL in {made - created:.1f} s ({relations} relations in pg_class)"
    )
    connection.close()

    # Nothing new, no record yet: every schema is read and planned (the first roll-out after
    # an upgrade to this code, or schemas made outside it). Then the same again: all recorded.
    check = _rollout(parallel=levels[-1], new_migration=False)
    skip = _rollout(parallel=levels[-1], new_migration=False)
    print(
        f"No new migration, schemas not yet recorded: {check['seconds']:.1f} s "
        f"({count / check['seconds']:.0f} schemas/s, parallel {levels[-1]}); "
        f"all recorded: {skip['seconds']:.2f} s"
    )

    print(f"One new migration (CreateModel with a foreign key and an index) to {count} schemas:")
    print(f"{'parallel':>9}{'seconds':>10}{'schemas/s':>11}{'10,000 at this rate':>22}")
    rates = {}
    for parallel in levels:
        summary = measure_rollout(parallel=parallel)
        assert summary["migrated"] == count, summary
        _check_new_table()
        rate = count / summary["seconds"]
        rates[parallel] = rate
        print(f"{parallel:>9}{summary['seconds']:>10.1f}{rate:>11.0f}{10_000 / rate:>20.0f} s")

    best = max(rates, key=rates.get)
    figures = measure_resume(parallel=best, count=count)
    print(
        f"Killed (SIGKILL) at half way, parallel {best}: {figures['done_at_kill']} schemas done "
        f"after {figures['killed_after_seconds']:.1f} s; the rerun skipped them and migrated the "
        f"other {figures['resumed_migrated']} in {figures['resume_seconds']:.1f} s "
        f"({figures['resumed_skipped']} skipped unread)"
    )
    print(
        f"Extrapolated to 10,000 schemas at parallel {best}: "
        f"{10_000 / rates[best]:.0f} s for the roll-out (target 600 s); "
        f"a roll-out killed at half way finishes in about {5_000 / rates[best]:.0f} s more"
    )


def measure_rollout(*, parallel: int) -> dict:
    """Roll the bench app's migration out to every tenant schema of ``BENCH_DB`` (undone
    first): the command's summary. For other benchmarks: set ``BENCH_DB`` to their database."""
    _undo_new_migration()
    summary = _rollout(parallel=parallel, new_migration=True)
    assert summary["failed"] == 0, summary
    return summary


def measure_resume(*, parallel: int, count: int) -> dict:
    """Roll the migration out to the ``count`` tenant schemas of ``BENCH_DB``, SIGKILL the
    command once half are done, and time the rerun that finishes the rest."""
    _undo_new_migration()
    killed_after, done_at_kill = _rollout_killed_half_way(parallel=parallel, count=count)
    resumed = _rollout(parallel=parallel, new_migration=True)
    assert resumed["failed"] == 0, resumed
    assert resumed["migrated"] == count - done_at_kill, (resumed, done_at_kill)
    return {
        "killed_after_seconds": killed_after,
        "done_at_kill": done_at_kill,
        "resume_seconds": resumed["seconds"],
        "resumed_migrated": resumed["migrated"],
        "resumed_skipped": resumed["already_current"],
    }


def _create_schemas(count: int) -> None:
    """``count`` tenants whose schemas are the template's DDL replayed (``tenants.template_ddl``,
    what provisioning does, without the admin, domain and key it adds)."""
    from django.db import transaction

    from billing_stub.selectors import plan_get
    from tenants.models import Tenant
    from tenants.template_ddl import replay_template

    plan = plan_get(code="free")
    for first in range(0, count, 50):
        with transaction.atomic():
            for n in range(first, min(first + 50, count)):
                replay_template(f"t_bench_{n:05d}")
    Tenant.objects.bulk_create(
        Tenant(slug=f"bench-{n:05d}", name=f"Bench {n}", plan=plan, schema_name=f"t_bench_{n:05d}")
        for n in range(count)
    )


def _command(parallel: int, new_migration: bool) -> tuple[list[str], dict[str, str]]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(BENCH_DB),
        "DJANGO_SETTINGS_MODULE": "rollout_bench_settings" if new_migration else "herald.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT), str(ROOT / "bench")]),
        "DEBUG": "true",
        "LOG_FORMAT": "plain",
    }
    argv = [sys.executable, str(ROOT / "manage.py"), "tenants_migrate", "--skip-public",
            "--format", "json", "--parallel", str(parallel), "--progress-every", "1"]  # fmt: skip
    return argv, env


def _rollout(*, parallel: int, new_migration: bool) -> dict:
    argv, env = _command(parallel, new_migration)
    result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"tenants_migrate failed:\n{result.stdout}\n{result.stderr}")
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (summary,) = [e for e in lines if e["event"] == "rollout_summary"]
    return summary


def _check_new_table() -> None:
    """The roll-out made the new model's table in the last tenant schema."""
    import psycopg

    with psycopg.connect(database_url(BENCH_DB), autocommit=True) as conn:
        (last,) = conn.execute(
            "SELECT schema_name FROM tenants_tenant ORDER BY id DESC LIMIT 1"
        ).fetchone()
        (table,) = conn.execute("SELECT to_regclass(%s)", [f"{last}.{APP}_reminder"]).fetchone()
    assert table is not None, f"{last}: no {APP}_reminder table"


def _done_at_target(cursor: psycopg.Cursor, target: str) -> int:
    cursor.execute(
        "SELECT count(*) FROM public.tenants_rollout_schema WHERE target = %s AND status = 'done'"
        " AND schema_name IN (SELECT schema_name FROM public.tenants_tenant)",
        [target],
    )
    return cursor.fetchone()[0]


def _rollout_killed_half_way(*, parallel: int, count: int) -> tuple[float, int]:
    import psycopg

    argv, env = _command(parallel, new_migration=True)
    log = Path(tempfile.mkstemp(prefix="rollout-bench-", suffix=".log")[1])
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    target = None
    with psycopg.connect(database_url(BENCH_DB), autocommit=True) as conn:
        while target is None:
            for line in log.read_text().splitlines():
                if line.startswith("{") and json.loads(line)["event"] == "rollout_start":
                    target = json.loads(line)["target"]
            time.sleep(0.05)
        cursor = conn.cursor()
        while _done_at_target(cursor, target) < count // 2:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        killed_after = time.perf_counter() - started
        process.wait()
        time.sleep(1)  # the workers die with it; their open transactions roll back
        done = _done_at_target(cursor, target)
    log.unlink()
    return killed_after, done


def _undo_new_migration() -> None:
    """Remove the bench app's table and migration records from every schema. (Its content type
    and permissions live in the public schema only, and stay.)"""
    import psycopg

    with psycopg.connect(database_url(BENCH_DB), autocommit=True) as conn:
        schemas = [
            row[0]
            for row in conn.execute(
                "SELECT table_schema FROM information_schema.tables "
                "WHERE table_name = 'django_migrations' AND table_schema <> 'public'"
            )
        ]
        for schema in schemas:
            conn.execute(
                f"DROP TABLE IF EXISTS {schema}.{APP}_reminder;"
                f"DELETE FROM {schema}.django_migrations WHERE app = '{APP}'"
            )
        conn.execute("DELETE FROM public.django_migrations WHERE app = %s", [APP])
        conn.execute("DELETE FROM public.tenants_rollout_schema")  # or they would be skipped


if __name__ == "__main__":
    main()
