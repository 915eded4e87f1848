"""CORS for the API, so the widget can call it from a customer's web app.

Only on tenant hosts, only under ``/api/v1/``, and only for the origins the tenant lists in
``allowed_origins``, decided by the function the WebSocket checks ``Origin`` with
(``tenants.origins``). No credentials mode: the widget authenticates with a bearer token, never
cookies.

- A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered here, before tenant
  resolution and rate limiting: it carries no credential, so neither applies. An allowed origin
  gets 204 with the allowed methods and headers; any other gets the contract's 403 (or 404 for
  an unknown host) without CORS headers, which the browser treats as a refusal.
- Every other response under ``/api/v1/`` gets ``Vary: Origin``; when the origin is allowed, also
  ``Access-Control-Allow-Origin`` and ``Access-Control-Expose-Headers`` for the rate-limit headers
  and the request id.
  Errors included (a 401 must be readable, so the widget knows to fetch a new token).

The allowed origins come from the tenant row that resolution already loaded (from the registry
cache); only when resolution refused the request does this look the host up again, in that cache.
Sits first in ``MIDDLEWARE``.

Why not django-cors-headers (its ``check_request_enabled`` signal could take the tenant's origins):
its preflight is answered 200 with an empty body whatever the origin, only without CORS headers
for a refused one, where the contract answers 204 to an allowed origin and the error body (403
``forbidden``, 404 ``not_found`` for an unknown host) to any other; and its one signal both turns
CORS on for a path and allows an origin, so a per-tenant allow would have to be told apart from
the ``/api/v1/`` switch on every call. Kept small here instead.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from herald.errors import error_response
from tenants.entry import to_public
from tenants.origins import origin_allowed
from tenants.requests import PlatformHttpRequest
from tenants.resolution import UnknownHost, normalize_host, tenant_for_host

API_PREFIX = "/api/v1/"
ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
EXPOSE_HEADERS = "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, X-Request-ID"
# How long a browser may reuse a preflight. Short, so removing an origin soon stops even
# requests the browser would send without asking again (their responses are refused at once).
PREFLIGHT_MAX_AGE = "600"


def _raw_host(request: HttpRequest) -> str:
    return request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")


class CorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    # The tenant middleware, further down ``MIDDLEWARE``, sets the request's tenant attributes
    # while ``get_response`` runs; one that answers before it leaves them unset (see
    # ``_tenant_allows``).
    def __call__(self, request: PlatformHttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        origin = request.headers.get("Origin", "")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return self._preflight(request, origin)

        response = self.get_response(request)
        patch_vary_headers(response, ["Origin"])
        if origin and self._tenant_allows(request, origin):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response

    def _tenant_allows(self, request: PlatformHttpRequest, origin: str) -> bool:
        resolved = getattr(request, "tenant", None)
        if resolved is not None and not request.is_platform_host:
            return origin_allowed(origin, resolved)
        try:  # resolution refused the request (bad credential...): the host still names a tenant
            tenant = tenant_for_host(self._host(request))
        except UnknownHost:
            return False
        return tenant is not None and origin_allowed(origin, tenant)

    @staticmethod
    def _host(request: HttpRequest) -> str:
        to_public()
        return normalize_host(_raw_host(request))

    def _preflight(self, request: HttpRequest, origin: str) -> HttpResponse:
        try:
            tenant = tenant_for_host(self._host(request))
        except UnknownHost as exc:
            response: HttpResponse = error_response(404, exc.message)
        else:
            if tenant is None:
                response = error_response(
                    403, "Cross-origin calls go to the tenant's own host, not the platform host."
                )
            elif not origin_allowed(origin, tenant):
                response = error_response(
                    403, f"The origin {origin or '(none)'} is not in this tenant's allowed_origins."
                )
            else:
                response = HttpResponse(status=204)
                response["Access-Control-Allow-Origin"] = origin
                response["Access-Control-Allow-Methods"] = ALLOW_METHODS
                response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
                response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        patch_vary_headers(response, ["Origin"])
        return response
