"""Fixtures shared by the whole suite. See tests/support/personas.py for the world they build."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connection, connections
from django_tenants.utils import schema_exists
from rest_framework.test import APIClient

from herald.redisio import redis_key, shared_redis
from notifications.services import turns
from tenants import registry_cache
from tenants.models import Tenant
from tests.support.api import Caller
from tests.support.browser import chromium
from tests.support.personas import World, build_world, tenant_drop
from tests.support.processes import CACHE_KEY_PREFIX as SERVER_CACHE_KEY_PREFIX
from tests.support.processes import Server, running_web


@pytest.fixture(scope="session")
def django_db_setup(
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """Always create the test database, even when no collected test asks for ``db``.

    pytest-django sets up only the databases that collected tests request; tests that talk to
    the live server use session fixtures alone, and would otherwise reach the settings' own
    (development) database.
    """
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    _forget_redis_state_of_earlier_test_databases()
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            teardown_databases(config, verbosity=0)


def _forget_redis_state_of_earlier_test_databases() -> None:
    """Redis keys named after the test database (email turns and rate buckets, the registry cache,
    WebSocket counts) outlive it; a new test database reuses its name and tenant ids."""
    client = shared_redis()
    keys = list(client.scan_iter(match=redis_key("*"), count=5000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


@pytest.fixture(scope="module", autouse=True)
def _no_tasks_left_by_earlier_modules() -> None:
    """Each module starts with this process's Celery queue empty. Modules run in any order
    (pytest-xdist), and a task an earlier one queued that no worker ran (a tenant's email or
    webhook turn, an alert) would run in the first worker this module starts, and deliver what
    its tests do not expect. Within a module, tests run in file order as before."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    # The Redis transport keeps a list per priority step beside the queue's own.
    shared_redis().delete(queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9)))


_test_cache_prefixes: set[str] = set()


@pytest.fixture(scope="session", autouse=True)
def _drop_test_cache_keys() -> Iterator[None]:
    """The keys written under the tests' own cache prefixes, and the server processes' (unread
    count generations live a week), are deleted at the end of the session, in one pass over the
    keyspace."""
    yield
    prefixes = {*_test_cache_prefixes, SERVER_CACHE_KEY_PREFIX}
    client = shared_redis()
    doomed: list[bytes] = []
    for name in client.scan_iter(count=5000):
        if name.split(b":", 1)[0].decode(errors="replace") in prefixes:
            doomed.append(name)
    for start in range(0, len(doomed), 1000):
        client.delete(*doomed[start : start + 1000])


@pytest.fixture(autouse=True)
def isolated_cache(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh cache key space per test: Redis is not rolled back with the database.

    The tenant registry cache is shared with the server processes tests start, so that changes
    made here reach them. What this process cached during a test may describe rows the test then
    rolled back, so those entries are dropped after it."""
    default = settings.CACHES["default"]
    prefix = uuid.uuid4().hex
    _test_cache_prefixes.add(prefix)
    settings.CACHES = {**settings.CACHES, "default": {**default, "KEY_PREFIX": prefix}}
    written: list[str] = []
    put_many = registry_cache.put_many

    def recording_put_many(values: dict[str, Any], **kwargs: Any) -> None:
        written.extend(values)
        put_many(values, **kwargs)

    claim = registry_cache.claim

    def recording_claim(entry: str, **kwargs: Any) -> bool:
        written.append(entry)
        return claim(entry, **kwargs)

    monkeypatch.setattr(registry_cache, "put_many", recording_put_many)
    monkeypatch.setattr(registry_cache, "claim", recording_claim)
    # A test that sends email with no worker running leaves its tenants' turns taken: a turn
    # is a Redis key, not rolled back with the test. Free the ones this process took.
    turn_keys: set[str] = set()
    key = turns._key

    def recording_key(tenant_id: int, slot: int) -> str:
        name = key(tenant_id, slot)
        turn_keys.add(name)
        return name

    monkeypatch.setattr(turns, "_key", recording_key)
    yield
    if written:
        caches["registry"].delete_many(written)
    if turn_keys:
        shared_redis().delete(*turn_keys)


@pytest.fixture(scope="session")
def world(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> World:
    """Two tenants and three personas, provisioned once per session (committed)."""
    name = connection.settings_dict["NAME"]
    assert name.startswith("test_"), f"refusing to build the test world in database {name!r}"
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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium for the session (see tests/support/browser.py).

    While Playwright's sync API is alive it marks an event loop as running in this thread, and
    Django then keys database connections by context: ORM calls made meanwhile get a connection
    of their own, which is closed here (left open, it would block dropping the test database).
    """
    with chromium() as launched:
        try:
            yield launched
        finally:
            connections.close_all()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies, no storage) and page for one test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def committed(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest
) -> Iterator[list[str]]:
    """Database access outside the per-test transaction, for tests that need other processes
    or connections to see their writes. Append slugs to the yielded list: those tenants (and
    their schemas) are deleted afterwards. (It needs the test database set up first: without
    that, a test run on its own would write to the development database.)"""
    slugs: list[str] = []
    with django_db_blocker.unblock():
        try:
            yield slugs
        finally:
            connection.set_schema_to_public()
            for tenant in Tenant.objects.filter(slug__in=slugs):
                tenant_drop(tenant)
            for slug in slugs:
                assert not schema_exists(f"t_{slug.replace('-', '_')}")


# --- Callers: each persona talking to the API over its own host with its own credential ---


def _end_user_caller(server: Caller, external_id: str) -> Caller:
    response = server.post(f"/api/v1/users/{external_id}/token")
    assert response.status_code == 200, response.content
    return Caller(host=server.host, token=response.json()["token"])


@pytest.fixture
def alice_key(db: None, world: World) -> Caller:
    """Tenant A's backend, with its secret API key."""
    return Caller(host=world.alice.host, token=world.alice.api_key)


@pytest.fixture
def bob_key(db: None, world: World) -> Caller:
    """Tenant B's backend, with its secret API key."""
    return Caller(host=world.bob.host, token=world.bob.api_key)


@pytest.fixture
def alice_admin(db: None, world: World) -> Caller:
    """Tenant A's admin, with an admin access token from the login endpoint."""
    response = Caller(host=world.alice.host).post(
        "/api/v1/auth/token", {"email": world.alice.email, "password": world.alice.password}
    )
    assert response.status_code == 200, response.content
    return Caller(host=world.alice.host, token=response.json()["access"])


@pytest.fixture
def erin(alice_key: Caller) -> Caller:
    """Tenant A's end user ``user-1``, with an end-user token."""
    return _end_user_caller(alice_key, "user-1")


@pytest.fixture
def erins_neighbour(alice_key: Caller) -> Caller:
    """Another end user of tenant A (``user-2``)."""
    return _end_user_caller(alice_key, "user-2")


@pytest.fixture
def bravo_user(bob_key: Caller) -> Caller:
    """Tenant B's end user with the same external id as erin (``user-1``)."""
    return _end_user_caller(bob_key, "user-1")
