"""The template's cached script: one per migration state, replayed without reading the catalogs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.template_ddl import (
    TemplateNotReproducible,
    forget_template_script,
    replay_template,
    template_script,
)

CATALOGS = ("pg_class", "pg_attribute", "pg_constraint", "pg_depend", "pg_index", "pg_namespace")


@pytest.fixture(autouse=True)
def fresh_script() -> Iterator[None]:
    """Tests here alter the template inside their (rolled back) transaction: start and end
    without a script that describes such a template."""
    forget_template_script()
    yield
    forget_template_script()


def columns(schema: str, table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            [schema, table],
        )
        return {row[0] for row in cursor.fetchall()}


def test_a_warm_replay_reads_no_catalog(db, world):
    """What a provision costs must not grow with the schemas in the database: once the script
    exists, a replay is the template's migration rows and the script, nothing that scans the
    catalogs of every schema."""
    template_script()
    with CaptureQueriesContext(connection) as queries:
        replay_template("t_warm_replay")
    sql = [query["sql"] for query in queries.captured_queries]
    assert len(sql) == 3, sql  # the migration table's existence, its rows, the script
    assert not [query for query in sql if any(name in query for name in CATALOGS)]
    assert "recipient_id" in columns("t_warm_replay", "notifications_notification")


def test_the_script_is_kept_while_the_migration_state_holds(db):
    assert template_script() is template_script()


def test_a_new_migration_state_regenerates_the_script(db):
    before = template_script()
    with connection.cursor() as cursor:
        # What a migration applied to the template does: change a table, record itself.
        cursor.execute(
            "ALTER TABLE tenant_template.notifications_enduser ADD COLUMN nickname text;"
            " INSERT INTO tenant_template.django_migrations (app, name, applied)"
            " VALUES ('notifications', '9999_nickname', now())"
        )
    after = template_script()
    assert after.state != before.state
    assert "nickname" in after.sql
    assert "nickname" not in before.sql
    replay_template("t_after_migration")
    assert "nickname" in columns("t_after_migration", "notifications_enduser")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM t_after_migration.django_migrations")
        replayed = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tenant_template.django_migrations")
        assert replayed == cursor.fetchone()[0]


def test_replayed_rows_and_sequences_continue_where_the_template_stands(db):
    replay_template("t_rows")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM t_rows.django_migrations),"
            " (SELECT count(*) FROM tenant_template.django_migrations),"
            " (SELECT last_value FROM tenant_template.django_migrations_id_seq)"
        )
        replayed, template, top = cursor.fetchone()
        assert replayed == template > 0
        cursor.execute(
            "INSERT INTO t_rows.django_migrations (app, name, applied) VALUES ('x', 'y', now())"
            " RETURNING id"
        )
        assert cursor.fetchone()[0] == top + 1


def test_the_search_path_is_what_it_was(db, world):
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        before = cursor.fetchone()[0]
    replay_template("t_search_path")
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert cursor.fetchone()[0] == before


def test_a_template_with_objects_it_cannot_reproduce_is_refused(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE VIEW tenant_template.unread AS SELECT id FROM"
            " tenant_template.notifications_notification WHERE read_at IS NULL;"
            " INSERT INTO tenant_template.django_migrations (app, name, applied)"
            " VALUES ('notifications', '9999_view', now())"
        )
    with pytest.raises(TemplateNotReproducible, match="relation unread"):
        template_script()
