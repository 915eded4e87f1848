"""Fixtures shared by the whole suite. See tests/support/personas.py for the world they build."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django_tenants.utils import schema_exists
from rest_framework.test import APIClient

from tenants.models import Tenant
from tests.support.personas import World, build_world
from tests.support.processes import Server, running_web


@pytest.fixture(scope="session")
def world(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> World:
    """Two tenants and three personas, provisioned once per session (committed)."""
    with django_db_blocker.unblock():
        return build_world()


@pytest.fixture
def api(db: None) -> APIClient:
    """An in-process API client; pass ``HTTP_HOST`` and ``HTTP_AUTHORIZATION`` per request."""
    return APIClient()


@pytest.fixture(scope="session")
def web(world: World, django_db_blocker: pytest.FixtureRequest) -> Iterator[Server]:
    """The real ``web`` process (uvicorn) against the test database, shared by the session."""
    with django_db_blocker.unblock(), running_web() as server:
        yield server


@pytest.fixture
def committed(django_db_blocker: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Database access outside the per-test transaction, for tests that need other processes
    or connections to see their writes. Append slugs to the yielded list: those tenants (and
    their schemas) are deleted afterwards."""
    slugs: list[str] = []
    with django_db_blocker.unblock():
        try:
            yield slugs
        finally:
            connection.set_schema_to_public()
            for tenant in Tenant.objects.filter(slug__in=slugs):
                tenant.delete(force_drop=True)
            for slug in slugs:
                assert not schema_exists(f"t_{slug.replace('-', '_')}")
