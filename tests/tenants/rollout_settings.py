"""Herald's settings plus one tenant app with a migration no schema has yet, for the roll-out
tests' subprocesses (``DJANGO_SETTINGS_MODULE=tests.tenants.rollout_settings``)."""

from herald.settings import *  # noqa: F403 -- a settings override module extends the base
from herald.settings import INSTALLED_APPS, TENANT_APPS

TENANT_APPS = [*TENANT_APPS, "tests.tenants.rollout_probe"]
INSTALLED_APPS = [*INSTALLED_APPS, "tests.tenants.rollout_probe"]
