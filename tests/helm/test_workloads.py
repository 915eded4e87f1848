"""The Deployments: which processes run, how many, how they are probed, stopped and locked down."""

from __future__ import annotations

import helm_python
import pytest

from tests.helm.chart import COMBOS, DIGEST, RELEASE, TMP, combo, container, pod_spec, render

WEB_LIKE = ("web", "websocket")


def components(rendered) -> set[str]:
    return {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in rendered.workloads()}


def test_default_values_yield_the_contracts_workloads():
    rendered = combo("defaults")
    assert rendered.names("Deployment") == {f"{RELEASE}-{c}" for c in ("web", "worker", "beat")}
    for component in ("web", "worker", "beat"):
        deployment = rendered.deployment(component)
        assert container(deployment)["args"] == [component]
        assert container(deployment)["image"] == "herald:0.1.0"
    assert container(rendered.job())["args"] == ["release"]


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_beat_is_one_pod_and_never_two(name):
    beat = combo(name).deployment("beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert f"{RELEASE}-beat" not in combo(name).names("HorizontalPodAutoscaler")
    assert f"{RELEASE}-beat" not in combo(name).names("PodDisruptionBudget")


def test_beat_cannot_be_scaled_through_values():
    with pytest.raises(helm_python.HelmValuesError, match="replicas"):
        render({"beat": {"replicas": 2}})


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_every_pod_runs_non_root_on_a_read_only_root_with_tmp_writable(name):
    rendered = combo(name)
    for workload in rendered.workloads():
        spec = pod_spec(workload)
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == security["runAsGroup"] == security["fsGroup"] == 10001
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        box = container(workload)
        assert box["securityContext"] == {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in box["volumeMounts"]}
        assert "emptyDir" in volumes[mounts[TMP]]
        resources = box["resources"]
        assert set(resources["requests"]) >= {"cpu", "memory"}
        assert set(resources["limits"]) >= {"cpu", "memory"}


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_web_and_workers_sum_metrics_in_an_empty_dir(name):
    rendered = combo(name)
    for deployment in rendered.of_kind("Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        env = rendered.environment(deployment)
        if component == "beat":
            assert "PROMETHEUS_MULTIPROC_DIR" not in env
            continue
        directory = env["PROMETHEUS_MULTIPROC_DIR"]
        mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        assert "emptyDir" in volumes[mounts[directory]]
        assert not directory.startswith(TMP)


@pytest.mark.parametrize("name", ["defaults", "websocket-split", "production"])
def test_web_pods_are_probed_and_drain_before_stopping(name):
    rendered = combo(name)
    web_like = [c for c in WEB_LIKE if c in components(rendered)]
    assert "web" in web_like
    for component in web_like:
        deployment = rendered.deployment(component)
        box = container(deployment)
        assert box["ports"] == [{"containerPort": 8000, "name": "http", "protocol": "TCP"}]
        probes = {
            kind: box[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness", "readiness")
        }
        assert probes["startup"] == {"path": "/healthz", "port": "http"}
        assert probes["liveness"] == {"path": "/healthz", "port": "http"}
        assert probes["readiness"] == {"path": "/readyz", "port": "http"}
        command = box["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        sleep = int(command[1])
        assert sleep > 0
        # The sleep, then uvicorn closing WebSockets and finishing requests, before SIGKILL.
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= sleep + 30
        # A rolling update never goes below the wanted number of ready pods.
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("component", ["worker", "beat"])
def test_worker_and_beat_have_no_probes_and_stop_on_sigterm(component):
    deployment = combo("defaults").deployment(component)
    box = container(deployment)
    assert not {"startupProbe", "livenessProbe", "readinessProbe", "lifecycle"} & set(box)
    if component == "worker":
        # Celery's warm shutdown lets the running batch finish.
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= 60


def test_process_counts_come_from_values():
    rendered = combo("fixed-replicas")
    assert rendered.deployment("web")["spec"]["replicas"] == 4
    assert rendered.deployment("worker")["spec"]["replicas"] == 3
    assert rendered.environment(rendered.deployment("worker"))["CELERY_WORKER_CONCURRENCY"] == "4"
    assert rendered.environment(rendered.deployment("web"))["WEB_CONCURRENCY"] == "1"
    assert rendered.of_kind("HorizontalPodAutoscaler") == []
    assert rendered.names("PodDisruptionBudget") == {f"{RELEASE}-worker"}


@pytest.mark.parametrize("name", ["autoscaling", "websocket-split"])
def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(name):
    rendered = combo(name)
    scaled = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa
        for hpa in rendered.of_kind("HorizontalPodAutoscaler")
    }
    assert scaled
    for target, hpa in scaled.items():
        deployment = rendered.get("Deployment", target)
        assert "replicas" not in deployment["spec"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    if name == "autoscaling":
        assert set(scaled) == {f"{RELEASE}-web", f"{RELEASE}-worker"}
        assert scaled[f"{RELEASE}-web"]["spec"]["minReplicas"] == 3
        assert scaled[f"{RELEASE}-web"]["spec"]["maxReplicas"] == 12
    else:
        assert set(scaled) == {f"{RELEASE}-websocket"}


def test_autoscaling_bounds_must_make_sense():
    with pytest.raises(
        helm_python.HelmRenderError, match=r"web.autoscaling.minReplicas \(5\) is above maxReplicas"
    ):
        render({"web": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}})


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_disruption_budgets_select_their_own_pods(name):
    rendered = combo(name)
    for budget in rendered.of_kind("PodDisruptionBudget"):
        deployment = rendered.get("Deployment", budget["metadata"]["name"])
        assert budget["spec"]["selector"] == deployment["spec"]["selector"]
        assert budget["spec"]["maxUnavailable"] == 1


def test_the_image_is_pulled_by_digest_when_one_is_given():
    rendered = combo("production")
    for workload in rendered.workloads():
        assert container(workload)["image"] == f"registry.example.com/herald@{DIGEST}"
        assert pod_spec(workload)["imagePullSecrets"] == [{"name": "registry"}]
    tagged = render({"image": {"tag": "2.3.1"}})
    assert container(tagged.deployment("web"))["image"] == "herald:2.3.1"


def test_scheduling_values_apply_globally_and_per_deployment():
    rendered = combo("production")
    web = pod_spec(rendered.deployment("web"))
    worker = pod_spec(rendered.deployment("worker"))
    assert web["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert worker["nodeSelector"] == {"pool": "background"}
    (spread,) = web["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    # Each Deployment spreads its own pods.
    assert (
        spread["labelSelector"]["matchLabels"]
        == rendered.deployment("web")["spec"]["selector"]["matchLabels"]
    )
    assert "topologySpreadConstraints" not in pod_spec(rendered.job())
    annotations = rendered.deployment("web")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["example.org/team"] == "notifications"


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_every_object_carries_the_standard_labels(name):
    for obj in combo(name).objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "herald"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"].startswith("herald-")
        assert obj["metadata"]["namespace"] == "herald"
