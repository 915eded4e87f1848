"""Run a roll-out: the template first, then every tenant schema over N worker processes.

The parent reads the durable record once, queues only the schemas not yet ``done`` at the
target, and forks N workers. Each worker opens its own connection, builds one
``SchemaMigrator`` and takes schemas from the queue until it is empty; results come back on a
second queue for progress lines and the summary. Workers die with the parent (Linux
``PR_SET_PDEATHSIG``), so a killed roll-out leaves nothing running: their open transactions roll
back, and the next run takes exactly the schemas that did not commit.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, connections

from tenants.rollout import state
from tenants.rollout.migrator import SchemaMigrator, SchemaResult
from tenants.schema import ensure_template_schema, template_schema_name

ROLLOUT_LOCK = "herald.rollout"


def default_parallel() -> int:
    from django.conf import settings

    # Past the cores, workers only contend (bench/rollout.py); and in a container the CPU count
    # is the node's, so a default of one per CPU is capped.
    return max(1, settings.TENANT_MIGRATE_PARALLEL or min(os.cpu_count() or 1, 8))


@dataclass
class Summary:
    run_id: int
    target: str
    parallel: int
    total: int  # tenant schemas
    already_current: int = 0  # recorded at the target before this run: not touched
    migrated: int = 0  # migrations applied by this run
    checked: int = 0  # had nothing to apply (e.g. cloned from a current template)
    migrations_applied: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # schema -> error
    template: SchemaResult | None = None
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.already_current + self.migrated + self.checked

    @property
    def ok(self) -> bool:
        return not self.failed and (self.template is None or self.template.status == state.DONE)

    def as_dict(self) -> dict[str, Any]:
        worked = self.migrated + self.checked + len(self.failed)
        return {
            "event": "rollout_summary",
            "run": self.run_id,
            "target": self.target,
            "parallel": self.parallel,
            "total": self.total,
            "already_current": self.already_current,
            "migrated": self.migrated,
            "checked": self.checked,
            "migrations_applied": self.migrations_applied,
            "failed": len(self.failed),
            # The first 50 (all of them are in tenants_rollout_schema, with their errors).
            "failed_schemas": dict(sorted(self.failed.items())[:50]),
            "seconds": round(self.seconds, 2),
            "schemas_per_second": round(worked / self.seconds, 1) if self.seconds else None,
        }


Emit = Callable[[dict[str, Any]], None]


def run_rollout(
    *, parallel: int, emit: Emit, progress_every: float = 5.0, recheck: bool = False
) -> Summary:
    """Bring the template and every tenant schema to the migrations on disk.

    Call after the public schema is migrated. ``recheck`` reads every schema's applied
    migrations even where the record says it is current (after changing a schema by hand).
    Holds a session advisory lock for the whole
    roll-out: a second one waits for it, then finds the schemas the first finished done.
    """
    started = time.perf_counter()
    state.ensure_tables()
    # The lock lives on a connection of its own: Django's is closed before the workers fork
    # (they must not share its socket), which would release a lock held there.
    lock = connection.get_new_connection(connection.get_connection_params())
    try:
        lock.autocommit = True
        if not lock.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [ROLLOUT_LOCK]).fetchone()[
            0
        ]:
            emit({"event": "rollout_waiting", "reason": "another roll-out is running"})
            lock.execute("SELECT pg_advisory_lock(hashtext(%s))", [ROLLOUT_LOCK])
        return _run(
            parallel=parallel, emit=emit, progress_every=progress_every, started=started,
            recheck=recheck,
        )  # fmt: skip
    finally:
        lock.close()  # releases the lock


def _run(
    *, parallel: int, emit: Emit, progress_every: float, started: float, recheck: bool
) -> Summary:
    target = state.migration_target()
    state.forget_dropped_schemas()
    schemas = state.tenant_schemas()
    current = set() if recheck else state.schemas_at_target(target)
    todo = [name for name in schemas if name not in current]
    parallel = max(1, min(parallel, len(todo) or 1))
    run_id = state.run_start(
        target=target, parallel=parallel, total=len(schemas),
        already_current=len(schemas) - len(todo),
    )  # fmt: skip
    summary = Summary(run_id=run_id, target=target, parallel=parallel, total=len(schemas))
    summary.already_current = len(schemas) - len(todo)
    emit({
        "event": "rollout_start", "run": run_id, "target": target, "total": len(schemas),
        "already_current": summary.already_current, "to_migrate": len(todo),
        "parallel": parallel,
    })  # fmt: skip

    # The template first: new tenants are cloned from it, and it is the canary of the
    # migrations. If it fails, no tenant schema is touched.
    ensure_template_schema()
    template = template_schema_name()
    if recheck or (template not in current and not state.schema_is_done(template, target)):
        migrator = SchemaMigrator(target=target, run_id=run_id, recheck=recheck)
        summary.template = migrator.migrate(template)
        emit(_result_event(summary.template))
        if summary.template.status != state.DONE:
            summary.seconds = time.perf_counter() - started
            state.run_finish(run_id, migrated=0, failed=0, already_current=summary.already_current)
            return summary

    if todo:
        _fan_out(todo, parallel, target, run_id, recheck, summary, emit, progress_every, started)
    summary.seconds = time.perf_counter() - started
    state.run_finish(
        run_id, migrated=summary.migrated + summary.checked, failed=len(summary.failed),
        already_current=summary.already_current,
    )  # fmt: skip
    return summary


def _result_event(result: SchemaResult) -> dict[str, Any]:
    event = {
        "event": "schema_failed" if result.status == state.FAILED else "schema_done",
        "schema": result.schema_name,
        "migrations_applied": result.migrations_applied,
        "seconds": round(result.seconds, 3),
    }
    if result.error:
        event["error"] = result.error
    return event


def _fan_out(
    todo: list[str], parallel: int, target: str, run_id: int, recheck: bool, summary: Summary,
    emit: Emit, progress_every: float, started: float,
) -> None:  # fmt: skip
    context = multiprocessing.get_context("fork")  # workers inherit the set-up Django
    tasks: Any = context.Queue()
    results: Any = context.Queue()
    for name in todo:
        tasks.put(name)
    for _ in range(parallel):
        tasks.put(None)
    connections.close_all()  # each worker opens its own
    workers = [
        context.Process(target=_worker, args=(tasks, results, target, run_id, recheck), daemon=True)
        for _ in range(parallel)
    ]
    for worker in workers:
        worker.start()
    received = 0
    last_progress = time.monotonic()
    while received < len(todo):
        result: SchemaResult | None
        try:
            result = results.get(timeout=0.5)
        except queue.Empty:
            if not any(worker.is_alive() for worker in workers):
                break  # every worker died: what is left stays pending for the next run
            result = None
        if result is not None:
            received += 1
            if result.status == state.DONE and result.migrations_applied:
                summary.migrated += 1
                summary.migrations_applied += result.migrations_applied
            elif result.status == state.DONE:
                summary.checked += 1
            else:
                summary.failed[result.schema_name] = result.error
                emit(_result_event(result))
        if time.monotonic() - last_progress >= progress_every or received == len(todo):
            last_progress = time.monotonic()
            emit(_progress(summary, len(todo), received, started))
    for worker in workers:
        worker.join(timeout=10)
    lost = len(todo) - received
    if lost:
        summary.failed["<workers>"] = f"{lost} schemas not reached: a worker process died"


def _progress(summary: Summary, todo: int, received: int, started: float) -> dict[str, Any]:
    elapsed = time.perf_counter() - started
    rate = received / elapsed if elapsed else 0.0
    return {
        "event": "rollout_progress",
        "done": summary.done,
        "total": summary.total,
        "failed": len(summary.failed),
        "schemas_per_second": round(rate, 1),
        "eta_seconds": round((todo - received) / rate) if rate else None,
    }


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: a killed parent's workers finish their queue and exit
        pass


def _worker(tasks: Any, results: Any, target: str, run_id: int, recheck: bool) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which kills us
    migrator = SchemaMigrator(target=target, run_id=run_id, recheck=recheck)
    try:
        while (name := tasks.get()) is not None:
            results.put(migrator.migrate(name))
    finally:
        connections.close_all()


def text_line(event: dict[str, Any]) -> str:
    """One line per event for a terminal: ``event key=value ...``."""
    name = event["event"]
    fields = " ".join(
        f"{key}={json.dumps(value) if isinstance(value, str | dict) else value}"
        for key, value in event.items()
        if key != "event" and value is not None
    )
    return f"{name} {fields}"
