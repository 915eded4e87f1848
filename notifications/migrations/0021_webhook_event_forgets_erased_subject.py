"""A webhook event's stored body is emptied when its subject (notification or delivery) is deleted,
as when its user is erased (``notifications.models.forget_subject``). Python-side ``on_delete``
only: no SQL, in any schema."""

from django.db import migrations, models

import notifications.models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0020_enduser_one_external_id_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookdelivery",
            name="delivery",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=notifications.models.forget_subject,
                related_name="+",
                to="notifications.delivery",
            ),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="notification",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=notifications.models.forget_subject,
                related_name="+",
                to="notifications.notification",
            ),
        ),
    ]
