import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [("notifications", "0010_templates_to_liquid")]

    operations = [
        migrations.CreateModel(
            name="Reminder",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("remind_at", models.DateTimeField()),
                ("note", models.CharField(blank=True, max_length=200)),
                (
                    "recipient",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="notifications.enduser"
                    ),
                ),
            ],
            options={"indexes": [models.Index(fields=["remind_at"], name="reminder_due")]},
        ),
    ]
