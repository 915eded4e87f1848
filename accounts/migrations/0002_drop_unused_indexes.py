"""Drop indexes that no query uses, so that each tenant schema has fewer relations to create.

Provisioning a tenant builds every relation of its schema, and each index costs a build, a file
and an fsync (PostgreSQL syncs every btree it builds on a WAL-logged table): indexes are most of
a schema's cost. These ones serve nothing:

- ``*_like`` (``varchar_pattern_ops``) indexes, which Django adds to every unique or indexed
  ``CharField`` for ``LIKE 'prefix%'``: nothing filters a user's email, a group's name or a
  session key by prefix; exact lookups use the unique index;
- single-column foreign key indexes that lead a unique index already (the join tables' ``user_id``
  and ``group_id``, a permission's ``content_type_id``): the unique index serves the lookups and
  the cascades.

Django's models still declare them; its schema editor drops such indexes with ``IF EXISTS``, so
a later change to these fields does not trip over their absence. Runs in the public schema too
(``accounts``, ``auth`` and ``sessions`` are in both): the same reasoning holds there.
"""

from django.db import migrations

# (index, table, definition) as Django created them; the definition is for reversing.
DROPPED = [
    ("accounts_user_email_b2644a56_like", "accounts_user", "email varchar_pattern_ops"),
    ("accounts_user_groups_user_id_52b62117", "accounts_user_groups", "user_id"),
    (
        "accounts_user_user_permissions_user_id_e4f0a161",
        "accounts_user_user_permissions",
        "user_id",
    ),
    ("auth_group_name_a6ea08ec_like", "auth_group", "name varchar_pattern_ops"),
    ("auth_group_permissions_group_id_b120cbf9", "auth_group_permissions", "group_id"),
    ("auth_permission_content_type_id_2f476e4b", "auth_permission", "content_type_id"),
    (
        "django_session_session_key_c0390e0f_like",
        "django_session",
        "session_key varchar_pattern_ops",
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("sessions", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[f'DROP INDEX IF EXISTS "{name}"' for name, _, _ in DROPPED],
            reverse_sql=[
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({definition})'
                for name, table, definition in DROPPED
            ],
        ),
    ]
