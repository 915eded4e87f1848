"""The container image, checked without a Docker daemon.

The Dockerfile is linted with hadolint, its static-files step is run here with the same command and
environment, and its entry point is the Procfile's own lines (``bin/herald-process``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "bin" / "herald-process"
PROCESSES = {"web", "worker", "beat", "release"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            result.append((keyword.upper(), " ".join(args.split())))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip():
            entries[name.strip()] = command.strip()
    return entries


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_base_image_is_pinned_to_a_patch_release():
    bases = [args for keyword, args in instructions() if keyword == "FROM"]
    assert len(bases) == 2
    assert bases[0].endswith(" AS build")
    base = bases[-1]
    assert bases[0] == f"{base} AS build"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)


@pytest.mark.skipif(
    not shutil.which("checkov"),
    reason="checkov is not in the dev requirements (about 290 MB, and it pins packaging<24): "
    "install it on its own, e.g. with pipx, to run this check",
)
def test_checkov_fails_no_dockerfile_check():
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [
            "checkov",
            "-f",
            str(DOCKERFILE),
            "--framework",
            "dockerfile",
            "--quiet",
            "--compact",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["failed"] == 0, result.stdout
    assert report["summary"]["passed"] > 0


def test_final_stage_runs_as_non_root_without_build_tools_or_bytecode():
    stage = final_stage()
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users
    assert re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", users[-1])
    env = " ".join(args for keyword, args in stage if keyword == "ENV")
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        "PYTHONPATH=/app/platform:/app",
    ):
        assert setting in env
    runs = " ".join(args for keyword, args in stage if keyword == "RUN")
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip install", runs)
    assert ("EXPOSE", "8000") in stage


def test_entry_point_is_the_procfile():
    stage = final_stage()
    assert ("ENTRYPOINT", '["/app/bin/herald-process"]') in stage
    assert ("CMD", '["web"]') in stage
    assert set(procfile()) == PROCESSES
    # The only runtime write is beat's schedule file, and it goes to /tmp (read-only root).
    assert "--schedule ${CELERY_BEAT_SCHEDULE:-/tmp/" in procfile()["beat"]


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_entry_point_execs_the_named_line(tmp_path, name):
    fake = tmp_path / "Procfile"
    # Like the real lines, each starts with an assignment.
    lines = (f"{n}: LC_ALL=C echo {n} ${{PORT:-8000}} $$\n" for n in sorted(PROCESSES))
    fake.write_text("".join(lines))
    result = subprocess.run(
        [ENTRYPOINT, name],
        env={"PATH": os.environ["PATH"], "PROCFILE": str(fake), "PORT": "9001"},
        capture_output=True,
        text=True,
        check=True,
    )
    word, port, _pid = result.stdout.split()
    assert (word, port) == (name, "9001")


def test_entry_point_refuses_an_unknown_process():
    result = subprocess.run([ENTRYPOINT, "nope"], capture_output=True, text=True)
    assert result.returncode == 64
    assert "no process named 'nope'" in result.stderr


def dockerignore() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def build_context(target: Path) -> Path:
    """What `COPY . /app` copies from a clean checkout: tracked files minus .dockerignore."""
    patterns = dockerignore()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in tracked:
        parts = Path(name).parts
        ignored = any(
            fnmatch.fnmatch(parts[0], pattern)
            or (pattern.startswith("**/") and any(fnmatch.fnmatch(p, pattern[3:]) for p in parts))
            for pattern in patterns
        )
        if not ignored and (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def test_collectstatic_step_works_offline_with_the_image_environment(tmp_path):
    run = next(
        args for keyword, args in final_stage() if keyword == "RUN" and "collectstatic" in args
    )
    words = shlex.split(run)
    build_env = dict(word.split("=", 1) for word in words if re.fullmatch(r"[A-Z_]+=.*", word))
    command = [word for word in words if not re.fullmatch(r"[A-Z_]+=.*", word)]
    assert command[:2] == ["python", "manage.py"]
    assert build_env["DEBUG"] == "false"
    # Run in a copy of the build context, so that nothing .dockerignore leaves out is needed.
    app = build_context(tmp_path / "app")
    assert not (app / "tests").exists()
    target = tmp_path / "staticfiles"
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": f"{app / 'platform'}:{app}",
        **build_env,
        "STATIC_ROOT": str(target),
    }
    subprocess.run([sys.executable, *command[1:]], cwd=app, env=env, check=True, timeout=120)
    check = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"]
    subprocess.run(check, cwd=app, env=env, check=True, timeout=120, capture_output=True)
    for asset in (
        "dashboard/dashboard.css",
        "dashboard/dashboard.js",
        "dashboard/favicon.svg",
        "widget/demo.js",
        "widget/demo.css",
        "admin/css/base.css",
        "rest_framework/css/bootstrap.min.css",
    ):
        assert (target / asset).is_file(), asset


def test_dockerignore_keeps_local_state_out_and_the_code_in():
    ignored = dockerignore()
    assert {".git", ".venv", ".data", "artifacts", "tests", "**/__pycache__"} <= ignored
    needed = {"Procfile", "requirements.txt", "manage.py", "bin", "platform", "widget", "dashboard"}
    assert not needed & ignored
