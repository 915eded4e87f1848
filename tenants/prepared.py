"""Registry lookups compiled once per database connection, then run with new values.

Resolving a tenant that is not in the registry cache (``tenants.resolution``) reads its rows
with ``select_related`` over three tables. Through the ORM that costs about 1.5 ms, of which
PostgreSQL's part is about 0.5 ms: the rest is building and compiling the queryset, the same SQL
every time. With thousands of tenants, most of them idle for longer than the cache keeps them,
most requests to a tenant pay that miss, and the compile was the largest part of what they paid
over a cached request.

Django has no cache of compiled queries, so this module keeps one per connection: a lookup's
queryset is built once with marker values in place of its parameters, compiled, and its SQL and
compiler kept. A lookup then runs the SQL with the values put where the markers were, and turns
the rows into model instances exactly as the ORM's own iterator does (``Model.from_db``, the
compiler's converters and select_related populators), so the instances are the ORM's, cache
pickling and all. A lookup whose parameters the ORM would not pass through unchanged (one that
wraps or casts a value) fails at its first compile, loudly.

The compilers are kept on the connection wrapper they were compiled for (one per thread), since
a compiler holds that connection; a new connection compiles again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=Model)

_ATTRIBUTE = "_herald_prepared"  # {lookup: (sql, parameter slots, compiler)} on a connection


class PreparedLookup(Generic[M]):
    """``build(**values)`` gives the queryset; ``fetch(**values)`` runs it compiled.

    ``build`` is called once per connection, with a unique marker string for each value, so it
    must use each value as a plain parameter (a filter's right-hand side, say), not inspect it.
    """

    def __init__(self, build: Callable[..., QuerySet[M]], *names: str) -> None:
        self.build = build
        self.names = names

    def fetch(self, using: str = "default", **values: Any) -> list[M]:
        connection = connections[using]
        compiled = connection.__dict__.setdefault(_ATTRIBUTE, {})
        entry = compiled.get(self)
        if entry is None:
            entry = compiled[self] = self._compile(using)
        sql, slots, compiler = entry
        with connection.cursor() as cursor:
            cursor.execute(sql, [values[name] if name else fixed for name, fixed in slots])
            rows = cursor.fetchall()
        return self._instances(compiler, rows, using)

    def first(self, using: str = "default", **values: Any) -> M | None:
        found = self.fetch(using, **values)
        return found[0] if found else None

    def _compile(self, using: str) -> tuple[str, list[tuple[str, Any]], Any]:
        """The SQL, each parameter as (value name, None) or ('', a constant of the query), and
        the compiler."""
        markers = {f"\x00herald-parameter:{name}\x00": name for name in self.names}
        queryset = self.build(**{name: marker for marker, name in markers.items()})
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        slots = [
            (markers[param], None) if isinstance(param, str) and param in markers else ("", param)
            for param in params
        ]
        if sorted(name for name, _ in slots if name) != sorted(self.names):
            raise ValueError(
                f"A prepared lookup must pass each value through unchanged, once: {params!r}"
            )
        return sql, slots, compiler

    @staticmethod
    def _instances(compiler: Any, rows: list[tuple[Any, ...]], using: str) -> list[M]:
        # As django.db.models.query.ModelIterable does it, without recompiling.
        select, klass_info = compiler.select, compiler.klass_info
        model_cls = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, using)  # type: ignore[call-arg]  # the stubs follow Django 6, which adds fetch_mode
        found = []
        for row in compiler.results_iter([rows]):
            instance = model_cls.from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, instance)
            for attname, position in compiler.annotation_col_map.items():
                setattr(instance, attname, row[position])
            found.append(instance)
        return found
