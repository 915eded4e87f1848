"""Error reporting. Sentry is initialised only when ``SENTRY_DSN`` is set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.redis import RedisIntegration

from herald import logs


def init_sentry(
    *, dsn: str, environment: str, traces_sample_rate: float = 0.0, **options: Any
) -> None:
    """Initialise sentry-sdk with the Django, Celery and Redis integrations.

    Events are tagged with the tenant by ``tag_tenant`` wherever a tenant is resolved, and with
    the request id of the request, WebSocket connection or task they come from
    (``herald.request_ids``, ``herald.celery_logs``).
    """
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration(), RedisIntegration()],
        traces_sample_rate=traces_sample_rate,
        **options,
    )


def isolated() -> AbstractContextManager[Any]:
    """A Sentry isolation scope of its own, for one request or connection (when Sentry is on):
    the tags and request data set inside are on no other one's events."""
    if sentry_sdk.get_client().is_active():
        return sentry_sdk.isolation_scope()
    return nullcontext()


def tag_request_id(request_id: str) -> None:
    """Tag every event of the current request, connection or task with its request id."""
    sentry_sdk.set_tag("request_id", request_id)


def tag_tenant(slug: str | None) -> None:
    """Tag every event of the current request or task with its tenant (no-op without Sentry)."""
    sentry_sdk.set_tag("tenant", slug or "public")


@contextmanager
def tenant_scope(slug: str) -> Iterator[None]:
    """Errors and log lines inside are tagged with this tenant, and only inside (a task that
    loops over tenants must not report one tenant's error under another's name)."""
    with sentry_sdk.new_scope() as scope, logs.bound(tenant=slug):
        scope.set_tag("tenant", slug)  # on this scope: sentry_sdk.set_tag would outlive it
        yield
