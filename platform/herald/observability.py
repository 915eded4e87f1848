"""Error reporting. Sentry is initialised only when ``SENTRY_DSN`` is set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.redis import RedisIntegration


def init_sentry(
    *, dsn: str, environment: str, traces_sample_rate: float = 0.0, **options: Any
) -> None:
    """Initialise sentry-sdk with the Django, Celery and Redis integrations.

    Events are tagged with the tenant by ``tag_tenant`` wherever a tenant is resolved.
    """
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration(), RedisIntegration()],
        traces_sample_rate=traces_sample_rate,
        **options,
    )


def tag_tenant(slug: str | None) -> None:
    """Tag every event of the current request or task with its tenant (no-op without Sentry)."""
    sentry_sdk.set_tag("tenant", slug or "public")


@contextmanager
def tenant_scope(slug: str) -> Iterator[None]:
    """Errors inside are tagged with this tenant, and only inside (a task that loops over
    tenants must not report one tenant's error under another's name)."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("tenant", slug)  # on this scope: sentry_sdk.set_tag would outlive it
        yield
