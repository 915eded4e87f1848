"""The worker's metrics: Celery task outcomes, and an HTTP endpoint of its own.

A worker pod serves no HTTP, so with ``METRICS_PORT`` set the worker's main process serves the
Prometheus text on that port (any path), summed over itself and its prefork children through
``PROMETHEUS_MULTIPROC_DIR``. ``METRICS_TOKEN`` is not checked there: the port is meant for the
pod network only (the chart exposes it to the scraper, not through the Ingress).
"""

from __future__ import annotations

import os
from typing import Any

from celery.signals import (
    task_failure,
    task_retry,
    task_success,
    worker_init,
    worker_process_shutdown,
)
from prometheus_client import REGISTRY, CollectorRegistry, Counter, multiprocess, start_http_server

CELERY_TASKS = Counter(
    "herald_celery_tasks_total",
    "Celery tasks finished, by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
)


def _task_name(sender: Any) -> str:
    # Task names are the registered ones (a bounded set); anything else shares one value.
    return getattr(sender, "name", None) or "unknown"


@task_success.connect
def _on_success(sender: Any = None, **_: Any) -> None:
    CELERY_TASKS.labels(_task_name(sender), "success").inc()


@task_failure.connect
def _on_failure(sender: Any = None, **_: Any) -> None:
    CELERY_TASKS.labels(_task_name(sender), "failure").inc()


@task_retry.connect
def _on_retry(sender: Any = None, **_: Any) -> None:
    CELERY_TASKS.labels(_task_name(sender), "retry").inc()


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    port = os.environ.get("METRICS_PORT")
    if not port:
        return
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    start_http_server(int(port), registry=registry)


@worker_process_shutdown.connect
def _forget_child(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())
