"""Drop three indexes that no query uses, so that each tenant schema has fewer relations to build.

- ``delivery_queued_fifo``: the claim of the release before ``0018`` read queued deliveries in id
  order through it; since ``0018`` the claim reads ``delivery_queued_due``. This is the contract
  step of that change (expand in one release, contract in the next: ``CONTRIBUTING.md``).
- the ``*_like`` (``varchar_pattern_ops``) indexes Django added to a topic's key and a push
  subscription's endpoint: both are looked up by equality only, which their unique indexes serve
  (``0011`` says more).

Django's model still declares the two ``_like`` indexes; its schema editor drops such indexes with
``IF EXISTS``, so a later change to these fields does not trip over their absence.
"""

from django.db import migrations

# (index, table, definition) as Django created them; the definition is for reversing.
DROPPED_LIKE = [
    ("notifications_topic_key_e941c7b9_like", "notifications_topic", "key varchar_pattern_ops"),
    (
        "notifications_pushsubscription_endpoint_7fe1db03_like",
        "notifications_pushsubscription",
        "endpoint varchar_pattern_ops",
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0018_delivery_queued_due"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="delivery", name="delivery_queued_fifo"),
        migrations.RunSQL(
            sql=[f'DROP INDEX IF EXISTS "{name}"' for name, _, _ in DROPPED_LIKE],
            reverse_sql=[
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({definition})'
                for name, table, definition in DROPPED_LIKE
            ],
        ),
    ]
