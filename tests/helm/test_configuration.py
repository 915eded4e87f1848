"""Configuration: every variable Herald reads can be set through values, secrets stay in
Secrets, and a change of configuration rolls the pods.

The list of variables comes from the README's "Configuration" section and from the settings
module's own reads, so a variable documented or added there and not reachable through the
chart fails here.
"""

from __future__ import annotations

import base64
import re

import helm_python
import pytest

from tests.helm.chart import CHART_DIR, COMBOS, RELEASE, ROOT, combo, container, render

# Variables with a value of their own: (values, expected value, components that get it).
ALL = ("web", "worker", "beat", "release")
DEDICATED = {
    "PLATFORM_HOST": ({"platformHost": "notify.example.org"}, "notify.example.org", ALL),
    "SECRET_KEY": ({"secrets": {"secretKey": "s" * 40}}, "s" * 40, ALL),
    "DATABASE_URL": ({"secrets": {"databaseUrl": "postgres://h@db/h"}}, "postgres://h@db/h", ALL),
    "REDIS_URL": ({"secrets": {"redisUrl": "redis://cache:6379/1"}}, "redis://cache:6379/1", ALL),
    "EMAIL_URL": ({"secrets": {"emailUrl": "smtps://u:p@mx:465"}}, "smtps://u:p@mx:465", ALL),
    "SENTRY_DSN": ({"secrets": {"sentryDsn": "https://k@sentry/1"}}, "https://k@sentry/1", ALL),
    "METRICS_TOKEN": ({"secrets": {"metricsToken": "t0ken"}}, "t0ken", ALL),
    "VAPID_PRIVATE_KEY": ({"secrets": {"vapidPrivateKey": "pem"}}, "pem", ALL),
    "HERALD_ENCRYPTION_KEYS": ({"secrets": {"encryptionKeys": "k1,k2"}}, "k1,k2", ALL),
    "WEB_CONCURRENCY": ({"web": {"concurrency": 3}}, "3", ("web",)),
    "FORWARDED_ALLOW_IPS": ({"web": {"forwardedAllowIps": "10.0.0.0/8"}}, "10.0.0.0/8", ("web",)),
    "CELERY_WORKER_CONCURRENCY": ({"worker": {"concurrency": 6}}, "6", ("worker",)),
    "METRICS_PORT": ({"worker": {"metrics": {"port": 9100}}}, "9100", ("worker",)),
    "PROMETHEUS_MULTIPROC_DIR": (
        {"metrics": {"multiprocDir": "/run/prom"}},
        "/run/prom",
        ("web", "worker"),
    ),
}


def readme_configuration_variables() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Configuration\n", 1)[1].split("\n### ", 1)[0]
    names = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", section))
    names.discard("NAME_FILE")  # the pattern for any variable, not a variable
    return names


def settings_variables() -> set[str]:
    settings = (ROOT / "platform" / "herald" / "settings.py").read_text()
    return set(re.findall(r"\benv_[a-z]+\(\s*\"([A-Z][A-Z0-9_]+)\"", settings))


VARIABLES = sorted(readme_configuration_variables() | settings_variables())


def test_the_variable_lists_are_read():
    # Guards the parsing above: both sources name what they obviously must.
    assert {"DATABASE_URL", "METRICS_PORT", "WEB_CONCURRENCY"} <= readme_configuration_variables()
    assert {"SECRET_KEY", "EMAIL_SWEEP_SECONDS"} <= settings_variables()
    assert len(VARIABLES) > 40


def environments(rendered) -> dict[str, dict[str, str]]:
    result = {}
    for workload in rendered.workloads():
        result[workload["metadata"]["labels"]["app.kubernetes.io/component"]] = (
            rendered.environment(workload)
        )
    return result


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_variable_herald_reads_is_reachable_through_values(variable):
    if variable in DEDICATED:
        values, expected, where = DEDICATED[variable]
    else:
        values, expected, where = {"env": {variable: "chart-set-value"}}, "chart-set-value", ALL
    found = environments(render(values))
    for component in where:
        assert found[component].get(variable) == expected, component
    # Dedicated values reach only the processes that read them.
    for component in set(ALL) - set(where):
        assert variable not in found[component], component


@pytest.mark.parametrize("variable", sorted(DEDICATED))
def test_a_dedicated_variable_is_refused_in_env_with_the_value_to_use(variable):
    with pytest.raises(
        helm_python.HelmRenderError, match=rf"env\.{variable}: {variable} is set by the chart"
    ):
        render({"env": {variable: "x"}})


def test_the_port_is_refused_in_env():
    with pytest.raises(helm_python.HelmRenderError, match=r"web.env.PORT: the port is fixed"):
        render({"web": {"env": {"PORT": "9000"}}})


@pytest.mark.parametrize("variable", sorted(DEDICATED))
def test_values_yaml_names_each_dedicated_variable(variable):
    assert re.search(rf"# -- {variable}\b", (CHART_DIR / "values.yaml").read_text())


def test_per_deployment_env_reaches_only_that_deployment():
    found = environments(
        render(
            {
                "web": {"env": {"WEB_THREADS": "6"}},
                "worker": {"env": {"DELIVERY_BATCH_SIZE": "20"}},
                "beat": {"env": {"LOG_LEVEL": "WARNING"}},
                "migrations": {"env": {"LOG_LEVEL": "DEBUG"}},
            }
        )
    )
    assert found["web"]["WEB_THREADS"] == "6"
    assert "WEB_THREADS" not in found["worker"]
    assert found["worker"]["DELIVERY_BATCH_SIZE"] == "20"
    assert found["beat"]["LOG_LEVEL"] == "WARNING"
    assert found["release"]["LOG_LEVEL"] == "DEBUG"
    assert "LOG_LEVEL" not in found["web"]


def secret_data(rendered, name=RELEASE) -> dict[str, str]:
    data = rendered.get("Secret", name)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def test_secrets_go_to_the_secret_and_nothing_else_to_it():
    rendered = combo("production")
    secret = secret_data(rendered)
    assert set(secret) == {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "EMAIL_URL", "SENTRY_DSN"}
    assert secret["DATABASE_URL"] == "postgres://herald:pw@db.internal:5432/herald"
    config = rendered.get("ConfigMap", RELEASE)["data"]
    assert set(config) == {"PLATFORM_HOST", "LOG_LEVEL", "DATABASE_POOL_MAX_SIZE"}
    for workload in rendered.workloads():
        for variable in container(workload).get("env", []):
            assert variable["name"] not in secret


def test_default_values_render_with_a_generated_secret_key_and_say_what_is_missing():
    rendered = combo("defaults")
    secret = secret_data(rendered)
    assert set(secret) == {"SECRET_KEY"}
    assert re.fullmatch(r"[A-Za-z0-9]{64}", secret["SECRET_KEY"])
    # A fresh render (helm template, no cluster to read the live Secret from) draws a new one.
    assert secret_data(render({}))["SECRET_KEY"] != secret["SECRET_KEY"]
    assert "secrets.databaseUrl and secrets.redisUrl (or existingSecret) are required" in (
        rendered.notes
    )
    assert "SECRET_KEY was generated" in rendered.notes
    quiet = combo("production").notes
    assert "required" not in quiet
    assert "generated" not in quiet


@pytest.mark.parametrize("name", ["existing-secret", "existing-secret-observability"])
def test_an_existing_secret_replaces_the_charts(name):
    rendered = combo(name)
    assert rendered.of_kind("Secret") == []
    for workload in rendered.workloads():
        refs = [s["secretRef"]["name"] for s in container(workload)["envFrom"] if "secretRef" in s]
        assert refs == ["herald-env"]
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert "checksum/secret" not in annotations
    assert "required" not in rendered.notes


def test_existing_secret_and_secret_values_exclude_each_other():
    with pytest.raises(
        helm_python.HelmRenderError, match=r"secrets.databaseUrl is set along with existingSecret"
    ):
        render({"existingSecret": "herald-env", "secrets": {"databaseUrl": "postgres://x"}})


def pod_annotations(rendered, component="web") -> dict[str, str]:
    return rendered.deployment(component)["spec"]["template"]["metadata"]["annotations"]


def test_a_change_of_configuration_rolls_every_deployment():
    base = {"secrets": {"secretKey": "k" * 40}}
    before = render(base)
    same = render({**base, "web": {"replicas": 5}})
    config = render({**base, "env": {"LOG_LEVEL": "DEBUG"}})
    secret = render({"secrets": {"secretKey": "k" * 40, "databaseUrl": "postgres://other"}})
    for component in ("web", "worker", "beat"):
        assert pod_annotations(same, component) == pod_annotations(before, component)
        changed = pod_annotations(config, component)
        assert changed["checksum/config"] != pod_annotations(before, component)["checksum/config"]
        assert changed["checksum/secret"] == pod_annotations(before, component)["checksum/secret"]
        rotated = pod_annotations(secret, component)
        assert rotated["checksum/secret"] != pod_annotations(before, component)["checksum/secret"]


def test_extra_sources_and_volumes_reach_every_container():
    rendered = combo("production")
    for workload in rendered.workloads():
        box = container(workload)
        assert box["envFrom"][-1] == {"secretRef": {"name": "more-env"}}
        assert {"name": "certs", "mountPath": "/run/certs", "readOnly": True} in box["volumeMounts"]
    assert (
        COMBOS["production"]["extraVolumes"][0]
        in rendered.job()["spec"]["template"]["spec"]["volumes"]
    )
