"""Tenant schemas lose Django's permission tables; see ``accounts.models``.

``auth`` and ``contenttypes`` are no longer tenant apps, so new schemas never get their tables,
and the user model has no group or permission fields. In every tenant schema (and the template)
this drops the user's two join tables and the copies of auth's and contenttypes' tables: nothing
read them there, in this release or the one before.

The public schema keeps auth's and contenttypes' tables, which Django's admin uses, and, for
this release, the user's two join tables too: the previous release's permission checks for a
staff user who is not a superuser read them there while its pods still serve (expand, then
contract: ``CONTRIBUTING.md``). A later release drops them.

Not reversible for the dropped tables: going back to ``0002`` leaves tenant schemas without
them, and only a code version that lists ``auth`` in ``TENANT_APPS`` again would need them.
"""

from django.db import migrations, models
from django_tenants.utils import get_public_schema_name

# Children first; each statement names the schema's own table, never public's (the search path
# of a tenant schema ends with public).
TENANT_COPIES = [
    "accounts_user_groups",
    "accounts_user_user_permissions",
    "auth_group_permissions",
    "auth_permission",
    "auth_group",
    "django_content_type",
]


def drop_tenant_copies(apps, schema_editor):
    schema = schema_editor.connection.schema_name
    if schema == get_public_schema_name():
        return
    quote = schema_editor.quote_name
    tables = ", ".join(f"{quote(schema)}.{quote(table)}" for table in TENANT_COPIES)
    schema_editor.execute(f"DROP TABLE IF EXISTS {tables}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_drop_unused_indexes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="user", name="groups"),
                migrations.RemoveField(model_name="user", name="user_permissions"),
            ],
            database_operations=[
                migrations.RunPython(drop_tenant_copies, migrations.RunPython.noop, elidable=True)
            ],
        ),
        migrations.AlterField(
            model_name="user",
            name="is_superuser",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "Has every permission; the platform's Django admin shows nothing to anyone"
                    " else."
                ),
                verbose_name="superuser status",
            ),
        ),
    ]
