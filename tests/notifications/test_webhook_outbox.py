"""The webhook event outbox: one queued row per (event, subscribed endpoint), written in the
transaction that causes the event (a send's notifications, a notification marked read, a
delivery's final status), filtered by the endpoints' events and types, and per tenant."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection, reset_queries, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from notifications.models import (
    Delivery,
    DigestBatch,
    EndUser,
    Notification,
    NotificationType,
    Preference,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.services.deliveries import deliveries_deliver
from notifications.services.digests import digests_flush_due
from notifications.services.inbox import inbox_mark_read
from notifications.services.sending import SendInput, notification_send, sends_release_due
from notifications.services.users import RecipientInput
from notifications.services.webhook_endpoints import webhook_endpoint_create
from notifications.webhooks.events import (
    DELIVERY_FAILED,
    DELIVERY_SENT,
    NOTIFICATION_CREATED,
    NOTIFICATION_READ,
)
from tenants.models import Tenant
from tests.billing.test_limits import override
from tests.support.smtp import smtp_sink

URL = "http://127.0.0.2:9/herald"
MSG_ID = re.compile(r"^msg_[0-9a-f]{32}$")


@pytest.fixture(autouse=True)
def receivers_allowed(settings):
    settings.WEBHOOK_ALLOWED_CIDRS = (ipaddress.ip_network("127.0.0.2/32"),)


def endpoint(tenant: Tenant, **fields) -> WebhookEndpoint:
    with schema_context(tenant.schema_name):
        created, _secret = webhook_endpoint_create(tenant=tenant, url=URL, **fields)
    return created


def events(tenant: Tenant, **filters) -> list[WebhookDelivery]:
    with schema_context(tenant.schema_name):
        return list(WebhookDelivery.objects.filter(**filters).order_by("id"))


def send(caller, recipients, type_key: str = "comment", **fields) -> int:
    body = {"type": type_key, "recipients": list(recipients), "message": "m", **fields}
    response = caller.post("/api/v1/notifications", body)
    assert response.status_code == 202, response.content
    return response.json()["id"]


def notification_ids(tenant: Tenant, send_id: int) -> list[int]:
    with schema_context(tenant.schema_name):
        return list(
            Notification.objects.filter(send_id=send_id).order_by("id").values_list("id", flat=True)
        )


def send_directly(tenant: Tenant, users: list[str], type_key: str = "comment") -> int:
    outcome = notification_send(
        tenant=tenant,
        request=SendInput(
            type=type_key, recipients=[RecipientInput(external_id=u) for u in users], message="m"
        ),
        fingerprint="",
        idempotency_key=None,
        actor="test",
    )
    return int(outcome.response["id"])


class TestCreated:
    def test_a_send_writes_one_queued_event_per_notification_on_both_paths(self, alice_key, world):
        tenant = world.tenant_a
        hook = endpoint(tenant)
        recipients = [f"created-{n}" for n in range(3)]
        first = send(alice_key, recipients)  # new recipients: the general path
        again = send(alice_key, recipients)  # all exist: the send's own statement

        for send_id in (first, again):
            ids = notification_ids(tenant, send_id)
            assert len(ids) == 3
            rows = events(tenant, notification_id__in=ids)
            assert [r.notification_id for r in rows] == ids
            with schema_context(tenant.schema_name):
                created_at = Notification.objects.get(pk=ids[0]).created_at
            for row in rows:
                assert (row.endpoint_id, row.event, row.status) == (
                    hook.pk, NOTIFICATION_CREATED, "queued",
                )  # fmt: skip
                assert (row.body, row.attempts, row.delivery_id) == ("", 0, None)
                assert MSG_ID.match(row.msg_id)
                assert row.occurred_at == row.created_at == row.updated_at == created_at
            assert len({r.msg_id for r in rows}) == 3

    def test_one_per_notification_whatever_the_channels(self, alice_key, world):
        tenant = world.tenant_a
        endpoint(tenant)
        alice_key.put("/api/v1/types/both", {"channels": ["in_app", "email"]})
        send_id = send(alice_key, ["both-1", "both-2"], type_key="both")
        ids = notification_ids(tenant, send_id)
        assert [r.notification_id for r in events(tenant, event=NOTIFICATION_CREATED)] == ids

    def test_rows_commit_with_the_notifications_or_not_at_all(self, db, world):
        tenant = world.tenant_a
        endpoint(tenant)
        with tenant_context(tenant):
            for fast in (False, True):  # new recipients, then recipients who all exist
                if fast:
                    EndUser.objects.bulk_create(
                        [EndUser(external_id="roll-1"), EndUser(external_id="roll-2")]
                    )
                with transaction.atomic():
                    send_id = send_directly(tenant, ["roll-1", "roll-2"])
                    ids = notification_ids(tenant, send_id)
                    assert len(ids) == 2
                    # In the same transaction, the events are there with the notifications.
                    written = events(tenant, notification_id__in=ids)
                    assert [r.notification_id for r in written] == ids
                    transaction.set_rollback(True)
                assert not Notification.objects.filter(send_id=send_id).exists()
                assert not WebhookDelivery.objects.filter(notification_id__in=ids).exists()

    def test_a_released_scheduled_send_writes_its_events_then(self, alice_key, world):
        tenant = world.tenant_a
        endpoint(tenant)
        later = (timezone.now() + timedelta(hours=1)).isoformat()
        send_id = send(alice_key, ["sched-1", "sched-2"], send_at=later)
        assert events(tenant) == []
        with tenant_context(tenant):
            assert sends_release_due(tenant=tenant, now=timezone.now() + timedelta(hours=2))
        ids = notification_ids(tenant, send_id)
        assert len(ids) == 2
        assert [r.notification_id for r in events(tenant)] == ids


class TestFilters:
    def test_events_types_and_enabled_filter_who_gets_what(self, alice_key, world):
        tenant = world.tenant_a
        everything = endpoint(tenant)
        reads_only = endpoint(tenant, events=[NOTIFICATION_READ])
        created_only = endpoint(tenant, events=[NOTIFICATION_CREATED, DELIVERY_SENT])
        invoices = endpoint(tenant, types=["invoice.paid"])
        comments_created = endpoint(tenant, events=[NOTIFICATION_CREATED], types=["comment"])
        disabled = endpoint(tenant, enabled=False)

        comment = notification_ids(tenant, send(alice_key, ["f-1", "f-2"], type_key="comment"))
        invoice = notification_ids(tenant, send(alice_key, ["f-1"], type_key="invoice.paid"))

        received = {
            hook: [r.notification_id for r in events(tenant, endpoint=hook)]
            for hook in (everything, reads_only, created_only, invoices, comments_created, disabled)
        }
        assert received[everything] == comment + invoice
        assert received[created_only] == comment + invoice
        assert received[invoices] == invoice
        assert received[comments_created] == comment
        assert received[reads_only] == []
        assert received[disabled] == []


def queries(action) -> int:
    """How many queries ``action()`` makes. The log is emptied first: a request empties it as
    it starts (``request_started``), which would make a count that began with queries in it
    come out short."""
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured)


class TestWithoutEndpoints:
    def test_nothing_is_written_and_at_most_one_query_is_added(self, alice_key, erin, world):
        tenant = world.tenant_a
        recipients = [f"quiet-{n}" for n in range(50)]
        send(alice_key, ["user-1"])  # the type exists from here on
        send(alice_key, ["user-1"])  # host and key come from the registry cache

        def read_all(updated: int) -> None:
            assert erin.post("/api/v1/me/notifications/read_all").json() == {"updated": updated}

        # One more than before the outbox (tests/notifications/test_send.py pins them): whether
        # an endpoint takes notification.created; the statements that write the notifications
        # write the events too.
        assert queries(lambda: send(alice_key, recipients)) == 6 + 1  # new recipients
        assert queries(lambda: send(alice_key, recipients)) == 4 + 1  # existing ones
        unsubscribed_read = queries(lambda: read_all(2))
        assert events(tenant) == []

        # Subscribed, the same statements write the events; only the enqueue's due hint is more.
        endpoint(tenant)
        assert queries(lambda: send(alice_key, recipients)) == 4 + 1 + 1
        assert len(events(tenant, event=NOTIFICATION_CREATED)) == len(recipients)
        send(alice_key, ["user-1"])
        assert queries(lambda: read_all(1)) == unsubscribed_read + 1
        assert len(events(tenant, event=NOTIFICATION_READ)) == 1

    def test_marking_one_read_adds_one_query(self, alice_key, erin, world):
        [first, second] = [notification_ids(world.tenant_a, send(alice_key, ["user-1"]))[0]
                           for _ in range(2)]  # fmt: skip
        erin.patch(f"/api/v1/me/notifications/{first}", {"archived": True})
        archive = queries(
            lambda: erin.patch(f"/api/v1/me/notifications/{first}", {"archived": False})
        )
        read = queries(lambda: erin.patch(f"/api/v1/me/notifications/{second}", {"is_read": True}))
        assert read == archive + 1
        assert events(world.tenant_a) == []


class TestRead:
    def test_marking_one_read_writes_one_event_and_again_nothing(self, alice_key, erin, world):
        tenant = world.tenant_a
        hook = endpoint(tenant, events=[NOTIFICATION_READ])
        [notification_id] = notification_ids(tenant, send(alice_key, ["user-1"]))
        path = f"/api/v1/me/notifications/{notification_id}"

        assert erin.patch(path, {"is_read": True}).status_code == 200
        erin.patch(path, {"is_read": True})  # already read: no change, no event
        erin.patch(path, {"archived": True})  # not a read
        [row] = events(tenant)
        assert (row.endpoint_id, row.event, row.notification_id) == (
            hook.pk, NOTIFICATION_READ, notification_id,
        )  # fmt: skip
        with schema_context(tenant.schema_name):
            assert row.occurred_at == Notification.objects.get(pk=notification_id).read_at

        erin.patch(path, {"is_read": False})
        erin.patch(path, {"is_read": True})  # read again: a new change, a new event
        assert [r.notification_id for r in events(tenant)] == [notification_id] * 2

    def test_mark_all_writes_one_per_notification_that_changed(self, alice_key, erin, world):
        tenant = world.tenant_a
        endpoint(tenant, events=[NOTIFICATION_READ])
        ids = [notification_ids(tenant, send(alice_key, ["user-1"]))[0] for _ in range(3)]
        erin.patch(f"/api/v1/me/notifications/{ids[0]}", {"is_read": True})
        assert [r.notification_id for r in events(tenant)] == [ids[0]]

        assert erin.post("/api/v1/me/notifications/read_all").json() == {"updated": 2}
        assert erin.post("/api/v1/me/notifications/read_all").json() == {"updated": 0}
        assert sorted(r.notification_id for r in events(tenant)) == ids

    def test_the_websocket_path_marks_given_ids_and_writes_only_changed_ones(
        self, alice_key, world
    ):
        tenant = world.tenant_a
        endpoint(tenant, types=["comment"])
        ids = [notification_ids(tenant, send(alice_key, ["ws-1"]))[0] for _ in range(2)]
        other_type = notification_ids(tenant, send(alice_key, ["ws-1"], type_key="other"))
        with tenant_context(tenant):
            user = EndUser.objects.get(external_id="ws-1")
            assert inbox_mark_read(tenant=tenant, user=user, ids=[ids[0]]) == [ids[0]]
            changed = inbox_mark_read(tenant=tenant, user=user, ids=[*ids, *other_type])
        assert sorted(changed) == sorted([ids[1], *other_type])
        read = [r.notification_id for r in events(tenant, event=NOTIFICATION_READ)]
        assert read == [ids[0], ids[1]]  # "other" is not a type the endpoint takes


@pytest.fixture
def smtp(settings) -> Iterator:
    """A real SMTP server (aiosmtpd) as this process's email backend."""
    with smtp_sink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        yield sink


def email_type(**fields) -> str:
    key = f"outbox-{uuid.uuid4().hex[:8]}"
    NotificationType.objects.create(key=key, name=key, channels=["email"], **fields)
    return key


class TestDeliveries:
    def test_a_sent_email_writes_delivery_sent_and_a_bounced_one_delivery_failed(
        self, db, world, smtp
    ):
        tenant = world.tenant_a
        hook = endpoint(tenant, events=[DELIVERY_SENT, DELIVERY_FAILED])
        with tenant_context(tenant):
            EndUser.objects.create(external_id="mail-ok", email="ok@example.com")
            EndUser.objects.create(external_id="mail-bounce", email="bounce@example.com")
            EndUser.objects.create(external_id="mail-none", email="")
            send_id = send_directly(tenant, ["mail-ok", "mail-bounce", "mail-none"], email_type())
            queued = {d.recipient.external_id: d for d in Delivery.objects.filter(send_id=send_id)}
            assert events(tenant) == []  # nothing until a delivery is final
            assert deliveries_deliver(tenant=Tenant.objects.get(pk=tenant.pk)).claimed == 3
            statuses = dict(Delivery.objects.filter(send_id=send_id).values_list("id", "status"))

        by_delivery = {r.delivery_id: r for r in events(tenant)}
        assert statuses[queued["mail-ok"].pk] == "sent"
        assert by_delivery[queued["mail-ok"].pk].event == DELIVERY_SENT
        assert by_delivery[queued["mail-bounce"].pk].event == DELIVERY_FAILED
        assert by_delivery[queued["mail-none"].pk].event == DELIVERY_FAILED
        assert len(by_delivery) == 3
        for row in by_delivery.values():
            assert (row.endpoint_id, row.status, row.notification_id) == (hook.pk, "queued", None)
            assert row.occurred_at == row.created_at == row.updated_at

    def test_suppressed_and_skipped_deliveries_write_nothing(self, db, world, smtp):
        tenant = override(world.tenant_a, monthly_email_quota=0)
        endpoint(tenant)
        with tenant_context(tenant):
            EndUser.objects.create(external_id="mail-quota", email="quota@example.com")
            skipped = EndUser.objects.create(external_id="mail-off", email="off@example.com")
            send_id = send_directly(tenant, ["mail-quota", "mail-off"], email_type())
            Preference.objects.create(user=skipped, channel="email", enabled=False)
            assert deliveries_deliver(tenant=Tenant.objects.get(pk=tenant.pk)).claimed == 2
            statuses = dict(
                Delivery.objects.filter(send_id=send_id).values_list("recipient__external_id",
                                                                     "status")
            )  # fmt: skip
        override(tenant)
        assert statuses == {"mail-quota": "suppressed_quota", "mail-off": "skipped_preference"}
        assert events(tenant, delivery__isnull=False) == []

    def test_a_digests_items_each_write_their_event(self, db, world, smtp):
        tenant = world.tenant_a
        endpoint(tenant, events=[DELIVERY_SENT, DELIVERY_FAILED])
        with tenant_context(tenant):
            EndUser.objects.create(external_id="digest-ok", email="digest@example.com")
            EndUser.objects.create(external_id="digest-bounce", email="bounce-d@example.com")
            key = email_type(digest_window_seconds=600)
            for _ in range(2):
                send_directly(tenant, ["digest-ok", "digest-bounce"], key)
            DigestBatch.objects.filter(
                recipient__external_id__in=["digest-ok", "digest-bounce"]
            ).update(closes_at=timezone.now())
            assert events(tenant) == []
            assert digests_flush_due(tenant=tenant, limit=10) == 2
            items = dict(Delivery.objects.filter(send__type__key=key).values_list("id", "status"))

        by_delivery = {r.delivery_id: r.event for r in events(tenant)}
        assert set(by_delivery) == set(items)
        assert Counter(items.values()) == {"sent": 2, "failed": 2}
        for delivery_id, status in items.items():
            assert by_delivery[delivery_id] == f"delivery.{status}"


class TestTenantIsolation:
    def test_another_tenants_endpoints_never_get_this_tenants_events(
        self, alice_key, bob_key, erin, world
    ):
        alpha, bravo = world.tenant_a, world.tenant_b
        theirs = endpoint(bravo)
        ours = endpoint(alpha)
        ids = notification_ids(alpha, send(alice_key, ["user-1", "iso-2"]))
        erin.post("/api/v1/me/notifications/read_all")

        assert events(bravo) == []
        assert {r.endpoint_id for r in events(alpha)} == {ours.pk}
        assert {r.notification_id for r in events(alpha, event=NOTIFICATION_CREATED)} == set(ids)
        bravo_ids = notification_ids(bravo, send(bob_key, ["user-1"]))
        assert [(r.endpoint_id, r.notification_id) for r in events(bravo)] == [
            (theirs.pk, bravo_ids[0])
        ]
        assert len(events(alpha, event=NOTIFICATION_CREATED)) == len(ids)
