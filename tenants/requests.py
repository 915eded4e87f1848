"""The request types views annotate with: what ``TenantResolutionMiddleware`` sets on a request.

For type checking only (django-stubs' way for attributes middleware adds): at run time a view
gets Django's ``HttpRequest`` or DRF's ``Request`` with these attributes. ``tenant`` is the
tenant the host or credential named; it is None only on the platform host without a credential,
which views behind a credential's permission class (``tenants.permissions``) never see.
"""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User
from herald.ratelimits import Usage
from tenants.authentication import EndUserPrincipal
from tenants.models import Tenant
from tenants.resolution import Credential


class PlatformHttpRequest(HttpRequest):
    """Any request past the middleware: ``tenant`` is None on the platform host.
    ``rate_limit`` is set by the rate limiter, when it has measured the request."""

    tenant: Tenant | None
    credential: Credential | None
    is_platform_host: bool
    rate_limit: Usage | None


class TenantHttpRequest(PlatformHttpRequest):
    tenant: Tenant


class AdminHttpRequest(TenantHttpRequest):
    """A dashboard request behind ``admin_required``: the user is the tenant's admin."""

    user: User


class PlatformRequest(Request):
    """DRF's request (it reads unknown attributes from the wrapped ``HttpRequest``)."""

    tenant: Tenant | None
    credential: Credential | None
    is_platform_host: bool
    _request: PlatformHttpRequest


class TenantRequest(PlatformRequest):
    tenant: Tenant
    _request: TenantHttpRequest


class EndUserRequest(TenantRequest):
    """Behind ``IsEndUser``: the user is an end user's token."""

    user: EndUserPrincipal  # type: ignore[assignment]  # DRF's user is whatever authenticated


class AdminRequest(TenantRequest):
    """Behind ``IsAdmin``: the user is the tenant's admin."""

    user: User
