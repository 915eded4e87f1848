"""DRF authentication on top of the credential the resolver already verified."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_mark_used


@dataclass(frozen=True)
class ServicePrincipal:
    """``request.user`` for a customer backend calling with a secret API key."""

    tenant: Tenant
    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    """Accepts ``Authorization: Bearer sk_...`` (resolved and checked by the tenant middleware)."""

    def authenticate(self, request: Request) -> tuple[ServicePrincipal, ApiKey] | None:
        credential = getattr(request._request, "credential", None)
        if credential is None or credential.kind != "api_key":
            return None
        api_key_mark_used(api_key=credential.api_key)
        return ServicePrincipal(
            tenant=credential.tenant, api_key=credential.api_key
        ), credential.api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="herald"'
