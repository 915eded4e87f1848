from django.apps import AppConfig


class RolloutProbeConfig(AppConfig):
    name = "tests.tenants.rollout_probe"
    label = "rollout_probe"
