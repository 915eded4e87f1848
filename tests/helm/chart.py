"""Rendering ``helm/herald`` with Helm's own engine, offline, and reading what it made.

``helm-python-sdk`` embeds Helm v4's Go SDK: ``Chart.render`` is ``helm template`` (values are
checked against ``values.schema.json`` first, ``lookup`` finds nothing), ``helm_python.lint`` is
``helm lint``. No cluster and no helm binary are involved.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "herald"
RELEASE = "herald"
NAMESPACE = "herald"
DIGEST = "sha256:" + "0123456789abcdef" * 4
# The pods' writable /tmp: a path the chart mounts, not a file this code writes.
TMP = "/tmp"  # noqa: S108 -- the path the chart mounts in pods; the tests write nothing there

# Value combinations every structural test runs over, by name.
COMBOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "fixed-replicas": {
        "web": {"replicas": 4, "podDisruptionBudget": {"enabled": False, "maxUnavailable": 1}},
        "worker": {"replicas": 3, "concurrency": 4},
    },
    "autoscaling": {
        "web": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12}},
        "worker": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 8}},
    },
    "existing-secret": {
        "existingSecret": "herald-env",
        "serviceAccount": {"create": False, "name": "herald-workload"},
    },
    "no-ingress": {"ingress": {"enabled": False}, "networkPolicy": {"enabled": False}},
    "websocket-split": {
        "websocket": {
            "enabled": True,
            "replicas": 3,
            "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 20},
        },
    },
    "observability": {
        "secrets": {"metricsToken": "scrape-me-please"},
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}},
            "grafanaDashboard": {"enabled": True},
        },
    },
    "existing-secret-observability": {
        "existingSecret": "herald-env",
        "metrics": {"serviceMonitor": {"enabled": True, "tokenInExistingSecret": True}},
    },
    "production": {
        "image": {"repository": "registry.example.com/herald", "digest": DIGEST},
        "imagePullSecrets": [{"name": "registry"}],
        "platformHost": "notify.example.org",
        "secrets": {
            "secretKey": "k" * 50,
            "databaseUrl": "postgres://herald:pw@db.internal:5432/herald",
            "redisUrl": "rediss://:pw@redis.internal:6380/0",
            "emailUrl": "smtp://mailer:pw@smtp.internal:587?tls=1",
            "sentryDsn": "https://key@sentry.example.org/7",
        },
        "env": {"LOG_LEVEL": "WARNING", "DATABASE_POOL_MAX_SIZE": "8"},
        "extraEnvFrom": [{"secretRef": {"name": "more-env"}}],
        "extraVolumes": [{"name": "certs", "secret": {"secretName": "db-ca"}}],
        "extraVolumeMounts": [{"name": "certs", "mountPath": "/run/certs", "readOnly": True}],
        "podAnnotations": {"example.org/team": "notifications"},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "worker": {"nodeSelector": {"pool": "background"}},
        "ingress": {
            "tls": {"enabled": True, "secretName": "notify-wildcard"},
            "extraHosts": ["notifications.customer.example"],
            "extraTls": [{"hosts": ["notifications.customer.example"], "secretName": "customer"}],
        },
        "networkPolicy": {
            "ingressFrom": [
                {"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}},
            ],
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
        },
        "websocket": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True}, "grafanaDashboard": {"enabled": True}},
    },
}


@functools.cache
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART_DIR)


@dataclass
class Rendered:
    """One ``helm template``: the objects (hooks included) and the NOTES.txt text."""

    objects: list[dict[str, Any]]
    notes: str
    files: dict[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        matches = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
        return matches[0]

    def names(self, kind: str) -> set[str]:
        return {obj["metadata"]["name"] for obj in self.of_kind(kind)}

    def deployment(self, component: str) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-{component}")

    def job(self) -> dict[str, Any]:
        (job,) = self.of_kind("Job")
        return job

    def workloads(self) -> list[dict[str, Any]]:
        return self.of_kind("Deployment") + self.of_kind("Job")

    def environment(self, workload: dict[str, Any]) -> dict[str, str]:
        """The variables the workload's container starts with: envFrom (the rendered ConfigMaps
        and Secrets; an existingSecret, not rendered, adds nothing here), then ``env``, which
        wins."""
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        result: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                data = self.get("ConfigMap", source["configMapRef"]["name"]).get("data") or {}
                result.update(data)
            elif "secretRef" in source:
                name = source["secretRef"]["name"]
                if name in self.names("Secret"):
                    data = self.get("Secret", name).get("data") or {}
                    result.update({k: base64.b64decode(v).decode() for k, v in data.items()})
        for variable in container.get("env", []):
            result[variable["name"]] = variable["value"]
        return result


def render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> Rendered:
    manifests = chart().render(values or {}, name=RELEASE, namespace=namespace)
    objects: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(objects=objects, notes=notes, files=manifests)


@functools.cache
def combo(name: str) -> Rendered:
    """The render of ``COMBOS[name]``, once per session (treat it as read-only)."""
    return render(COMBOS[name])


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge values layers, later ones winning (as repeated ``-f`` files do)."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merged(result[key], value)
            else:
                result[key] = value
    return result
