"""Tenant-bound JWTs (simplejwt). Every token carries ``tenant_id`` and ``kind``.

The resolver (tenants.resolution) verifies the signature and checks ``tenant_id`` against the host
on every request; the authentication classes then accept only their own ``kind``, so an end-user
token never works where an admin token is needed, and the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tenants.models import Tenant
from tenants.resolution import TENANT_CLAIM, Credential

KIND_CLAIM = "kind"
END_USER = "end_user"
ADMIN = "admin"
USER_GONE = "The user of this token no longer exists."


class TokenRejected(Exception):
    pass


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


def end_user_token_issue(*, tenant: Tenant, end_user_pk: int, external_id: str) -> IssuedToken:
    """A short-lived token for one end user of one tenant (the widget's credential)."""
    token = AccessToken()
    token.set_exp(lifetime=timedelta(seconds=settings.END_USER_TOKEN_TTL_SECONDS))
    token[TENANT_CLAIM] = tenant.pk
    token[KIND_CLAIM] = END_USER
    token["sub"] = str(end_user_pk)
    token["uid"] = external_id
    return IssuedToken(token=str(token), expires_at=datetime.fromtimestamp(token["exp"], tz=UTC))


def admin_token_pair(*, tenant: Tenant, user_pk: int) -> dict[str, str]:
    refresh = RefreshToken()
    refresh[TENANT_CLAIM] = tenant.pk
    refresh[KIND_CLAIM] = ADMIN
    refresh["sub"] = str(user_pk)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def admin_refresh_claims(*, tenant: Tenant, refresh: str) -> tuple[RefreshToken, int]:
    """Verify an admin refresh token for this tenant; returns it and the admin's id."""
    try:
        token = RefreshToken(refresh)  # type: ignore[arg-type]  # simplejwt annotates it as a Token; it takes the encoded one
    except TokenError as exc:
        raise TokenRejected(f"Invalid refresh token: {exc}") from exc
    if token.get(TENANT_CLAIM) != tenant.pk or token.get(KIND_CLAIM) != ADMIN:
        raise TokenRejected("This refresh token is not valid on this host.")
    try:
        return token, int(token["sub"])
    except (KeyError, ValueError) as exc:
        raise TokenRejected("Malformed refresh token.") from exc


def end_user_id(credential: Credential | None) -> int | None:
    """The end user an end-user token is for; None for any other credential (or none). The one
    check of an end-user token, for HTTP (``tenants.authentication``) and the WebSocket alike;
    whether that user still exists is the caller's to read, in the tenant's schema. Raises
    TokenRejected (``USER_GONE``) for a token that names no user id."""
    if credential is None or credential.kind != "jwt" or credential.claims is None:
        return None
    if credential.claims.get(KIND_CLAIM) != END_USER:
        return None
    sub: Any = credential.claims.get("sub")
    try:
        return int(sub)
    except (TypeError, ValueError) as exc:
        raise TokenRejected(USER_GONE) from exc
