"""What a tenant schema holds: no Django permission tables (``accounts.models`` says why), and
what the platform's Django admin lets staff do without them."""

from __future__ import annotations

import importlib

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from tenants.template_ddl import replay_template

PERMISSION_TABLES = {
    "auth_group",
    "auth_group_permissions",
    "auth_permission",
    "django_content_type",
    "accounts_user_groups",
    "accounts_user_user_permissions",
}

no_django_permissions = importlib.import_module("accounts.migrations.0003_no_django_permissions")


def tables(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'r'",
            [schema],
        )
        return {row[0] for row in cursor.fetchall()}


def test_tenant_schemas_have_no_permission_tables_and_public_keeps_auths(db, world):
    for schema in ("tenant_template", world.tenant_a.schema_name):
        held = tables(schema)
        assert {"accounts_user", "notifications_notification"} <= held
        assert not held & PERMISSION_TABLES, schema
    # The platform's Django admin still has Django's own tables. (The user's two join tables
    # stay there for a release too: accounts 0003 says why.)
    assert {"auth_permission", "django_content_type"} <= tables("public")


def test_the_migration_drops_an_existing_schemas_copies_and_nothing_of_public(db):
    # A schema as the release before made them: with its own copies of auth's tables.
    replay_template("t_old_release")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE t_old_release.accounts_user_groups (id int PRIMARY KEY);"
            " CREATE TABLE t_old_release.django_content_type (id int PRIMARY KEY);"
            " CREATE TABLE t_old_release.auth_group (id int PRIMARY KEY);"
            " CREATE TABLE t_old_release.auth_permission (id int PRIMARY KEY,"
            "  content_type_id int REFERENCES t_old_release.django_content_type);"
            " CREATE TABLE t_old_release.auth_group_permissions (id int PRIMARY KEY,"
            "  group_id int REFERENCES t_old_release.auth_group,"
            "  permission_id int REFERENCES t_old_release.auth_permission)"
        )
    public_before = tables("public")
    connection.set_schema("t_old_release")
    try:
        with connection.schema_editor() as editor:
            no_django_permissions.drop_tenant_copies(None, editor)
    finally:
        connection.set_schema_to_public()
    assert not tables("t_old_release") & PERMISSION_TABLES
    assert "accounts_user" in tables("t_old_release")
    assert tables("public") == public_before

    # In the public schema it leaves everything.
    with connection.schema_editor() as editor:
        no_django_permissions.drop_tenant_copies(None, editor)
    assert tables("public") == public_before


def test_only_active_superusers_have_permissions(db):
    users = get_user_model()
    staff = users.objects.create_superuser("root@herald.example", "pw-for-root-1234")
    assert staff.has_perm("tenants.change_tenant")
    assert staff.has_perms(["tenants.change_tenant", "billing_stub.view_plan"])
    assert staff.has_module_perms("tenants")
    plain = users.objects.create_user("ops@herald.example", "pw-for-ops-1234", is_staff=True)
    assert not plain.has_perm("tenants.change_tenant")
    assert not plain.has_module_perms("tenants")
    staff.is_active = False
    assert not staff.has_perm("tenants.change_tenant")


def test_the_platform_admin_is_for_superusers(db, world):
    users = get_user_model()
    root = users.objects.create_superuser("root@herald.example", "pw-for-root-1234")
    ops = users.objects.create_user("ops@herald.example", "pw-for-ops-1234", is_staff=True)
    as_root = Client(HTTP_HOST="localhost")
    as_root.force_login(root)
    page = as_root.get("/admin/tenants/tenant/")
    assert page.status_code == 200
    assert world.tenant_a.slug in page.content.decode()
    as_ops = Client(HTTP_HOST="localhost")
    as_ops.force_login(ops)
    assert as_ops.get("/admin/tenants/tenant/").status_code == 403
    assert "permission" in as_ops.get("/admin/").content.decode()
