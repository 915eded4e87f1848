"""Tenant schemas lose Django's permission tables; see ``accounts.models``.

The user's group and permission join tables go everywhere (``accounts`` is in both the public and
every tenant schema). ``auth`` and ``contenttypes`` are no longer tenant apps, so new schemas never
get their tables, and this drops the copies that existing tenant schemas (and the template) hold:
nothing read them. The public schema keeps its own, which Django's admin uses.

Not reversible for the tenant copies: going back to ``0002`` leaves tenant schemas without them,
and only a code version that lists ``auth`` in ``TENANT_APPS`` again would need them.
"""

from django.db import migrations, models
from django_tenants.utils import get_public_schema_name

TENANT_COPIES = ["auth_group_permissions", "auth_permission", "auth_group", "django_content_type"]


def drop_tenant_copies(apps, schema_editor):
    if schema_editor.connection.schema_name == get_public_schema_name():
        return
    # The schema's own tables only: with search_path "<tenant>, public" an unqualified name
    # missing here would otherwise resolve to the public schema's.
    schema = schema_editor.quote_name(schema_editor.connection.schema_name)
    tables = ", ".join(f"{schema}.{schema_editor.quote_name(t)}" for t in TENANT_COPIES)
    schema_editor.execute(f"DROP TABLE IF EXISTS {tables}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_drop_unused_indexes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RemoveField(model_name="user", name="groups"),
        migrations.RemoveField(model_name="user", name="user_permissions"),
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
        migrations.RunPython(drop_tenant_copies, migrations.RunPython.noop, elidable=True),
    ]
