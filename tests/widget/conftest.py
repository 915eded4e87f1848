"""Widget tests: the real script in headless Chromium, on a customer's page, against the real web
process and WebSocket.

A customer's web app is played by a stdlib HTTP server on another port (its own origin): its page
has a strict Content-Security-Policy, loads ``herald.js`` from the tenant's host and a separate
``app.js`` (no inline script) that mounts the widget. ``getToken`` fetches ``/token`` from that
server, which hands out the tokens the test gave it. Each test uses a committed tenant of its
own (``wgt-...``), whose allowed origins list the shop's origin.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings

from tenants.models import Tenant
from tenants.services import tenant_update
from tests.support.api import Caller
from tests.support.personas import committed_tenant
from tests.support.processes import Server, free_port, http

APP_JS = """
"use strict";
window.__events = [];
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
const params = new URLSearchParams(location.search);
const slot = document.getElementById("bell");
const types = ["unread", "notification", "connection", "select", "error", "open", "close", "push",
  "settings"];
for (const type of types) {
  slot.addEventListener(`herald:${type}`, (event) => {
    window.__events.push({ type, detail: JSON.parse(JSON.stringify(event.detail || null)) });
    if (type === "select" && params.get("stay")) event.preventDefault();
  });
}
const options = {
  apiUrl: params.get("api"),
  getToken: () => fetch("/token").then((response) => response.json()).then((body) => body.token),
};
if (params.get("locale")) options.locale = params.get("locale");
if (params.get("poll")) options.pollInterval = Number(params.get("poll"));
if (params.get("size")) options.pageSize = Number(params.get("size"));
const mount = () => (window.__handle = Herald.mount(slot, options));
if (params.get("sw")) {
  // As a customer would: register the service worker served from this origin, then mount.
  // The page enforces Trusted Types, so the worker's URL goes through a policy of the shop's.
  const policy = trustedTypes.createPolicy("shop", { createScriptURL: (url) => url });
  navigator.serviceWorker.register(policy.createScriptURL("/herald-sw.js")).then(mount, (error) => {
    window.__swError = String(error);
    mount();
  });
} else {
  mount();
}
"""

# A page whose CSS would wreck any widget that shared its styles.
HOSTILE_CSS = """
* { color: #ff00ff !important; font-family: serif !important; font-size: 31px !important;
    letter-spacing: 4px !important; }
div, span, ul, li, a, button, svg, h2 { display: block !important;
    border: 3px dashed red !important; padding: 9px !important; margin: 7px !important;
    background: yellow !important; }
button { width: 300px !important; height: 12px !important; }
.badge, .panel, .bell, .item, .root { display: none !important; }
"""

# The shop's ordinary look (the hostile variant replaces it).
APP_CSS = """
body { margin: 0; font: 15px/1.5 system-ui, "DejaVu Sans", sans-serif; color: #0f172a;
       background: #f1f5f9; }
header { display: flex; align-items: center; gap: 20px; height: 60px; padding: 0 28px;
         background: #fff; border-bottom: 1px solid #e2e8f0; }
.brand { flex: 1; font-weight: 700; font-size: 17px; }
header a { color: #475569; text-decoration: none; }
main { max-width: 760px; margin: 36px auto; padding: 0 28px; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 12px; padding: 20px 24px;
        margin-bottom: 16px; }
.card h1 { margin: 0 0 6px; font-size: 22px; }
.bar { height: 12px; border-radius: 6px; background: #e2e8f0; margin: 12px 0; }
.bar.short { width: 60%; }
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<link rel="stylesheet" href="/host.css">
<script src="{script}" defer></script>
<script src="/app.js" defer></script>
</head><body>
<header><span class="brand">Acme Shop</span><a href="/elsewhere" id="first-link">Orders</a>
<a href="/elsewhere">Account</a><span id="bell"></span></header>
<main><section class="card"><h1>Orders</h1>
<p id="host-text" class="host">The shop's own content.</p>
<div class="bar"></div><div class="bar short"></div></section>
<section class="card"><div class="bar"></div><div class="bar"></div><div class="bar short"></div>
<button type="button" id="host-button">Host button</button></section></main>
</body></html>
"""

NEXT_PAGE = "<!doctype html><title>Next</title><h1>Followed the notification</h1>"


@dataclass
class Shop:
    """The customer's web app: its own origin, serving a page that mounts the widget."""

    port: int
    tokens: list[str] = field(default_factory=list)  # handed out in order; the last one repeats
    token_requests: int = 0
    hostile_css: bool = False
    service_worker: str | None = None  # the body of /herald-sw.js; None: 404
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        return f"http://shop.localhost:{self.port}"

    def next_token(self) -> str:
        with self.lock:
            self.token_requests += 1
            return self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]

    def url(self, api: str, *, origin: str | None = None, **params: Any) -> str:
        query = urlencode({"api": api, **{k: str(v) for k, v in params.items()}})
        return f"{origin or self.origin}/?{query}"


def _handler(shop: Shop) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: str, content_type: str, **headers: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/":
                api = parse_qs(url.query).get("api", [""])[0]
                netloc = urlsplit(api).netloc
                policy = (
                    f"default-src 'self'; script-src 'self' http://{netloc}; "
                    f"connect-src 'self' http://{netloc} ws://{netloc}; style-src 'self'; "
                    "img-src 'self'; object-src 'none'; base-uri 'none'; "
                    "require-trusted-types-for 'script'"
                )
                page = PAGE.format(script=f"{api}/widget/v1/herald.js")
                self._send(200, page, "text/html; charset=utf-8", Content_Security_Policy=policy)
            elif url.path == "/app.js":
                self._send(200, APP_JS, "text/javascript")
            elif url.path == "/host.css":
                self._send(200, HOSTILE_CSS if shop.hostile_css else APP_CSS, "text/css")
            elif url.path == "/herald-sw.js" and shop.service_worker is not None:
                self._send(200, shop.service_worker, "text/javascript")
            elif url.path == "/token":
                self._send(200, json.dumps({"token": shop.next_token()}), "application/json")
            elif url.path == "/favicon.ico":
                self._send(200, "", "image/x-icon")
            elif url.path == "/next":
                self._send(200, NEXT_PAGE, "text/html; charset=utf-8")
            else:
                self._send(404, "not found", "text/plain")

    return Handler


@pytest.fixture
def shop() -> Iterator[Shop]:
    port = free_port()
    shop = Shop(port=port)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(shop))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class WidgetTenant:
    """A committed tenant as the widget's tests use it, over the real web process."""

    tenant: Tenant
    api: Caller  # its secret API key, in-process
    server: Server

    @property
    def host(self) -> str:
        return f"{self.tenant.slug}.{settings.PLATFORM_HOST}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.server.port}"

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Host": f"{self.host}:{self.server.port}"}
        headers["Authorization"] = f"Bearer {token or self.api.token}"
        result = http(method, self.server.url + path, headers=headers, body=body)
        assert result.status < 300, (result.status, result.body)
        return result.body

    def token(self, user: str) -> str:
        return self.call("POST", f"/api/v1/users/{user}/token")["token"]

    def send(self, user: str, message: str, **fields: Any) -> int:
        body = {"type": "widget.test", "recipients": [user], "message": message, **fields}
        return self.call("POST", "/api/v1/notifications", body)["id"]

    def inbox(self, token: str) -> list[dict[str, Any]]:
        items, cursor = [], ""
        while True:
            page = self.call("GET", f"/api/v1/me/notifications?limit=100{cursor}", token=token)
            items += page["results"]
            if not page["next_cursor"]:
                return items
            cursor = f"&cursor={page['next_cursor']}"

    def unread(self, token: str) -> int:
        return self.call("GET", "/api/v1/me/notifications/unread_count", token=token)["count"]


@pytest.fixture
def make_tenant(committed: list[str], web: Server) -> Callable[..., WidgetTenant]:
    def make(slug: str, *, origins: list[str] = (), server: Server | None = None) -> WidgetTenant:
        tenant, api = committed_tenant(committed, slug, "Widget Test Co")
        if origins:
            tenant = tenant_update(tenant=tenant, fields={"allowed_origins": list(origins)})
        return WidgetTenant(tenant=tenant, api=api, server=server or web)

    return make


def new_user() -> str:
    return f"wu-{uuid.uuid4().hex[:10]}"
