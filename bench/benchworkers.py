"""Celery worker processes and polling for the benchmarks that drive the delivery turns."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


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
