"""Prometheus metrics and the ``GET /metrics`` endpoint of the platform host.

With ``PROMETHEUS_MULTIPROC_DIR`` set (before any process starts, to an empty directory: an
emptyDir in Kubernetes), prometheus-client writes every process's samples to files there and
``/metrics`` sums them, so forked web workers answer as one. The entry point
(``bin/herald-process``) empties the directory before it starts the web server, and each scrape
first drops the live gauges of web workers that are gone (uvicorn replaced them), so a dead
worker's WebSocket count is never summed.

Labels are bounded: HTTP by method, route pattern and status code, deliveries by channel and
status; never a tenant or user id, but for the opt-in ``METRICS_TOP_TENANTS`` gauge, which names
at most that many tenants.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from herald.errors import error_response

T = TypeVar("T")

HTTP_REQUESTS = Counter(
    "herald_http_requests_total",
    "HTTP requests answered, by method, route pattern and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "herald_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route pattern.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
NOTIFICATIONS_CREATED = Counter(
    "herald_notifications_created_total",
    "Notifications accepted: one per recipient of each new send (replays not counted).",
)
DELIVERIES = Counter(
    "herald_deliveries_total",
    "Delivery outcomes stored, by channel and final status (a retry scheduled is not counted).",
    ["channel", "status"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "herald_websocket_connections",
    "WebSocket connections open now, summed over live processes.",
    multiprocess_mode="livesum",
)
WEBSOCKET_FRAMES = Counter(
    "herald_websocket_frames_sent_total",
    "Frames written to WebSocket clients (notifications, unread counts, replies).",
)
TURNS_QUEUED = Counter(
    "herald_turns_queued_total", "Email turns put on the Celery queue (one batch each)."
)
TURNS_STARTED = Counter(
    "herald_turns_started_total",
    "Turns taken off the queue: run, or superseded (their slot was given to another turn).",
    ["result"],
)

# Methods outside this set share one label value, so a client cannot mint new series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return "/" + match.route if match.route else (match.view_name or "unmatched")


class HttpMetricsMiddleware:
    """Counts and times every response (first in ``MIDDLEWARE``: errors answered by later
    middleware are counted too)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "other"
        route = _route(request)
        HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
        HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)
        return response


class _Every(Generic[T]):
    """A query's answer, asked again at most every ``ttl`` seconds (by whichever thread of the
    process scrapes first); ``empty`` when the database cannot answer."""

    def __init__(self, query: Callable[[], T], empty: T, ttl: float = 15.0) -> None:
        self._query, self._empty, self.ttl = query, empty, ttl
        self._cached: tuple[float, T] = (-ttl, empty)
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            at, value = self._cached
            if time.monotonic() - at >= self.ttl:
                try:
                    value = self._query()
                except DatabaseError:
                    value = self._empty
                self._cached = (time.monotonic(), value)
            return value


def _due_backlog() -> dict[str, tuple[int, float]]:
    from tenants.due import due_backlog

    return due_backlog()


class BacklogCollector(Collector):
    """Work waiting, from the public due index (``tenants.due.due_backlog``): per kind
    (``send``, ``digest``, ``email``), the tenants with work due and the age of the most overdue.
    One query per scrape at most every 15 seconds, on whichever process answers; cost does not
    grow with the number of tenant schemas. 0 when the database cannot answer."""

    def __init__(self) -> None:
        self._backlog: _Every[dict[str, tuple[int, float]]] = _Every(_due_backlog, empty={})

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog = self._backlog.get()
        depth = GaugeMetricFamily(
            "herald_queue_tenants_due", "Tenants with work of a kind due now.", labels=["kind"]
        )
        age = GaugeMetricFamily(
            "herald_queue_oldest_due_age_seconds",
            "How long the most overdue tenant's work of a kind has waited.",
            labels=["kind"],
        )
        for kind, (tenants, oldest) in sorted(backlog.items()):
            depth.add_metric([kind], tenants)
            age.add_metric([kind], oldest)
        yield depth
        yield age


def _top_tenants() -> list[tuple[str, int]]:
    from billing_stub.metering import NOTIFICATIONS, usage_top_tenants

    return usage_top_tenants(kind=NOTIFICATIONS, limit=settings.METRICS_TOP_TENANTS)


class TopTenantsCollector(Collector):
    """With ``METRICS_TOP_TENANTS`` = N > 0: the notifications of this billing period of the N
    tenants with the most, labelled by slug, so at most N series. From the usage totals
    (``billing_stub.metering.usage_top_tenants``: as of the last rollup, every minute); one
    query at most every 15 seconds per process."""

    def __init__(self) -> None:
        self._top: _Every[list[tuple[str, int]]] = _Every(_top_tenants, empty=[])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if settings.METRICS_TOP_TENANTS <= 0:
            return
        family = GaugeMetricFamily(
            "herald_tenant_notifications_current_period",
            "Notifications this billing period (as of the last usage rollup) of the "
            "METRICS_TOP_TENANTS tenants with the most.",
            labels=["tenant"],
        )
        for slug, quantity in self._top.get():
            family.add_metric([slug], quantity)
        yield family


def _spares() -> int | None:
    from tenants.spares import spares_count

    return spares_count()


class SparesCollector(Collector):
    """The pool of spare tenant schemas (``tenants.spares``): the spares of the template's
    current migration state, which sign-ups take, beside the target ``TENANT_SPARE_SCHEMAS``. A
    pool at 0 with a target above it means sign-ups wait for DDL: the filler (beat's
    ``fill-spare-schemas``, or a worker) is not keeping up, or not running. Three small queries
    (the template's migration state, then the count) at most every 15 seconds per process; no
    sample when the database cannot answer (a 0 would read as a drained pool)."""

    def __init__(self) -> None:
        self._spares: _Every[int | None] = _Every(_spares, empty=None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "herald_spare_schemas_target",
            "Spare tenant schemas the pool is kept at (TENANT_SPARE_SCHEMAS; 0: no pool).",
            value=settings.TENANT_SPARE_SCHEMAS,
        )
        spares = self._spares.get() if settings.TENANT_SPARE_SCHEMAS > 0 else 0
        if spares is not None:
            yield GaugeMetricFamily(
                "herald_spare_schemas",
                "Spare tenant schemas of the template's current migration state, ready for "
                "sign-ups.",
                value=spares,
            )


_backlog = BacklogCollector()
_top = TopTenantsCollector()
_spare_pool = SparesCollector()


def forget_dead_processes(directory: str) -> None:
    """Drop the live gauges (``livesum``: WebSocket connections) written by processes that are
    gone: a web worker uvicorn replaced, whose last value would otherwise be summed forever.
    Only processes of this container write here (see the module docstring), so a process id
    that answers no signal is one of them that exited."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive all the same
        pass
    return True


def _exposition() -> bytes:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry()
    if directory:
        forget_dead_processes(directory)
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    registry.register(_backlog)
    registry.register(_top)
    registry.register(_spare_pool)
    return generate_latest(registry)


class _ProcessRegistry(Collector):
    """This process's own metrics (no multiprocess directory): the default registry's."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def metrics(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the Prometheus text format. With ``METRICS_TOKEN`` set, only for
    ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time)."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return error_response(401, "A valid metrics token is required.")
    return HttpResponse(_exposition(), content_type=CONTENT_TYPE_LATEST)
