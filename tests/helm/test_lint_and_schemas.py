"""The chart lints clean, and every object it renders is valid for Kubernetes.

Objects are validated with kubernetes-validate (the API's OpenAPI schemas, strict: an unknown
field is an error) for the oldest Kubernetes the chart supports (Chart.yaml's kubeVersion) and
the newest the package ships. The ServiceMonitor is a custom resource those schemas do not have:
it is checked against the part of the Prometheus Operator's CRD that the chart uses, below.
"""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.helm.chart import CHART_DIR, COMBOS, TMP, combo, render

KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")

# monitoring.coreos.com/v1 ServiceMonitor, only the fields the chart writes, with the CRD's
# names, types and duration pattern; anything else is refused, as the API server's structural
# schema would prune or refuse it.
_DURATION = (
    "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "labels": _STRINGS},
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": _STRINGS,
                        "matchExpressions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["key", "operator"],
                                "additionalProperties": False,
                                "properties": {
                                    "key": {"type": "string"},
                                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                                    "values": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": _DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                            "authorization": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "type": {"type": "string"},
                                    "credentials": {
                                        "type": "object",
                                        "required": ["key"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "name": {"type": "string"},
                                            "key": {"type": "string"},
                                            "optional": {"type": "boolean"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_helm_lint_finds_nothing(name):
    report = helm_python.lint(CHART_DIR, COMBOS[name], strict=True, kube_version="v1.29.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == []
    assert problems == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", sorted(COMBOS))
def test_every_object_is_valid_for_kubernetes(name, version):
    rendered = combo(name)
    assert rendered.objects
    for obj in rendered.objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            jsonschema.validate(obj, SERVICE_MONITOR_SCHEMA)
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            pytest.fail(f"{where} is not valid for Kubernetes {version}: {exc.message}")


def test_the_service_monitor_schema_refuses_what_the_crd_refuses():
    (monitor,) = combo("observability").of_kind("ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    typo = json.loads(json.dumps(monitor))
    typo["spec"]["endpoints"][0]["bearerTokenSecrett"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, SERVICE_MONITOR_SCHEMA)


def test_kubernetes_versions_are_the_supported_range():
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    oldest = re.fullmatch(r">=\s*(\d+\.\d+)\.0-0", chart["kubeVersion"]).group(1)
    assert KUBERNETES_VERSIONS[0].startswith(oldest + ".")
    assert kubernetes_validate.utils.latest_version().startswith(KUBERNETES_VERSIONS[-1][:4])


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
        ({"web": {"concurrency": "2"}}, "want integer"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"env": {"LOG_LEVEL": 10}}, "want string"),
        ({"env": {"BAD-NAME": "x"}}, "BAD-NAME"),
        ({"web": {"resources": {"limits": None}}}, "limits"),
        ({"platformHost": "Notify.Example.com"}, "platformHost"),
        ({"worker": {"metrics": {"port": 8000}}}, "port"),
        ({"metrics": {"multiprocDir": TMP}}, "multiprocDir"),
    ],
)
def test_values_schema_refuses_unknown_keys_and_bad_values(values, complaint):
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(complaint)):
        render(values)


KUBERNETES_STRUCTURES = {"resources", "probe"}


def _schema_leaves(schema: dict[str, Any], root: dict[str, Any], path: tuple[str, ...] = ()):
    """Paths of the values a user sets: every property that is not itself a group of named
    properties (maps such as env or annotations, lists and scalars are values), and Kubernetes'
    own structures (resources, probe timings), documented once as a whole."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in KUBERNETES_STRUCTURES:
            yield path
            return
        schema = root["definitions"][name]
    properties = schema.get("properties")
    if (
        schema.get("type") == "object"
        and properties
        and schema.get("additionalProperties") is False
    ):
        for key, sub in properties.items():
            yield from _schema_leaves(sub, root, (*path, key))
    else:
        yield path


def _documented_keys() -> dict[tuple[str, ...], bool]:
    """Each key of values.yaml by path, and whether a `# --` comment sits right above it."""
    found: dict[tuple[str, ...], bool] = {}
    stack: list[tuple[int, str]] = []
    comment = False
    for line in (CHART_DIR / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = True
            continue
        if not stripped or stripped.startswith("#"):
            continue
        match = re.match(r"^( *)([A-Za-z0-9_.\-/]+):", line)
        if not match or stripped.startswith("- "):
            comment = False
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        found[tuple(key for _, key in stack)] = comment
        comment = False
    return found


def test_values_yaml_documents_every_value():
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    leaves = {path for path in _schema_leaves(schema, schema) if path != ("global",)}
    documented = _documented_keys()
    missing = sorted(".".join(path) for path in leaves if path not in documented)
    assert not missing, f"in the schema, not in values.yaml: {missing}"
    bare = sorted(".".join(path) for path in leaves if not documented[path])
    assert not bare, f"values without a `# --` comment: {bare}"
