"""Prometheus metrics and the ``GET /metrics`` endpoint of the platform host.

With ``PROMETHEUS_MULTIPROC_DIR`` set (before any process starts, to an empty directory: an
emptyDir in Kubernetes), prometheus-client writes every process's samples to files there and
``/metrics`` sums them, so forked web workers answer as one. Labels are bounded: HTTP by method,
route pattern and status code, deliveries by channel and status; never a tenant or user id.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

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


class BacklogCollector(Collector):
    """Work waiting, from the public due index (``tenants.due.due_backlog``): per kind
    (``send``, ``digest``, ``email``), the tenants with work due and the age of the most overdue.
    One query per scrape at most every ``BACKLOG_TTL`` seconds, on whichever process answers;
    cost does not grow with the number of tenant schemas. 0 when the database cannot answer."""

    TTL = 15.0

    def __init__(self) -> None:
        self._cached: tuple[float, dict[str, tuple[int, float]]] = (-self.TTL, {})
        self._lock = threading.Lock()

    def _backlog(self) -> dict[str, tuple[int, float]]:
        with self._lock:
            at, backlog = self._cached
            if time.monotonic() - at >= self.TTL:
                from tenants.due import due_backlog

                try:
                    backlog = due_backlog()
                except DatabaseError:
                    backlog = {}
                self._cached = (time.monotonic(), backlog)
            return backlog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog = self._backlog()
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


_backlog = BacklogCollector()


def _exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessRegistry())
    registry.register(_backlog)
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
