"""Liveness and readiness probes. They answer on any Host header (see tenants.middleware)."""

from __future__ import annotations

import platform

import redis
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from herald.errors import error_body
from herald.redisio import new_redis


@csrf_exempt  # read-only: a POST is answered 405, not a CSRF page
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up. Also says which Python it runs (a shadowed stdlib would break this)."""
    return JsonResponse({"status": "ok", "python": platform.python_version()})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"; the message says which
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def _check_redis() -> str | None:
    client = new_redis()  # a connection of its own, made now: proves Redis reachable now
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


@csrf_exempt  # read-only: a POST is answered 405, not a CSRF page
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: PostgreSQL and Redis answer. 503 with what failed otherwise."""
    failures = {
        name: error
        for name, error in (("database", _check_database()), ("redis", _check_redis()))
        if error
    }
    checks = {name: failures.get(name, "ok") for name in ("database", "redis")}
    if failures:
        body = error_body(
            "unavailable", "Not ready: " + ", ".join(sorted(failures)) + " failed.", checks
        )
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "checks": checks})
