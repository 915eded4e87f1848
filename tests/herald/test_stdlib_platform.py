"""platform/ holds the project package without shadowing the standard library's ``platform``."""

from __future__ import annotations

import platform
import sys
import sysconfig
import tomllib
import uuid
from pathlib import Path

from tests.support.processes import ROOT

STDLIB_VERSION = ".".join(str(part) for part in sys.version_info[:3])


def test_in_the_tests():
    assert platform.python_version() == STDLIB_VERSION
    assert Path(platform.__file__).parent == Path(sysconfig.get_paths()["stdlib"])
    assert uuid.uuid4()  # uuid imports platform; it broke first when it was shadowed


def test_platform_folder_is_not_a_package():
    assert (ROOT / "platform" / "herald" / "settings.py").exists()
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_ruff_guards_against_a_new_shadow():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    selected = config["tool"]["ruff"]["lint"]["select"]
    assert "A" in selected or "A005" in selected


def test_in_the_running_web_process(web):
    response = web.get("/healthz")
    assert response.status == 200
    assert response.body == {"status": "ok", "python": STDLIB_VERSION}


def test_in_the_celery_worker(django_db_setup):
    from herald.celery import app, ping
    from tests.support.processes import running_worker

    queue = f"test-ping-{uuid.uuid4().hex[:8]}"
    with running_worker(queue):
        result = ping.apply_async(queue=queue)
        assert result.get(timeout=60) == {"pong": "ok", "python": STDLIB_VERSION}
    assert app.main == "herald"
