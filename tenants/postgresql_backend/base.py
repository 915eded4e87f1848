"""django-tenants' PostgreSQL backend, with each connection retired after it has served a number of
distinct tenant schemas (``DATABASE_MAX_SCHEMAS_PER_CONNECTION``; 0 turns it off).

A PostgreSQL backend caches the catalog entries (relcache, catcache, plans) of every relation it
has touched and never gives that memory back. With a schema per tenant, a pooled connection that
serves requests of thousands of tenants therefore grows by about 80 KiB per schema, without bound
(``bench/tenants.py``, memory section). Counting the schemas a connection has entered and closing
it once the count passes the limit bounds every backend at the memory of that many schemas; the
next request gets a fresh connection, which costs one connect per that many schemas served.

A connection is only retired where Django lets it go anyway: when it is handed back to the pool
(``_close``), or, for persistent connections, at the end of a request or task
(``close_if_unusable_or_obsolete``). The count belongs to the physical connection, so it
survives the pool's check-outs.

psycopg_pool has no public call to discard one connection; marking it expired (the pool's own
``max_lifetime`` mechanism) makes the pool close it and open a replacement in the background.
Should a later pool release rename that attribute, the connection is closed instead, which the
pool also replaces (with a warning in its log).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_tenants.postgresql_backend import base as tenants_base
from django_tenants.utils import get_public_schema_name

SEEN = "_herald_schemas"  # the set of schemas a physical connection has entered


def schemas_served(connection: Any) -> int:
    """How many distinct tenant schemas the physical connection has entered (0 if none)."""
    return len(getattr(connection, SEEN, ()))


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    def _handle_search_path(self, cursor: Any = None) -> None:
        super()._handle_search_path(cursor)  # type: ignore[no-untyped-call]  # django-tenants' is unannotated
        schema = self.schema_name
        if self.search_path_set_schemas and schema and schema != get_public_schema_name():
            note_schema_built(self, schema)

    def schemas_exhausted(self) -> bool:
        """Whether the open connection has served more distinct schemas than the limit."""
        limit = settings.DATABASE_MAX_SCHEMAS_PER_CONNECTION
        return (
            bool(limit)
            and self.connection is not None
            and (schemas_served(self.connection) >= limit)
        )

    def _close(self) -> None:
        if self.pool and self.schemas_exhausted():
            retire_pooled(self.connection)
        super()._close()

    def close_if_unusable_or_obsolete(self) -> None:
        super().close_if_unusable_or_obsolete()
        if not self.pool and self.schemas_exhausted():
            self.close()  # type: ignore[no-untyped-call]  # django-tenants' is unannotated


def note_schema_built(wrapper: Any, schema_name: str) -> None:
    """Count a schema the connection created without entering it (a spare, built with a local
    search_path) as served: its backend keeps the catalog entries of what it created too."""
    if wrapper.connection is not None:
        seen = getattr(wrapper.connection, SEEN, None)
        if seen is None:
            seen = set()
            setattr(wrapper.connection, SEEN, seen)
        seen.add(schema_name)


def retire_pooled(connection: Any) -> None:
    """Make the pool close ``connection`` when it comes back instead of reusing it."""
    if hasattr(connection, "_expire_at"):
        connection._expire_at = float("-inf")  # the pool's own expiry, checked on return
    else:
        connection.close()
