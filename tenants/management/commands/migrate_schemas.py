"""``migrate_schemas`` (and ``migrate``, which is the same command): public, template, tenants.

A plain run (no app label, migration name, ``--schema``, ``--fake``, ``--plan``, ``--check`` or
``--prune``), which is what ``release`` does, migrates the public schema as Django does and then
rolls the migrations out to the template and every tenant schema with ``tenants.rollout``:
resumable, in parallel (``TENANT_MIGRATE_PARALLEL``), a failed schema reported without stopping
the others (exit status 1). Any other run is django-tenants' own, plus the template when it
migrates all tenant schemas: django-tenants never migrates the template that new tenants are
cloned from.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django_tenants.management.commands.migrate_schemas import (
    GET_EXECUTOR_FUNCTION,
    MigrateSchemasCommand,
)

from tenants.schema import ensure_template_schema, template_schema_name
from tenants.template_ddl import forget_template_script

_SPECIAL = ("app_label", "migration_name", "schema_name", "fake", "fake_initial", "plan",
            "check_unapplied", "prune")  # fmt: skip


class Command(MigrateSchemasCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        plain = not any(options.get(name) for name in _SPECIAL) and not options.get("executor")
        if plain and not options.get("shared"):
            self._rollout(*args, **options)
            return
        super().handle(*args, **options)  # type: ignore[no-untyped-call]  # django-tenants' is unannotated
        if self.sync_tenant and not options.get("schema_name"):
            ensure_template_schema()
            executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)  # type: ignore[misc]  # set on import
            executor.run_migrations(tenants=[template_schema_name()])
            forget_template_script()  # other processes see the new migration state by its key

    def _rollout(self, *args: Any, **options: Any) -> None:
        from tenants.management.commands.tenants_migrate import failure_message, rollout
        from tenants.rollout.engine import default_parallel

        if not options.get("tenant"):
            super().handle(*args, **{**options, "shared": True, "tenant": False})  # type: ignore[no-untyped-call]  # as above
        parallel = options.get("parallel") or default_parallel()
        summary = rollout(self, parallel, "text", 5.0, int(options.get("verbosity", 1)))
        forget_template_script()
        if not summary.ok:
            raise CommandError(failure_message(summary), returncode=1)
