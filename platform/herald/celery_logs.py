"""Celery's logs: the web's JSON lines, and the request id carried from a request into its tasks.

Celery sets logging up itself (its own format, on the root logger) unless a ``setup_logging``
receiver exists: the one here applies Django's ``LOGGING`` instead, in the worker, its prefork
children and beat alike, so ``LOG_LEVEL`` decides there too and ``--loglevel`` is unused.

A task published while a request, WebSocket connection or task runs carries that one's request id
and tenant in two message headers (``before_task_publish``). The worker binds them, with the
task's id and name, to every log line the task writes (``task_prerun``, undone at
``task_postrun``) and tags its Sentry events with them; sentry-sdk gives each task its own scope
before ``task_prerun``. A task beat publishes carries neither: its lines name the task only.
"""

from __future__ import annotations

import contextlib
import logging.config
import os
import sys
from typing import Any

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

from herald import logs, observability
from herald.request_ids import is_request_id

REQUEST_ID_HEADER = "herald_request_id"
TENANT_HEADER = "herald_tenant"
_BINDING = "_herald_log_binding"  # on the task's request context, from prerun to postrun


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if settings.LOG_FORMAT == "json":
        _say_in_json()


def _say_in_json() -> None:
    """The worker's few words from its signal handlers ("worker: Warm shutdown (MainProcess)")
    are written straight to stdout with one ``os.write`` by ``celery.apps.worker.safe_say``, as
    plain text. This writes them the same way (a signal handler must not wait for logging's
    locks), as one JSON line. ``test_logging`` reads a stopped worker's output: a Celery that
    no longer has ``safe_say``, or writes these words elsewhere, fails it there."""
    import celery.apps.worker

    if not callable(getattr(celery.apps.worker, "safe_say", None)):
        return
    formatter = logs.JsonFormatter()

    def safe_say(msg: str, f: Any = sys.__stderr__) -> None:
        record = logging.LogRecord("celery.apps.worker", logging.INFO, "", 0, msg, None, None)
        with contextlib.suppress(OSError, ValueError, AttributeError):  # best effort, as Celery's
            os.write(f.fileno(), (formatter.format(record) + "\n").encode())

    celery.apps.worker.safe_say = safe_say  # type: ignore[attr-defined]  # not in celery-types


@before_task_publish.connect
def _carry_ids(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    fields = logs.current()
    for header, field in ((REQUEST_ID_HEADER, "request_id"), (TENANT_HEADER, "tenant")):
        if field in fields:
            headers.setdefault(header, fields[field])


@task_prerun.connect
def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task is None:
        return
    request = task.request
    request_id = getattr(request, REQUEST_ID_HEADER, None)
    # Checked again: a message is data, and this one may come from another publisher.
    request_id = request_id if is_request_id(request_id) else None
    tenant = getattr(request, TENANT_HEADER, None)
    tenant = tenant if isinstance(tenant, str) and tenant else None
    # Every field set, absent ones as None: nothing of the task run before it on this process
    # (a prefork child, or a solo worker) shows in this one's lines.
    token = logs.bind(task_id=task_id, task=task.name, request_id=request_id, tenant=tenant)
    setattr(request, _BINDING, token)
    if request_id is not None:
        observability.tag_request_id(request_id)
    if tenant is not None:
        observability.tag_tenant(tenant)


@task_postrun.connect
def _unbind_task(task: Any = None, **_: Any) -> None:
    token = getattr(getattr(task, "request", None), _BINDING, None)
    if token is not None:
        logs.unbind(token)
