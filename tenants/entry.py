"""How code enters a tenant: one entry per kind of caller, and the only code that switches schemas.

- **HTTP**: ``tenants.middleware.TenantResolutionMiddleware`` resolves the request
  (``tenants.resolution.resolve``) and serves it inside ``request_tenant``.
- **WebSocket**: ``run_in_schema`` runs each piece of a connection's database work on Channels'
  database thread in the tenant's schema. That thread is shared by every consumer of the
  process, so the schema is set for each call and reset after it, never left for the next.
- **Celery task**: ``tenant_for_task(tenant_id)`` looks the active tenant up by the id the
  message carries and enters it; ``in_tenant(tenant)`` enters a tenant the task already holds (a
  periodic task looping over due tenants).
- **Management command**: ``tenant_for_command(slug)`` takes what an operator types, a slug or
  a schema name, and refuses an unknown one with ``CommandError``.
- **Nested work** that already belongs to a tenant but runs elsewhere (a heartbeat thread, an
  after-commit callback, a read of a tenant's rows from public code): ``in_schema(schema_name)``.

Every entry but ``in_schema`` (which adds nothing to what its caller set) tags the errors and log
lines inside with the tenant's slug (``herald.observability``), and every one resets what it set
on the way out, on error too: a worker or a thread never carries one tenant's schema into the
next piece of work. ``in_schema`` restores the schema it found, so it nests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar, cast

from channels.db import database_sync_to_async
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Q
from django_tenants.utils import schema_context, tenant_context

from herald import gc_policy, logs
from herald.observability import tag_tenant, tenant_scope
from tenants.models import Tenant

T = TypeVar("T")


class _SchemaSwitching(Protocol):
    """What django-tenants (and ``tenants.postgresql_backend``, its subclass) add to Django's
    connection (django-tenants' backend ships no types)."""

    schema_name: str

    def set_tenant(self, tenant: Tenant, include_public: bool = True) -> None: ...
    def set_schema(self, schema_name: str, include_public: bool = True) -> None: ...
    def set_schema_to_public(self) -> None: ...
    def schemas_exhausted(self) -> bool: ...


def _switching() -> _SchemaSwitching:
    """The connection, typed as the tenant backend it is (``DATABASES`` names it). Besides the
    entries here, only ``tenants``' own roll-out migrator and bulk provisioning use it: they
    set and reset the schema per tenant within their own transactions."""
    return cast(_SchemaSwitching, connection)


def current_schema() -> str:
    """The schema the connection is in now (public outside every tenant)."""
    return _switching().schema_name


def to_public() -> None:
    """Back to the public schema, for code that starts there whatever the thread's last piece
    of work left: the HTTP middleware before it resolves a request, the widget's CORS
    middleware before it looks a host up."""
    _switching().set_schema_to_public()


@contextmanager
def request_tenant(tenant: Tenant) -> Iterator[None]:
    """An HTTP request's tenant: its schema, and its slug on the request's log lines and (for
    the request's own Sentry scope) its events; back to public at the end."""
    tag_tenant(tenant.slug)
    _switching().set_tenant(tenant)
    try:
        with logs.bound(tenant=tenant.slug):
            yield
    finally:
        _switching().set_schema_to_public()


async def run_in_schema(schema_name: str | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` on Channels' database thread in ``schema_name`` (public when None), then reset
    to public. For WebSocket consumers, whose log lines and events the connection tags itself."""

    def run() -> T:
        if schema_name is None:
            _switching().set_schema_to_public()
        else:
            _switching().set_schema(schema_name)
        try:
            return fn()
        finally:
            _switching().set_schema_to_public()

    gc_policy.work_started()  # no freeze while this call's objects are alive
    try:
        return await database_sync_to_async(run)()
    finally:
        gc_policy.work_finished()


def active_tenant(tenant_id: int) -> Tenant | None:
    """The tenant with this id, with its plan, unless it is gone or deactivated."""
    return Tenant.objects.select_related("plan").filter(pk=tenant_id, is_active=True).first()


@contextmanager
def in_tenant(tenant: Tenant) -> Iterator[None]:
    """The tenant's schema (restored on the way out), with errors and log lines inside reported
    under its slug, and only inside: a task looping over tenants never reports one tenant's
    error under another's name."""
    with tenant_scope(tenant.slug), tenant_context(tenant):
        yield


@contextmanager
def tenant_for_task(tenant_id: int) -> Iterator[Tenant | None]:
    """A Celery task's tenant, named by id in its message: inside its schema, the tenant (with
    its plan); None, in no tenant's schema, when it is gone or deactivated since the message was
    sent (the task then has nothing to do)."""
    tenant = active_tenant(tenant_id)
    if tenant is None:
        yield None
        return
    with in_tenant(tenant):
        yield tenant


@contextmanager
def tenant_for_command(slug_or_schema: str) -> Iterator[Tenant]:
    """A management command's tenant, by slug or schema name, active or not (an operator may
    need to look into a deactivated one). Raises ``CommandError`` for an unknown one."""
    tenant = (
        Tenant.objects.select_related("plan")
        .filter(Q(slug=slug_or_schema) | Q(schema_name=slug_or_schema))
        .first()
    )
    if tenant is None:
        raise CommandError(f"No tenant has the slug or schema {slug_or_schema!r}.")
    with in_tenant(tenant):
        yield tenant


@contextmanager
def in_schema(schema_name: str) -> Iterator[None]:
    """``schema_name``'s schema for work that already belongs to its tenant (see the module
    docstring); the schema found on entry is restored on the way out."""
    with schema_context(schema_name):
        yield
