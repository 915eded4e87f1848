from django.contrib import admin

from billing_stub.models import Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "monthly_price_cents",
        "monthly_notification_quota",
        "monthly_email_quota",
        "api_requests_per_second",
        "websocket_connection_limit",
    ]
