"""The optional ServiceMonitor and Grafana dashboard."""

from __future__ import annotations

import json

from tests.helm.chart import CHART_DIR, RELEASE, combo, render


def endpoints(rendered) -> dict[str, dict]:
    (monitor,) = rendered.of_kind("ServiceMonitor")
    return {endpoint["port"]: endpoint for endpoint in monitor["spec"]["endpoints"]}


def test_nothing_for_prometheus_operator_or_grafana_by_default():
    rendered = combo("defaults")
    assert rendered.of_kind("ServiceMonitor") == []
    assert f"{RELEASE}-dashboard" not in rendered.names("ConfigMap")
    assert f"{RELEASE}-worker-metrics" not in rendered.names("Service")


def test_service_monitor_scrapes_web_and_workers_with_the_metrics_token():
    rendered = combo("observability")
    (monitor,) = rendered.of_kind("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    found = endpoints(rendered)
    assert found["http"]["path"] == "/metrics"
    assert found["http"]["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": RELEASE, "key": "METRICS_TOKEN"},
    }
    assert "authorization" not in found["metrics"]  # the worker port takes no token
    # Every Service it selects exposes one of its ports; web's is the one the pods serve.
    selector = monitor["spec"]["selector"]
    (expression,) = selector["matchExpressions"]
    selected = [
        service
        for service in rendered.of_kind("Service")
        if all(
            service["metadata"]["labels"].get(k) == v for k, v in selector["matchLabels"].items()
        )
        and service["metadata"]["labels"]["app.kubernetes.io/component"] in expression["values"]
    ]
    assert {s["metadata"]["name"] for s in selected} == {
        f"{RELEASE}-web",
        f"{RELEASE}-worker-metrics",
    }
    worker_service = rendered.get("Service", f"{RELEASE}-worker-metrics")
    assert worker_service["spec"]["clusterIP"] == "None"
    assert worker_service["spec"]["ports"][0]["port"] == 9808
    assert rendered.environment(rendered.deployment("worker"))["METRICS_PORT"] == "9808"


def test_service_monitor_takes_the_token_from_an_existing_secret():
    found = endpoints(combo("existing-secret-observability"))
    assert found["http"]["authorization"]["credentials"] == {
        "name": "herald-env",
        "key": "METRICS_TOKEN",
    }


def test_service_monitor_without_a_token_sends_none_and_says_so():
    rendered = render({"metrics": {"serviceMonitor": {"enabled": True}}})
    assert "authorization" not in endpoints(rendered)["http"]
    assert "/metrics is open" in rendered.notes


def test_service_monitor_follows_the_worker_metrics_port():
    rendered = render(
        {"metrics": {"serviceMonitor": {"enabled": True}}, "worker": {"metrics": {"port": 0}}}
    )
    assert set(endpoints(rendered)) == {"http"}
    assert f"{RELEASE}-worker-metrics" not in rendered.names("Service")
    assert "METRICS_PORT" not in rendered.environment(rendered.deployment("worker"))


def test_grafana_dashboard_configmap_carries_the_charts_dashboard():
    rendered = combo("observability")
    config_map = rendered.get("ConfigMap", f"{RELEASE}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART_DIR / "dashboards" / "herald.json").read_text())
    assert json.loads(config_map["data"]["herald.json"]) == shipped
