"""checkov, from a virtualenv of its own, run offline.

checkov is large and pins an old ``packaging``, so it is not a dev requirement: ``bin/lib.sh``'s
``ensure_tool_venv`` installs ``requirements-checkov.txt`` into ``.venv-tools/checkov`` (bin/test
does before pytest starts; a test that finds it missing or stale asks the same function, once).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements-checkov.txt"
VENV = ROOT / ".venv-tools" / "checkov"
# No network here but the package index: no policy download, no mapping of resources to a
# platform, no package (SCA) scan.
OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}


def _installed() -> bool:
    stamp = VENV / ".requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    return (
        (VENV / "bin" / "checkov").exists()
        and stamp.exists()
        and (stamp.read_text().strip() == wanted)
    )


@functools.cache
def executable() -> Path:
    """The checkov command, installed first when missing or out of date (about 40 s, once)."""
    if not _installed():
        subprocess.run(
            ["bash", "-c", ". bin/lib.sh && ensure_tool_venv checkov"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=900,
        )
    return VENV / "bin" / "checkov"


def run(*args: str) -> list[dict[str, Any]]:
    """Run checkov with ``args`` and return its JSON reports (one per framework that ran)."""
    result = subprocess.run(
        [
            executable(),
            *args,
            "--quiet",
            "--compact",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE_ENV},
        timeout=300,
    )
    if not result.stdout.strip():
        raise AssertionError(f"checkov printed no report: {result.stderr}")
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]
