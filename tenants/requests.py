"""The request types views annotate with: what ``TenantResolutionMiddleware`` sets on a request.

For type checking only (django-stubs' way for attributes middleware adds): at run time a view
gets Django's ``HttpRequest`` or DRF's ``Request`` with these attributes. ``tenant`` is the
tenant the host or credential named; it is None only on the platform host without a credential,
which views behind a credential's permission class (``tenants.permissions``) never see.
"""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.request import Request

from tenants.models import Tenant
from tenants.resolution import Credential


class TenantHttpRequest(HttpRequest):
    tenant: Tenant
    credential: Credential | None
    is_platform_host: bool


class PlatformHttpRequest(HttpRequest):
    """A request that may be on the platform host: ``tenant`` is None there."""

    tenant: Tenant | None
    credential: Credential | None
    is_platform_host: bool


class TenantRequest(Request):
    """DRF's request (it reads unknown attributes from the wrapped ``HttpRequest``)."""

    tenant: Tenant
    credential: Credential | None
    is_platform_host: bool
    _request: TenantHttpRequest
