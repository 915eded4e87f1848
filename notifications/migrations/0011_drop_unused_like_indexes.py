"""Drop the ``*_like`` indexes of a type's key and a send's idempotency key.

Django adds a ``varchar_pattern_ops`` index (for ``LIKE 'prefix%'``) to every unique
``CharField``; nothing looks these two up by prefix, only by equality, which their unique
indexes serve. Each index of a tenant schema is built, given a file and fsynced when a tenant is
provisioned, so one that serves nothing makes every provisioning slower (``accounts`` 0002 says
more). An end user's external id keeps its one: the dashboard searches it by prefix.

Django's model still declares them; its schema editor drops such indexes with ``IF EXISTS``, so a
later change to these fields does not trip over their absence.
"""

from django.db import migrations

# (index, table, definition) as Django created them; the definition is for reversing.
DROPPED = [
    (
        "notifications_notificationtype_key_a487ed92_like",
        "notifications_notificationtype",
        "key varchar_pattern_ops",
    ),
    (
        "notifications_send_idempotency_key_2b3a45db_like",
        "notifications_send",
        "idempotency_key varchar_pattern_ops",
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0010_templates_to_liquid"),
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
