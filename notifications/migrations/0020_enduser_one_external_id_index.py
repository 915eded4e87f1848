"""One unique index on an end user's external id, in ``varchar_pattern_ops``, for the two.

An end user's external id had a unique constraint (its index in the default operator class)
and, beside it, the ``varchar_pattern_ops`` index Django adds to every unique ``CharField`` for
``LIKE 'prefix%'`` (the dashboard's user search and recipient suggestions). A unique index in
``varchar_pattern_ops`` alone serves all three: equality (every lookup by external id, and the
send's ``ON CONFLICT (external_id)``, which takes any unique index on the column), prefix
searches in any collation, and uniqueness, which is byte equality either way. Each index costs
every new user an insert, and a send to 10,000 new users spent 66 ms inserting them with both
against 54 ms with one; it also costs every new tenant a btree build.

Safe under the previous release: it reads and writes the same rows, and finds the new index
wherever it found the old ones. Creating the index locks the users table against writes while
it builds, which a tenant's usual table makes an instant; for a large one (``manage.py
tenants_report --sort rows``), build it beforehand, outside the roll-out, with ``CREATE UNIQUE
INDEX CONCURRENTLY IF NOT EXISTS enduser_external_id_unique ON notifications_enduser
(external_id varchar_pattern_ops)`` in its schema: this migration then finds it
(``CONTRIBUTING.md``). Run again after a failure, each step finds its work done.
"""

from django.db import migrations, models

TABLE = "notifications_enduser"
INDEX = "enduser_external_id_unique"
# Django's names for what the previous release had.
OLD_CONSTRAINT = "notifications_enduser_external_id_key"
OLD_LIKE = "notifications_enduser_external_id_ef6e5944_like"


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0019_drop_unused_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="enduser",
                    name="external_id",
                    field=models.CharField(max_length=255),
                ),
                migrations.AddConstraint(
                    model_name="enduser",
                    constraint=models.UniqueConstraint(
                        fields=("external_id",),
                        name=INDEX,
                        opclasses=["varchar_pattern_ops"],
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        f'CREATE UNIQUE INDEX IF NOT EXISTS "{INDEX}" ON "{TABLE}"'
                        " (external_id varchar_pattern_ops)",
                        f'ALTER TABLE "{TABLE}" DROP CONSTRAINT IF EXISTS "{OLD_CONSTRAINT}"',
                        f'DROP INDEX IF EXISTS "{OLD_LIKE}"',
                    ],
                    reverse_sql=[
                        f'CREATE INDEX IF NOT EXISTS "{OLD_LIKE}" ON "{TABLE}"'
                        " (external_id varchar_pattern_ops)",
                        f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{OLD_CONSTRAINT}"'
                        " UNIQUE (external_id)",
                        f'DROP INDEX IF EXISTS "{INDEX}"',
                    ],
                ),
            ],
        ),
    ]
