"""Shared by the benchmarks: throwaway databases on the server of ``DATABASE_URL``, and Django."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/herald"


def database_url(name: str) -> str:
    """The URL of database ``name`` on the server of ``DATABASE_URL`` (default: 127.0.0.1)."""
    base = os.environ.get("DATABASE_URL", DEFAULT_URL)
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def recreate_database(name: str) -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def drop_database(name: str) -> None:
    """Close this process's Django connections (if any) and drop the database."""
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def setup_django(database: str) -> None:
    """Point Herald's settings at ``database`` and set Django up in this process."""
    sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
    os.environ["DATABASE_URL"] = database_url(database)
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "herald.settings")
    import django

    django.setup()


def procfile_command(name: str) -> list[str]:
    """The argv that runs the Procfile's ``name`` process exactly as it ships (set ``PORT``)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, _, command = line.partition(":")
        if process.strip() == name:
            return ["bash", "-c", f"exec env {command.strip()}"]
    raise KeyError(f"no {name!r} process in the Procfile")


def time_schema_step(build: Callable[[str], None], samples: int) -> list[float]:
    """Seconds ``build("t_bench_schema_only")`` takes, ``samples`` times, each in a transaction
    rolled back afterwards (so the schema never exists)."""
    from django.db import transaction

    timings = []
    for _ in range(samples):
        with transaction.atomic():
            started = time.perf_counter()
            build("t_bench_schema_only")
            timings.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    return timings
