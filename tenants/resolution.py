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
from typing import Any, Literal

from django.conf import settings
from django.http.request import split_domain_port
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from tenants.keys import hash_key, looks_like_api_key
from tenants.models import ApiKey, Domain, Tenant

TENANT_CLAIM = "tenant_id"


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


@dataclass(frozen=True)
class Resolution:
    tenant: Tenant | None  # None: the platform host, without a credential
    credential: Credential | None
    is_platform_host: bool


def normalize_host(raw_host: str) -> str:
    """``Acme.Example.com:8000`` -> ``acme.example.com``; '' when the host is malformed."""
    domain, _port = split_domain_port(raw_host or "")
    return domain.lower().rstrip(".")


def tenant_for_host(host: str) -> Tenant | None:
    """The tenant a host serves; None for the platform host. Raises UnknownHost."""
    if host == settings.PLATFORM_HOST:
        return None
    if not host:
        raise UnknownHost("Missing or malformed Host header.")
    domain = Domain.objects.select_related("tenant", "tenant__plan").filter(domain=host).first()
    if domain is None:
        raise UnknownHost(f"No tenant is served at {host}.")
    return domain.tenant


def credential_for_token(token: str) -> Credential:
    """Verify a bearer token (a secret API key or a JWT). Raises InvalidCredential."""
    if not token:
        raise InvalidCredential("Empty bearer token.")
    if looks_like_api_key(token):
        key = (
            ApiKey.objects.select_related("tenant", "tenant__plan")
            .filter(key_hash=hash_key(token))
            .first()
        )
        if key is None:
            raise InvalidCredential("Unknown API key.")
        if not key.is_active:
            raise InvalidCredential("This API key has been revoked.")
        return Credential(kind="api_key", tenant=key.tenant, api_key=key)

    try:
        claims = dict(AccessToken(token).payload)  # verifies signature, expiry and token type
    except TokenError as exc:
        raise InvalidCredential(f"Invalid token: {exc}") from exc
    tenant_id = claims.get(TENANT_CLAIM)
    tenant = (
        Tenant.objects.select_related("plan").filter(pk=tenant_id).first()
        if isinstance(tenant_id, int)
        else None
    )
    if tenant is None:
        raise InvalidCredential("The token names no existing tenant.")
    return Credential(kind="jwt", tenant=tenant, claims=claims)


def resolve(*, host: str, token: str | None) -> Resolution:
    """Resolve the tenant for a host and an optional bearer token (see the module docstring)."""
    normalized = normalize_host(host)
    host_tenant = tenant_for_host(normalized)
    if host_tenant is not None and not host_tenant.is_active:
        raise TenantInactive(f"The tenant {host_tenant.slug!r} is deactivated.")

    credential = credential_for_token(token) if token is not None else None
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
