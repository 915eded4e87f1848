"""The migration Job: `release` as a pre-install and pre-upgrade hook that can start.

A pre-install hook runs before any of the release's own objects exist, so everything the Job's
pod needs must itself be a hook created before it (a lower weight) or exist before the install.
"""

from __future__ import annotations

import pytest

from tests.helm.chart import COMBOS, RELEASE, combo, container, pod_spec

HOOK_EVENTS = {"pre-install", "pre-upgrade"}


def hook(obj) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def is_hook(obj) -> bool:
    return "helm.sh/hook" in hook(obj)


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_release_job_is_a_pre_install_and_pre_upgrade_hook(name):
    job = combo(name).job()
    annotations = hook(job)
    assert set(annotations["helm.sh/hook"].split(",")) == HOOK_EVENTS
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {
        "before-hook-creation",
        "hook-succeeded",
    }
    assert int(annotations["helm.sh/hook-weight"]) == 0
    assert container(job)["args"] == ["release"]
    assert job["spec"]["backoffLimit"] == 1
    assert job["spec"]["activeDeadlineSeconds"] == 1800
    assert pod_spec(job)["restartPolicy"] == "Never"


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_release_job_needs_nothing_that_is_created_after_it(name):
    rendered = combo(name)
    job = rendered.job()
    weight = int(hook(job)["helm.sh/hook-weight"])
    values = COMBOS[name]

    def created_before(kind: str, object_name: str) -> bool:
        matches = [o for o in rendered.of_kind(kind) if o["metadata"]["name"] == object_name]
        if not matches:
            return False
        (obj,) = matches
        events = set(hook(obj).get("helm.sh/hook", "").split(","))
        return events >= HOOK_EVENTS and int(hook(obj)["helm.sh/hook-weight"]) < weight

    for source in container(job)["envFrom"]:
        if source in values.get("extraEnvFrom", []):
            continue  # the operator's own, made beforehand
        if "configMapRef" in source:
            assert created_before("ConfigMap", source["configMapRef"]["name"])
        else:
            secret = source["secretRef"]["name"]
            if values.get("existingSecret"):
                assert secret == values["existingSecret"]  # made by the operator beforehand
            else:
                assert created_before("Secret", secret)
    account = pod_spec(job)["serviceAccountName"]
    if values.get("serviceAccount", {}).get("create", True):
        assert created_before("ServiceAccount", account)
    else:
        assert account == values["serviceAccount"]["name"]
        assert account not in rendered.names("ServiceAccount")


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_release_job_sees_the_configuration_the_pods_see(name):
    rendered = combo(name)
    web = rendered.environment(rendered.deployment("web"))
    job = rendered.environment(rendered.job())
    own = {"WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "PROMETHEUS_MULTIPROC_DIR"}
    assert {k: v for k, v in web.items() if k not in own} == job
    assert job["PLATFORM_HOST"] == rendered.get("ConfigMap", RELEASE)["data"]["PLATFORM_HOST"]
    if not COMBOS[name].get("existingSecret"):
        # Even a SECRET_KEY generated for this release: the hook copy carries the same one.
        assert len(job["SECRET_KEY"]) >= 50


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_hook_copies_are_removed_with_the_job_and_the_rest_is_not_a_hook(name):
    rendered = combo(name)
    hooks = [o for o in rendered.objects if is_hook(o)]
    assert {o["kind"] for o in hooks} <= {"Job", "ConfigMap", "Secret", "ServiceAccount"}
    for obj in hooks:
        assert obj["metadata"]["name"] == f"{RELEASE}-release"
        policy = set(hook(obj)["helm.sh/hook-delete-policy"].split(","))
        assert policy == {"before-hook-creation", "hook-succeeded"}
    # The release's own ConfigMap, Secret and Deployments are ordinary objects, so that an
    # upgrade or a rollback changes them as one revision.
    assert not is_hook(rendered.get("ConfigMap", RELEASE))
    for deployment in rendered.of_kind("Deployment"):
        assert not is_hook(deployment)
