"""Helpers of the account pages' tests (sign-up, password reset, overview, keys, settings)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context

from tenants.models import Tenant


def forwarded_for() -> str:
    """A client address of the test's own. Per-IP windows (sign-ups, reset emails) live in
    Redis for up to an hour and are not rolled back; the web process trusts X-Forwarded-For
    from 127.0.0.1 (uvicorn --proxy-headers), and the in-process client takes REMOTE_ADDR."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def admin_client(tenant: Tenant, email: str, **extra: Any) -> Client:
    """An in-process client signed in as ``email`` on ``tenant``'s host."""
    client = Client(HTTP_HOST=f"{tenant.slug}.localhost", **extra)
    with schema_context(tenant.schema_name):
        client.force_login(get_user_model().objects.get(email=email))
    return client
