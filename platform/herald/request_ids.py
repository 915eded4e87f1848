"""Request ids: ``X-Request-ID`` taken from the caller or made here, echoed, and in every log line.

A caller's id is kept when it is 1 to 128 characters of ``A-Z a-z 0-9 . _ : -`` (what load
balancers and tracing systems send); anything else, or none, gets a new one (32 hex digits).
Every response carries it back in ``X-Request-ID``, errors and refusals included: the middleware
sits first in ``MIDDLEWARE``, and the ASGI handler stamps the two refusals it answers before the
middleware runs (``herald.handlers``). WebSocket connections get one the same way (in the
handshake's answer too; ``notifications.consumers``).

For the length of the request the id is bound to its log lines (``herald.logs.bound``) and tagged
on its Sentry events, and a Celery task the request publishes carries it (``herald.celery_logs``).
The request then gets one line of its own in the ``herald.request`` log, with its method, path,
status, duration and tenant.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve

from herald import logs, observability

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# URL parameters that are secrets (an unsubscribe link's, a password reset link's): the logged
# path shows the parameter's name instead.
SECRET_URL_PARAMETERS = frozenset({"token"})
# Probes come every few seconds from every kubelet and load balancer: logged at DEBUG only.
QUIET_PATHS = frozenset({"/healthz", "/readyz"})

logger = logging.getLogger("herald.request")


def is_request_id(value: object) -> bool:
    """Whether ``value`` is a request id this service accepts from a caller."""
    return isinstance(value, str) and _SANE.fullmatch(value) is not None


def request_id_from(given: str | None) -> str:
    """``given`` when it is a sane request id, else a new one."""
    if given is not None and _SANE.fullmatch(given):
        return given
    return uuid.uuid4().hex


def scope_request_id(scope: Mapping[str, Any]) -> str:
    """The request id of an ASGI connection (HTTP or WebSocket), from its headers."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return request_id_from(value.decode("latin-1"))
    return request_id_from(None)


class RequestIdMiddleware:
    """First in ``MIDDLEWARE``: every response the chain gives carries the id, and every log
    line of the request (its own line last) names it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_from(request.headers.get(HEADER))
        # On the request's own Sentry scope (herald.handlers gives each request one).
        observability.tag_request_id(request_id)
        with logs.bound(request_id=request_id):
            response = self.get_response(request)
            response[HEADER] = request_id
            tenant = getattr(request, "tenant", None)
            log_request(
                method=request.method or "",
                path=loggable_path(request.path, getattr(request, "resolver_match", None)),
                status=response.status_code,
                started=started,
                tenant=tenant.slug if tenant is not None else None,
            )
        return response


def loggable_path(path: str, match: ResolverMatch | None = None) -> str:
    """``path`` (never a query string: secrets may be there) with the values of secret URL
    parameters replaced by their names. ``match``: the request's, else ``path`` is resolved
    against the tenant hosts' URLs (where the links with secrets are)."""
    if match is None:
        try:
            match = resolve(path, urlconf=settings.ROOT_URLCONF)
        except Resolver404:
            return path
    for name in SECRET_URL_PARAMETERS.intersection(match.kwargs):
        value = str(match.kwargs[name])
        if value:
            path = path.replace(value, f"<{name}>")
    return path


def log_request(
    *, method: str, path: str, status: int, started: float, tenant: str | None = None
) -> None:
    """The request's line in ``herald.request``; call where its request id is bound."""
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
    if not logger.isEnabledFor(level):
        return
    extra: dict[str, object] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
    }
    if tenant is not None:
        extra["tenant"] = tenant
    logger.log(level, "%s %s %s", method, path, status, extra=extra)
