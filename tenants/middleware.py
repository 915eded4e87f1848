"""Routes each HTTP request to its tenant (the HTTP entry of ``tenants.entry``).

The tenant is also bound to the request's log lines and tagged on its Sentry events."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port

from herald.errors import error_response
from herald.observability import tag_tenant
from tenants.entry import request_tenant, to_public
from tenants.requests import PlatformHttpRequest
from tenants.resolution import ResolutionError, bearer_token, resolve

# Probes come from load balancers and kubelets with arbitrary Host headers (often a pod IP).
TENANTLESS_PATHS = frozenset({"/healthz", "/readyz"})
# The scraper's bearer token is the metrics token, not a tenant credential: the host alone
# decides (the platform host serves /metrics, a tenant host answers 404).
HOST_ONLY_PATHS = frozenset({"/metrics"})


def is_ip_address(host: str) -> bool:
    """``10.1.2.3:8000`` or ``[fd00::1]:8000``: a host no tenant can have (tenant hosts and
    custom domains are names)."""
    domain, _port = split_domain_port(host)
    try:
        ipaddress.ip_address(domain.strip("[]"))
    except ValueError:
        return False
    return True


class TenantResolutionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: PlatformHttpRequest) -> HttpResponse:
        request.tenant = None
        request.credential = None
        request.is_platform_host = False
        if request.path_info in TENANTLESS_PATHS:
            return self.get_response(request)

        to_public()
        raw_host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
        if request.path_info in HOST_ONLY_PATHS and is_ip_address(raw_host):
            # Prometheus scrapes each pod at its IP, which it also sends as the host (a scrape
            # cannot set another): that is the platform's own endpoint, never a tenant's.
            raw_host = settings.PLATFORM_HOST
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        try:
            token = None if request.path_info in HOST_ONLY_PATHS else bearer_token(authorization)
            resolution = resolve(host=raw_host, token=token)
        except ResolutionError as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="herald"'} if exc.status == 401 else None
            return error_response(exc.status, exc.message, code=exc.code, headers=headers)

        request.tenant = resolution.tenant
        request.credential = resolution.credential
        request.is_platform_host = resolution.is_platform_host
        if resolution.is_platform_host:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
        if resolution.tenant is None:
            tag_tenant(None)
            return self.get_response(request)
        with request_tenant(resolution.tenant):
            return self.get_response(request)
