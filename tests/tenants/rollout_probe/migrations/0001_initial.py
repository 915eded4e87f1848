"""A new migration for every tenant schema: a table, and an optional pause per schema
(ROLLOUT_PROBE_SLEEP seconds) so a test can kill the roll-out half way."""

import os

from django.db import migrations

SLEEP = float(os.environ.get("ROLLOUT_PROBE_SLEEP", "0"))


class Migration(migrations.Migration):
    dependencies = [("notifications", "0010_templates_to_liquid")]

    operations = [
        migrations.RunSQL(
            "CREATE TABLE rollout_probe (id integer PRIMARY KEY)", "DROP TABLE rollout_probe"
        ),
        migrations.RunSQL(f"SELECT pg_sleep({SLEEP})", migrations.RunSQL.noop),
    ]
