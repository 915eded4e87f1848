"""The webhook API: endpoints (secret shown once, rotation, filters, enabling), test events, the
delivery log and retries, the address guard and the plan's limit, over HTTP as a backend calls
it. Every route is also tried with tenant B's key on tenant A's objects (404, nothing changed)
and with an end user's token (403)."""

from __future__ import annotations

import ipaddress
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.services import webhook_endpoints
from notifications.webhooks.events import webhook_message_id
from notifications.webhooks.signing import webhook_sign
from tests.billing.test_limits import override
from tests.support.api import Caller, error_code

URL = "http://127.0.0.2:9/herald"  # inside the tests' allowed network; nothing connects
ENDPOINTS = "/api/v1/webhook-endpoints"
DELIVERIES = "/api/v1/webhook-deliveries"


@pytest.fixture(autouse=True)
def receivers_allowed(settings):
    settings.WEBHOOK_ALLOWED_CIDRS = (ipaddress.ip_network("127.0.0.2/32"),)


@pytest.fixture
def enqueued(monkeypatch):
    """The turns requested, as (tenant id, count) pairs."""
    calls: list[tuple[int, int]] = []
    real = webhook_endpoints.webhooks_enqueue

    def recording(*, tenant, count, now):
        calls.append((tenant.pk, count))
        real(tenant=tenant, count=count, now=now)

    monkeypatch.setattr(webhook_endpoints, "webhooks_enqueue", recording)
    return calls


def create(caller, **fields):
    response = caller.post(ENDPOINTS, {"url": URL, **fields})
    assert response.status_code == 201, response.content
    return response.json()


def delivery_row(tenant, endpoint_id, *, status="failed", attempts=3, **fields):
    """A delivery as the worker leaves it, in ``tenant``'s schema."""
    now = timezone.now()
    with schema_context(tenant.schema_name):
        return WebhookDelivery.objects.create(
            endpoint_id=endpoint_id,
            event="notification.created",
            msg_id=webhook_message_id(),
            body='{"type":"notification.created"}',
            occurred_at=now,
            status=status,
            attempts=attempts,
            created_at=now,
            updated_at=now,
            **fields,
        )


class TestEndpoints:
    def test_create_shows_the_secret_once_and_reads_never_do(self, alice_key, world):
        body = create(
            alice_key,
            description="CRM",
            events=["notification.created"],
            types=["billing.invoice"],
        )
        secret = body.pop("secret")
        assert secret.startswith("whsec_")
        assert body["url"] == URL
        assert (body["description"], body["events"], body["types"], body["enabled"]) == (
            "CRM",
            ["notification.created"],
            ["billing.invoice"],
            True,
        )
        assert (body["disabled_reason"], body["failing_since"]) == ("", None)
        detail = alice_key.get(f"{ENDPOINTS}/{body['id']}")
        assert detail.status_code == 200
        assert detail.json() == body
        listed = alice_key.get(ENDPOINTS).json()
        assert listed["results"][0] == body
        assert listed["next_cursor"] is None
        patched = alice_key.patch(f"{ENDPOINTS}/{body['id']}", {"description": "x"})
        for response in (detail, patched, alice_key.get(ENDPOINTS)):
            assert "secret" not in response.json()
            assert secret not in response.content.decode()
            assert secret.removeprefix("whsec_") not in response.content.decode()

    def test_defaults_are_all_events_and_types_enabled(self, alice_admin):
        body = create(alice_admin)
        assert (body["events"], body["types"], body["enabled"], body["description"]) == (
            [],
            [],
            True,
            "",
        )

    def test_rotation_answers_a_new_secret_and_the_old_one_no_longer_verifies(
        self, alice_key, world
    ):
        created = create(alice_key)
        response = alice_key.post(f"{ENDPOINTS}/{created['id']}/rotate-secret")
        assert response.status_code == 200
        assert set(response.json()) == {"secret"}
        new = response.json()["secret"]
        assert new != created["secret"]
        assert new.startswith("whsec_")
        body = b'{"type":"webhook.test"}'
        with schema_context(world.tenant_a.schema_name):
            endpoint = WebhookEndpoint.objects.get(pk=created["id"])
            headers = webhook_sign(endpoint, msg_id="msg_1", timestamp=timezone.now(), body=body)
        Webhook(new).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(created["secret"]).verify(body, headers)

    def test_patch_changes_filters_and_only_the_fields_given(self, alice_key):
        created = create(alice_key, description="CRM", events=["notification.created"])
        path = f"{ENDPOINTS}/{created['id']}"
        response = alice_key.patch(
            path, {"events": ["delivery.sent", "delivery.failed"], "types": ["a.b", "c"]}
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["events"], body["types"], body["description"], body["url"]) == (
            ["delivery.sent", "delivery.failed"],
            ["a.b", "c"],
            "CRM",
            URL,
        )
        cleared = alice_key.patch(path, {"events": [], "types": []}).json()
        assert (cleared["events"], cleared["types"]) == ([], [])
        assert alice_key.get(path).json()["events"] == []

    def test_disable_and_enable_again_which_clears_the_failure_record(
        self, alice_key, world, enqueued
    ):
        created = create(alice_key)
        path = f"{ENDPOINTS}/{created['id']}"
        assert alice_key.patch(path, {"enabled": False}).json()["enabled"] is False
        delivery_row(world.tenant_a, created["id"], status="queued")  # waited while it was off
        with schema_context(world.tenant_a.schema_name):
            WebhookEndpoint.objects.filter(pk=created["id"]).update(
                disabled_reason="Failing for 5 days.",
                failing_since=timezone.now() - timedelta(days=5),
            )
        assert alice_key.get(path).json()["disabled_reason"] == "Failing for 5 days."
        enabled = alice_key.patch(path, {"enabled": True}).json()
        assert (enabled["enabled"], enabled["disabled_reason"], enabled["failing_since"]) == (
            True,
            "",
            None,
        )
        assert enqueued == [(world.tenant_a.pk, 1)]  # the waiting event gets a turn

    def test_delete(self, alice_key, world):
        created = create(alice_key)
        delivery_row(world.tenant_a, created["id"])
        path = f"{ENDPOINTS}/{created['id']}"
        response = alice_key.delete(path)
        assert response.status_code == 204
        assert not response.content
        assert alice_key.get(path).status_code == 404
        assert alice_key.delete(path).status_code == 404
        assert alice_key.get(DELIVERIES, {"endpoint": created["id"]}).json()["results"] == []

    def test_the_list_pages_newest_first(self, alice_key):
        ids = [create(alice_key, description=str(n))["id"] for n in range(3)]
        first = alice_key.get(ENDPOINTS, {"limit": 2}).json()
        assert [row["id"] for row in first["results"]] == ids[:0:-1]
        rest = alice_key.get(ENDPOINTS, {"limit": 2, "cursor": first["next_cursor"]}).json()
        assert [row["id"] for row in rest["results"]][:1] == [ids[0]]


class TestRefusals:
    def test_bad_fields_are_named(self, alice_key):
        response = alice_key.post(
            ENDPOINTS,
            {
                "url": URL,
                "events": ["notification.created", "user.deleted"],
                "types": ["Not A Key"],
                "enabled": "yes",
            },
        )
        assert response.status_code == 400
        assert error_code(response) == "invalid"
        assert set(response.json()["error"]["details"]) == {"events", "types", "enabled"}
        unknown = alice_key.post(ENDPOINTS, {"url": URL, "colour": "red"})
        assert unknown.status_code == 400
        assert unknown.json()["error"]["details"] == {"colour": ["Unknown field."]}

    @pytest.mark.parametrize(
        "body",
        [{}, {"url": 42}, {"url": ""}, {"url": "ftp://x.example.com/"}, {"url": URL, "types": "a"}],
    )
    def test_a_missing_or_malformed_field_is_400(self, alice_key, body):
        response = alice_key.post(ENDPOINTS, body)
        assert response.status_code == 400, response.content
        assert error_code(response) == "invalid"
        assert response.json()["error"]["details"]

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/hook",
            "https://127.0.0.1/hook",
            "https://10.0.0.8/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "http://127.0.0.2:9/herald",
        ],
    )
    def test_loopback_private_and_link_local_addresses_are_refused_when_nothing_is_allowed(
        self, alice_key, settings, url
    ):
        settings.WEBHOOK_ALLOWED_CIDRS = ()
        response = alice_key.post(ENDPOINTS, {"url": url})
        assert response.status_code == 400, response.content
        assert list(response.json()["error"]["details"]) == ["url"]
        assert alice_key.get(ENDPOINTS).json()["results"] == []

    def test_an_update_to_a_refused_address_changes_nothing(self, alice_key, settings):
        created = create(alice_key)
        settings.WEBHOOK_ALLOWED_CIDRS = ()
        path = f"{ENDPOINTS}/{created['id']}"
        response = alice_key.patch(path, {"url": "https://10.1.2.3/", "description": "d"})
        assert response.status_code == 400
        assert list(response.json()["error"]["details"]) == ["url"]
        assert alice_key.get(path).json()["description"] == ""

    def test_the_plan_limits_the_endpoints(self, alice_key, world):
        override(world.tenant_a, max_webhook_endpoints=2)
        create(alice_key)
        create(alice_key)
        response = alice_key.post(ENDPOINTS, {"url": URL})
        assert response.status_code == 400
        assert "2 webhook endpoints" in response.json()["error"]["message"]
        assert len(alice_key.get(ENDPOINTS).json()["results"]) == 2

    @pytest.mark.parametrize(
        "query",
        [
            {"status": "lost"},
            {"status": ""},
            {"endpoint": "x"},
            {"endpoint": "0"},
            {"endpoint": "-1"},
            {"endpoint": "99999999999999999999"},
            {"cursor": "nope"},
            {"limit": "0"},
        ],
    )
    def test_bad_list_filters_are_400(self, alice_key, query):
        response = alice_key.get(DELIVERIES, query)
        assert response.status_code == 400, response.content
        assert list(response.json()["error"]["details"]) == list(query)

    def test_a_huge_id_is_404(self, alice_key):
        for path in (f"{ENDPOINTS}/99999999999999999999", f"{DELIVERIES}/99999999999999999999"):
            assert alice_key.get(path).status_code == 404


class TestTestEvent:
    def test_queues_a_test_event_to_that_endpoint_whatever_its_filters(
        self, alice_key, world, enqueued
    ):
        created = create(alice_key, events=["delivery.failed"], types=["only.this"])
        other = create(alice_key)
        before = timezone.now()
        response = alice_key.post(f"{ENDPOINTS}/{created['id']}/test")
        assert response.status_code == 202, response.content
        row = response.json()
        assert set(row) == {
            "id", "endpoint", "event", "msg_id", "status", "attempts", "last_status_code",
            "last_error", "next_attempt_at", "created_at", "sent_at",
        }  # fmt: skip
        assert (row["endpoint"], row["event"], row["status"], row["attempts"]) == (
            created["id"],
            "webhook.test",
            "queued",
            0,
        )
        assert row["msg_id"].startswith("msg_")
        with schema_context(world.tenant_a.schema_name):
            stored = WebhookDelivery.objects.get(pk=row["id"])
            assert WebhookDelivery.objects.filter(endpoint_id=other["id"]).count() == 0
        body = json.loads(stored.body)
        assert set(body) == {"type", "timestamp", "data"}
        assert body["type"] == "webhook.test"
        assert body["data"] == {"endpoint": created["id"]}
        assert timezone.datetime.fromisoformat(body["timestamp"]) >= before
        assert enqueued == [(world.tenant_a.pk, 1)]

    def test_a_disabled_endpoint_is_409(self, alice_key, world, enqueued):
        created = create(alice_key, enabled=False)
        response = alice_key.post(f"{ENDPOINTS}/{created['id']}/test")
        assert response.status_code == 409
        assert error_code(response) == "conflict"
        assert enqueued == []
        with schema_context(world.tenant_a.schema_name):
            assert not WebhookDelivery.objects.exists()


class TestDeliveries:
    def test_list_filters_by_endpoint_and_status_newest_first(self, alice_key, world):
        one, two = create(alice_key), create(alice_key)
        failed = delivery_row(world.tenant_a, one["id"], last_status_code=500, last_error="500")
        sent = delivery_row(
            world.tenant_a, one["id"], status="sent", attempts=1, sent_at=timezone.now()
        )
        later = timezone.now() + timedelta(minutes=5)
        queued = delivery_row(world.tenant_a, two["id"], status="queued", locked_until=later)
        rows = alice_key.get(DELIVERIES).json()["results"]
        assert [row["id"] for row in rows] == [queued.pk, sent.pk, failed.pk]
        by_id = {row["id"]: row for row in rows}
        assert by_id[queued.pk]["next_attempt_at"] is not None
        assert by_id[failed.pk]["next_attempt_at"] is None
        assert (by_id[failed.pk]["last_status_code"], by_id[failed.pk]["last_error"]) == (
            500,
            "500",
        )
        assert by_id[sent.pk]["sent_at"] is not None

        def ids(query):
            return [row["id"] for row in alice_key.get(DELIVERIES, query).json()["results"]]

        assert ids({"endpoint": one["id"]}) == [sent.pk, failed.pk]
        assert ids({"status": "failed"}) == [failed.pk]
        assert ids({"endpoint": two["id"], "status": "queued"}) == [queued.pk]
        assert ids({"endpoint": two["id"], "status": "sent"}) == []

    def test_detail_carries_the_recent_attempts(self, alice_key, world):
        created = create(alice_key)
        delivery = delivery_row(world.tenant_a, created["id"], last_status_code=503)
        at = timezone.now()
        with schema_context(world.tenant_a.schema_name):
            WebhookAttempt.objects.create(
                delivery=delivery, attempted_at=at, error="Connection refused."
            )
            WebhookAttempt.objects.create(
                delivery=delivery,
                attempted_at=at + timedelta(seconds=10),
                status_code=503,
                latency_ms=120,
                response_excerpt="busy",
            )
        body = alice_key.get(f"{DELIVERIES}/{delivery.pk}").json()
        assert body["id"] == delivery.pk
        assert body["last_status_code"] == 503
        log = body["attempts_log"]
        assert [(a["status_code"], a["latency_ms"], a["response_excerpt"]) for a in log] == [
            (503, 120, "busy"),
            (None, None, ""),
        ]
        assert log[1]["error"] == "Connection refused."
        assert set(log[0]) == {
            "attempted_at", "status_code", "latency_ms", "response_excerpt", "error",
        }  # fmt: skip
        assert alice_key.get(f"{DELIVERIES}/{delivery.pk + 1000}").status_code == 404

    @pytest.mark.parametrize("status", ["failed", "suppressed_quota"])
    def test_retry_queues_a_failed_one_afresh_and_asks_for_a_turn(
        self, alice_key, world, enqueued, status
    ):
        created = create(alice_key)
        delivery = delivery_row(
            world.tenant_a,
            created["id"],
            status=status,
            attempts=8,
            locked_until=timezone.now() + timedelta(hours=1),
        )
        response = alice_key.post(f"{DELIVERIES}/{delivery.pk}/retry")
        assert response.status_code == 202, response.content
        row = response.json()
        assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("queued", 0, None)
        assert row["msg_id"] == delivery.msg_id  # the same event: receivers can deduplicate
        with schema_context(world.tenant_a.schema_name):
            fresh = WebhookDelivery.objects.get(pk=delivery.pk)
        assert (fresh.status, fresh.attempts, fresh.locked_until) == ("queued", 0, None)
        assert enqueued == [(world.tenant_a.pk, 1)]

    @pytest.mark.parametrize("status", ["queued", "sent"])
    def test_retrying_a_queued_or_sent_one_is_409(self, alice_key, world, enqueued, status):
        created = create(alice_key)
        delivery = delivery_row(world.tenant_a, created["id"], status=status, attempts=1)
        response = alice_key.post(f"{DELIVERIES}/{delivery.pk}/retry")
        assert response.status_code == 409
        assert error_code(response) == "conflict"
        assert status in response.json()["error"]["message"]
        with schema_context(world.tenant_a.schema_name):
            assert WebhookDelivery.objects.get(pk=delivery.pk).attempts == 1
        assert enqueued == []

    def test_retrying_for_a_disabled_endpoint_is_409(self, alice_key, world, enqueued):
        created = create(alice_key, enabled=False)
        delivery = delivery_row(world.tenant_a, created["id"])
        response = alice_key.post(f"{DELIVERIES}/{delivery.pk}/retry")
        assert response.status_code == 409
        with schema_context(world.tenant_a.schema_name):
            assert WebhookDelivery.objects.get(pk=delivery.pk).status == "failed"
        assert enqueued == []


# --- Who may call what -------------------------------------------------------------------------


def _routes(endpoint_id: int, delivery_id: int) -> list[tuple[str, str, dict | None]]:
    endpoint, delivery = f"{ENDPOINTS}/{endpoint_id}", f"{DELIVERIES}/{delivery_id}"
    return [
        ("get", endpoint, None),
        ("patch", endpoint, {"description": "taken over", "enabled": False}),
        ("post", f"{endpoint}/rotate-secret", None),
        ("post", f"{endpoint}/test", None),
        ("get", delivery, None),
        ("post", f"{delivery}/retry", None),
        ("delete", endpoint, None),
    ]


def _call(caller, method, path, body):
    if method in ("get", "delete"):
        return getattr(caller, method)(path)
    return getattr(caller, method)(path, body)


def test_another_tenants_key_finds_none_of_its_endpoints_or_deliveries(
    alice_key, bob_key, world, enqueued
):
    created = create(alice_key, description="A's CRM")
    delivery = delivery_row(world.tenant_a, created["id"])
    for method, path, body in _routes(created["id"], delivery.pk):
        response = _call(bob_key, method, path, body)
        assert response.status_code == 404, (method, path, response.content)
        assert error_code(response) == "not_found"
        assert "A's CRM" not in response.content.decode()
    assert bob_key.get(ENDPOINTS).json()["results"] == []
    assert bob_key.get(DELIVERIES).json()["results"] == []
    assert bob_key.get(DELIVERIES, {"endpoint": created["id"]}).json()["results"] == []
    # Nothing of A's changed.
    with schema_context(world.tenant_a.schema_name):
        endpoint = WebhookEndpoint.objects.get(pk=created["id"])
        assert (endpoint.description, endpoint.enabled) == ("A's CRM", True)
        assert WebhookDelivery.objects.get(pk=delivery.pk).status == "failed"
        assert WebhookDelivery.objects.count() == 1
        # B's rotation changed nothing: A's receivers still verify with the first secret.
        body = b"{}"
        headers = webhook_sign(endpoint, msg_id="msg_1", timestamp=timezone.now(), body=body)
    Webhook(created["secret"]).verify(body, headers)
    assert enqueued == []


def test_each_tenant_lists_only_its_own(alice_key, bob_key, world):
    mine = create(alice_key, description="A")
    theirs = create(bob_key, description="B")
    delivery_row(world.tenant_a, mine["id"])
    delivery_row(world.tenant_b, theirs["id"])
    assert [row["description"] for row in alice_key.get(ENDPOINTS).json()["results"]] == ["A"]
    assert [row["description"] for row in bob_key.get(ENDPOINTS).json()["results"]] == ["B"]
    assert [row["endpoint"] for row in alice_key.get(DELIVERIES).json()["results"]] == [mine["id"]]
    assert [row["endpoint"] for row in bob_key.get(DELIVERIES).json()["results"]] == [theirs["id"]]


def test_an_end_user_token_is_refused_everywhere(alice_key, erin, world, enqueued):
    created = create(alice_key)
    delivery = delivery_row(world.tenant_a, created["id"])
    routes = [
        ("get", ENDPOINTS, None),
        ("post", ENDPOINTS, {"url": URL}),
        ("get", DELIVERIES, None),
        *_routes(created["id"], delivery.pk),
    ]
    for method, path, body in routes:
        response = _call(erin, method, path, body)
        assert response.status_code == 403, (method, path, response.content)
        assert error_code(response) == "forbidden"
    with schema_context(world.tenant_a.schema_name):
        assert WebhookEndpoint.objects.count() == 1
        assert WebhookDelivery.objects.get(pk=delivery.pk).status == "failed"
    assert enqueued == []


def test_an_admin_token_works_too(alice_admin, alice_key):
    created = create(alice_admin)
    assert alice_key.get(f"{ENDPOINTS}/{created['id']}").status_code == 200
    assert alice_admin.post(f"{ENDPOINTS}/{created['id']}/rotate-secret").status_code == 200
    assert alice_admin.get(DELIVERIES).status_code == 200


def test_no_credential_is_401(db, world):
    anonymous = Caller(host=world.alice.host)
    assert anonymous.get(ENDPOINTS).status_code == 401
    assert anonymous.post(ENDPOINTS, {"url": URL}).status_code == 401


def test_lists_take_the_same_queries_for_one_row_as_for_many(alice_key, world):
    first = create(alice_key)
    delivery_row(world.tenant_a, first["id"])

    def queries(path):
        with CaptureQueriesContext(connection) as captured:
            assert alice_key.get(path).status_code == 200
        return len(captured)

    few = (queries(ENDPOINTS), queries(DELIVERIES))
    for _ in range(5):
        delivery_row(world.tenant_a, create(alice_key)["id"])
    assert (queries(ENDPOINTS), queries(DELIVERIES)) == few
