"""Web push end to end: browsers subscribe through the API, a real Celery worker pushes to a
local push service (``tests/support/push_service.py``) that verifies the VAPID signature and
decrypts each message as the browser would.

One VAPID key serves the whole platform: every tenant's browsers subscribe with the same public
key; tenants are kept apart by their subscriptions, which live in each tenant's schema.
"""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings as django_settings

from notifications.channels.push.channel import PAYLOAD_MAX_BYTES, push_payload
from notifications.channels.push.vapid import vapid_public_key
from notifications.services.push_subscriptions import MAX_SUBSCRIPTIONS_PER_USER
from tests.notifications.email_support import FAST_RETRIES, QUEUE, send, settled, unique
from tests.support.api import Caller, error_code
from tests.support.processes import running_worker, wait_until
from tests.support.push_service import Browser, PushService, b64url, push_service

ALLOWED = "127.0.0.2/32"
SUBSCRIPTIONS = "/api/v1/me/push-subscriptions"


@pytest.fixture
def allowed(settings):
    settings.WEBHOOK_ALLOWED_CIDRS = (ipaddress.ip_network(ALLOWED),)


def end_user(server: Caller, external_id: str) -> Caller:
    response = server.post(f"/api/v1/users/{external_id}/token")
    assert response.status_code == 200, response.content
    return Caller(host=server.host, token=response.json()["token"])


def public_subscription(path: str = "") -> dict:
    """A subscription at a public address (no lookup, nothing is sent there in these tests)."""
    browser = Browser()
    return {
        "endpoint": f"https://8.8.8.8/push/{path or browser.token}",
        "keys": {"p256dh": browser.p256dh, "auth": b64url(browser.auth)},
    }


# --- The public key --------------------------------------------------------------------------


def test_the_public_key_is_the_servers_in_the_browsers_form(alice_key, erin, bravo_user):
    for caller in (alice_key, erin, bravo_user):
        response = caller.get("/api/v1/push/public-key")
        assert response.status_code == 200, response.content
        assert response.json() == {"vapid_public_key": vapid_public_key()}
    key = vapid_public_key()
    assert "=" not in key
    raw = base64.urlsafe_b64decode(key + "=")
    assert len(raw) == 65
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)  # on the curve
    assert Caller(host=erin.host).get("/api/v1/push/public-key").status_code == 401


def test_a_configured_key_is_used_and_an_unset_one_is_derived_stably(settings):
    derived = vapid_public_key()
    settings.SECRET_KEY = django_settings.SECRET_KEY  # the same secret: the same key
    assert vapid_public_key() == derived
    key = ec.generate_private_key(ec.SECP256R1())
    settings.VAPID_PRIVATE_KEY = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert vapid_public_key() == b64url(point)


# --- Subscriptions ---------------------------------------------------------------------------


def test_a_browser_subscribes_lists_and_unsubscribes(erin, allowed):
    body = public_subscription()
    created = erin.post(SUBSCRIPTIONS, {**body, "expirationTime": None}, HTTP_USER_AGENT="Test/1")
    assert created.status_code == 201, created.content
    subscription_id = created.json()["id"]

    again = erin.post(SUBSCRIPTIONS, {**body, "keys": public_subscription()["keys"]})
    assert (again.status_code, again.json()) == (200, {"id": subscription_id})

    listed = erin.get(SUBSCRIPTIONS)
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert set(row) == {"id", "endpoint", "created_at", "last_used_at"}  # no keys
    assert (row["id"], row["endpoint"], row["last_used_at"]) == (
        subscription_id,
        body["endpoint"],
        None,
    )
    assert listed.json()["next_cursor"] is None

    assert erin.delete(f"{SUBSCRIPTIONS}/{subscription_id}").status_code == 204
    assert erin.get(SUBSCRIPTIONS).json()["results"] == []
    assert erin.delete(f"{SUBSCRIPTIONS}/{subscription_id}").status_code == 404


def test_other_users_and_tenants_never_see_or_delete_a_subscription(
    erin, erins_neighbour, bravo_user, alice_key, allowed
):
    subscription_id = erin.post(SUBSCRIPTIONS, public_subscription()).json()["id"]
    for stranger in (erins_neighbour, bravo_user):  # bravo_user: tenant B's "user-1"
        assert stranger.get(SUBSCRIPTIONS).json()["results"] == []
        refused = stranger.delete(f"{SUBSCRIPTIONS}/{subscription_id}")
        assert (refused.status_code, error_code(refused)) == (404, "not_found")
    # Erin's token on tenant B's host: 401, as every credential of another tenant.
    assert Caller(host=bravo_user.host, token=erin.token).get(SUBSCRIPTIONS).status_code == 401
    # A server credential is not an end user.
    assert alice_key.get(SUBSCRIPTIONS).status_code == 403
    assert alice_key.post(SUBSCRIPTIONS, public_subscription()).status_code == 403
    assert [row["id"] for row in erin.get(SUBSCRIPTIONS).json()["results"]] == [subscription_id]


def test_an_endpoint_another_user_subscribes_moves_to_them(erin, erins_neighbour, allowed):
    body = public_subscription()
    first = erin.post(SUBSCRIPTIONS, body).json()["id"]
    moved = erins_neighbour.post(SUBSCRIPTIONS, body)
    assert (moved.status_code, moved.json()) == (200, {"id": first})
    assert erin.get(SUBSCRIPTIONS).json()["results"] == []
    assert [r["id"] for r in erins_neighbour.get(SUBSCRIPTIONS).json()["results"]] == [first]


def test_a_user_keeps_a_bounded_number_of_subscriptions_the_oldest_replaced(erin, allowed):
    ids = [
        erin.post(SUBSCRIPTIONS, public_subscription()).json()["id"]
        for _ in range(MAX_SUBSCRIPTIONS_PER_USER + 2)
    ]
    listed = erin.get(SUBSCRIPTIONS, {"limit": 100}).json()["results"]
    assert [row["id"] for row in listed] == ids[::-1][:MAX_SUBSCRIPTIONS_PER_USER]


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.2:8443/push/x",  # allowed only with WEBHOOK_ALLOWED_CIDRS
        "https://127.0.0.1/push/x",
        "https://10.0.0.8/push/x",
        "https://169.254.169.254/latest",
        "https://[::1]/push",
        "http://8.8.8.8/push/x",  # plain http to a public address
        "ftp://8.8.8.8/push",
        "not a url",
    ],
)
def test_an_endpoint_the_outbound_guard_refuses_is_refused(erin, settings, endpoint):
    settings.WEBHOOK_ALLOWED_CIDRS = ()
    refused = erin.post(SUBSCRIPTIONS, {**public_subscription(), "endpoint": endpoint})
    assert refused.status_code == 400, refused.content
    assert set(refused.json()["error"]["details"]) == {"endpoint"}


def _keys(p256dh: str, auth: str) -> dict:
    return {"endpoint": "https://8.8.8.8/push/k", "keys": {"p256dh": p256dh, "auth": auth}}


GOOD = Browser()
GOOD_AUTH = b64url(GOOD.auth)
OFF_CURVE = b64url(b"\x04" + b"\x00" * 63 + b"\x01")
COMPRESSED = b64url(
    GOOD.private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (_keys("not base64!", GOOD_AUTH), {"keys": ["p256dh"]}),
        (_keys(OFF_CURVE, GOOD_AUTH), {"keys": ["p256dh"]}),
        (_keys(COMPRESSED, GOOD_AUTH), {"keys": ["p256dh"]}),
        (_keys(GOOD.p256dh, b64url(b"x" * 15)), {"keys": ["auth"]}),
        (_keys(GOOD.p256dh, "***"), {"keys": ["auth"]}),
        (_keys("BAAA", b64url(b"x" * 17)), {"keys": ["auth", "p256dh"]}),
        ({"endpoint": "https://8.8.8.8/push/k"}, {"keys": None}),
        ({"keys": {"p256dh": GOOD.p256dh, "auth": GOOD_AUTH}}, {"endpoint": None}),
        ({**_keys(GOOD.p256dh, GOOD_AUTH), "expirationTime": "soon"}, {"expirationTime": None}),
    ],
)
def test_invalid_subscriptions_are_refused_naming_the_fields(erin, body, fields):
    refused = erin.post(SUBSCRIPTIONS, body)
    assert refused.status_code == 400, refused.content
    details = refused.json()["error"]["details"]
    assert set(details) == set(fields)
    for name, nested in fields.items():
        if nested is not None:
            assert sorted(details[name]) == nested


def test_the_payload_is_cut_to_fit_a_push_message():
    long = push_payload(
        notification_id=7, type_key="t", title="T" * 300, message="é" * 5000, url="https://x.y/"
    )
    assert len(long.encode()) <= PAYLOAD_MAX_BYTES
    fields = json.loads(long)
    assert fields["title"] == "T" * 300
    assert fields["message"].endswith("…")
    assert len(fields["message"]) > 1000
    short = json.loads(
        push_payload(notification_id=None, type_key="t", title="a", message="b", url="")
    )
    assert short == {"id": None, "type": "t", "title": "a", "message": "b", "url": ""}


# --- Deliveries, through a real worker -----------------------------------------------------------


WORKER_ENV = {"WEBHOOK_ALLOWED_CIDRS": ALLOWED, **FAST_RETRIES}


def push_type(api: Caller, *, critical: bool = False) -> str:
    key = unique("push")
    body = {"name": "Mentions", "channels": ["in_app", "push"], "critical": critical}
    assert api.put(f"/api/v1/types/{key}", body).status_code in (200, 201)
    return key


def subscribed(api: Caller, service: PushService, *scripts: tuple[int, ...]) -> tuple[str, list]:
    """A new user with one subscribed browser per script (its push service's answers)."""
    external_id = unique("user")
    user = end_user(api, external_id)
    browsers = []
    for script in scripts:
        browser = Browser()
        service.script(browser, *script)
        created = user.post(SUBSCRIPTIONS, service.subscription(browser))
        assert created.status_code == 201, created.content
        browsers.append(browser)
    return external_id, browsers


def test_a_notification_is_pushed_encrypted_and_signed_to_every_browser(alpha, allowed):
    key = push_type(alpha)
    with push_service() as service, running_worker(QUEUE, **WORKER_ENV):
        external_id, [laptop, phone] = subscribed(alpha, service, (), ())
        send_id = send(
            alpha,
            key,
            [external_id],
            title="Ada mentioned you",
            url="https://app.example/t/7",
            channels=["in_app", "push"],
        )
        rows = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="pushed")

    assert [(r["channel"], r["status"], r["attempts"]) for r in rows] == [("push", "sent", 1)]
    notification_id = rows[0]["notification"]
    assert notification_id is not None
    for browser in (laptop, phone):
        [push] = service.received(browser)
        assert push.problem is None, push.problem
        assert push.payload == {
            "id": notification_id,
            "type": key,
            "title": "Ada mentioned you",
            "message": "Ada replied",
            "url": "https://app.example/t/7",
        }
        assert push.vapid_key == vapid_public_key()  # the worker signs with the API's key
        assert push.claims["sub"] == django_settings.VAPID_SUBJECT
        assert push.headers["ttl"] == str(django_settings.PUSH_TTL_SECONDS)
        assert push.headers["urgency"] == "normal"
    user = end_user(alpha, external_id)
    assert all(r["last_used_at"] for r in user.get(SUBSCRIPTIONS).json()["results"])
    summary = alpha.get(f"/api/v1/sends/{send_id}").json()["channels"]
    assert summary == {"in_app": {"sent": 1}, "push": {"sent": 1}}


def test_gone_subscriptions_are_deleted_and_other_failures_mapped(alpha, allowed):
    key = push_type(alpha)
    with push_service() as service, running_worker(QUEUE, **WORKER_ENV):
        gone_user, _ = subscribed(alpha, service, (410,))
        half_user, [_lost, kept] = subscribed(alpha, service, (404,), ())
        refused_user, _ = subscribed(alpha, service, (400,))
        retried_user, _ = subscribed(alpha, service, (500, 429))
        nobody = unique("user")
        users = [gone_user, half_user, refused_user, retried_user, nobody]
        send_id = send(alpha, key, users, channels=["push"])
        rows = wait_until(lambda: settled(alpha, send_id, len(users)), timeout=40, what="settled")

    by_user = {row["recipient"]: row for row in rows}
    assert by_user[gone_user]["status"] == "failed"
    assert "gone" in by_user[gone_user]["last_error"]
    assert end_user(alpha, gone_user).get(SUBSCRIPTIONS).json()["results"] == []

    assert by_user[half_user]["status"] == "sent"  # one browser took it
    [left] = end_user(alpha, half_user).get(SUBSCRIPTIONS).json()["results"]
    assert left["endpoint"] == service.endpoint(kept)

    assert (by_user[refused_user]["status"], by_user[refused_user]["attempts"]) == ("failed", 1)
    assert "400" in by_user[refused_user]["last_error"]

    assert (by_user[retried_user]["status"], by_user[retried_user]["attempts"]) == ("sent", 3)

    assert by_user[nobody]["status"] == "failed"
    assert by_user[nobody]["last_error"].startswith("No push subscription")
    assert all(p.problem is None for p in service.received())


def test_a_critical_type_is_pushed_with_high_urgency(alpha, allowed):
    key = push_type(alpha, critical=True)
    with push_service() as service, running_worker(QUEUE, **WORKER_ENV):
        external_id, [browser] = subscribed(alpha, service, ())
        send_id = send(alpha, key, [external_id])
        wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="pushed")
    [push] = service.received(browser)
    assert push.headers["urgency"] == "high"


def test_a_user_who_turned_push_off_is_skipped(alpha, allowed):
    key = push_type(alpha)
    with push_service() as service, running_worker(QUEUE, **WORKER_ENV):
        external_id, [browser] = subscribed(alpha, service, ())
        user = end_user(alpha, external_id)
        preferences = user.put("/api/v1/me/preferences", {"channels": {"push": False}})
        assert preferences.status_code == 200, preferences.content
        assert preferences.json()["channels"] == {"in_app": True, "email": True, "push": False}
        send_id = send(alpha, key, [external_id])
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="settled")
    assert row["status"] == "skipped_preference"
    assert service.received(browser) == []


def test_the_address_is_checked_again_when_pushing(alpha, allowed):
    """A subscription saved while its address was allowed is not pushed to once it is not
    (the worker here allows no private network): failed for good, nothing sent."""
    key = push_type(alpha)
    with push_service() as service, running_worker(QUEUE, WEBHOOK_ALLOWED_CIDRS=""):
        external_id, [browser] = subscribed(alpha, service, ())
        send_id = send(alpha, key, [external_id], channels=["push"])
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="settled")
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "127.0.0.2 is not a public address" in row["last_error"]
    assert service.received(browser) == []
    assert len(end_user(alpha, external_id).get(SUBSCRIPTIONS).json()["results"]) == 1  # kept
