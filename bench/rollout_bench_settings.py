"""Herald's settings plus one tenant app with a migration no schema has: bench/rollout.py's
roll-out subprocesses (``DJANGO_SETTINGS_MODULE=rollout_bench_settings``, bench/ on the path)."""

from herald.settings import *  # noqa: F403 -- a settings override module extends the base
from herald.settings import INSTALLED_APPS, TENANT_APPS

TENANT_APPS = [*TENANT_APPS, "rollout_bench"]
INSTALLED_APPS = [*INSTALLED_APPS, "rollout_bench"]
