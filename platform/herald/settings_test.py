"""Test overrides on top of ``herald.settings``. The only other settings module.

The suite talks to the real PostgreSQL and Redis named by ``DATABASE_URL`` / ``REDIS_URL``
(defaults: the services on 127.0.0.1); pytest-django creates the ``test_<name>`` database.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/herald")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("EMAIL_URL", "locmem://")

from herald.settings import *  # noqa: F403 -- a settings override module extends the base
from herald.settings import CACHES, DATABASES, REDIS_NAMESPACE

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Each test run gets its own key space, so parallel runs and the dev server never share keys.
CACHES["default"]["KEY_PREFIX"] = f"herald-test-{os.getpid()}"
# Shared with the server processes the tests start, which run on pytest-django's test database
# and so name their namespace after it (herald.redisio). Under pytest-xdist each worker process
# has a test database of its own, ``test_<name>_<worker>``.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
_TEST_DATABASE = f"test_{DATABASES['default']['NAME']}" + (f"_{_WORKER}" if _WORKER else "")
CACHES["registry"]["KEY_PREFIX"] = f"{REDIS_NAMESPACE or 'herald:' + _TEST_DATABASE}:registry"
# Tasks the tests enqueue go to a queue of this run, which the tests' own workers consume.
CELERY_TASK_DEFAULT_QUEUE = f"herald-test-{os.getpid()}"
# No spare schemas unless a test asks for them (tests/tenants/test_spares.py): a pool that the
# tests' beat processes filled would build schemas behind unrelated tests.
TENANT_SPARE_SCHEMAS = int(os.environ.get("TENANT_SPARE_SCHEMAS", "0"))
