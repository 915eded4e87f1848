"""A database connection is retired after it has entered a number of distinct tenant schemas, so
a PostgreSQL backend's catalog memory stays bounded (tenants.postgresql_backend).

Each test opens its own connection to the test database, pooled (psycopg_pool, as the web
processes run) or persistent (as a worker with ``CONN_MAX_AGE`` set does), and records the
PostgreSQL backend that served each schema. ``SET search_path`` to a schema that does not exist
is valid, so the schemas need no tables.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from tenants.postgresql_backend.base import DatabaseWrapper, schemas_served

LIMIT = 5


def open_wrapper(*, pooled: bool, alias: str) -> DatabaseWrapper:
    settings_dict = copy.deepcopy(connection.settings_dict)
    settings_dict["OPTIONS"].pop("pool", None)
    if pooled:
        settings_dict["CONN_MAX_AGE"] = 0
        settings_dict["OPTIONS"]["pool"] = {"min_size": 1, "max_size": 1, "timeout": 5}
    else:
        settings_dict["CONN_MAX_AGE"] = None  # persistent
    return DatabaseWrapper(settings_dict, alias=alias)


def backend_in(wrapper: DatabaseWrapper, schema: str) -> int:
    """One unit of work (a request, a task) in ``schema``: the backend pid that served it."""
    wrapper.set_schema(schema)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_setting('search_path')")
        pid, search_path = cursor.fetchone()
    assert search_path.startswith(schema)
    return pid


@contextmanager
def opened(django_db_blocker: Any, *, pooled: bool) -> Iterator[DatabaseWrapper]:
    with django_db_blocker.unblock():
        wrapper = open_wrapper(pooled=pooled, alias=f"budget_{pooled}")
        try:
            yield wrapper
        finally:
            wrapper.close()
            if pooled:
                wrapper.close_pool()


@pytest.fixture
def pooled(django_db_blocker: Any) -> Iterator[DatabaseWrapper]:
    with opened(django_db_blocker, pooled=True) as wrapper:
        yield wrapper


@pytest.fixture
def persistent(django_db_blocker: Any) -> Iterator[DatabaseWrapper]:
    with opened(django_db_blocker, pooled=False) as wrapper:
        yield wrapper


def serve(wrapper: DatabaseWrapper, schemas: list[str], *, pooled: bool) -> list[int]:
    """Each schema in turn, handing the connection back after each as Django does."""
    pids = []
    for schema in schemas:
        pids.append(backend_in(wrapper, schema))
        if pooled:
            wrapper.close()  # back to the pool, as at the end of a request
        else:
            wrapper.close_if_unusable_or_obsolete()  # as at the end of a request or task
    return pids


@override_settings(DATABASE_MAX_SCHEMAS_PER_CONNECTION=LIMIT)
def test_a_pooled_connection_is_replaced_after_the_limit_of_distinct_schemas(
    pooled: DatabaseWrapper,
) -> None:
    schemas = [f"budget_{n}" for n in range(3 * LIMIT)]
    pids = serve(pooled, schemas, pooled=True)
    # one backend per LIMIT distinct schemas: the pool's single connection was replaced twice
    assert len(set(pids[:LIMIT])) == 1
    assert len(set(pids[LIMIT : 2 * LIMIT])) == 1
    assert len(set(pids)) == 3
    assert pids[LIMIT] != pids[0]


@override_settings(DATABASE_MAX_SCHEMAS_PER_CONNECTION=LIMIT)
def test_the_same_schemas_again_never_wear_a_connection_out(pooled: DatabaseWrapper) -> None:
    schemas = [f"budget_{n % (LIMIT - 1)}" for n in range(10 * LIMIT)]
    pids = serve(pooled, schemas, pooled=True)
    assert len(set(pids)) == 1


@override_settings(DATABASE_MAX_SCHEMAS_PER_CONNECTION=LIMIT)
def test_a_persistent_connection_is_closed_after_the_limit(persistent: DatabaseWrapper) -> None:
    pids = serve(persistent, [f"budget_{n}" for n in range(2 * LIMIT)], pooled=False)
    assert len(set(pids[:LIMIT])) == 1
    # the fresh connection counts from zero: it too serves LIMIT schemas, then goes
    assert len(set(pids[LIMIT:])) == 1
    assert set(pids[LIMIT:]).isdisjoint(pids[:LIMIT])
    assert persistent.connection is None
    assert backend_in(persistent, "budget_0") not in pids
    assert schemas_served(persistent.connection) == 1


@override_settings(DATABASE_MAX_SCHEMAS_PER_CONNECTION=0)
def test_zero_turns_it_off(pooled: DatabaseWrapper) -> None:
    pids = serve(pooled, [f"budget_{n}" for n in range(3 * LIMIT)], pooled=True)
    assert len(set(pids)) == 1
