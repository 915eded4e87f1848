"""Provisioning many tenants at once: an import, a migration from another system, a load test.

Each tenant is what ``tenant_provision`` makes (row, schema, admin, domain, API key), whole or not
at all, but the work is shaped for throughput:

- tenants are written ``batch_size`` to a transaction, each inside its own savepoint, so one
  bad tenant (a slug taken meanwhile, a colliding domain) is reported and rolled back alone while
  the rest of its batch commits. Batches stay small: a transaction holds a lock on each relation
  it creates (about 90 per tenant), and PostgreSQL's shared lock table holds
  ``max_locks_per_transaction`` (64 by default) times ``max_connections`` of them;
- each schema is the template's cached DDL in one round trip (``tenants/template_ddl.py``);
- ``jobs`` threads, each with its own database connection, work on disjoint tenants;
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
from django.db import IntegrityError, connections, transaction

from billing_stub.selectors import DEFAULT_PLAN_CODE
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

    Call in the public schema. Raises TemplateOutOfDate (before writing anything) when
    ``migrate`` has not run. With ``jobs`` > 1 the work runs in that many threads, each on its own
    database connection, so it must not be called inside a transaction the threads cannot see.
    """
    template_script()  # fail fast on a stale template, and generate the script once
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
            )
    except (IntegrityError, ValidationError):
        # Taken since validation (by another row of this import or a concurrent sign-up: the
        # unique index, or django-tenants' schema name check in save()), or its domain collides
        # with a custom domain.
        return BulkOutcome(slug=slug, errors={"slug": [f"'{slug}' is already taken."]})
    return BulkOutcome(slug=slug, provisioned=provisioned)
