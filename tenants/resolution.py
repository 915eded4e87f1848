"""Tenant resolution: the one place that decides which tenant a request, connection or task is for.

HTTP (``tenants.middleware``), WebSocket and Celery all call ``resolve``. The rules:

- A tenant host (``<slug>.<PLATFORM_HOST>`` or a custom domain) fixes the tenant. A credential
  presented there must belong to that same tenant, else 401.
- On the platform host, a credential names its tenant (an API key's row, a JWT's ``tenant_id``
  claim); with no credential the request stays in the public schema.
- An unknown host is 404, a deactivated tenant 403, a bad credential 401.

Call with the connection in the public schema (the tenant registry lives there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.http.request import split_domain_port
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from tenants import registry_cache
from tenants.keys import hash_key, looks_like_api_key
from tenants.models import ApiKey, Domain, Tenant
from tenants.prepared import PreparedLookup

TENANT_CLAIM = "tenant_id"

# The registry reads of a cache miss, compiled once per connection (``tenants.prepared``): with
# thousands of mostly idle tenants, most requests to a tenant are such a miss.
_DOMAIN = PreparedLookup(
    lambda host: Domain.objects.select_related("tenant", "tenant__plan").filter(domain=host), "host"
)
_API_KEY = PreparedLookup(
    lambda key_hash: ApiKey.objects.select_related("tenant", "tenant__plan").filter(
        key_hash=key_hash
    ),
    "key_hash",
)
_API_KEY_AND_HOST = PreparedLookup(
    lambda key_hash, host: (
        ApiKey.objects.select_related("tenant", "tenant__plan")
        .annotate(serves_host=Exists(Domain.objects.filter(tenant=OuterRef("tenant"), domain=host)))
        .filter(key_hash=key_hash)
    ),
    "key_hash",
    "host",
)


class ResolutionError(Exception):
    status: int = 400
    code: str = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownHost(ResolutionError):
    status, code = 404, "not_found"


class TenantInactive(ResolutionError):
    status, code = 403, "forbidden"


class InvalidCredential(ResolutionError):
    status, code = 401, "unauthenticated"


class WrongTenant(InvalidCredential):
    """A valid credential presented on another tenant's host (401 over HTTP, 4403 on WS)."""


@dataclass(frozen=True)
class Credential:
    """A verified credential and the tenant it belongs to."""

    kind: Literal["api_key", "jwt"]
    tenant: Tenant
    api_key: ApiKey | None = None
    claims: dict[str, Any] | None = None
    # A use of the key within the last minute is recorded (``tenants.services.api_key_mark_used``).
    use_recorded: bool = False


@dataclass(frozen=True)
class Resolution:
    tenant: Tenant | None  # None: the platform host, without a credential
    credential: Credential | None
    is_platform_host: bool


def normalize_host(raw_host: str) -> str:
    """``Acme.Example.com:8000`` -> ``acme.example.com``; '' when the host is malformed."""
    domain, _port = split_domain_port(raw_host or "")
    return domain.lower().rstrip(".")


def tenant_for_host(host: str, cached: dict[str, Any] | None = None) -> Tenant | None:
    """The tenant a host serves; None for the platform host. Raises UnknownHost.

    ``cached``: entries already read from the registry cache (see ``resolve``)."""
    if host == settings.PLATFORM_HOST:
        return None
    if not host:
        raise UnknownHost("Missing or malformed Host header.")
    entry = registry_cache.host_entry(host)
    tenant = (cached or {}).get(entry)
    if tenant is None:
        domain = _DOMAIN.first(host=host)  # domains are unique: at most one row
        tenant = domain.tenant if domain is not None else registry_cache.UNKNOWN
        ttl = registry_cache.UNKNOWN_HOST_TTL if domain is None else registry_cache.REGISTRY_TTL
        registry_cache.put(entry, tenant, ttl=ttl)
    if tenant == registry_cache.UNKNOWN:
        raise UnknownHost(f"No tenant is served at {host}.")
    return cast("Tenant", tenant)  # cached or just read: a Tenant once UNKNOWN is ruled out


def _api_key(key_hash: str, cached: dict[str, Any]) -> ApiKey | None:
    entry = registry_cache.key_entry(key_hash)
    key = cached.get(entry)
    if key is None:
        key = _API_KEY.first(key_hash=key_hash)  # key hashes are unique
        if key is not None:
            registry_cache.put(entry, key)
    return key


def _tenant_by_id(tenant_id: int, cached: dict[str, Any]) -> Tenant | None:
    entry = registry_cache.tenant_entry(tenant_id)
    tenant = cached.get(entry)
    if tenant is None:
        tenant = Tenant.objects.select_related("plan").filter(pk=tenant_id).first()
        if tenant is not None:
            registry_cache.put(entry, tenant)
    return tenant


def _read_key_and_host(key_hash: str, host: str, cached: dict[str, Any]) -> None:
    """Neither the key nor the host is cached: read both in one query, and cache them.

    The common case is a key used on its own tenant's host, so the key's row comes with whether
    its tenant serves ``host``; if not (another tenant's host, an unknown one), the host is left
    to ``tenant_for_host``, which reads it on its own and says which error applies."""
    key = _API_KEY_AND_HOST.first(key_hash=key_hash, host=host)
    if key is None:
        return
    serves_host = key.__dict__.pop("serves_host")  # not part of the cached row
    found: dict[str, Any] = {registry_cache.key_entry(key_hash): key}
    if serves_host:
        found[registry_cache.host_entry(host)] = key.tenant
    registry_cache.put_many(found)
    cached.update(found)


def credential_for_token(
    token: str, host_tenant: Tenant | None = None, cached: dict[str, Any] | None = None
) -> Credential:
    """Verify a bearer token (a secret API key or a JWT). Raises InvalidCredential.

    ``host_tenant`` saves a lookup when a JWT names the tenant of the host it is presented on."""
    cached = cached or {}
    if not token:
        raise InvalidCredential("Empty bearer token.")
    if looks_like_api_key(token):
        key_hash = hash_key(token)
        key = _api_key(key_hash, cached)
        if key is None:
            raise InvalidCredential("Unknown API key.")
        if not key.is_active:
            raise InvalidCredential("This API key has been revoked.")
        return Credential(
            kind="api_key",
            tenant=key.tenant,
            api_key=key,
            use_recorded=registry_cache.used_entry(key_hash) in cached,
        )

    try:
        # simplejwt annotates ``token`` as a Token; it takes the encoded one.
        claims = dict(AccessToken(token).payload)  # type: ignore[arg-type]  # verifies signature, expiry and type
    except TokenError as exc:
        raise InvalidCredential(f"Invalid token: {exc}") from exc
    tenant_id = claims.get(TENANT_CLAIM)
    if not isinstance(tenant_id, int):
        tenant = None
    elif host_tenant is not None and host_tenant.pk == tenant_id:
        tenant = host_tenant
    else:
        tenant = _tenant_by_id(tenant_id, cached)
    if tenant is None:
        raise InvalidCredential("The token names no existing tenant.")
    return Credential(kind="jwt", tenant=tenant, claims=claims)


def resolve(*, host: str, token: str | None) -> Resolution:
    """Resolve the tenant for a host and an optional bearer token (see the module docstring)."""
    normalized = normalize_host(host)
    is_tenant_host = bool(normalized) and normalized != settings.PLATFORM_HOST
    key_hash = hash_key(token) if token and looks_like_api_key(token) else ""
    cached = registry_cache.get_many(
        [
            registry_cache.host_entry(normalized) if is_tenant_host else "",
            registry_cache.key_entry(key_hash) if key_hash else "",
            registry_cache.used_entry(key_hash) if key_hash else "",
        ]
    )
    if (
        is_tenant_host
        and key_hash
        and registry_cache.host_entry(normalized) not in cached
        and registry_cache.key_entry(key_hash) not in cached
    ):
        _read_key_and_host(key_hash, normalized, cached)
    host_tenant = tenant_for_host(normalized, cached)
    if host_tenant is not None and not host_tenant.is_active:
        raise TenantInactive(f"The tenant {host_tenant.slug!r} is deactivated.")

    credential = credential_for_token(token, host_tenant, cached) if token is not None else None
    if credential is not None:
        if host_tenant is not None and credential.tenant.pk != host_tenant.pk:
            raise WrongTenant("This credential is not valid on this host.")
        if not credential.tenant.is_active:
            raise TenantInactive(f"The tenant {credential.tenant.slug!r} is deactivated.")

    tenant = host_tenant or (credential.tenant if credential else None)
    return Resolution(tenant=tenant, credential=credential, is_platform_host=host_tenant is None)


def bearer_token(authorization_header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for other schemes."""
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()
