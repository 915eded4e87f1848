"""API rate limits (django-ratelimit counters in Redis, shared by every web process).

Who is counted: an API key, an end user's token, an admin's token, or, for calls without a valid
credential, the client IP. The rate comes from the tenant's plan: a burst window (1 s, ``api_burst``
requests) and a sustained window (10 s, ``api_requests_per_second`` x 10). Login, sign-up, the
sign-up page's slug check and password-reset emails have fixed per-IP windows of their own
(``IP_SCOPES``; logins per IP and tenant), on top of the API rate.

Every API response carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` for
the tighter window; a limited call gets 429 ``rate_limited`` with ``Retry-After``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import get_usage
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from billing_stub.limits import limits_for

logger = logging.getLogger(__name__)

SUSTAINED_WINDOW = 10
ANONYMOUS_RATE = (10, 20)  # (per second, burst) for callers without a valid credential, per IP
LOGIN_LIMIT, LOGIN_PERIOD = 10, 60  # attempts per minute, per IP
# (limit, period in seconds) per client IP, by scope.
IP_SCOPES = {
    "login": (LOGIN_LIMIT, LOGIN_PERIOD),
    "signup": (5, 3600),  # tenants created per hour
    "signup-check": (60, 60),  # live slug checks of the sign-up page
    "password-reset": (5, 900),  # reset emails asked for
}
PASSWORD_RESET_PER_ADDRESS = (3, 3600)  # reset emails to one address of one tenant
# Scopes counted per client IP *and tenant*: the admins of one tenant behind an office NAT must
# not lock out those of another tenant behind the same address; guessing one tenant's passwords
# stays at LOGIN_LIMIT a minute.
PER_TENANT_SCOPES = {"login"}


@dataclass(frozen=True)
class Usage:
    limit: int
    remaining: int
    reset: int  # seconds until the window resets
    limited: bool

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _subject(request: HttpRequest) -> tuple[str, tuple[int, int]]:
    """Who is counted and at which (per-second, burst) rate."""
    credential = getattr(request, "credential", None)
    if credential is None:
        return f"ip:{_client_ip(request)}", ANONYMOUS_RATE
    limits = limits_for(credential.tenant)
    per_second = limits.api_requests_per_second
    rate = (per_second, max(limits.api_burst, per_second))
    if credential.kind == "api_key":
        return f"key:{credential.api_key.pk}", rate
    claims = credential.claims or {}
    return f"jwt:{credential.tenant.pk}:{claims.get('kind')}:{claims.get('sub')}", rate


def _count(request: HttpRequest, group: str, subject: str, limit: int, period: int) -> Usage | None:
    try:
        usage = get_usage(
            request,
            group=group,
            key=lambda _group, _request: subject,
            rate=(limit, period),
            increment=True,
        )
    except (redis.RedisError, OSError):
        logger.warning("Rate limiting skipped: the cache is unreachable", exc_info=True)
        return None
    if usage is None:
        return None
    return Usage(
        limit=limit,
        remaining=max(0, limit - usage["count"]),
        reset=max(1, usage["time_left"]),
        limited=usage["should_limit"],
    )


def measure(request: HttpRequest, *, scope: str | None = None) -> Usage | None:
    """Count this request and return the tighter window's usage (None when uncountable).

    ``scope`` names a per-IP window of ``IP_SCOPES``; without one, the API rate applies."""
    if scope in IP_SCOPES:
        limit, period = IP_SCOPES[scope]
        subject = f"ip:{_client_ip(request)}"
        tenant = getattr(request, "tenant", None)
        if scope in PER_TENANT_SCOPES and tenant is not None:
            subject = f"{subject}:tenant:{tenant.pk}"
        return _count(request, scope, subject, limit, period)
    subject, (per_second, burst) = _subject(request)
    windows = [
        _count(request, "api-burst", subject, burst, 1),
        _count(request, "api-sustained", subject, per_second * SUSTAINED_WINDOW, SUSTAINED_WINDOW),
    ]
    counted = [usage for usage in windows if usage is not None]
    if not counted:
        return None
    limited = [usage for usage in counted if usage.limited]
    if limited:
        return max(limited, key=lambda usage: usage.reset)
    return min(counted, key=lambda usage: usage.remaining)


def measure_address(request: HttpRequest, *, tenant_id: int, email: str) -> Usage | None:
    """Count one password-reset email to ``email`` of a tenant, whoever asks for it."""
    limit, period = PASSWORD_RESET_PER_ADDRESS
    subject = f"address:{tenant_id}:{email.strip().lower()}"
    return _count(request, "password-reset-address", subject, limit, period)


class PlanRateThrottle(BaseThrottle):
    """DRF throttle: the plan's rate per credential (see the module docstring)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        usage = measure(request._request, scope=getattr(view, "throttle_scope", None))
        request._request.rate_limit = usage  # type: ignore[attr-defined]  # for the headers middleware
        self.usage = usage
        return usage is None or not usage.limited

    def wait(self) -> float | None:
        return self.usage.reset if self.usage else None


class RateLimitHeadersMiddleware:
    """Adds the RateLimit headers to every API response, counting per IP the calls that were
    answered before DRF ran (rejected credentials, unknown hosts or paths)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/api/v1/"):
            return response
        usage = getattr(request, "rate_limit", None)
        if usage is None and not hasattr(request, "rate_limit"):
            ip = f"ip:{_client_ip(request)}"
            usage = _count(request, "api-unresolved", ip, ANONYMOUS_RATE[1], 1)
        if usage is not None:
            for name, value in usage.headers().items():
                response[name] = value
        return response
