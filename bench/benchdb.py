"""Shared by the benchmarks: throwaway databases on the server of ``DATABASE_URL``, and Django."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/herald"
WEB_LOG = Path(tempfile.gettempdir()) / "herald-bench-web.log"


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


def procfile_command(name: str, root: Path = ROOT) -> list[str]:
    """The argv that runs the Procfile's ``name`` process exactly as it ships (set ``PORT``);
    ``root``: the checkout whose Procfile it is (this one)."""
    for line in (root / "Procfile").read_text().splitlines():
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


# --- the web process and an HTTP client, for benchmarks through the real API ------------------


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def web_server(
    env: dict[str, str], root: Path = ROOT, log_path: Path = WEB_LOG
) -> Iterator[tuple[int, int]]:
    """The Procfile's web command, on a free port: yields (port, the server process's pid).
    ``root``: the checkout it runs from (this one), with its own ``.venv`` if it has one."""
    port = free_port()
    venv = root / ".venv/bin" if (root / ".venv/bin").is_dir() else ROOT / ".venv/bin"
    process_env = {**env, "PORT": str(port), "PATH": f"{venv}:{os.environ['PATH']}"}
    log = log_path.open("w")  # kept after the run: the server's tracebacks, if any
    process = subprocess.Popen(
        procfile_command("web", root),
        cwd=root,
        env=process_env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the web process did not come up")
            time.sleep(0.1)
        yield port, process.pid  # bash execs env, which execs uvicorn: the same pid
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


class Api:
    """One persistent HTTP connection: measures the server, not TCP set-up."""

    def __init__(self, port: int, host: str) -> None:
        self.port, self.host = port, host
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def _request(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str]
    ) -> bytes:
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # The server closes a keep-alive connection left idle (while the bench seeds data).
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        self.status = response.status
        return response.read()

    def call(self, method: str, path: str, token: str, body: object = None) -> tuple[int, object]:
        raw = self._request(method, path, *self._encoded(token, body))
        return self.status, json.loads(raw) if raw else None

    def _encoded(self, token: str, body: object) -> tuple[bytes | None, dict[str, str]]:
        headers = {"Host": self.host, "Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return data, headers

    def timed(self, method: str, path: str, token: str, body: object = None) -> float:
        """Seconds from sending the request to reading the whole response: the client's
        encoding of the body is not the server's time (10,000 recipient objects: ~3 ms)."""
        data, headers = self._encoded(token, body)
        started = time.perf_counter()
        raw = self._request(method, path, data, headers)
        elapsed = time.perf_counter() - started
        if self.status >= 300:
            raise RuntimeError(f"{method} {path}: {self.status} {raw[:500]!r}")
        return elapsed


def latencies(action: Callable[[], float], count: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        action()
    return [action() * 1000 for _ in range(count)]
