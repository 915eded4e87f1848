"""Helpers for the content pages' tests (send log, users, types) that use Django's test client
in-process: a signed-in admin on a tenant's host, and data written through the real API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client, TestCase
from django_tenants.utils import schema_context

from tenants.models import Tenant
from tests.support.api import Caller


@dataclass
class Dashboard:
    """A browser-like client on one tenant's host, signed in as one of its admins (or not)."""

    client: Client
    host: str

    def get(self, path: str, data: dict[str, Any] | None = None) -> Any:
        return self.client.get(path, data or {}, HTTP_HOST=self.host)

    def post(self, path: str, data: dict[str, Any] | None = None) -> Any:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return self.client.post(path, data or {}, HTTP_HOST=self.host)


def dashboard(tenant: Tenant, email: str | None = None, *, csrf: bool = False) -> Dashboard:
    """The dashboard of ``tenant`` as its admin ``email`` sees it (anonymous without one).
    Sessions live in the tenant's schema, so the login is made there."""
    client = Client(enforce_csrf_checks=csrf)
    if email is not None:
        with schema_context(tenant.schema_name):
            client.force_login(get_user_model().objects.get(email=email))
    return Dashboard(client=client, host=f"{tenant.slug}.localhost")


def send(api: Caller, type_key: str, recipients: list[Any], **fields: Any) -> int:
    body = {"type": type_key, "recipients": recipients, "message": "Hello", **fields}
    response = api.post("/api/v1/notifications", body)
    assert response.status_code == 202, response.content
    return response.json()["id"]


def put_type(api: Caller, key: str, **fields: Any) -> None:
    response = api.put(f"/api/v1/types/{key}", {"name": key.title(), **fields})
    assert response.status_code in (200, 201), response.content


def put_user(api: Caller, external_id: str, **fields: Any) -> None:
    from urllib.parse import quote

    response = api.put(f"/api/v1/users/{quote(external_id, safe='')}", fields)
    assert response.status_code in (200, 201), response.content


def counted_get(
    client: Dashboard, path: str, data: dict[str, Any] | None = None
) -> tuple[Any, int]:
    """A GET and the number of queries it ran. (Counted at once: the next request clears
    Django's query log, so a CaptureQueriesContext read later would count nothing.)"""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, data)
    count = len(captured)
    assert response.status_code == 200, response.content[:500]
    assert count > 0
    return response, count
