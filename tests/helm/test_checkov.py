"""checkov over the chart's rendered manifests: nothing fails but the skips below, each with
its reason, each limited to the objects it is about.

One checkov run covers every value combination (a directory each), so the suite pays checkov's
start-up once. The first run installs checkov into its own virtualenv (tests/support/checkov.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import COMBOS, NAMESPACE, RELEASE, combo
from tests.support import checkov

# check id -> (the workloads it may fail on, whether only without an image digest, why).
SKIPS: dict[str, tuple[frozenset[str], bool, str]] = {
    "CKV_K8S_8": (
        frozenset({"worker", "beat"}),
        False,
        "Liveness probe: neither process serves HTTP, and the one probe Celery offers, "
        "`celery inspect ping`, starts a Python interpreter and a broker round trip per probe "
        "(heavy) and fails exactly when the broker does, where restarting cannot help. A worker "
        "or beat that cannot go on exits, and the kubelet restarts it.",
    ),
    "CKV_K8S_9": (
        frozenset({"worker", "beat"}),
        False,
        "Readiness probe: readiness only decides Service endpoints, and no Service sends "
        "traffic to worker or beat pods (the worker metrics Service is scraped, not served).",
    ),
    "CKV_K8S_35": (
        frozenset({"web", "websocket", "worker", "beat", "release"}),
        False,
        "Secrets as environment variables: Herald is configured by environment variables, and "
        "with existingSecret every key of the operator's Secret becomes one without the chart "
        "knowing the keys. Files remain possible: mount a Secret through extraVolumes and set "
        "NAME_FILE in env (Herald reads NAME_FILE for every variable).",
    ),
    "CKV_K8S_43": (
        frozenset({"web", "websocket", "worker", "beat", "release"}),
        True,
        "Image by digest: image.digest pins it (the `production` combination proves this "
        "check passes then); the default is the appVersion tag, as a digest depends on the "
        "operator's own build.",
    ),
    "CKV_K8S_15": (
        frozenset({"web", "websocket", "worker", "beat", "release"}),
        True,
        "Pull policy Always: IfNotPresent is right for an immutable release tag or a digest "
        "(checkov accepts it with a digest, see `production`); Always would only matter for a "
        "moving tag, which the chart does not use by default.",
    ),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Failed checks of every combination, by combination name."""
    root = tmp_path_factory.mktemp("rendered")
    for name in COMBOS:
        directory = root / name
        directory.mkdir()
        for path, text in combo(name).files.items():
            if path.endswith(".yaml") and text.strip():
                (directory / Path(path).name).write_text(text)
    (report,) = checkov.run("--directory", str(root), "--framework", "kubernetes")
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 100
    failed: dict[str, list[dict[str, Any]]] = {name: [] for name in COMBOS}
    for check in report["results"]["failed_checks"]:
        failed[check["file_path"].strip("/").split("/")[0]].append(check)
    return failed


def skipped(name: str, check: dict[str, Any]) -> bool:
    if check["check_id"] not in SKIPS:
        return False
    workloads, without_digest_only, _reason = SKIPS[check["check_id"]]
    _kind, namespace, object_name = check["resource"].split(".", 2)
    component = object_name.removeprefix(f"{RELEASE}-")
    has_digest = bool(COMBOS[name].get("image", {}).get("digest"))
    return (
        namespace == NAMESPACE
        and component in workloads
        and not (without_digest_only and has_digest)
    )


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_checkov_fails_nothing_but_the_justified_skips(reports, name):
    unexpected = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in reports[name]
        if not skipped(name, c)
    ]
    assert unexpected == []


def test_every_skip_is_still_needed(reports):
    used = {c["check_id"] for checks in reports.values() for c in checks}
    assert set(SKIPS) <= used, f"no longer failing, drop the skip: {set(SKIPS) - used}"
