"""CORS on the API and the WebSocket's Origin check: only the tenant's allowed origins, on the
tenant's host; preflights need no credential and do not count against rate limits."""

from __future__ import annotations

import json
import socket

import pytest
from websockets.sync.client import connect

from tenants.services import tenant_update
from tests.support.processes import http
from widget.cors import ALLOW_HEADERS, EXPOSE_HEADERS

ALLOWED = "https://app.alpha.example"


@pytest.fixture
def alpha_origins(db, world):
    """Tenant A allows ALLOWED (rolled back with the test)."""
    tenant_update(tenant=world.tenant_a, fields={"allowed_origins": [ALLOWED]})
    return world


def preflight(
    api, host: str, origin: str, method: str = "GET", path: str = "/api/v1/me/notifications"
):
    return api.options(
        path,
        HTTP_HOST=host,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )


def test_a_preflight_from_an_allowed_origin_is_answered_without_credentials(api, alpha_origins):
    response = preflight(api, alpha_origins.alice.host, ALLOWED, method="PATCH")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert "PATCH" in response["Access-Control-Allow-Methods"]
    assert response["Access-Control-Allow-Headers"] == ALLOW_HEADERS
    assert int(response["Access-Control-Max-Age"]) > 0
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response
    # Answered before rate limiting: not counted, so no RateLimit headers either.
    assert "RateLimit-Remaining" not in response


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "https://app.alpha.example.evil.example", "null", ""],
)
def test_a_preflight_from_any_other_origin_gets_no_cors_headers(api, alpha_origins, origin):
    response = preflight(api, alpha_origins.alice.host, origin)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "Access-Control-Allow-Origin" not in response


def test_another_tenants_allowed_origin_is_not_allowed_here(api, alpha_origins):
    response = preflight(api, alpha_origins.bob.host, ALLOWED)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response


def test_preflights_on_the_platform_or_an_unknown_host_are_refused(api, alpha_origins):
    platform = preflight(api, "localhost", ALLOWED)
    assert platform.status_code == 403
    assert "tenant's own host" in platform.json()["error"]["message"]
    unknown = preflight(api, "nobody.localhost", ALLOWED)
    assert unknown.status_code == 404
    assert "Access-Control-Allow-Origin" not in unknown


def test_responses_to_an_allowed_origin_carry_cors_and_expose_rate_limit_headers(
    api, alpha_origins, erin
):
    response = api.get(
        "/api/v1/me/notifications/unread_count",
        HTTP_HOST=erin.host,
        HTTP_AUTHORIZATION=f"Bearer {erin.token}",
        HTTP_ORIGIN=ALLOWED,
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert response["Access-Control-Expose-Headers"] == EXPOSE_HEADERS
    assert "Origin" in response["Vary"]
    assert "RateLimit-Remaining" in response


def test_errors_are_readable_by_an_allowed_origin_so_the_widget_can_renew_its_token(
    api, alpha_origins
):
    for token in ("not-a-token", alpha_origins.bob.api_key):  # unreadable; another tenant's
        response = api.get(
            "/api/v1/me/notifications",
            HTTP_HOST=alpha_origins.alice.host,
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_ORIGIN=ALLOWED,
        )
        assert response.status_code == 401
        assert response["Access-Control-Allow-Origin"] == ALLOWED


def test_responses_to_other_origins_have_no_cors_headers_but_still_vary(api, alpha_origins, erin):
    response = api.get(
        "/api/v1/me/notifications/unread_count",
        HTTP_HOST=erin.host,
        HTTP_AUTHORIZATION=f"Bearer {erin.token}",
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 200  # the browser, not the server, withholds it
    assert "Access-Control-Allow-Origin" not in response
    assert "Origin" in response["Vary"]


def test_an_origin_is_allowed_on_the_platform_host_never(api, alpha_origins, erin):
    response = api.get(
        "/api/v1/me/notifications/unread_count",
        HTTP_HOST="localhost",
        HTTP_AUTHORIZATION=f"Bearer {erin.token}",
        HTTP_ORIGIN=ALLOWED,
    )
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_non_api_paths_are_left_alone(api, alpha_origins):
    response = api.get("/healthz", HTTP_HOST=alpha_origins.alice.host, HTTP_ORIGIN=ALLOWED)
    assert "Access-Control-Allow-Origin" not in response
    assert "Origin" not in response.get("Vary", "")


def test_allowed_origins_reach_the_running_server_at_once(web, committed):
    from tests.support.personas import committed_tenant

    tenant, _api = committed_tenant(committed, "wgt-cors-live", "Live CORS")
    url = f"{web.url}/api/v1/me/notifications"
    headers = {
        "Host": f"wgt-cors-live.localhost:{web.port}",
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "GET",
    }
    assert http("OPTIONS", url, headers=headers).status == 403
    tenant_update(tenant=tenant, fields={"allowed_origins": ["https://shop.example"]})
    allowed = http("OPTIONS", url, headers=headers)
    assert allowed.status == 204
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    tenant_update(tenant=tenant, fields={"allowed_origins": []})
    assert http("OPTIONS", url, headers=headers).status == 403


# --- the WebSocket's Origin check ----------------------------------------------------------------


def _close_code_or_frame(web, host: str, token: str, origin: str | None) -> object:
    sock = socket.create_connection(("127.0.0.1", web.port))
    headers = {"Origin": origin} if origin else None
    uri = f"ws://{host}/ws/v1/notifications"
    with connect(
        uri, sock=sock, additional_headers=headers, subprotocols=["bearer", token], open_timeout=10
    ) as ws:
        try:
            return json.loads(ws.recv(timeout=10))["type"]
        except Exception:
            return ws.close_code


def test_the_socket_accepts_the_tenants_own_host_with_its_port_and_allowed_origins(web, committed):
    from tests.support.personas import committed_tenant

    tenant, api = committed_tenant(committed, "wgt-ws-origin", "WS origins")
    tenant_update(tenant=tenant, fields={"allowed_origins": ["http://shop.localhost:3000"]})
    host = f"wgt-ws-origin.localhost:{web.port}"
    token = http(
        "POST",
        f"{web.url}/api/v1/users/ws-user/token",
        headers={"Host": host, "Authorization": f"Bearer {api.token}"},
    ).body["token"]

    def outcome(origin: str | None) -> object:
        return _close_code_or_frame(web, host, token, origin)

    assert outcome(f"http://{host}") == "unread_count"  # a page on the tenant's own host
    assert outcome("http://shop.localhost:3000") == "unread_count"
    assert outcome(None) == "unread_count"  # not a browser: the token decides
    assert outcome("http://shop.localhost:3001") == 4403  # another port is another origin
    assert outcome("https://evil.example") == 4403
    assert outcome(f"http://wgt-ws-origin.localhost:{web.port + 1}") == 4403
