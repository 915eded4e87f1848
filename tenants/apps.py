from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from tenants.registry_cache import connect_signals, forget_after_migrate

        connect_signals()
        # Once per ``migrate`` run (the signal is sent for every app; this one is enough).
        post_migrate.connect(forget_after_migrate, sender=self, dispatch_uid="registry-migrate")
