"""Webhook endpoints: the secret shown once and kept encrypted, validation, the plan's limit,
Standard Webhooks signatures a receiver verifies, the event bodies, and tenant isolation."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from herald import encryption
from herald.domain import Invalid, LimitExceeded
from notifications.events import DELIVERY_VALUES, NOTIFICATION_KEYS, notification_rows
from notifications.models import Delivery, Notification, WebhookEndpoint
from notifications.services.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from notifications.webhooks.events import (
    DELIVERY_FAILED,
    NOTIFICATION_CREATED,
    WEBHOOK_EVENTS,
    delivery_event,
    notification_event,
    webhook_message_id,
)
from notifications.webhooks.signing import webhook_secret_open, webhook_sign
from tests.billing.test_limits import override

# The test receivers' address: the only one tests may let endpoints reach (plain http inside
# WEBHOOK_ALLOWED_CIDRS). Nothing here connects; saving resolves and checks the address.
URL = "http://127.0.0.2:9/herald"


@pytest.fixture(autouse=True)
def receivers_allowed(settings):
    settings.WEBHOOK_ALLOWED_CIDRS = (ipaddress.ip_network("127.0.0.2/32"),)


@pytest.fixture
def in_a(db, world):
    with schema_context(world.tenant_a.schema_name):
        yield world.tenant_a


def create(tenant, **fields):
    return webhook_endpoint_create(tenant=tenant, **{"url": URL, **fields})


def signed(secret_or_endpoint, body=b'{"type":"notification.created"}', at=None):
    at = at or timezone.now()
    return webhook_sign(secret_or_endpoint, msg_id="msg_1", timestamp=at, body=body), body


class TestSecret:
    def test_create_returns_a_standard_webhooks_secret_that_is_not_stored_as_is(self, in_a):
        endpoint, secret = create(in_a, events=[NOTIFICATION_CREATED], types=["billing.invoice"])
        assert secret.startswith("whsec_")
        assert len(Webhook(secret)._whsecret) == 32  # the library reads it: 32 random bytes
        stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
        assert secret not in stored.secret_encrypted
        assert secret.removeprefix("whsec_") not in stored.secret_encrypted
        assert webhook_secret_open(stored) == secret
        assert (stored.url, stored.events, stored.types, stored.enabled) == (
            URL,
            [NOTIFICATION_CREATED],
            ["billing.invoice"],
            True,
        )
        assert secret not in str(stored)

    def test_every_endpoint_gets_its_own_secret(self, in_a):
        assert create(in_a)[1] != create(in_a)[1]

    def test_rotation_changes_the_secret_and_the_old_one_no_longer_verifies(self, in_a):
        endpoint, old = create(in_a)
        new = webhook_endpoint_rotate_secret(endpoint=endpoint)
        assert new != old
        assert new.startswith("whsec_")
        headers, body = signed(WebhookEndpoint.objects.get(pk=endpoint.pk))
        Webhook(new).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(body, headers)

    def test_an_old_encryption_key_still_decrypts_after_a_new_one_is_put_in_front(
        self, in_a, settings
    ):
        settings.HERALD_ENCRYPTION_KEYS = []  # the key derived from SECRET_KEY
        endpoint, secret = create(in_a)
        newest = Fernet.generate_key().decode()
        settings.HERALD_ENCRYPTION_KEYS = [newest, encryption.derived_key(settings.SECRET_KEY)]
        assert webhook_secret_open(endpoint) == secret
        endpoint.secret_encrypted = encryption.reencrypt(endpoint.secret_encrypted)
        settings.HERALD_ENCRYPTION_KEYS = [newest]
        assert webhook_secret_open(endpoint) == secret
        settings.HERALD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
        with pytest.raises(encryption.InvalidToken):
            webhook_secret_open(endpoint)


class TestValidation:
    def test_every_bad_field_is_named(self, in_a):
        with pytest.raises(Invalid) as caught:
            create(
                in_a,
                url="ftp://hooks.example.com/",
                events=["notification.created", "user.deleted"],
                types=["Not A Key", "ok.key"],
                enabled="yes",
            )
        details = caught.value.details
        assert set(details) == {"url", "events", "types", "enabled"}
        assert "user.deleted" in details["events"][0]
        assert details["types"] == ["Not a valid type key: 'Not A Key'."]
        assert not WebhookEndpoint.objects.exists()

    @pytest.mark.parametrize(
        "url",
        [
            "127.0.0.2/x",
            "https://",
            "https:///path",
            "javascript:alert(1)",
            "http://127.0.0.2:99999/",
            "http://127.0.0.2/a b",
            "http://127.0.0.2/" + "a" * 2000,
            "http://127.0.0.1/",  # loopback outside the allowed networks
            "http://2130706433/",  # the same, in decimal
            "http://[::ffff:127.0.0.1]/",
        ],
    )
    def test_urls_without_a_scheme_host_sane_length_or_allowed_address_are_refused(self, in_a, url):
        with pytest.raises(Invalid) as caught:
            create(in_a, url=url)
        assert list(caught.value.details) == ["url"]

    def test_plain_http_is_refused_outside_the_allowed_networks(self, in_a, settings):
        assert create(in_a, url="http://127.0.0.2/")[0].url == "http://127.0.0.2/"
        settings.WEBHOOK_ALLOWED_CIDRS = ()
        with pytest.raises(Invalid) as caught:
            create(in_a, url="http://127.0.0.2/")
        assert list(caught.value.details) == ["url"]

    def test_update_changes_only_the_given_fields_and_validates_them(self, in_a):
        endpoint, _ = create(in_a, description="CRM", events=[NOTIFICATION_CREATED])
        webhook_endpoint_update(tenant=in_a, endpoint=endpoint, types=["billing.invoice"])
        fresh = WebhookEndpoint.objects.get(pk=endpoint.pk)
        assert (fresh.description, fresh.events, fresh.types) == (
            "CRM",
            [NOTIFICATION_CREATED],
            ["billing.invoice"],
        )
        with pytest.raises(Invalid) as caught:
            webhook_endpoint_update(tenant=in_a, endpoint=fresh, events=["nope"])
        assert list(caught.value.details) == ["events"]
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).events == [NOTIFICATION_CREATED]

    def test_enabling_a_disabled_endpoint_clears_its_failure_record(self, in_a):
        endpoint, _ = create(in_a)
        endpoint.enabled = False
        endpoint.disabled_reason = "Failing for 5 days."
        endpoint.failing_since = timezone.now() - timedelta(days=5)
        endpoint.save()
        webhook_endpoint_update(tenant=in_a, endpoint=endpoint, enabled=True)
        fresh = WebhookEndpoint.objects.get(pk=endpoint.pk)
        assert (fresh.enabled, fresh.disabled_reason, fresh.failing_since) == (True, "", None)

    def test_delete(self, in_a):
        endpoint, _ = create(in_a)
        webhook_endpoint_delete(endpoint=endpoint)
        assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()

    def test_the_plan_limits_how_many_endpoints_a_tenant_has(self, in_a):
        tenant = override(in_a, max_webhook_endpoints=2)
        create(tenant)
        create(tenant)
        with pytest.raises(LimitExceeded):
            create(tenant)
        assert WebhookEndpoint.objects.count() == 2


class TestSigning:
    def test_a_receiver_verifies_the_headers_with_the_standard_webhooks_library(self, in_a):
        endpoint, secret = create(in_a)
        msg_id = webhook_message_id()
        body = json.dumps({"type": "delivery.sent", "data": {"id": 1}}).encode()
        at = timezone.now()
        headers = webhook_sign(endpoint, msg_id=msg_id, timestamp=at, body=body)
        assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        assert headers["webhook-id"] == msg_id
        assert msg_id.startswith("msg_")
        assert headers["webhook-timestamp"] == str(int(at.timestamp()))
        assert headers["webhook-signature"].startswith("v1,")
        assert Webhook(secret).verify(body, headers) == json.loads(body)
        # The secret itself signs the same way as the endpoint that keeps it.
        assert webhook_sign(secret, msg_id=msg_id, timestamp=at, body=body) == headers

    def test_a_changed_body_id_or_timestamp_does_not_verify(self):
        secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        headers, body = signed(secret)
        for tampered_body, tampered in (
            (body + b" ", headers),
            (body, {**headers, "webhook-id": "msg_2"}),
            (body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}),
        ):
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(tampered_body, tampered)

    def test_a_naive_timestamp_is_utc(self):
        secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        at = datetime.now(UTC)
        assert signed(secret, at=at.replace(tzinfo=None)) == signed(secret, at=at)

    def test_message_ids_are_unique(self):
        assert len({webhook_message_id() for _ in range(100)}) == 100


class TestEventBodies:
    def test_notification_and_delivery_events_carry_the_apis_shapes(self, alice_key, world):
        alice_key.post(
            "/api/v1/notifications",
            {
                "type": "webhook.test",
                "recipients": ["user-1"],
                "message": "m",
                "channels": ["in_app", "email"],
            },
        )
        at = timezone.now()
        with schema_context(world.tenant_a.schema_name):
            row = notification_rows(Notification.objects.order_by("-id"), with_recipient=True)[0]
            created = notification_event(NOTIFICATION_CREATED, row=row, timestamp=at)
            delivery_row = Delivery.objects.order_by("-id").values(*DELIVERY_VALUES)[0]
            failed = delivery_event(DELIVERY_FAILED, row=delivery_row, timestamp=at)
        assert set(created) == {"type", "timestamp", "data"}
        assert created["type"] == NOTIFICATION_CREATED
        assert created["timestamp"] == at.isoformat()
        assert set(created["data"]) == NOTIFICATION_KEYS | {"recipient", "send"}
        assert created["data"]["recipient"] == "user-1"
        listed = alice_key.get(f"/api/v1/deliveries?send={created['data']['send']}").json()
        api_row = listed["results"][0]
        assert set(failed["data"]) == set(api_row)
        assert failed["data"]["id"] == api_row["id"]
        assert failed["type"] == DELIVERY_FAILED

    def test_a_body_needs_an_event_of_its_kind_and_the_recipient(self):
        with pytest.raises(ValueError, match="Not a notification event"):
            notification_event("delivery.sent", row={}, timestamp=timezone.now())
        with pytest.raises(ValueError, match="needs the recipient"):
            notification_event(NOTIFICATION_CREATED, row={"id": 1}, timestamp=timezone.now())

    def test_the_four_events(self):
        assert WEBHOOK_EVENTS == (
            "notification.created",
            "notification.read",
            "delivery.sent",
            "delivery.failed",
        )


def test_an_endpoint_in_tenant_as_schema_is_invisible_in_tenant_bs(db, world):
    with schema_context(world.tenant_a.schema_name):
        endpoint, _ = create(world.tenant_a, description="A's CRM")
        assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    with schema_context(world.tenant_b.schema_name):
        assert connection.schema_name == world.tenant_b.schema_name
        assert not WebhookEndpoint.objects.filter(description="A's CRM").exists()
        assert not WebhookEndpoint.objects.exists()
