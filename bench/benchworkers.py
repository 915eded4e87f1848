"""Shared by the benchmarks that drive the delivery turns: tenants on a plan without limits,
the environment and the Celery worker processes, polling, and the clean-up afterwards."""

from __future__ import annotations

import os
import platform
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
from benchdb import database_url, drop_database

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def unlimited_tenants(*slugs: str) -> list[Any]:
    """Migrate the bench database (Django set up on it), then provision a tenant per slug on a
    plan whose quotas and rates never bind: the benchmarks measure delivery, not limits."""
    from django.core.management import call_command

    from billing_stub.models import Plan
    from tenants.services import tenant_provision

    call_command("migrate", interactive=False, verbosity=0)
    unlimited = Plan.objects.create(
        code="bench-unlimited", name="Unlimited", monthly_notification_quota=10**9,
        monthly_email_quota=10**9, monthly_webhook_quota=10**9, max_webhook_endpoints=10**6,
        api_requests_per_second=10**6, api_burst=10**6, websocket_connection_limit=10**6,
        max_recipients_per_send=10**6, email_send_rate_per_second=10**6,
    )  # fmt: skip
    tenants = []
    for slug in slugs:
        result = tenant_provision(
            slug=slug, name=slug.title(), admin_email=f"admin@{slug}.test",
            admin_password=secrets.token_urlsafe(16), plan_code="enterprise",
        )  # fmt: skip
        result.tenant.plan = unlimited
        result.tenant.save(update_fields=["plan"])
        tenants.append(result.tenant)
    return tenants


def worker_env(database: str, **extra: str) -> dict[str, str]:
    """The environment of the worker processes: this one's, on the bench database, plus
    ``extra``. The workers need this process's ``SECRET_KEY`` when it seals secrets."""
    return {
        **os.environ,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
        "DJANGO_SETTINGS_MODULE": "herald.settings",
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
        "DATABASE_URL": database_url(database),
        "REDIS_URL": REDIS_URL,
        "DEBUG": "false",
        "SENTRY_DSN": "",
        **extra,
    }


def print_machine() -> None:
    with psycopg.connect(database_url("postgres")) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, PostgreSQL {row[0] if row else '?'}")  # fmt: skip


def clean_up(database: str, celery_queue: str) -> None:
    """Drop the bench database, its Redis keys (caches included) and the run's Celery queue."""
    drop_database(database)
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"herald:{database}:*", count=1000):
        client.delete(key)
    client.delete(celery_queue)


@contextmanager
def workers(count: int, env: dict[str, str], turns_per_tenant: int) -> Iterator[None]:
    """``count`` worker processes; one tenant may hold ``turns_per_tenant`` turns at once."""
    from django.conf import settings

    settings.EMAIL_TENANT_CONCURRENCY = turns_per_tenant  # this process requests turns too
    env = {**env, "EMAIL_TENANT_CONCURRENCY": str(turns_per_tenant)}
    processes = [
        subprocess.Popen(
            [
                BIN / "celery",
                "-A",
                "herald",
                "worker",
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
                "-n",
                f"bench{n}-{secrets.token_hex(3)}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def wait_for(probe: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.005)
