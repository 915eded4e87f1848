"""``tenants_migrate``: the public schema, the template, then every tenant schema in parallel.

Resumable (a killed run continues where it stopped and never re-runs a finished schema), one
failed schema does not stop the others, a progress line every few seconds and a summary at the
end; exit status 1 when any schema failed. ``migrate`` with no arguments does the same (see
``migrate_schemas``). See "Operating many tenants" in the README.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from tenants.rollout.engine import Summary, default_parallel, run_rollout, text_line


class Command(BaseCommand):
    help = "Migrate public, the template and every tenant schema: parallel and resumable."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--parallel", type=int, default=None,
            help="worker processes (default: TENANT_MIGRATE_PARALLEL, else one per CPU)",
        )  # fmt: skip
        parser.add_argument(
            "--progress-every", type=float, default=5.0, help="seconds between progress lines"
        )
        parser.add_argument(
            "--format", choices=["text", "json"], default="text",
            help="one line per event: `event key=value ...` or a JSON object",
        )  # fmt: skip
        parser.add_argument(
            "--recheck", action="store_true",
            help="read every schema's applied migrations, even those recorded as current",
        )  # fmt: skip
        parser.add_argument(
            "--skip-public", action="store_true",
            help="do not migrate the public schema first (it is already current)",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        parallel = options["parallel"] or default_parallel()
        if parallel < 1:
            raise CommandError("--parallel must be at least 1.")
        if not options["skip_public"]:
            call_command(
                "migrate_schemas", shared=True, interactive=False,
                verbosity=options["verbosity"], stdout=self.stdout, stderr=self.stderr,
            )  # fmt: skip
        summary = rollout(
            self, parallel, options["format"], options["progress_every"], options["verbosity"],
            recheck=options["recheck"],
        )  # fmt: skip
        if not summary.ok:
            raise CommandError(failure_message(summary), returncode=1)


def rollout(
    command: BaseCommand,
    parallel: int,
    fmt: str,
    progress_every: float,
    verbosity: int,
    *,
    recheck: bool = False,
) -> Summary:
    """Run the roll-out, writing one line per event; at verbosity 0 only failures."""

    def emit(event: dict[str, Any]) -> None:
        if verbosity < 1 and event["event"] != "schema_failed":
            return
        line = json.dumps(event) if fmt == "json" else text_line(event)
        command.stdout.write(line)
        command.stdout.flush()

    summary = run_rollout(
        parallel=parallel, emit=emit, progress_every=progress_every, recheck=recheck
    )
    emit(summary.as_dict())
    return summary


def failure_message(summary: Summary) -> str:
    if summary.template is not None and summary.failed == {} and not summary.ok:
        return (
            f"The template schema failed to migrate ({summary.template.error}); "
            "no tenant schema was touched."
        )
    names = ", ".join(sorted(summary.failed)[:20])
    more = f" and {len(summary.failed) - 20} more" if len(summary.failed) > 20 else ""
    return (
        f"{len(summary.failed)} schemas failed to migrate: {names}{more}. The others are "
        "migrated; fix the cause and run again: only the failed schemas are retried."
    )
