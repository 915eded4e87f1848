from django.db import migrations

PLANS = [
    {
        "code": "free",
        "name": "Free",
        "monthly_price_cents": 0,
        "monthly_notification_quota": 10_000,
        "monthly_email_quota": 1_000,
        "api_requests_per_second": 10,
        "api_burst": 20,
        "websocket_connection_limit": 100,
        "max_recipients_per_send": 1_000,
        "digest_allowed": False,
    },
    {
        "code": "pro",
        "name": "Pro",
        "monthly_price_cents": 4_900,
        "monthly_notification_quota": 1_000_000,
        "monthly_email_quota": 100_000,
        "api_requests_per_second": 100,
        "api_burst": 200,
        "websocket_connection_limit": 10_000,
        "max_recipients_per_send": 10_000,
        "digest_allowed": True,
    },
    {
        "code": "enterprise",
        "name": "Enterprise",
        "monthly_price_cents": 49_900,
        "monthly_notification_quota": 50_000_000,
        "monthly_email_quota": 5_000_000,
        "api_requests_per_second": 1_000,
        "api_burst": 2_000,
        "websocket_connection_limit": 100_000,
        "max_recipients_per_send": 10_000,
        "digest_allowed": True,
    },
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("billing_stub", "Plan")
    for plan in PLANS:
        Plan.objects.update_or_create(code=plan["code"], defaults=plan)


def remove_plans(apps, schema_editor):
    apps.get_model("billing_stub", "Plan").objects.filter(
        code__in=[plan["code"] for plan in PLANS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("billing_stub", "0001_initial")]

    operations = [migrations.RunPython(create_plans, remove_plans)]
