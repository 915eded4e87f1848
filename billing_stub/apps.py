from django.apps import AppConfig


class BillingStubConfig(AppConfig):
    name = "billing_stub"
    verbose_name = "Plans and usage"
