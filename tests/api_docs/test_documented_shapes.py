"""Every documented response body has exactly the keys the API returns, checked on real rows.

One scenario calls each operation of the API once (real tenant, real rows, the payload functions
behind the views), and every JSON body is held against the schema the docs serve for that
operation and status: an object has exactly its documented properties, at every depth (page
items, nested objects, maps). A payload that gains or loses a key, or docs that do, fail here;
so does a new operation that the scenario does not call.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications.models import WebhookAttempt, WebhookDelivery
from tests.support.api import Caller
from tests.support.push_service import Browser, b64url

Body = dict[str, Any]


class Shapes:
    """Checks bodies against the served schema; records which operations were checked."""

    def __init__(self, schema: Body) -> None:
        self.schema = schema
        self.checked: set[tuple[str, str]] = set()

    def _resolve(self, node: Body) -> Body:
        while "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            node = {**self.schema["components"]["schemas"][name], **{
                key: value for key, value in node.items() if key != "$ref"
            }}  # fmt: skip
        return node

    def _match(self, node: Body, value: Any, where: str) -> None:
        node = self._resolve(node)
        if value is None:
            return
        for part in node.get("allOf", []):
            self._match(part, value, where)
        variants = node.get("oneOf") or node.get("anyOf")
        if variants:
            errors = []
            for variant in variants:
                try:
                    self._match(variant, value, where)
                    break
                except AssertionError as error:
                    errors.append(str(error))
            else:
                raise AssertionError(f"{where}: matches none of its variants: {errors}")
        if isinstance(value, dict) and "properties" in node:
            documented = set(node["properties"])
            assert set(value) == documented, (
                f"{where}: returned keys {sorted(value)} but documented {sorted(documented)}"
            )
            for key, item in value.items():
                self._match(node["properties"][key], item, f"{where}.{key}")
        elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
            for key, item in value.items():
                self._match(node["additionalProperties"], item, f"{where}[{key!r}]")
        elif isinstance(value, list) and "items" in node:
            for index, item in enumerate(value):
                self._match(node["items"], item, f"{where}[{index}]")

    def check(self, method: str, path: str, response: Any, status: int) -> Any:
        """``response`` answered ``status`` and its body matches the documented one."""
        assert response.status_code == status, (method, path, response.content)
        template = self._template(path)
        operation = self.schema["paths"][template][method]
        documented = operation["responses"][str(status)]
        if "content" in documented:
            body = response.json()
            self._match(
                documented["content"]["application/json"]["schema"],
                body,
                f"{method.upper()} {template} {status}",
            )
        else:
            assert not response.content, (method, path, "answers a body it does not document")
            body = None
        self.checked.add((method, template))
        return body

    def _template(self, path: str) -> str:
        """The documented path ``path`` answers to: itself, else the one whose parameters match."""
        path = path.split("?", 1)[0]
        if path in self.schema["paths"]:
            return path
        for template in self.schema["paths"]:
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
                return template
        raise AssertionError(f"{path} is not documented")


@pytest.fixture
def shapes(db, world) -> Shapes:
    response = Caller(host="localhost").get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return Shapes(response.json())


def test_every_documented_body_is_what_the_api_returns(
    shapes, alice_key, alice_admin, world, settings
):
    key, admin, check = alice_key, alice_admin, shapes.check
    host = world.alice.host
    type_key = f"shape.{uuid.uuid4().hex[:8]}"
    user_id = f"shape-{uuid.uuid4().hex[:8]}"

    # Types and users, as a backend sets them up.
    path = f"/api/v1/types/{type_key}"
    body = {"name": "Shaped", "channels": ["in_app", "email"], "email_subject": "{{ title }}"}
    check("put", path, key.put(path, body), 201)
    check("put", path, key.put(path, body), 200)
    check("get", path, key.get(path), 200)
    check("get", "/api/v1/types", key.get("/api/v1/types"), 200)
    path = f"/api/v1/users/{user_id}"
    person = {"email": "shape@example.com", "name": "Shape", "data": {"plan": "pro"}}
    check("put", path, key.put(path, person), 201)
    check("put", path, key.put(path, person), 200)
    check("get", path, key.get(path), 200)

    # A send now, with an in-app copy and an email; one scheduled, then cancelled.
    send = {"type": type_key, "recipients": [user_id], "title": "T", "message": "M"}
    accepted = check("post", "/api/v1/notifications", key.post("/api/v1/notifications", send), 202)
    check("get", f"/api/v1/sends/{accepted['id']}", key.get(f"/api/v1/sends/{accepted['id']}"), 200)
    later = {**send, "send_at": (timezone.now() + timedelta(days=1)).isoformat()}
    scheduled = key.post("/api/v1/notifications", later).json()["id"]
    check("delete", f"/api/v1/sends/{scheduled}", key.delete(f"/api/v1/sends/{scheduled}"), 200)
    sent = check("get", "/api/v1/notifications", key.get("/api/v1/notifications"), 200)
    assert sent["results"]
    path = f"/api/v1/deliveries?send={accepted['id']}"  # not earlier tests' deliveries
    deliveries = check("get", path, key.get(path), 200)
    assert {row["channel"] for row in deliveries["results"]} == {"email"}

    # The end user's side.
    path = f"/api/v1/users/{user_id}/token"
    token = check("post", path, key.post(path), 200)["token"]
    user = Caller(host=host, token=token)
    inbox = check("get", "/api/v1/me/notifications", user.get("/api/v1/me/notifications"), 200)
    assert inbox["results"]
    path = "/api/v1/me/notifications/unread_count"
    check("get", path, user.get(path), 200)
    path = f"/api/v1/me/notifications/{inbox['results'][0]['id']}"
    check("patch", path, user.patch(path, {"is_read": True}), 200)
    path = "/api/v1/me/notifications/read_all"
    check("post", path, user.post(path), 200)
    path = "/api/v1/me/preferences"
    choices = check("get", path, user.get(path), 200)
    choices["types"][type_key] = {"email": False}
    check("put", path, user.put(path, choices), 200)
    check("get", "/api/v1/me/widget", user.get("/api/v1/me/widget"), 200)

    # Topics: one the user follows, chosen by themselves too; a send to it; then deleted.
    topic = f"/api/v1/topics/{type_key}"
    check("put", topic, key.put(topic, {"name": "Shaped", "self_service": True}), 201)
    check("put", topic, key.put(topic, {"name": "Shaped"}), 200)
    check("get", topic, key.get(topic), 200)
    check("get", "/api/v1/topics", key.get("/api/v1/topics"), 200)
    path = f"{topic}/subscribers/{user_id}"
    check("put", path, key.put(path, None), 201)
    check("put", path, key.put(path, None), 200)
    more = {"subscribers": [user_id, f"{user_id}-2"]}
    check("post", f"{topic}/subscribers", key.post(f"{topic}/subscribers", more), 200)
    check("get", f"{topic}/subscribers", key.get(f"{topic}/subscribers"), 200)
    to_topic = {"type": type_key, "topic": type_key, "message": "M"}
    assert key.post("/api/v1/notifications", to_topic).json()["recipients"] == 2
    check("get", "/api/v1/me/topics", user.get("/api/v1/me/topics"), 200)
    chosen = user.put("/api/v1/me/topics", {"subscribed": [type_key]})
    check("put", "/api/v1/me/topics", chosen, 200)
    check("delete", path, key.delete(path), 204)
    check("delete", topic, key.delete(topic), 204)

    # Web push: the server's public key, and a browser's subscription (saved twice: updated).
    check("get", "/api/v1/push/public-key", user.get("/api/v1/push/public-key"), 200)
    browser = Browser()
    subscription = {
        "endpoint": f"https://8.8.8.8/push/{browser.token}",
        "keys": {"p256dh": browser.p256dh, "auth": b64url(browser.auth)},
    }
    path = "/api/v1/me/push-subscriptions"
    created = check("post", path, user.post(path, subscription), 201)
    check("post", path, user.post(path, subscription), 200)
    check("get", path, user.get(path), 200)
    path = f"{path}/{created['id']}"
    check("delete", path, user.delete(path), 204)

    # The tenant, its keys, its usage, its admin's tokens.
    check("get", "/api/v1/tenant", admin.get("/api/v1/tenant"), 200)
    check("patch", "/api/v1/tenant", admin.patch("/api/v1/tenant", {}), 200)
    created = check("post", "/api/v1/api-keys", admin.post("/api/v1/api-keys", {"name": "s"}), 201)
    check("get", "/api/v1/api-keys", admin.get("/api/v1/api-keys"), 200)
    path = f"/api/v1/api-keys/{created['id']}"
    check("delete", path, admin.delete(path), 204)
    check("get", "/api/v1/usage", admin.get("/api/v1/usage"), 200)
    check("get", "/api/v1/usage/report", admin.get("/api/v1/usage/report"), 200)
    login = {"email": world.alice.email, "password": world.alice.password}
    pair = check(
        "post", "/api/v1/auth/token", Caller(host=host).post("/api/v1/auth/token", login), 200
    )
    path = "/api/v1/auth/token/refresh"
    check("post", path, Caller(host=host).post(path, {"refresh": pair["refresh"]}), 200)
    check("delete", f"/api/v1/users/{user_id}", key.delete(f"/api/v1/users/{user_id}"), 204)

    # Webhook endpoints (to the tests' receiver address), a test event, a retried failure.
    settings.WEBHOOK_ALLOWED_CIDRS = (ipaddress.ip_network("127.0.0.2/32"),)
    hook = {"url": "http://127.0.0.2:9/h", "events": ["delivery.failed"], "types": [type_key]}
    hook_id = check(
        "post", "/api/v1/webhook-endpoints", key.post("/api/v1/webhook-endpoints", hook), 201
    )["id"]
    check("get", "/api/v1/webhook-endpoints", key.get("/api/v1/webhook-endpoints"), 200)
    path = f"/api/v1/webhook-endpoints/{hook_id}"
    check("get", path, key.get(path), 200)
    check("patch", path, key.patch(path, {"description": "CRM"}), 200)
    check("post", f"{path}/rotate-secret", key.post(f"{path}/rotate-secret"), 200)
    test_id = check("post", f"{path}/test", key.post(f"{path}/test"), 202)["id"]
    with schema_context(world.tenant_a.schema_name):
        WebhookDelivery.objects.filter(pk=test_id).update(status="failed", attempts=8)
        WebhookAttempt.objects.create(
            delivery_id=test_id, attempted_at=timezone.now(), status_code=500, latency_ms=9
        )
    check("get", "/api/v1/webhook-deliveries", key.get("/api/v1/webhook-deliveries"), 200)
    delivery_path = f"/api/v1/webhook-deliveries/{test_id}"
    assert check("get", delivery_path, key.get(delivery_path), 200)["attempts_log"]
    check("post", f"{delivery_path}/retry", key.post(f"{delivery_path}/retry"), 202)
    check("delete", path, key.delete(path), 204)

    # Sign-up, on the platform host.
    platform = Caller(host="localhost")
    slug = f"shape-{uuid.uuid4().hex[:8]}"
    path = f"/api/v1/signup/slug?slug={slug}"
    check("get", path, platform.get("/api/v1/signup/slug", {"slug": slug}), 200)
    signup = {"slug": slug, "name": "Shape", "email": "o@shape.example", "password": "a long pass"}
    check("post", "/api/v1/signup", platform.post("/api/v1/signup", signup), 201)

    documented = {
        (method, path) for path, operations in shapes.schema["paths"].items()
        for method in operations
    }  # fmt: skip
    assert sorted(documented - shapes.checked) == []
