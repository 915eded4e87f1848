"""The template schema as one replayable SQL script, so that building a tenant's schema costs the
same with 10 tenants as with 10,000.

django-tenants' ``clone_schema`` function reads the catalogs for every object it copies, and its
queries scan ``pg_class``, ``pg_constraint`` and ``pg_depend`` of the whole database: with about a
hundred relations per tenant, a clone took seconds at a few hundred tenants. Here the template is
read once per migration state (``template_script``) and turned into DDL: tables with their
columns, defaults, identity columns (their sequences named as in the template) and constraints
under their own names, standalone sequences with their owners, the template's rows (migration
history, content types, permissions, anything a data migration seeded), sequence positions,
indexes (partial and expression ones included, from ``pg_get_indexdef``) and comments. A new
schema is then one ``CREATE SCHEMA`` and the script, sent in one round trip, with no catalog query.

Why generated from the catalogs rather than by ``pg_dump --schema-only``: the web image does not
ship a ``pg_dump`` that matches the server's version, and a subprocess per migration state in a
web worker is a deployment dependency for a few queries' worth of work. The script is generated
with ``search_path`` set to the template alone, so ``pg_get_*`` name the template's own objects
unqualified and anything outside it (``public``) qualified; replayed with ``search_path`` set to
the new schema, every name lands there. Objects the generator does not know how to reproduce
(views, functions, triggers, policies, user types, partitions) make it refuse, loudly, rather
than build a schema that differs from a migrated one; ``tests/tenants/test_provisioning.py``
checks that a replayed schema equals a migrated one, constraint names included.

The cache is per process and keyed by the template's ``django_migrations`` rows (id, app, name,
applied time): applying, un-applying or re-applying a migration to the template changes the key,
so a process never replays a script of an older template, and ``migrate`` drops its own process's
copy as well. Reading those rows decides whether the cached script is current.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from tenants.schema import TemplateOutOfDate, template_pending_migrations, template_schema_name


class TemplateNotReproducible(Exception):
    """The template holds objects the script generator does not reproduce."""


@dataclass(frozen=True)
class TemplateScript:
    state: str  # hash of the template's django_migrations rows
    sql: str  # to run with search_path set to the new schema


_lock = threading.Lock()
_cached: TemplateScript | None = None


def forget_template_script() -> None:
    """Drop this process's script; the next provisioning regenerates it. ``migrate`` calls this
    after migrating the template (other processes notice the new migration state by its key)."""
    global _cached
    with _lock:
        _cached = None


def template_state() -> str | None:
    """The hash of the template's migration history; None when the template has none."""
    table = _qualified("django_migrations")
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(f"SELECT id, app, name, applied FROM {table} ORDER BY id")  # noqa: S608 -- a name quoted by _qualified
        rows = cursor.fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def template_script() -> TemplateScript:
    """The current template's script: the cached one when the template's migration state is
    unchanged, else checked (TemplateOutOfDate when migrations are pending) and generated."""
    global _cached
    state = template_state()
    cached = _cached
    if cached is not None and cached.state == state:
        return cached
    pending = template_pending_migrations()
    if pending or state is None:
        raise TemplateOutOfDate(
            f"The tenant template schema is not up to date (pending: {', '.join(pending[:5])}"
            f"{'…' if len(pending) > 5 else ''}). Run `python manage.py migrate`."
        )
    script = TemplateScript(state=state, sql=generate_script())
    if template_state() == state:  # else a migrate committed meanwhile: don't keep this one
        with _lock:
            _cached = script
    return script


def replay_template(schema_name: str, *, script: TemplateScript | None = None) -> None:
    """Create ``schema_name`` as the current template's copy (tables, indexes, rows), or as
    ``script``'s when the caller already has the current one.

    Transactional: inside ``transaction.atomic`` a failure later on leaves no schema behind.
    Raises TemplateOutOfDate when the template lags behind the code. Costs two small queries for
    the template's state and one round trip for the DDL, however many schemas the database holds.
    """
    script = script or template_script()
    quoted = connection.ops.quote_name(schema_name)
    # One statement string: PostgreSQL runs it all or nothing even outside a transaction.
    with connection.cursor() as cursor:
        # SET LOCAL, then back to the saved value: django-tenants remembers the search_path it
        # set on this connection, and it must still be true after the script. No parallel index
        # builds while it runs: every table is empty, yet each CREATE INDEX would otherwise plan
        # how many workers to use (about 2% of the backend's time in a bulk run, for nothing).
        cursor.execute(
            f"CREATE SCHEMA {quoted};"
            " SELECT set_config('herald.saved_search_path', current_setting('search_path'), true),"
            " set_config('herald.saved_parallel',"
            " current_setting('max_parallel_maintenance_workers'), true);"
            f" SET LOCAL search_path = {quoted}; SET LOCAL max_parallel_maintenance_workers = 0;"
            f"{script.sql}"
            " SELECT set_config('search_path', current_setting('herald.saved_search_path'), true),"
            " set_config('max_parallel_maintenance_workers',"
            " current_setting('herald.saved_parallel'), true)"
        )


def _qualified(name: str) -> str:
    quote = connection.ops.quote_name
    return f"{quote(template_schema_name())}.{quote(name)}"


# --- generation: reads the template's catalogs, once per migration state ---------------------

_UNSUPPORTED_SQL = """
SELECT 'relation ' || relname || ' of kind ' || relkind::text FROM pg_class
    WHERE relnamespace = %(ns)s AND relkind NOT IN ('r', 'S', 'i')
UNION ALL SELECT 'partition ' || inhrelid::regclass::text FROM pg_inherits
    JOIN pg_class ON pg_class.oid = inhrelid WHERE relnamespace = %(ns)s
UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = %(ns)s
UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger JOIN pg_class ON pg_class.oid = tgrelid
    WHERE relnamespace = %(ns)s AND NOT tgisinternal
UNION ALL SELECT 'policy ' || polname FROM pg_policy JOIN pg_class ON pg_class.oid = polrelid
    WHERE relnamespace = %(ns)s
UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = %(ns)s AND typrelid = 0
    AND NOT (typcategory = 'A' AND typelem IN (SELECT reltype FROM pg_class
                                               WHERE relnamespace = %(ns)s))
UNION ALL SELECT 'extended statistics ' || stxname FROM pg_statistic_ext
    WHERE stxnamespace = %(ns)s
"""

_TABLES_SQL = """
SELECT c.oid, quote_ident(c.relname), c.relpersistence = 'u',
       coalesce(array_to_string(c.reloptions, ', '), ''),
       coalesce(quote_literal(obj_description(c.oid, 'pg_class')), '')
FROM pg_class c WHERE c.relnamespace = %(ns)s AND c.relkind = 'r' ORDER BY c.relname
"""

_COLUMNS_SQL = """
SELECT a.attrelid, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
       CASE WHEN a.attcollation <> t.typcollation
            THEN ' COLLATE ' || quote_ident(coll.collname) ELSE '' END,
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       coalesce(quote_literal(col_description(a.attrelid, a.attnum)), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid AND c.relnamespace = %(ns)s AND c.relkind = 'r'
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation coll ON coll.oid = a.attcollation
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Sequences, with the column that owns them: deptype 'i' for an identity column's, 'a' for a
# serial's (OWNED BY).
_SEQUENCES_SQL = """
SELECT s.oid, quote_ident(s.relname), format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
       q.seqmin, q.seqmax, q.seqcache, q.seqcycle, pg_sequence_last_value(s.oid),
       dep.deptype, dep.refobjid, quote_ident(att.attname)
FROM pg_class s
JOIN pg_sequence q ON q.seqrelid = s.oid
LEFT JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = s.oid
    AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
LEFT JOIN pg_attribute att ON att.attrelid = dep.refobjid AND att.attnum = dep.refobjsubid
WHERE s.relnamespace = %(ns)s AND s.relkind = 'S'
ORDER BY s.relname
"""

_CONSTRAINTS_SQL = """
SELECT con.conrelid, quote_ident(con.conname), con.contype, pg_get_constraintdef(con.oid),
       con.confrelid, con.conindid
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
WHERE c.relnamespace = %(ns)s
ORDER BY con.conrelid, con.contype, con.conname
"""

_INDEXES_SQL = """
SELECT i.indexrelid, pg_get_indexdef(i.indexrelid),
       coalesce(quote_literal(obj_description(i.indexrelid, 'pg_class')), ''),
       quote_ident(c.relname), quote_ident(tbl.relname)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class tbl ON tbl.oid = i.indrelid
WHERE c.relnamespace = %(ns)s
ORDER BY c.relname
"""


@dataclass
class _Table:
    oid: int
    name: str
    unlogged: bool
    options: str
    comment: str
    columns: list[str]
    column_names: list[str]  # the ones an INSERT may set (not generated)
    column_comments: list[str]
    has_identity: bool


def generate_script() -> str:
    """The template's DDL and rows as one script, to run with search_path set to a new schema.
    Reads the template's catalogs: call it once per migration state, not per tenant."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [template_schema_name()])
        row = cursor.fetchone()
        if row is None:
            raise TemplateOutOfDate("The tenant template schema is missing.")
        ns = {"ns": row[0]}
        # Name the template's objects unqualified and everything else qualified (and put the
        # search_path back afterwards, as in replay_template).
        cursor.execute(
            "SELECT set_config('herald.saved_search_path', current_setting('search_path'), true),"
            " set_config('search_path', quote_ident(%s), true)",
            [template_schema_name()],
        )
        cursor.execute(_UNSUPPORTED_SQL, ns)
        if unsupported := [r[0] for r in cursor.fetchall()]:
            raise TemplateNotReproducible(
                "The template schema holds objects provisioning cannot reproduce: "
                + ", ".join(unsupported)
            )
        cursor.execute(_TABLES_SQL, ns)
        tables = {
            oid: _Table(oid, name, unlogged, options, comment, [], [], [], False)
            for oid, name, unlogged, options, comment in cursor.fetchall()
        }
        cursor.execute(_SEQUENCES_SQL, ns)
        sequences = cursor.fetchall()
        identity_sequence = {
            (table_oid, column): _sequence_options(seq)
            for seq in sequences
            for (table_oid, column, deptype) in [(seq[11], seq[12], seq[10])]
            if deptype == "i"
        }
        cursor.execute(_COLUMNS_SQL, ns)
        for (table_oid, name, type_, collate, not_null, default, identity, generated,
             comment) in cursor.fetchall():  # fmt: skip
            table = tables[table_oid]
            column = f"{name} {type_}{collate}"
            if generated == "s":
                column += f" GENERATED ALWAYS AS ({default}) STORED"
            elif default is not None:
                column += f" DEFAULT {default}"
            if identity:
                kind = "ALWAYS" if identity == "a" else "BY DEFAULT"
                options = identity_sequence[(table_oid, name)]
                column += f" GENERATED {kind} AS IDENTITY ({options})"
                table.has_identity = True
            if not_null:
                column += " NOT NULL"
            table.columns.append(column)
            if generated != "s":
                table.column_names.append(name)
            if comment:
                table.column_comments.append(f"COMMENT ON COLUMN {table.name}.{name} IS {comment}")
        cursor.execute(_CONSTRAINTS_SQL, ns)
        constraints = cursor.fetchall()
        cursor.execute(_INDEXES_SQL, ns)
        indexes = cursor.fetchall()
        rows = {}
        for table in tables.values():
            cursor.execute(
                f"SELECT quote_literal(json_agg(t)::text) FROM {table.name} t"  # noqa: S608 -- quote_ident from the catalogs
            )
            rows[table.oid] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT set_config('search_path', current_setting('herald.saved_search_path'), true)"
        )

    statements: list[str] = []
    # Standalone sequences first: column defaults may call nextval() on them.
    for seq in sequences:
        if seq[10] != "i":
            statements.append(f"CREATE SEQUENCE {seq[1]} {_sequence_options(seq, named=False)}")
    # Constraints go into CREATE TABLE (cheaper than ALTER TABLE, and no validation scan); a
    # foreign key to a table not yet created is added after all tables, before any row.
    created: set[int] = set()
    late: list[str] = []
    by_table: dict[int, list[tuple[Any, ...]]] = {}
    for con in constraints:
        by_table.setdefault(con[0], []).append(con)
    ordered = _in_dependency_order(tables, constraints)
    for table in ordered:
        parts = list(table.columns)
        for _, name, contype, definition, confrelid, _ in by_table.get(table.oid, []):
            if contype == "f" and confrelid in tables and confrelid not in created | {table.oid}:
                late.append(f"ALTER TABLE {table.name} ADD CONSTRAINT {name} {definition}")
            else:
                parts.append(f"CONSTRAINT {name} {definition}")
        unlogged = "UNLOGGED " if table.unlogged else ""
        options = f" WITH ({table.options})" if table.options else ""
        statements.append(f"CREATE {unlogged}TABLE {table.name} ({', '.join(parts)}){options}")
        created.add(table.oid)
        if table.comment:
            statements.append(f"COMMENT ON TABLE {table.name} IS {table.comment}")
        statements.extend(table.column_comments)
    statements.extend(late)
    constraint_indexes = {con[5] for con in constraints if con[2] in ("p", "u", "x")}
    template = connection.ops.quote_name(template_schema_name())
    for oid, definition, comment, name, table_name in indexes:
        if oid in constraint_indexes:
            continue
        # pg_get_indexdef always qualifies the table, whatever the search_path.
        qualified = f" ON {template}.{table_name} USING "
        if qualified not in definition:
            qualified = qualified.replace(template, template_schema_name())
        if qualified not in definition:
            raise TemplateNotReproducible(f"Unexpected index definition: {definition}")
        statements.append(definition.replace(qualified, f" ON {table_name} USING ", 1))
        if comment:
            statements.append(f"COMMENT ON INDEX {name} IS {comment}")
    # Rows last: deferred foreign key checks pending on a table forbid DDL on it.
    for table in ordered:
        if rows[table.oid]:
            columns = ", ".join(table.column_names)
            overriding = " OVERRIDING SYSTEM VALUE" if table.has_identity else ""
            # Names and the rows' JSON come quoted by the server (quote_ident, quote_literal).
            statements.append(
                f"INSERT INTO {table.name} ({columns}){overriding} SELECT {columns}"  # noqa: S608 -- quoted by the server, above
                f" FROM json_populate_recordset(NULL::{table.name}, {rows[table.oid]})"
            )
    for seq in sequences:
        if seq[10] == "a":
            statements.append(f"ALTER SEQUENCE {seq[1]} OWNED BY {tables[seq[11]].name}.{seq[12]}")
        if seq[9] is not None:
            statements.append(f"SELECT setval({_literal(seq[1])}, {seq[9]}, true)")
    return "".join(f" {statement};" for statement in statements)


def _sequence_options(seq: tuple[Any, ...], *, named: bool = True) -> str:
    _, name, type_, start, increment, minimum, maximum, cache, cycle = seq[:9]
    options = (
        f"AS {type_} START WITH {start} INCREMENT BY {increment} MINVALUE {minimum}"
        f" MAXVALUE {maximum} CACHE {cache} {'CYCLE' if cycle else 'NO CYCLE'}"
    )
    if named:
        # An identity sequence takes the column's type; AS is not allowed there.
        options = f"SEQUENCE NAME {name} " + options.split(" ", 2)[2]
    return options


def _literal(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _in_dependency_order(
    tables: dict[int, _Table], constraints: list[tuple[Any, ...]]
) -> list[_Table]:
    """Tables referenced by foreign keys before the tables that reference them (rows are
    inserted in this order too); cycles are broken by name order."""
    depends: dict[int, set[int]] = {oid: set() for oid in tables}
    for table_oid, _, contype, _, confrelid, _ in constraints:
        if contype == "f" and confrelid in tables and confrelid != table_oid:
            depends[table_oid].add(confrelid)
    ordered: list[_Table] = []
    done: set[int] = set()
    pending = sorted(tables.values(), key=lambda t: t.name)
    while pending:
        ready = [t for t in pending if depends[t.oid] <= done] or pending[:1]
        for table in ready:
            ordered.append(table)
            done.add(table.oid)
        pending = [t for t in pending if t.oid not in done]
    return ordered
