"""Who may call what: server (API key or admin), admin only, end user only.

A caller that authenticated but holds the wrong kind of credential gets 403, not 401.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from tenants.authentication import EndUserPrincipal, ServicePrincipal


def _is_admin(user: Any) -> bool:
    return (
        bool(user)
        and not isinstance(user, ServicePrincipal | EndUserPrincipal)
        and bool(getattr(user, "is_authenticated", False))
    )


class IsServer(BasePermission):
    """A customer backend (secret API key) or a tenant admin."""

    message = "This endpoint needs a secret API key or an admin token."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, ServicePrincipal) or _is_admin(request.user)


class IsAdmin(BasePermission):
    message = "This endpoint needs an admin token."

    def has_permission(self, request: Request, view: Any) -> bool:
        return _is_admin(request.user)


class IsEndUser(BasePermission):
    message = "This endpoint needs an end-user token."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, EndUserPrincipal)


class IsAnyCaller(BasePermission):
    """Any credential of the tenant: a secret API key, an admin or an end user (for what every
    kind of caller may read, such as the web push public key)."""

    message = "This endpoint needs a secret API key, an admin token or an end-user token."

    def has_permission(self, request: Request, view: Any) -> bool:
        return IsServer().has_permission(request, view) or IsEndUser().has_permission(request, view)
