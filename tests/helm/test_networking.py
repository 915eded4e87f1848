"""Service, Ingress (platform host and every tenant host), the WebSocket split, NetworkPolicies."""

from __future__ import annotations

import pytest

from tests.helm.chart import COMBOS, RELEASE, combo, render


def routes(ingress) -> dict[str, dict[str, str]]:
    """host -> {path: service}."""
    return {
        rule["host"]: {
            path["path"]: path["backend"]["service"]["name"] for path in rule["http"]["paths"]
        }
        for rule in ingress["spec"]["rules"]
    }


def test_web_service_serves_port_8000_named_http():
    rendered = combo("defaults")
    service = rendered.get("Service", f"{RELEASE}-web")
    (port,) = service["spec"]["ports"]
    assert port == {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    web = rendered.deployment("web")
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]


def test_ingress_serves_the_platform_host_and_every_tenant_host_over_tls():
    rendered = combo("defaults")
    ingress = rendered.get("Ingress", RELEASE)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert routes(ingress) == {
        "herald.example.com": {"/": f"{RELEASE}-web"},
        "*.herald.example.com": {"/": f"{RELEASE}-web"},
    }
    (tls,) = ingress["spec"]["tls"]
    assert tls == {
        "hosts": ["herald.example.com", "*.herald.example.com"],
        "secretName": f"{RELEASE}-tls",
    }
    annotations = ingress["metadata"]["annotations"]
    # WebSockets stay open between pings through quiet spells; the API's 8 MiB bodies pass.
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "8m"


def test_ingress_names_custom_domains_and_their_certificates():
    ingress = combo("production").get("Ingress", RELEASE)
    hosts = set(routes(ingress))
    assert hosts == {"notify.example.org", "*.notify.example.org", "notifications.customer.example"}
    assert ingress["spec"]["tls"] == [
        {"hosts": ["notify.example.org", "*.notify.example.org"], "secretName": "notify-wildcard"},
        {"hosts": ["notifications.customer.example"], "secretName": "customer"},
    ]


def test_ingress_class_and_tls_follow_values():
    ingress = render(
        {"ingress": {"className": "traefik", "annotations": None, "tls": {"enabled": False}}}
    ).get("Ingress", RELEASE)
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert "tls" not in ingress["spec"]
    assert "annotations" not in ingress["metadata"]


def test_no_ingress_when_disabled():
    rendered = combo("no-ingress")
    assert rendered.of_kind("Ingress") == []
    assert rendered.names("Service") == {f"{RELEASE}-web"}
    assert "No Ingress" in rendered.notes


@pytest.mark.parametrize("name", ["websocket-split", "production"])
def test_websocket_split_routes_ws_to_its_own_deployment(name):
    rendered = combo(name)
    websocket = rendered.deployment("websocket")
    web = rendered.deployment("web")
    # The same process and configuration as web, scaled on its own.
    assert websocket["spec"]["template"]["spec"]["containers"][0]["args"] == ["web"]
    assert rendered.environment(websocket) == rendered.environment(web)
    service = rendered.get("Service", f"{RELEASE}-websocket")
    assert service["spec"]["selector"] == websocket["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] != web["spec"]["selector"]["matchLabels"]
    ingress = rendered.get("Ingress", RELEASE)
    for paths in routes(ingress).values():
        assert paths == {"/ws/": f"{RELEASE}-websocket", "/": f"{RELEASE}-web"}
    ws_path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert ws_path["pathType"] == "Prefix"
    assert f"{RELEASE}-websocket" in rendered.names("PodDisruptionBudget")


def test_without_the_split_web_serves_websockets_too():
    rendered = combo("defaults")
    assert f"{RELEASE}-websocket" not in rendered.names("Deployment")
    assert f"{RELEASE}-websocket" not in rendered.names("Service")


def policy(rendered, component):
    return rendered.get("NetworkPolicy", f"{RELEASE}-{component}")


def test_network_policies_open_only_the_ports_that_serve():
    rendered = combo("defaults")
    pods = {
        obj["metadata"]["labels"]["app.kubernetes.io/component"] for obj in rendered.workloads()
    }
    assert {
        p["metadata"]["labels"]["app.kubernetes.io/component"]
        for p in rendered.of_kind("NetworkPolicy")
    } == pods
    (web,) = policy(rendered, "web")["spec"]["ingress"]
    assert web == {"ports": [{"port": "http", "protocol": "TCP"}]}
    (worker,) = policy(rendered, "worker")["spec"]["ingress"]
    assert worker == {"ports": [{"port": "metrics", "protocol": "TCP"}]}
    for silent in ("beat", "release"):
        assert policy(rendered, silent)["spec"]["ingress"] == []
    for each in rendered.of_kind("NetworkPolicy"):
        assert each["spec"]["policyTypes"] == ["Ingress"]


def test_network_policies_admit_only_the_named_sources():
    rendered = combo("production")
    controller, monitoring = (
        COMBOS["production"]["networkPolicy"]["ingressFrom"][0],
        COMBOS["production"]["networkPolicy"]["metricsFrom"][0],
    )
    for component in ("web", "websocket"):
        (rule,) = policy(rendered, component)["spec"]["ingress"]
        assert rule["from"] == [controller, monitoring]
    (rule,) = policy(rendered, "worker")["spec"]["ingress"]
    assert rule["from"] == [monitoring]


def test_network_policies_can_be_left_out():
    assert combo("no-ingress").of_kind("NetworkPolicy") == []
