"""A shared cache of the tenant registry, for ``tenants.resolution``.

Every request, WebSocket handshake and task resolves its tenant; from PostgreSQL that is a query
for the host and another for the API key (about a third of a cheap API call). From here it is one
Redis ``MGET`` for both, shared by every process.

Entries (model instances with their tenant and plan loaded):

- ``registry:host:<host>``: the tenant served at a host, or ``UNKNOWN`` for a host that serves none
  (kept briefly, so a flood of random hosts does not reach the database);
- ``registry:key:<sha256>``: an API key row, revoked ones included (they must still say "revoked");
- ``registry:tenant:<id>``: a tenant, for tokens presented on the platform host;
- ``registry:used:<sha256>``: present for a minute after an API key's use is recorded (see
  ``tenants.services.api_key_mark_used``); read with the key, so that a recent use costs no
  round trip and recording one never drops the key's entry.

Saving or deleting a Tenant, Domain, ApiKey or Plan through the ORM clears the entries it affects,
at once and again after its transaction commits (so a request racing the commit cannot keep the
old row), and a ``migrate`` that applied anything to the public schema clears every entry (a data
migration may change these rows with ``QuerySet.update``). Code that changes them around the ORM
otherwise calls ``forget_tenants``. Entries also expire after ``REGISTRY_TTL``: the bound on a
change that did neither. It is ten minutes rather than one because an entry that expires costs the
next request to its tenant a database read (at 1,000 tenants, p50 16 ms against 10 ms for a cached
request: ``bench/tenants.py --cold-registry``), and with thousands of tenants, most of them idle
for minutes at a time, most requests would otherwise be that request.
When Redis is unreachable, lookups go to the database.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import redis
from django.core.cache import caches
from django.db import transaction

logger = logging.getLogger(__name__)

REGISTRY_TTL = 600
UNKNOWN_HOST_TTL = 10
UNKNOWN = "unknown"  # cached for a host that serves no tenant
CACHE_ERRORS = (redis.RedisError, OSError)


def host_entry(host: str) -> str:
    return f"registry:host:{host}"


def key_entry(key_hash: str) -> str:
    return f"registry:key:{key_hash}"


def tenant_entry(tenant_id: int) -> str:
    return f"registry:tenant:{tenant_id}"


def used_entry(key_hash: str) -> str:
    return f"registry:used:{key_hash}"


def get_many(entries: Iterable[str]) -> dict[str, Any]:
    """The cached entries among ``entries`` (one round trip); {} when Redis is unreachable."""
    wanted = [entry for entry in entries if entry]
    if not wanted:
        return {}
    try:
        return caches["registry"].get_many(wanted)
    except CACHE_ERRORS:
        logger.warning("Tenant registry cache unreachable; resolving from the database")
        return {}


def put(entry: str, value: Any, *, ttl: int = REGISTRY_TTL) -> None:
    put_many({entry: value}, ttl=ttl)


def put_many(values: dict[str, Any], *, ttl: int = REGISTRY_TTL) -> None:
    """Cache every entry of ``values`` (one round trip)."""
    if not values:
        return
    with contextlib.suppress(*CACHE_ERRORS):
        caches["registry"].set_many(values, ttl)


def claim(entry: str, *, ttl: int) -> bool:
    """Set ``entry`` unless it is there (``SET NX``): True for the one caller that set it.

    True as well when Redis is unreachable, so the caller does its work rather than skip it."""
    try:
        return bool(caches["registry"].add(entry, 1, ttl))
    except CACHE_ERRORS:
        return True


def forget(entries: Iterable[str]) -> None:
    """Clear ``entries`` now and again once the current transaction (if any) commits."""
    stale = sorted(set(entries))
    if not stale:
        return

    def clear() -> None:
        try:
            caches["registry"].delete_many(stale)
        except CACHE_ERRORS:
            logger.warning("Tenant registry cache unreachable; entries expire in %ss", REGISTRY_TTL)

    clear()
    transaction.on_commit(clear)


def forget_tenants(tenant_ids: Iterable[int]) -> None:
    """Clear every entry of these tenants: their hosts, their API keys and their id."""
    from tenants.models import ApiKey, Domain

    ids = list(tenant_ids)
    if not ids:
        return
    hosts = Domain.objects.filter(tenant_id__in=ids).values_list("domain", flat=True)
    key_hashes = ApiKey.objects.filter(tenant_id__in=ids).values_list("key_hash", flat=True)
    forget(
        [host_entry(host) for host in hosts]
        + [key_entry(key_hash) for key_hash in key_hashes]
        + [tenant_entry(tenant_id) for tenant_id in ids]
    )


def forget_after_migrate(
    *, plan: list[Any] | None = None, using: str = "default", **_: Any
) -> None:
    """``post_migrate``: clear every tenant's entries after migrations ran in the public schema.

    Tenant schemas hold none of the registry's rows, so their migrations (one run per schema)
    clear nothing."""
    from django.db import connections
    from django_tenants.utils import get_public_schema_name

    from tenants.models import Tenant

    schema = getattr(connections[using], "schema_name", get_public_schema_name())
    if not plan or schema != get_public_schema_name():
        return
    forget_tenants(Tenant.objects.using(using).values_list("pk", flat=True))


def connect_signals() -> None:
    """Clear entries whenever a registry row changes through the ORM (called from ``ready()``)."""
    from django.db.models.signals import post_delete, post_save, pre_save

    from billing_stub.models import Plan
    from tenants.models import ApiKey, Domain, Tenant

    def tenant_changed(sender: type, instance: Tenant, **kwargs: Any) -> None:
        forget_tenants([instance.pk])

    def domain_renaming(sender: type, instance: Domain, **kwargs: Any) -> None:
        if instance.pk:
            instance._registry_previous = list(  # type: ignore[attr-defined]  # for domain_renamed
                Domain.objects.filter(pk=instance.pk).values_list("domain", flat=True)
            )

    def domain_changed(sender: type, instance: Domain, **kwargs: Any) -> None:
        previous = getattr(instance, "_registry_previous", [])
        forget([host_entry(host) for host in [instance.domain, *previous]])

    def api_key_changed(sender: type, instance: ApiKey, **kwargs: Any) -> None:
        forget([key_entry(instance.key_hash)])

    def plan_changed(sender: type, instance: Plan, **kwargs: Any) -> None:
        forget_tenants(Tenant.objects.filter(plan=instance).values_list("pk", flat=True))

    for model, receiver in (
        (Tenant, tenant_changed),
        (Domain, domain_changed),
        (ApiKey, api_key_changed),
        (Plan, plan_changed),
    ):
        post_save.connect(receiver, sender=model, weak=False, dispatch_uid=f"registry-{model}")
        post_delete.connect(receiver, sender=model, weak=False, dispatch_uid=f"registry-{model}")
    pre_save.connect(domain_renaming, sender=Domain, weak=False, dispatch_uid="registry-rename")
