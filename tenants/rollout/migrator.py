"""Migrate one schema at a time, with the migration graph built once per process.

Django's ``migrate`` reads every migration file, builds the graph and renders the project state
each time it runs: tens of milliseconds per schema before any SQL, seconds over thousands of
schemas. A ``SchemaMigrator`` does that once and, per schema, only reads the schema's applied
migrations, plans against the cached graph and starts from a clone of the cached pre-migration
state. Each schema's migrations and its ``done`` row commit in one transaction, under an
advisory lock on the schema, so two roll-outs never migrate a schema at the same time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import django
from django.apps import apps as global_apps
from django.db import connection, transaction
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState
from django.db.models.signals import post_migrate

from tenants.entry import _switching
from tenants.rollout import state

# The fast path sets ``MigrationLoader.applied_migrations`` per schema instead of rebuilding the
# graph (build_graph() does nothing else with it when no migration ``replaces`` others, checked
# below), and only its keys are read (migration_plan, _create_project_state), as of these
# Django versions; and ``post_migrate`` is sent as Django's emit_post_migrate_signal sends it,
# for the plan's apps only. tests/tenants/test_rollout.py fails loudly on other versions.
SUPPORTED_DJANGO = ((5, 2),)
_TABLE = MigrationRecorder.Migration._meta.db_table


class SchemaBusy(Exception):
    """Another roll-out holds the schema."""


@dataclass(frozen=True)
class SchemaResult:
    schema_name: str
    status: str  # state.DONE or state.FAILED
    migrations_applied: int
    seconds: float
    error: str = ""


def schema_lock_key(schema_name: str) -> str:
    return f"herald.rollout.schema:{schema_name}"


class SchemaMigrator:
    """Migrates schemas to every migration on disk. Use one per process (it owns a connection)."""

    def __init__(self, *, target: str, run_id: int | None, recheck: bool = False) -> None:
        self.target = target
        self.run_id = run_id
        self.recheck = recheck
        self.executor = MigrationExecutor(connection)
        self.loader: MigrationLoader = self.executor.loader
        self.fast = django.VERSION[:2] in SUPPORTED_DJANGO and not self.loader.replacements
        self.leaves = self.loader.graph.leaf_nodes()
        self._states: dict[frozenset[tuple[str, str]], ProjectState] = {}

    def migrate(self, schema_name: str) -> SchemaResult:
        """Bring ``schema_name`` to the target; never raises for a failure of the schema's own."""
        started = time.perf_counter()
        try:
            applied = self._migrate(schema_name)
        except Exception as exc:  # recorded and reported; the roll-out goes on
            connection.close_if_unusable_or_obsolete()  # a lost connection: open another
            _switching().set_schema_to_public()
            seconds = time.perf_counter() - started
            error = f"{type(exc).__name__}: {exc}".strip()
            state.record_schema(
                schema_name=schema_name, target=self.target, status=state.FAILED,
                run_id=self.run_id, seconds=seconds, error=error,
            )  # fmt: skip
            return SchemaResult(schema_name, state.FAILED, 0, seconds, error)
        _switching().set_schema_to_public()
        # A fresh backend every so many schemas: bounded memory.
        if _switching().schemas_exhausted():
            connection.close()
        return SchemaResult(schema_name, state.DONE, applied, time.perf_counter() - started)

    def _migrate(self, schema_name: str) -> int:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # For this transaction only (the caller's session stays as it was): seen in
                # pg_stat_activity; and no wait for the WAL flush at commit. A server crash can
                # lose the last moments' commits, but a schema's migrations and its `done` row
                # are one transaction: lost together, and the next roll-out migrates it again.
                cursor.execute("SET LOCAL application_name = 'herald-rollout'")
                cursor.execute("SET LOCAL synchronous_commit = off")
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [
                    schema_lock_key(schema_name)
                ])  # fmt: skip
            # Another roll-out may have finished it while this one waited for the lock. (Only a
            # shortcut: the plan below is read under the lock too.)
            if not self.recheck and state.schema_is_done(schema_name, self.target):
                return 0
            plan = self._plan(schema_name)
            if any(not migration.atomic for migration, _ in plan):
                raise NotImplementedError(
                    "a non-atomic migration cannot be rolled out per schema in one transaction"
                )
            started = time.perf_counter()
            if plan:
                post_state = self.executor.migrate(
                    self.leaves, plan=plan, state=self._pre_state().clone()
                )
                post_state.clear_delayed_apps_cache()
                _emit_post_migrate(post_state, plan)
            _switching().set_schema_to_public()
            state.record_schema(
                schema_name=schema_name, target=self.target, status=state.DONE,
                run_id=self.run_id, migrations_applied=len(plan),
                seconds=time.perf_counter() - started,
            )  # fmt: skip
            return len(plan)

    def _plan(self, schema_name: str) -> list[tuple[Migration, bool]]:
        # Django's MigrationRecorder finds its table by listing every visible table, a scan of
        # all of pg_class: at 10,000 tenants over a million rows, per schema. Ask for the one.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT to_regclass(%s)", [f"{connection.ops.quote_name(schema_name)}.{_TABLE}"]
            )
            has_table = cursor.fetchone()[0] is not None
        if not has_table:  # never fall back to public.django_migrations: make the schema's own
            _switching().set_schema(schema_name, include_public=False)
            MigrationRecorder(connection).ensure_schema()
        _switching().set_schema(schema_name)
        if not self.fast:
            self.loader.build_graph()
            self.loader.check_consistent_history(connection)
            return self.executor.migration_plan(self.leaves)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT app, name FROM {_TABLE}")
            # Django keeps Migration objects here; nothing this path calls reads them.
            self.loader.applied_migrations = {row: None for row in cursor.fetchall()}  # type: ignore[misc]
        self._check_consistent_history()
        return self.executor.migration_plan(self.leaves)

    def _check_consistent_history(self) -> None:
        """Django's check, without its table scan: no applied migration misses a parent."""
        applied = self.loader.applied_migrations
        for key in applied:
            if key not in self.loader.graph.nodes:
                continue
            for parent in self.loader.graph.node_map[key].parents:
                if parent.key not in applied:
                    raise InconsistentMigrationHistory(
                        f"Migration {key[0]}.{key[1]} is applied before its dependency "
                        f"{parent.key[0]}.{parent.key[1]}."
                    )

    def _pre_state(self) -> ProjectState:
        """The project state with this schema's applied migrations, rendered once per set."""
        key = frozenset(self.loader.applied_migrations)
        if key not in self._states:
            pre = self.executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined]  # private: see SUPPORTED_DJANGO
            pre.apps  # noqa: B018 -- render once; each schema starts from a clone
            self._states = {key: pre}  # schemas share one applied set; keep the last
        return self._states[key]


def _emit_post_migrate(post_state: ProjectState, plan: list[tuple[Migration, bool]]) -> None:
    """``post_migrate`` for the apps the plan migrated, in the schema's transaction (Django's
    content type and permission handlers skip tenant schemas: those tables are public only).
    Django's ``migrate`` sends it for every app, which was most of the cost of a schema (two
    queries per app per handler), for apps where nothing changed."""
    labels = {migration.app_label for migration, _ in plan}
    for app_config in global_apps.get_app_configs():
        if app_config.models_module is None or app_config.label not in labels:
            continue
        post_migrate.send(
            sender=app_config, app_config=app_config, verbosity=0, interactive=False,
            using=connection.alias, apps=post_state.apps, plan=plan,
        )  # fmt: skip
