"""The roll-out of a new migration to a few dozen tenant schemas: resume after a kill, a failed
schema isolated, two roll-outs at once, and the summary and exit status.

The new migration belongs to a test-only tenant app (``rollout_probe``) that only the
roll-out's subprocesses install (``tests.tenants.rollout_settings``); each test removes what it
added from every schema afterwards, so the shared test database is as it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.db import connection
from django_tenants.utils import schema_exists

from billing_stub.selectors import plan_get
from tenants.models import Tenant
from tenants.rollout import state
from tenants.rollout.migrator import SUPPORTED_DJANGO
from tenants.template_ddl import replay_template
from tests.support.personas import tenant_drop
from tests.support.processes import ROOT, process_env, wait_until

SCHEMAS = 30
PROBE = "rollout_probe"


@pytest.fixture(scope="module")
def tenants(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[list]:
    """SCHEMAS tenants built from the template, committed; deleted with their schemas after."""
    with django_db_blocker.unblock():
        plan = plan_get(code="free")
        created = []
        for n in range(SCHEMAS):
            slug = f"roll-{n:02d}"
            replay_template(f"t_roll_{n:02d}")
            created.append(
                Tenant.objects.create(
                    slug=slug, name=slug, plan=plan, schema_name=f"t_roll_{n:02d}"
                )
            )
        try:
            yield created
        finally:
            connection.set_schema_to_public()
            _remove_probe()
            for tenant in created:
                tenant_drop(tenant)
            assert not schema_exists("t_roll_00")


def _remove_probe() -> None:
    """Undo the probe migration everywhere, and forget every roll-out's record."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name IN ('django_migrations', %s)",
            [PROBE],
        )
        for schema, table in cursor.fetchall():
            if table == PROBE:
                cursor.execute(f'DROP TABLE "{schema}".{PROBE}')
            else:
                cursor.execute(f'DELETE FROM "{schema}".django_migrations WHERE app = %s', [PROBE])
        state.ensure_tables()
        cursor.execute(f"TRUNCATE {state.SCHEMA_TABLE}, {state.RUN_TABLE}")


@pytest.fixture
def probe(tenants: list) -> Iterator[list[str]]:
    """The tenants' schema names, with the probe migration applied nowhere before and after."""
    _remove_probe()
    try:
        yield [tenant.schema_name for tenant in tenants]
    finally:
        _remove_probe()


def probe_env(sleep: float = 0.0) -> dict[str, str]:
    return process_env(
        DJANGO_SETTINGS_MODULE="tests.tenants.rollout_settings",
        ROLLOUT_PROBE_SLEEP=str(sleep),
        LOG_FORMAT="plain",
    )


def start(*extra: str, sleep: float = 0.0, out: Path) -> subprocess.Popen:
    env = probe_env(sleep)
    return subprocess.Popen(
        [sys.executable, "manage.py", "tenants_migrate", "--skip-public", "--format", "json",
         "--progress-every", "0.5", *extra],
        cwd=ROOT, env=env, stdout=out.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]


def summary_of(out: Path) -> dict:
    (summary,) = [e for e in events(out) if e["event"] == "rollout_summary"]
    return summary


def probe_done(target: str, schemas: list[str]) -> dict[str, state.SchemaRecord]:
    return {
        name: record
        for name, record in state.schema_records().items()
        if name in schemas and record.target == target and record.status == state.DONE
    }


def probe_applied(schema: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s', [PROBE])
        return cursor.fetchone()[0]


def rollout_backends() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, wait_event_type, wait_event, query FROM pg_stat_activity "
            "WHERE application_name = 'herald-rollout' AND datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return cursor.fetchall()


def test_the_fast_path_knows_this_django():
    # SchemaMigrator reuses one migration graph across schemas by setting the loader's applied
    # migrations; check what build_graph does with them before trusting a new Django.
    assert django.VERSION[:2] in SUPPORTED_DJANGO, (
        "Django changed: re-read MigrationLoader.build_graph and extend SUPPORTED_DJANGO"
    )


def test_a_killed_rollout_resumes_without_rerunning_finished_schemas(probe, tmp_path):
    first = start("--parallel", "2", sleep=0.2, out=tmp_path / "first.log")
    try:
        target = wait_until(
            lambda: next((e["target"] for e in events(tmp_path / "first.log")
                          if e["event"] == "rollout_start"), None),
            timeout=60, what="the roll-out to start",
        )  # fmt: skip
        wait_until(
            lambda: len(probe_done(target, probe)) >= SCHEMAS // 2,
            timeout=60, interval=0.02, what="half the schemas",
        )  # fmt: skip
        os.kill(first.pid, signal.SIGKILL)  # the command only: its workers must die with it
        first.wait(timeout=10)
        deadline = time.monotonic() + 20
        while rollout_backends() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not rollout_backends(), "the workers outlived the killed command"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    finished = probe_done(target, probe)
    assert SCHEMAS // 2 <= len(finished) < SCHEMAS
    # What committed is whole: each finished schema has the table; no other schema has it.
    for schema in probe:
        assert probe_applied(schema) == (1 if schema in finished else 0), schema

    second = start("--parallel", "2", out=tmp_path / "second.log")
    assert second.wait(timeout=120) == 0, (tmp_path / "second.log").read_text()
    summary = summary_of(tmp_path / "second.log")
    assert summary["already_current"] >= len(finished)
    assert summary["migrated"] == SCHEMAS - len(finished)
    assert summary["failed"] == 0
    after = probe_done(target, probe)
    assert set(after) == set(probe)
    for schema, record in finished.items():  # not touched again: same run, same time
        assert (after[schema].run_id, after[schema].finished_at) == (
            record.run_id,
            record.finished_at,
        )
    assert all(probe_applied(schema) == 1 for schema in probe)


def test_a_failed_schema_is_reported_and_the_others_migrate(probe, tmp_path):
    broken = probe[7]
    with connection.cursor() as cursor:  # the migration's table, already there
        cursor.execute(f'CREATE TABLE "{broken}".{PROBE} (id integer)')
    run = start("--parallel", "3", out=tmp_path / "first.log")
    assert run.wait(timeout=120) == 1
    output = (tmp_path / "first.log").read_text()
    summary = summary_of(tmp_path / "first.log")
    assert summary["failed"] == 1
    assert list(summary["failed_schemas"]) == [broken]
    assert 'relation "rollout_probe" already exists' in summary["failed_schemas"][broken]
    assert summary["migrated"] >= SCHEMAS - 1
    assert f"1 schemas failed to migrate: {broken}" in output
    record = state.schema_records()[broken]
    assert record.status == state.FAILED
    assert "already exists" in record.error
    assert probe_applied(broken) == 0  # rolled back whole
    assert all(probe_applied(schema) == 1 for schema in probe if schema != broken)

    # Fixed, then run again, as `release` does (plain `migrate`): only the failed schema is
    # retried.
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{broken}".{PROBE}')
    before = state.schema_records()
    log = tmp_path / "second.log"
    again = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT, env=probe_env(), stdout=log.open("w"), stderr=subprocess.STDOUT, timeout=120,
        check=False,
    )  # fmt: skip
    assert again.returncode == 0, log.read_text()
    (line,) = [x for x in log.read_text().splitlines() if x.startswith("rollout_summary ")]
    assert " migrated=1 " in line
    assert " failed=0 " in line
    after = state.schema_records()
    assert after[broken].status == state.DONE
    assert all(after[s].finished_at == before[s].finished_at for s in probe if s != broken)


def test_two_rollouts_at_once_migrate_each_schema_once(probe, tmp_path):
    runs = [start("--parallel", "2", sleep=0.02, out=tmp_path / f"run{n}.log") for n in range(2)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    summaries = [summary_of(tmp_path / f"run{n}.log") for n in range(2)]
    # One ran while the other waited for it, then found every schema current.
    assert sorted(s["migrated"] for s in summaries) == [0, summaries[0]["total"]]
    assert all(probe_applied(schema) == 1 for schema in probe)
    waited = [
        any(e["event"] == "rollout_waiting" for e in events(tmp_path / f"run{n}.log"))
        for n in range(2)
    ]
    assert waited.count(True) <= 1


def test_progress_lines_and_summary(probe, tmp_path):
    started = time.monotonic()
    run = start("--parallel", "2", sleep=0.05, out=tmp_path / "run.log")
    assert run.wait(timeout=120) == 0
    assert time.monotonic() - started < 60
    kinds = [e["event"] for e in events(tmp_path / "run.log")]
    assert kinds[0] == "rollout_start"
    assert kinds[-1] == "rollout_summary"
    progress = [e for e in events(tmp_path / "run.log") if e["event"] == "rollout_progress"]
    assert progress
    assert progress[-1]["done"] == progress[-1]["total"]
    assert set(progress[-1]) == {
        "event", "done", "total", "failed", "schemas_per_second", "eta_seconds"
    }  # fmt: skip
    summary = summary_of(tmp_path / "run.log")
    assert summary["total"] >= SCHEMAS
    assert summary["migrations_applied"] >= SCHEMAS
    assert summary["seconds"] > 0
