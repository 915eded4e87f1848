"""The Celery app. Workers start with ``celery -A herald worker`` (see the Procfile)."""

from __future__ import annotations

import os
import platform

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "herald.settings")

app = Celery("herald")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task outcome counters and the worker's metrics port; Celery's logging and the request ids
# carried into tasks (signal handlers, connected on import).
import herald.celery_logs  # noqa: E402 -- after the app is configured; imported for its signal handlers
import herald.worker_metrics  # noqa: E402, F401 -- after the app is configured; imported for its signal handlers


@app.task(name="herald.ping", ignore_result=False)
def ping() -> dict[str, str]:
    """Answer from inside a worker: proves the worker runs and imports the real stdlib."""
    return {"pong": "ok", "python": platform.python_version()}
