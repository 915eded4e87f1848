"""Provisioning many tenants at once: an import, a migration from another system, a load test.

Each tenant is what ``tenant_provision`` makes (row, schema, admin, domain, API key), whole or not
at all, but the work is shaped for throughput:

- tenants are written up to ``batch_size`` to a transaction, each inside its own savepoint, so
  one bad tenant (a slug taken meanwhile, a colliding domain) is reported and rolled back alone
  while the rest of its batch commits. Batches stay small: a transaction holds its locks until it
  ends, and each tenant of a batch adds about 1.6 lock table entries per relation of the
  template (its 110 new relations, toast included, and the objects its DDL depends on: about
  170 distinct objects in ``pg_locks``, 260 rows with their modes, measured when it had 109;
  the first tenant of a transaction also locks ~170 shared ones, catalogs and public tables). The
  shared lock table holds about ``max_locks_per_transaction`` (64 by default) times
  ``max_connections`` of them for the whole server, and a full table fails every session on it
  with "out of shared memory". So the batch is capped (``batch_limit``) to keep all ``jobs``
  together within half of that table. A commit also sends every backend of the server the
  catalog invalidations of all it created, about 2,000 messages per tenant, into a shared queue
  of 4,096: a larger batch resets more backends' caches, a smaller one commits more often
  (``docs/scaling.md``);
- each schema is the template's cached DDL in one round trip (``tenants/template_ddl.py``);
- ``jobs`` threads, each with its own database connection, work on disjoint tenants; each
  connection is replaced after ``DATABASE_MAX_SCHEMAS_PER_CONNECTION`` tenants, as everywhere.
  The work is CPU-bound, and every backend also replays the others' invalidations: on 2 cores,
  more than 2 jobs was no faster;
- no password is hashed: PBKDF2 costs hundreds of milliseconds by design, which would cap an
  import at a few tenants a second. An admin gets either an unusable password, and sets one through
  the dashboard's password reset page on the tenant's host, or a password hash the caller already
  has (e.g. exported from the system being migrated), which Django checks at sign-in and upgrades
  to the current hasher then.

Results come back in the input's order, each with its API key (shown once, never stored) or the
reasons it was not created.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.contrib.auth.hashers import identify_hasher
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction

from billing_stub.selectors import DEFAULT_PLAN_CODE
from tenants.entry import _switching
from tenants.schema import template_schema_name
from tenants.services import (
    ProvisionedTenant,
    _provision_one,
    _validate_provisioning,
    slug_normalize,
)
from tenants.template_ddl import template_script


@dataclass(frozen=True)
class BulkTenant:
    slug: str
    name: str
    admin_email: str
    # An encoded Django password hash (``pbkdf2_sha256$...``, ``argon2$...``), or "" for an
    # unusable password: the admin sets one through the password reset page.
    admin_password_hash: str = ""
    plan_code: str = DEFAULT_PLAN_CODE


@dataclass(frozen=True)
class BulkOutcome:
    slug: str
    provisioned: ProvisionedTenant | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


def tenant_provision_bulk(
    *, tenants: Sequence[BulkTenant], batch_size: int = 10, jobs: int = 1
) -> list[BulkOutcome]:
    """Create every valid tenant of ``tenants``; one outcome per input row, in order.

    ``batch_size`` is an upper bound: it is lowered to ``batch_limit(jobs)`` when that many
    tenants per transaction on ``jobs`` connections could fill the server's lock table.

    Call in the public schema. Raises TemplateOutOfDate (before writing anything) when
    ``migrate`` has not run. With ``jobs`` > 1 the work runs in that many threads, each on its own
    database connection, so it must not be called inside a transaction the threads cannot see.
    """
    template_script()  # fail fast on a stale template, and generate the script once
    batch_size = max(1, min(batch_size, batch_limit(jobs)))
    outcomes: list[BulkOutcome | None] = [None] * len(tenants)
    valid: list[int] = []
    for index, row in enumerate(tenants):
        slug = slug_normalize(row.slug)
        errors = _validate_provisioning(
            slug=slug,
            name=row.name,
            admin_email=(row.admin_email or "").strip(),
            admin_password=None,
            plan_code=row.plan_code,
        )
        if row.admin_password_hash:
            try:
                identify_hasher(row.admin_password_hash)
            except ValueError:
                errors["password"] = ["Not a password hash this deployment can check."]
        if errors:
            outcomes[index] = BulkOutcome(slug=slug, errors=errors)
        else:
            valid.append(index)

    def work(indexes: list[int]) -> None:
        for start in range(0, len(indexes), batch_size):
            with transaction.atomic():
                for index in indexes[start : start + batch_size]:
                    outcomes[index] = _provision_in_savepoint(tenants[index])
            if _switching().schemas_exhausted():
                # A backend keeps the catalog entries of every relation it created; a fresh one
                # every so many tenants keeps its memory, and its cache resets, small.
                connection.close()

    if jobs <= 1:
        work(valid)
    else:
        shares = [valid[job::jobs] for job in range(jobs)]
        failures: list[BaseException] = []

        def run(share: list[int]) -> None:
            try:
                work(share)
            except BaseException as exc:  # re-raised in the caller's thread
                failures.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run, args=(share,)) for share in shares]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
    return [outcome for outcome in outcomes if outcome is not None]


# The shared lock table's size, and the template's relations with their toast tables and indexes.
_LOCK_BUDGET_SQL = """
WITH template AS (SELECT oid, reltoastrelid FROM pg_class WHERE relnamespace = %(ns)s::regnamespace)
SELECT current_setting('max_locks_per_transaction')::int
       * (current_setting('max_connections')::int
          + current_setting('max_prepared_transactions')::int),
       (SELECT count(*) FROM template)
       + (SELECT count(*) FROM template WHERE reltoastrelid <> 0)
       + (SELECT count(*) FROM pg_index WHERE indrelid IN (SELECT reltoastrelid FROM template))
"""

# Distinct objects one more tenant in a transaction locks, per relation of the template (170 for
# 109 relations, measured), with a margin.
LOCKS_PER_TEMPLATE_RELATION = 2


def batch_limit(jobs: int) -> int:
    """The most tenants per transaction that ``jobs`` concurrent transactions may write while
    holding at most half of the server's shared lock table (the other half stays for the rest of
    the server: web requests, workers, other imports)."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_BUDGET_SQL, {"ns": connection.ops.quote_name(template_schema_name())})
        slots, relations = cursor.fetchone()
    per_tenant = max(1.0, relations * LOCKS_PER_TEMPLATE_RELATION)
    return max(1, int(slots / 2 / max(1, jobs) / per_tenant))


def _provision_in_savepoint(row: BulkTenant) -> BulkOutcome:
    slug = slug_normalize(row.slug)
    try:
        with transaction.atomic():
            provisioned = _provision_one(
                slug=slug,
                name=row.name,
                plan_code=row.plan_code,
                admin_email=row.admin_email.strip(),
                admin_password=None,
                admin_password_hash=row.admin_password_hash,
                use_spare=False,  # spares are for sign-ups: an import would drain them at once
            )
    except (IntegrityError, ValidationError):
        # Taken since validation (by another row of this import or a concurrent sign-up: the
        # unique index, or django-tenants' schema name check in save()), or its domain collides
        # with a custom domain.
        return BulkOutcome(slug=slug, errors={"slug": [f"'{slug}' is already taken."]})
    return BulkOutcome(slug=slug, provisioned=provisioned)
