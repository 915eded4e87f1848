"""DRF authentication on top of the credential the tenant resolver already verified.

The middleware has checked signature, expiry and tenant; these classes only pick the principal
of their own credential kind, inside the tenant's schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_mark_used
from tenants.tokens import ADMIN, KIND_CLAIM, USER_GONE, TokenRejected, end_user_id

BEARER_REALM = 'Bearer realm="herald"'


@dataclass(frozen=True)
class ServicePrincipal:
    """``request.user`` for a customer backend calling with a secret API key."""

    tenant: Tenant
    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True

    @property
    def actor(self) -> str:
        return f"api_key:{self.api_key.prefix}"


class EndUserPrincipal:
    """``request.user`` for an end user's token: only ever their own data.

    The user's row is read on first use of ``end_user`` (401 when it is gone: the user was
    erased). A view that checks the user's existence in its own query may use ``end_user_id``
    alone and save that round trip.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, *, tenant: Tenant, end_user_id: int) -> None:
        self.tenant = tenant
        self.end_user_id = end_user_id

    @cached_property
    def end_user(self) -> Any:  # notifications.models.EndUser (tenant app; not imported here)
        from notifications.models import EndUser  # resolved in the tenant's schema

        end_user = EndUser.objects.filter(pk=self.end_user_id).first()
        if end_user is None:
            raise AuthenticationFailed(USER_GONE)
        return end_user


def _credential(request: Request) -> Any:
    return getattr(request._request, "credential", None)


class _BearerAuthentication(BaseAuthentication):
    def authenticate_header(self, request: Request) -> str:
        return BEARER_REALM


class ApiKeyAuthentication(_BearerAuthentication):
    """``Authorization: Bearer sk_...``."""

    def authenticate(self, request: Request) -> tuple[ServicePrincipal, ApiKey] | None:
        credential = _credential(request)
        if credential is None or credential.kind != "api_key":
            return None
        api_key_mark_used(api_key=credential.api_key, recorded=credential.use_recorded)
        return ServicePrincipal(
            tenant=credential.tenant, api_key=credential.api_key
        ), credential.api_key


def _jwt_claims(request: Request, kind: str) -> dict[str, Any] | None:
    """The verified claims of a JWT of this ``kind``; None for any other credential."""
    credential = _credential(request)
    if credential is None or credential.kind != "jwt" or credential.claims.get(KIND_CLAIM) != kind:
        return None
    claims: dict[str, Any] = credential.claims
    return claims


class AdminTokenAuthentication(_BearerAuthentication):
    """An admin access token from ``POST /api/v1/auth/token``."""

    def authenticate(self, request: Request) -> tuple[Any, dict[str, Any]] | None:
        claims = _jwt_claims(request, ADMIN)
        if claims is None:
            return None
        subject: Any = claims.get("sub")  # from JSON: whatever it is, the lookup decides
        user = get_user_model().objects.filter(pk=subject, is_active=True).first()
        if user is None:
            raise AuthenticationFailed("The admin of this token no longer exists or is inactive.")
        return user, claims


class EndUserTokenAuthentication(_BearerAuthentication):
    """An end-user token from ``POST /api/v1/users/{id}/token``."""

    def authenticate(self, request: Request) -> tuple[EndUserPrincipal, dict[str, Any]] | None:
        credential = _credential(request)
        try:
            user_id = end_user_id(credential)
        except TokenRejected as exc:
            raise AuthenticationFailed(str(exc)) from exc
        if user_id is None:
            return None
        principal = EndUserPrincipal(tenant=credential.tenant, end_user_id=user_id)
        return principal, credential.claims
