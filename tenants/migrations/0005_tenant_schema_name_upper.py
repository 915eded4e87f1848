# A new tenant's case-insensitive schema name check (django-tenants' save()) used to scan every
# tenant row; with this index it is one index probe however many tenants there are.

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_branding"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="tenant",
            index=models.Index(
                django.db.models.functions.text.Upper("schema_name"),
                name="tenant_schema_name_upper",
            ),
        ),
    ]
